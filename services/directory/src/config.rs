//! Configuration of the directory server: command-line flags, their
//! environment variables, an optional YAML configuration file and the YAML
//! file of extra resource types, resolved into one [`DirectoryConfig`]
//! before anything binds or connects.
//!
//! Precedence, highest first: command-line flag, environment variable,
//! configuration file, built-in default.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use serde::Deserialize;
use workteams_auth::settings::{DEFAULT_JWKS_REFRESH, DEFAULT_LEEWAY};
use workteams_auth::{AuthSettings, KeySource, RateLimit};
use workteams_domain::{ResourceTypeDef, ResourceTypeRegistry};
use workteams_telemetry::LogFormat;

/// Default listen address: loopback only, so a fresh install is not exposed.
pub const DEFAULT_LISTEN_ADDRESS: &str = "127.0.0.1:50151";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "./.workteams";
/// How long the change log keeps batches before the purge removes them.
pub const DEFAULT_CHANGE_LOG_RETENTION: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// How long an idempotency key keeps returning its first response.
pub const DEFAULT_IDEMPOTENCY_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);
/// How often the purge of the change log and idempotency keys runs.
pub const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// Idle time after which a Watch stream sends a heartbeat.
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(5);
/// How long shutdown waits for open calls and connections to finish.
pub const DEFAULT_SHUTDOWN_GRACE_PERIOD: Duration = Duration::from_secs(10);
/// Maximum size of one gRPC message, in bytes, in either direction. A
/// BatchSetGrants request with 10,000 changes takes about 1.5 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Smallest accepted `max_message_size`, in bytes.
pub const MIN_MAX_MESSAGE_SIZE: usize = 64 * 1024;
/// Largest accepted `max_message_size`, in bytes: the gRPC length prefix is
/// 32 bits, and tonic rejects larger frames anyway.
pub const MAX_MAX_MESSAGE_SIZE: usize = 1024 * 1024 * 1024;
/// Default number of calls handled at once before new calls are shed with
/// RESOURCE_EXHAUSTED. Each call holds at most one database connection.
pub const DEFAULT_CONCURRENCY_LIMIT: usize = 1024;
/// Largest accepted `concurrency_limit`.
pub const MAX_CONCURRENCY_LIMIT: usize = 1_000_000;
/// Deadline of a call whose client sends no shorter `grpc-timeout`.
pub const DEFAULT_CALL_DEADLINE: Duration = Duration::from_secs(30);
/// Value of `metrics_listen_address` that turns the metrics endpoint off.
pub const METRICS_OFF: &str = "off";
/// Default calls per second that one caller may make on average.
pub const DEFAULT_RATE_LIMIT_PER_SECOND: u32 = 1_000;
/// Default calls one caller may make at once before the average applies.
pub const DEFAULT_RATE_LIMIT_BURST: u32 = 2_000;

/// Authentication mode of the directory's callers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    /// Nothing is configured, so the directory refuses to start.
    Unconfigured,
    /// Every call is accepted without credentials, as every caller's
    /// `Caller::Unauthenticated`; the server warns at every start.
    InsecureNoAuth,
    /// Every call needs a bearer token verified with these settings.
    Tokens(AuthSettings),
}

/// TLS for the gRPC listener, with optional client certificates (mutual
/// TLS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// PEM certificate chain of the server.
    pub cert_file: PathBuf,
    /// PEM private key of the server.
    pub key_file: PathBuf,
    /// PEM certificate authorities of client certificates; when set, every
    /// client must present a certificate they signed.
    pub client_ca_file: Option<PathBuf>,
}

/// Everything the directory server needs to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryConfig {
    pub listen_address: SocketAddr,
    /// Directory for the default SQLite database; created at start.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`.
    pub database_url: String,
    /// Resource types added to the built-in ones, already validated.
    pub extra_resource_types: Vec<ResourceTypeDef>,
    pub change_log_retention: Duration,
    pub idempotency_retention: Duration,
    pub purge_interval: Duration,
    pub heartbeat_interval: Duration,
    /// After this long, shutdown stops waiting for open connections.
    pub shutdown_grace_period: Duration,
    /// Maximum gRPC message size in bytes, for requests and responses.
    pub max_message_size: usize,
    pub log_format: LogFormat,
    /// Where Prometheus metrics are served over HTTP; `None` turns the
    /// endpoint off.
    pub metrics_listen_address: Option<SocketAddr>,
    /// Calls handled at once; calls beyond it get RESOURCE_EXHAUSTED.
    pub concurrency_limit: usize,
    /// Deadline of a call unless the client's `grpc-timeout` is shorter.
    /// It bounds the time to the response, so open Watch streams outlive it.
    pub default_deadline: Duration,
    pub authentication: Authentication,
    /// TLS of the gRPC listener; `None` serves plaintext HTTP/2.
    pub tls: Option<TlsSettings>,
    /// Token bucket of each caller; `None` turns the limit off.
    pub rate_limit: Option<RateLimit>,
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        Self::with_data_dir(PathBuf::from(DEFAULT_DATA_DIR))
    }
}

impl DirectoryConfig {
    /// Default settings with the SQLite database under `data_dir`.
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        Self {
            listen_address: default_listen_address(),
            database_url: sqlite_url_in(&data_dir),
            data_dir,
            extra_resource_types: Vec::new(),
            change_log_retention: DEFAULT_CHANGE_LOG_RETENTION,
            idempotency_retention: DEFAULT_IDEMPOTENCY_RETENTION,
            purge_interval: DEFAULT_PURGE_INTERVAL,
            heartbeat_interval: DEFAULT_HEARTBEAT_INTERVAL,
            shutdown_grace_period: DEFAULT_SHUTDOWN_GRACE_PERIOD,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            log_format: LogFormat::default(),
            metrics_listen_address: None,
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            default_deadline: DEFAULT_CALL_DEADLINE,
            authentication: Authentication::Unconfigured,
            tls: None,
            rate_limit: Some(default_rate_limit()),
        }
    }

    /// Builds the registry of the built-in and the configured resource types.
    pub fn resource_type_registry(&self) -> Result<ResourceTypeRegistry, ConfigError> {
        ResourceTypeRegistry::with_builtins(self.extra_resource_types.clone()).map_err(|error| {
            ConfigError::new(
                "resource_types_file",
                format!("invalid resource type: {error}"),
            )
        })
    }

    /// Returns whether the database is a SQLite file (as opposed to a server).
    pub fn uses_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }

    /// Checks the settings that do not need a file system or network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check_database_url(&self.database_url)?;
        check_positive("change_log_retention", self.change_log_retention)?;
        check_positive("idempotency_retention", self.idempotency_retention)?;
        check_positive("purge_interval", self.purge_interval)?;
        check_positive("heartbeat_interval", self.heartbeat_interval)?;
        check_positive("shutdown_grace_period", self.shutdown_grace_period)?;
        check_message_size(self.max_message_size)?;
        check_positive("default_deadline", self.default_deadline)?;
        check_concurrency_limit(self.concurrency_limit)?;
        if self.metrics_listen_address == Some(self.listen_address)
            && self.listen_address.port() != 0
        {
            return Err(ConfigError::new(
                "metrics_listen_address",
                format!(
                    "{} is also the gRPC listen_address; choose another port",
                    self.listen_address
                ),
            ));
        }
        self.resource_type_registry()?;
        check_authentication(&self.authentication)?;
        Ok(())
    }
}

/// A setting that cannot be used, with the reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct ConfigError {
    /// The setting's name as the configuration file spells it.
    pub setting: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            setting: setting.into(),
            message: message.into(),
        }
    }
}

/// Command line of `workteams-directory`. Every flag can also be set through
/// its environment variable or the configuration file.
#[derive(Debug, Clone, Default, Parser)]
#[command(
    name = "workteams-directory",
    version,
    about = "Runs the Work Teams directory gRPC server."
)]
pub struct DirectoryArgs {
    /// YAML configuration file whose keys are the long flag names with '_'
    /// in place of '-'.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address and port the gRPC server listens on [default: 127.0.0.1:50151].
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_LISTEN_ADDRESS",
        value_name = "ADDRESS"
    )]
    pub listen_address: Option<SocketAddr>,

    /// Directory for the default SQLite database [default: ./.workteams].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Database URL: sqlite://FILE or postgres://USER@HOST:PORT/DATABASE
    /// [default: a SQLite file in the data directory].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_DATABASE_URL", value_name = "URL")]
    pub database_url: Option<String>,

    /// YAML file with a list of extra resource type definitions.
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_RESOURCE_TYPES_FILE",
        value_name = "FILE"
    )]
    pub resource_types_file: Option<PathBuf>,

    /// How long the change log keeps batches, such as 7d or 12h [default: 7d].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_CHANGE_LOG_RETENTION", value_name = "DURATION", value_parser = parse_duration)]
    pub change_log_retention: Option<Duration>,

    /// How long an idempotency key returns its first response [default: 24h].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_IDEMPOTENCY_RETENTION", value_name = "DURATION", value_parser = parse_duration)]
    pub idempotency_retention: Option<Duration>,

    /// How often expired change-log rows and idempotency keys are purged
    /// [default: 5m].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_PURGE_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub purge_interval: Option<Duration>,

    /// Idle time after which a Watch stream sends a heartbeat [default: 5s].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_HEARTBEAT_INTERVAL", value_name = "DURATION", value_parser = parse_duration)]
    pub heartbeat_interval: Option<Duration>,

    /// How long shutdown waits for open calls and connections before it
    /// stops anyway [default: 10s].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_SHUTDOWN_GRACE_PERIOD", value_name = "DURATION", value_parser = parse_duration)]
    pub shutdown_grace_period: Option<Duration>,

    /// Maximum gRPC message size in bytes [default: 16777216].
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_MAX_MESSAGE_SIZE",
        value_name = "BYTES"
    )]
    pub max_message_size: Option<usize>,

    /// Log line format: plain or json [default: plain]. The RUST_LOG
    /// variable sets the filter [default: info].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,

    /// Address and port of the Prometheus metrics endpoint (/metrics), or
    /// off [default: off].
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_METRICS_LISTEN_ADDRESS",
        value_name = "ADDRESS"
    )]
    pub metrics_listen_address: Option<String>,

    /// Calls handled at once; further calls get RESOURCE_EXHAUSTED at once
    /// instead of queueing [default: 1024].
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_CONCURRENCY_LIMIT",
        value_name = "CALLS"
    )]
    pub concurrency_limit: Option<usize>,

    /// Deadline of a call whose client sends no shorter grpc-timeout, such as
    /// 30s [default: 30s].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_DEFAULT_DEADLINE", value_name = "DURATION", value_parser = parse_duration)]
    pub default_deadline: Option<Duration>,

    /// File holding the HS256 secret that verifies bearer tokens, at least
    /// 32 bytes (for development; use a JWKS in production).
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_SECRET_FILE", value_name = "FILE")]
    pub auth_secret_file: Option<PathBuf>,

    /// JSON Web Key Set file of the RS256 or ES256 keys that verify bearer
    /// tokens.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_JWKS_FILE", value_name = "FILE")]
    pub auth_jwks_file: Option<PathBuf>,

    /// https URL of the JSON Web Key Set that verifies bearer tokens,
    /// fetched at start and then every --auth-jwks-refresh.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_JWKS_URL", value_name = "URL")]
    pub auth_jwks_url: Option<String>,

    /// Interval between two fetches of --auth-jwks-url [default: 5m].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_JWKS_REFRESH", value_name = "DURATION", value_parser = parse_duration)]
    pub auth_jwks_refresh: Option<Duration>,

    /// PEM file of certificate authorities trusted for --auth-jwks-url, in
    /// addition to the built-in web roots.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_JWKS_CA_FILE", value_name = "FILE")]
    pub auth_jwks_ca_file: Option<PathBuf>,

    /// Issuer (iss claim) every token must carry.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_ISSUER", value_name = "ISSUER")]
    pub auth_issuer: Option<String>,

    /// Audience (aud claim) every token must include.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_AUDIENCE", value_name = "AUDIENCE")]
    pub auth_audience: Option<String>,

    /// Tolerance for clock differences when checking exp and nbf
    /// [default: 30s].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_AUTH_LEEWAY", value_name = "DURATION", value_parser = parse_duration)]
    pub auth_leeway: Option<Duration>,

    /// YAML file of service accounts and their scopes.
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_AUTH_SERVICE_ACCOUNTS_FILE",
        value_name = "FILE"
    )]
    pub auth_service_accounts_file: Option<PathBuf>,

    /// Accept every call without authentication. Only for local tests: anyone
    /// who reaches the port can then read and change everything.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_INSECURE_NO_AUTH")]
    pub insecure_no_auth: bool,

    /// PEM certificate chain for TLS on the gRPC listener.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_TLS_CERT_FILE", value_name = "FILE")]
    pub tls_cert_file: Option<PathBuf>,

    /// PEM private key for TLS on the gRPC listener.
    #[arg(long, env = "WORKTEAMS_DIRECTORY_TLS_KEY_FILE", value_name = "FILE")]
    pub tls_key_file: Option<PathBuf>,

    /// PEM certificate authorities of client certificates; when set, every
    /// client must present one (mutual TLS).
    #[arg(long, env = "WORKTEAMS_DIRECTORY_TLS_CLIENT_CA_FILE", value_name = "FILE")]
    pub tls_client_ca_file: Option<PathBuf>,

    /// Calls per second one caller may make on average, or 0 for no limit
    /// [default: 1000].
    #[arg(
        long,
        env = "WORKTEAMS_DIRECTORY_RATE_LIMIT_PER_SECOND",
        value_name = "CALLS"
    )]
    pub rate_limit_per_second: Option<u32>,

    /// Calls one caller may make at once before the average applies
    /// [default: 2000].
    #[arg(long, env = "WORKTEAMS_DIRECTORY_RATE_LIMIT_BURST", value_name = "CALLS")]
    pub rate_limit_burst: Option<u32>,
}

/// Keys of the YAML configuration file. Durations are text such as `7d`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    listen_address: Option<String>,
    data_dir: Option<PathBuf>,
    database_url: Option<String>,
    resource_types_file: Option<PathBuf>,
    change_log_retention: Option<String>,
    idempotency_retention: Option<String>,
    purge_interval: Option<String>,
    heartbeat_interval: Option<String>,
    shutdown_grace_period: Option<String>,
    max_message_size: Option<usize>,
    log_format: Option<String>,
    metrics_listen_address: Option<String>,
    concurrency_limit: Option<usize>,
    default_deadline: Option<String>,
    auth_secret_file: Option<PathBuf>,
    auth_jwks_file: Option<PathBuf>,
    auth_jwks_url: Option<String>,
    auth_jwks_refresh: Option<String>,
    auth_jwks_ca_file: Option<PathBuf>,
    auth_issuer: Option<String>,
    auth_audience: Option<String>,
    auth_leeway: Option<String>,
    auth_service_accounts_file: Option<PathBuf>,
    insecure_no_auth: Option<bool>,
    tls_cert_file: Option<PathBuf>,
    tls_key_file: Option<PathBuf>,
    tls_client_ca_file: Option<PathBuf>,
    rate_limit_per_second: Option<u32>,
    rate_limit_burst: Option<u32>,
}

impl DirectoryArgs {
    /// Reads the configuration and resource type files and merges every
    /// source into a validated configuration.
    pub fn resolve(self) -> Result<DirectoryConfig, ConfigError> {
        let (file, file_dir) = match &self.config {
            Some(path) => (read_config_file(path)?, parent_dir(path)),
            None => (ConfigFile::default(), PathBuf::from(".")),
        };

        let listen_address = match (self.listen_address, &file.listen_address) {
            (Some(address), _) => address,
            (None, Some(text)) => text.parse().map_err(|error| {
                ConfigError::new(
                    "listen_address",
                    format!("{text:?} is not an address and port: {error}"),
                )
            })?,
            (None, None) => default_listen_address(),
        };
        let data_dir = self
            .data_dir
            .or_else(|| file.data_dir.map(|dir| file_dir.join(dir)))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
        let database_url = self
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| sqlite_url_in(&data_dir));
        let resource_types_file = self
            .resource_types_file
            .or_else(|| file.resource_types_file.map(|path| file_dir.join(path)));

        let duration = |setting: &str,
                        flag: Option<Duration>,
                        text: Option<String>,
                        default: Duration| {
            match (flag, text) {
                (Some(value), _) => Ok(value),
                (None, Some(text)) => {
                    parse_duration(&text).map_err(|message| ConfigError::new(setting, message))
                }
                (None, None) => Ok(default),
            }
        };
        let change_log_retention = duration(
            "change_log_retention",
            self.change_log_retention,
            file.change_log_retention,
            DEFAULT_CHANGE_LOG_RETENTION,
        )?;
        let idempotency_retention = duration(
            "idempotency_retention",
            self.idempotency_retention,
            file.idempotency_retention,
            DEFAULT_IDEMPOTENCY_RETENTION,
        )?;
        let purge_interval = duration(
            "purge_interval",
            self.purge_interval,
            file.purge_interval,
            DEFAULT_PURGE_INTERVAL,
        )?;
        let heartbeat_interval = duration(
            "heartbeat_interval",
            self.heartbeat_interval,
            file.heartbeat_interval,
            DEFAULT_HEARTBEAT_INTERVAL,
        )?;
        let shutdown_grace_period = duration(
            "shutdown_grace_period",
            self.shutdown_grace_period,
            file.shutdown_grace_period,
            DEFAULT_SHUTDOWN_GRACE_PERIOD,
        )?;
        let max_message_size = self
            .max_message_size
            .or(file.max_message_size)
            .unwrap_or(DEFAULT_MAX_MESSAGE_SIZE);
        let default_deadline = duration(
            "default_deadline",
            self.default_deadline,
            file.default_deadline,
            DEFAULT_CALL_DEADLINE,
        )?;
        let concurrency_limit = self
            .concurrency_limit
            .or(file.concurrency_limit)
            .unwrap_or(DEFAULT_CONCURRENCY_LIMIT);
        let log_format = match self.log_format.or(file.log_format) {
            Some(text) => text
                .parse()
                .map_err(|message| ConfigError::new("log_format", message))?,
            None => LogFormat::default(),
        };
        let metrics_listen_address = match self
            .metrics_listen_address
            .or(file.metrics_listen_address)
        {
            Some(text) => parse_metrics_address(&text)?,
            None => None,
        };

        let extra_resource_types = match &resource_types_file {
            Some(path) => read_resource_types_file(path)?,
            None => Vec::new(),
        };

        let in_file_dir = |path: Option<PathBuf>| path.map(|path| file_dir.join(path));
        let auth_leeway = duration(
            "auth_leeway",
            self.auth_leeway,
            file.auth_leeway,
            DEFAULT_LEEWAY,
        )?;
        let auth_jwks_refresh = duration(
            "auth_jwks_refresh",
            self.auth_jwks_refresh,
            file.auth_jwks_refresh,
            DEFAULT_JWKS_REFRESH,
        )?;
        let authentication = resolve_authentication(AuthenticationInputs {
            secret_file: self.auth_secret_file.or_else(|| in_file_dir(file.auth_secret_file)),
            jwks_file: self.auth_jwks_file.or_else(|| in_file_dir(file.auth_jwks_file)),
            jwks_url: self.auth_jwks_url.or(file.auth_jwks_url),
            jwks_refresh: auth_jwks_refresh,
            jwks_ca_file: self.auth_jwks_ca_file.or_else(|| in_file_dir(file.auth_jwks_ca_file)),
            issuer: self.auth_issuer.or(file.auth_issuer),
            audience: self.auth_audience.or(file.auth_audience),
            leeway: auth_leeway,
            service_accounts_file: self
                .auth_service_accounts_file
                .or_else(|| in_file_dir(file.auth_service_accounts_file)),
            insecure_no_auth: self.insecure_no_auth || file.insecure_no_auth.unwrap_or(false),
        })?;
        let tls = resolve_tls(
            self.tls_cert_file.or_else(|| in_file_dir(file.tls_cert_file)),
            self.tls_key_file.or_else(|| in_file_dir(file.tls_key_file)),
            self.tls_client_ca_file
                .or_else(|| in_file_dir(file.tls_client_ca_file)),
        )?;
        let rate_limit = resolve_rate_limit(
            self.rate_limit_per_second.or(file.rate_limit_per_second),
            self.rate_limit_burst.or(file.rate_limit_burst),
        )?;

        let config = DirectoryConfig {
            listen_address,
            data_dir,
            database_url,
            extra_resource_types,
            change_log_retention,
            idempotency_retention,
            purge_interval,
            heartbeat_interval,
            shutdown_grace_period,
            max_message_size,
            log_format,
            metrics_listen_address,
            concurrency_limit,
            default_deadline,
            authentication,
            tls,
            rate_limit,
        };
        config.validate()?;
        Ok(config)
    }
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `12h`, `7d` or `1h30m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!(
            "{text:?} is not a duration; write a whole number followed by ms, s, m, h or d, such as 30s or 7d"
        )
    };
    if text.is_empty() {
        return Err(invalid());
    }

    let mut total = Duration::ZERO;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits_end = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        if digits_end == 0 {
            return Err(invalid());
        }
        let amount: u64 = rest[..digits_end].parse().map_err(|_| invalid())?;
        rest = &rest[digits_end..];

        let unit_end = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let unit_millis: u64 = match &rest[..unit_end] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(invalid()),
        };
        rest = &rest[unit_end..];

        let millis = amount.checked_mul(unit_millis).ok_or_else(invalid)?;
        total = total
            .checked_add(Duration::from_millis(millis))
            .ok_or_else(invalid)?;
    }
    Ok(total)
}

/// The authentication settings from every source, before they are checked.
struct AuthenticationInputs {
    secret_file: Option<PathBuf>,
    jwks_file: Option<PathBuf>,
    jwks_url: Option<String>,
    jwks_refresh: Duration,
    jwks_ca_file: Option<PathBuf>,
    issuer: Option<String>,
    audience: Option<String>,
    leeway: Duration,
    service_accounts_file: Option<PathBuf>,
    insecure_no_auth: bool,
}

/// Chooses the key source, and rejects settings that contradict each other
/// so an operator never runs with less checking than they configured.
fn resolve_authentication(inputs: AuthenticationInputs) -> Result<Authentication, ConfigError> {
    let mut sources = Vec::new();
    if let Some(path) = inputs.secret_file {
        sources.push(("auth_secret_file", KeySource::SharedSecretFile(path)));
    }
    if let Some(path) = inputs.jwks_file {
        sources.push(("auth_jwks_file", KeySource::JwksFile(path)));
    }
    if let Some(url) = inputs.jwks_url {
        sources.push((
            "auth_jwks_url",
            KeySource::JwksUrl {
                url,
                refresh: inputs.jwks_refresh,
                ca_file: inputs.jwks_ca_file.clone(),
            },
        ));
    }
    if inputs.jwks_ca_file.is_some() && !sources.iter().any(|(name, _)| *name == "auth_jwks_url") {
        return Err(ConfigError::new(
            "auth_jwks_ca_file",
            "is only used with auth_jwks_url; set that too or remove it",
        ));
    }

    let keys = match sources.len() {
        0 => None,
        1 => sources.pop().map(|(_, source)| source),
        _ => {
            let names: Vec<&str> = sources.iter().map(|(name, _)| *name).collect();
            return Err(ConfigError::new(
                names[1],
                format!("set only one of {}", names.join(", ")),
            ));
        }
    };

    match (keys, inputs.insecure_no_auth) {
        (Some(_), true) => Err(ConfigError::new(
            "insecure_no_auth",
            "contradicts the configured token keys; remove one of them",
        )),
        (None, true) => {
            let stray = [
                ("auth_issuer", inputs.issuer.is_some()),
                ("auth_audience", inputs.audience.is_some()),
                ("auth_service_accounts_file", inputs.service_accounts_file.is_some()),
            ];
            match stray.iter().find(|(_, set)| *set) {
                Some((name, _)) => Err(ConfigError::new(
                    *name,
                    "has no effect with insecure_no_auth; configure token keys or remove it",
                )),
                None => Ok(Authentication::InsecureNoAuth),
            }
        }
        (None, false) => {
            if inputs.issuer.is_some() || inputs.audience.is_some() {
                return Err(ConfigError::new(
                    "auth_secret_file",
                    "no token keys are configured; set auth_secret_file, auth_jwks_file or auth_jwks_url",
                ));
            }
            Ok(Authentication::Unconfigured)
        }
        (Some(keys), false) => {
            let issuer = inputs.issuer.ok_or_else(|| {
                ConfigError::new("auth_issuer", "is required with token keys; set the iss tokens carry")
            })?;
            let audience = inputs.audience.ok_or_else(|| {
                ConfigError::new(
                    "auth_audience",
                    "is required with token keys; set the aud tokens are issued for",
                )
            })?;
            Ok(Authentication::Tokens(AuthSettings {
                keys,
                issuer,
                audience,
                leeway: inputs.leeway,
                service_accounts_file: inputs.service_accounts_file,
            }))
        }
    }
}

fn check_authentication(authentication: &Authentication) -> Result<(), ConfigError> {
    match authentication {
        Authentication::Unconfigured => Err(ConfigError::new(
            "authentication",
            "no authentication is configured; set auth_secret_file, auth_jwks_file or auth_jwks_url \
             together with auth_issuer and auth_audience, or pass --insecure-no-auth to accept \
             every call without credentials (local tests only)",
        )),
        Authentication::InsecureNoAuth => Ok(()),
        Authentication::Tokens(settings) => settings
            .validate()
            .map_err(|error| ConfigError::new(error.setting, error.message)),
    }
}

fn resolve_tls(
    cert_file: Option<PathBuf>,
    key_file: Option<PathBuf>,
    client_ca_file: Option<PathBuf>,
) -> Result<Option<TlsSettings>, ConfigError> {
    match (cert_file, key_file) {
        (Some(cert_file), Some(key_file)) => Ok(Some(TlsSettings {
            cert_file,
            key_file,
            client_ca_file,
        })),
        (Some(_), None) => Err(ConfigError::new(
            "tls_key_file",
            "is required with tls_cert_file",
        )),
        (None, Some(_)) => Err(ConfigError::new(
            "tls_cert_file",
            "is required with tls_key_file",
        )),
        (None, None) if client_ca_file.is_some() => Err(ConfigError::new(
            "tls_client_ca_file",
            "needs TLS; set tls_cert_file and tls_key_file too",
        )),
        (None, None) => Ok(None),
    }
}

fn resolve_rate_limit(
    per_second: Option<u32>,
    burst: Option<u32>,
) -> Result<Option<RateLimit>, ConfigError> {
    let per_second = per_second.unwrap_or(DEFAULT_RATE_LIMIT_PER_SECOND);
    let Some(per_second) = NonZeroU32::new(per_second) else {
        return Ok(None);
    };
    let burst = burst.unwrap_or(DEFAULT_RATE_LIMIT_BURST.max(per_second.get()));
    let burst = NonZeroU32::new(burst).ok_or_else(|| {
        ConfigError::new(
            "rate_limit_burst",
            "must be at least 1; set rate_limit_per_second to 0 to turn the limit off",
        )
    })?;
    Ok(Some(RateLimit { per_second, burst }))
}

fn default_rate_limit() -> RateLimit {
    RateLimit {
        per_second: NonZeroU32::new(DEFAULT_RATE_LIMIT_PER_SECOND).unwrap_or(NonZeroU32::MIN),
        burst: NonZeroU32::new(DEFAULT_RATE_LIMIT_BURST).unwrap_or(NonZeroU32::MIN),
    }
}

fn default_listen_address() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 50151))
}

/// Returns the SQLite URL of the default database file in `data_dir`.
fn sqlite_url_in(data_dir: &Path) -> String {
    workteams_storage::StoreConfig::sqlite_in(data_dir).url
}

fn parent_dir(path: &Path) -> PathBuf {
    path.parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

fn read_config_file(path: &Path) -> Result<ConfigFile, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new("config", format!("cannot read {}: {error}", path.display()))
    })?;
    if text.trim().is_empty() {
        return Ok(ConfigFile::default());
    }
    serde_yaml::from_str(&text)
        .map_err(|error| ConfigError::new("config", format!("{}: {error}", path.display())))
}

/// Reads a YAML list of resource type definitions and validates each one.
pub fn read_resource_types_file(path: &Path) -> Result<Vec<ResourceTypeDef>, ConfigError> {
    let setting = "resource_types_file";
    let text = std::fs::read_to_string(path).map_err(|error| {
        ConfigError::new(setting, format!("cannot read {}: {error}", path.display()))
    })?;
    let definitions: Vec<ResourceTypeDef> = serde_yaml::from_str(&text).map_err(|error| {
        ConfigError::new(
            setting,
            format!(
                "{}: expected a list of resource types: {error}",
                path.display()
            ),
        )
    })?;

    for (index, definition) in definitions.iter().enumerate() {
        definition.validate().map_err(|error| {
            ConfigError::new(
                setting,
                format!("{} entry {index}: {error}", path.display()),
            )
        })?;
    }
    ResourceTypeRegistry::with_builtins(definitions.clone())
        .map_err(|error| ConfigError::new(setting, format!("{}: {error}", path.display())))?;
    Ok(definitions)
}

fn check_database_url(url: &str) -> Result<(), ConfigError> {
    let supported = ["sqlite:", "postgres://", "postgresql://"];
    if supported.iter().any(|scheme| url.starts_with(scheme)) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "database_url",
            "expected a URL starting with sqlite:, postgres:// or postgresql://",
        ))
    }
}

fn check_positive(setting: &str, value: Duration) -> Result<(), ConfigError> {
    if value.is_zero() {
        Err(ConfigError::new(setting, "must be longer than zero"))
    } else {
        Ok(())
    }
}

/// Parses `off` or an address and port.
fn parse_metrics_address(text: &str) -> Result<Option<SocketAddr>, ConfigError> {
    if text == METRICS_OFF {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|error| {
        ConfigError::new(
            "metrics_listen_address",
            format!("{text:?} is neither off nor an address and port: {error}"),
        )
    })
}

fn check_concurrency_limit(calls: usize) -> Result<(), ConfigError> {
    if (1..=MAX_CONCURRENCY_LIMIT).contains(&calls) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "concurrency_limit",
            format!("{calls} is outside the accepted range 1 to {MAX_CONCURRENCY_LIMIT}"),
        ))
    }
}

fn check_message_size(bytes: usize) -> Result<(), ConfigError> {
    if (MIN_MAX_MESSAGE_SIZE..=MAX_MAX_MESSAGE_SIZE).contains(&bytes) {
        Ok(())
    } else {
        Err(ConfigError::new(
            "max_message_size",
            format!(
                "{bytes} bytes is outside the accepted range {MIN_MAX_MESSAGE_SIZE} to {MAX_MAX_MESSAGE_SIZE}"
            ),
        ))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    /// Parses `list` with `--insecure-no-auth` added, for tests of other
    /// settings.
    fn args(list: &[&str]) -> DirectoryArgs {
        let mut argv = vec!["workteams-directory", "--insecure-no-auth"];
        argv.extend_from_slice(list);
        DirectoryArgs::try_parse_from(argv).unwrap()
    }

    /// Parses `list` as given.
    fn auth_args(list: &[&str]) -> DirectoryArgs {
        let mut argv = vec!["workteams-directory"];
        argv.extend_from_slice(list);
        DirectoryArgs::try_parse_from(argv).unwrap()
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
    }

    #[test]
    fn bad_durations_rejected() {
        for text in ["", "7", "d", "7w", "1.5h", "-1s", "99999999999999999999d"] {
            assert!(parse_duration(text).is_err(), "{text} was accepted");
        }
    }

    #[test]
    fn defaults_with_insecure_flag() {
        let config = auth_args(&["--insecure-no-auth"]).resolve().unwrap();
        let expected = DirectoryConfig {
            authentication: Authentication::InsecureNoAuth,
            ..DirectoryConfig::default()
        };
        assert_eq!(config, expected);
    }

    #[test]
    fn missing_authentication_rejected() {
        let error = auth_args(&[]).resolve().unwrap_err();
        assert_eq!(error.setting, "authentication");
        assert!(error.message.contains("--insecure-no-auth"), "{}", error.message);
    }

    #[test]
    fn secret_file_needs_issuer_and_audience() {
        let error = auth_args(&["--auth-secret-file", "/run/secret"]).resolve().unwrap_err();
        assert_eq!(error.setting, "auth_issuer");
        let error = auth_args(&["--auth-secret-file", "/run/secret", "--auth-issuer", "i"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "auth_audience");
    }

    #[test]
    fn token_settings_resolved() {
        let config = auth_args(&[
            "--auth-jwks-file",
            "/etc/wt/jwks.json",
            "--auth-issuer",
            "https://id.example.test",
            "--auth-audience",
            "workteams",
            "--auth-leeway",
            "10s",
        ])
        .resolve()
        .unwrap();
        let Authentication::Tokens(settings) = config.authentication else {
            panic!("tokens were not configured");
        };
        assert_eq!(settings.keys, KeySource::JwksFile("/etc/wt/jwks.json".into()));
        assert_eq!(settings.leeway, Duration::from_secs(10));
    }

    #[test]
    fn two_key_sources_rejected() {
        let error = auth_args(&[
            "--auth-secret-file",
            "/a",
            "--auth-jwks-file",
            "/b",
            "--auth-issuer",
            "i",
            "--auth-audience",
            "a",
        ])
        .resolve()
        .unwrap_err();
        assert_eq!(error.setting, "auth_jwks_file");
    }

    #[test]
    fn insecure_with_keys_rejected() {
        let error = auth_args(&[
            "--insecure-no-auth",
            "--auth-secret-file",
            "/a",
            "--auth-issuer",
            "i",
            "--auth-audience",
            "a",
        ])
        .resolve()
        .unwrap_err();
        assert_eq!(error.setting, "insecure_no_auth");
    }

    #[test]
    fn plain_jwks_url_rejected() {
        let error = auth_args(&[
            "--auth-jwks-url",
            "http://id.example.test/jwks",
            "--auth-issuer",
            "i",
            "--auth-audience",
            "a",
        ])
        .resolve()
        .unwrap_err();
        assert_eq!(error.setting, "auth_jwks_url");
    }

    #[test]
    fn tls_key_without_cert_rejected() {
        let error = auth_args(&["--insecure-no-auth", "--tls-key-file", "/k"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "tls_cert_file");
        let error = auth_args(&["--insecure-no-auth", "--tls-client-ca-file", "/ca"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "tls_client_ca_file");
    }

    #[test]
    fn rate_limit_zero_turns_off() {
        let config = auth_args(&["--insecure-no-auth", "--rate-limit-per-second", "0"])
            .resolve()
            .unwrap();
        assert_eq!(config.rate_limit, None);
        let error = auth_args(&["--insecure-no-auth", "--rate-limit-burst", "0"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "rate_limit_burst");
    }

    #[test]
    fn auth_paths_relative_to_config() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.yaml");
        std::fs::write(
            &path,
            "auth_secret_file: secret\nauth_issuer: i\nauth_audience: a\nauth_service_accounts_file: accounts.yaml\n",
        )
        .unwrap();
        let config = auth_args(&["--config", path.to_str().unwrap()])
            .resolve()
            .unwrap();
        let Authentication::Tokens(settings) = config.authentication else {
            panic!("tokens were not configured");
        };
        assert_eq!(settings.keys, KeySource::SharedSecretFile(dir.path().join("secret")));
        assert_eq!(settings.service_accounts_file, Some(dir.path().join("accounts.yaml")));
    }

    #[test]
    fn default_database_in_data_dir() {
        let config = args(&["--data-dir", "/srv/wt"]).resolve().unwrap();
        assert_eq!(
            config.database_url,
            "sqlite:///srv/wt/directory.db?mode=rwc"
        );
    }

    #[test]
    fn file_values_below_flags() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.yaml");
        std::fs::write(
            &path,
            "listen_address: 127.0.0.1:7000\nheartbeat_interval: 2s\nchange_log_retention: 1d\n",
        )
        .unwrap();
        let config = args(&[
            "--config",
            path.to_str().unwrap(),
            "--heartbeat-interval",
            "9s",
        ])
        .resolve()
        .unwrap();
        assert_eq!(config.listen_address, "127.0.0.1:7000".parse().unwrap());
        assert_eq!(config.heartbeat_interval, Duration::from_secs(9));
        assert_eq!(config.change_log_retention, Duration::from_secs(86_400));
    }

    #[test]
    fn unknown_file_key_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.yaml");
        std::fs::write(&path, "listen_adress: 127.0.0.1:7000\n").unwrap();
        let error = args(&["--config", path.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "config");
        assert!(error.message.contains("listen_adress"));
    }

    #[test]
    fn bad_file_duration_names_setting() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.yaml");
        std::fs::write(&path, "purge_interval: soon\n").unwrap();
        let error = args(&["--config", path.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "purge_interval");
    }

    #[test]
    fn zero_heartbeat_rejected() {
        let error = args(&["--heartbeat-interval", "0s"]).resolve().unwrap_err();
        assert_eq!(error.setting, "heartbeat_interval");
    }

    #[test]
    fn tiny_message_size_rejected() {
        let error = args(&["--max-message-size", "10"]).resolve().unwrap_err();
        assert_eq!(error.setting, "max_message_size");
    }

    #[test]
    fn unsupported_database_rejected() {
        let error = args(&["--database-url", "mysql://localhost/db"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "database_url");
    }

    #[test]
    fn operations_settings_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("directory.yaml");
        std::fs::write(
            &path,
            "log_format: json\nmetrics_listen_address: 127.0.0.1:9151\nconcurrency_limit: 64\ndefault_deadline: 5s\n",
        )
        .unwrap();
        let config = args(&["--config", path.to_str().unwrap()])
            .resolve()
            .unwrap();
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(
            config.metrics_listen_address,
            Some("127.0.0.1:9151".parse().unwrap())
        );
        assert_eq!(config.concurrency_limit, 64);
        assert_eq!(config.default_deadline, Duration::from_secs(5));
    }

    #[test]
    fn metrics_off_by_flag() {
        let config = args(&["--metrics-listen-address", "off"])
            .resolve()
            .unwrap();
        assert_eq!(config.metrics_listen_address, None);
    }

    #[test]
    fn bad_log_format_rejected() {
        let error = args(&["--log-format", "xml"]).resolve().unwrap_err();
        assert_eq!(error.setting, "log_format");
    }

    #[test]
    fn bad_metrics_address_rejected() {
        let error = args(&["--metrics-listen-address", "localhost"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "metrics_listen_address");
    }

    #[test]
    fn metrics_on_grpc_port_rejected() {
        let error = args(&["--metrics-listen-address", "127.0.0.1:50151"])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "metrics_listen_address");
    }

    #[test]
    fn zero_concurrency_limit_rejected() {
        let error = args(&["--concurrency-limit", "0"]).resolve().unwrap_err();
        assert_eq!(error.setting, "concurrency_limit");
    }

    #[test]
    fn zero_deadline_rejected() {
        let error = args(&["--default-deadline", "0s"]).resolve().unwrap_err();
        assert_eq!(error.setting, "default_deadline");
    }

    #[test]
    fn extra_resource_types_loaded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("types.yaml");
        std::fs::write(
            &path,
            "- name: wiki.space\n  permissions: [read, edit]\n  ordered_levels: true\n  combining: cumulative\n",
        )
        .unwrap();
        let config = args(&["--resource-types-file", path.to_str().unwrap()])
            .resolve()
            .unwrap();
        assert_eq!(config.extra_resource_types.len(), 1);
        assert_eq!(config.extra_resource_types[0].name, "wiki.space");
    }

    #[test]
    fn invalid_resource_type_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("types.yaml");
        std::fs::write(
            &path,
            "- name: Wiki\n  permissions: [read]\n  combining: cumulative\n",
        )
        .unwrap();
        let error = args(&["--resource-types-file", path.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert_eq!(error.setting, "resource_types_file");
    }

    #[test]
    fn builtin_redefinition_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("types.yaml");
        std::fs::write(
            &path,
            "- name: kdrive.folder\n  permissions: [read]\n  combining: cumulative\n",
        )
        .unwrap();
        let error = args(&["--resource-types-file", path.to_str().unwrap()])
            .resolve()
            .unwrap_err();
        assert!(error.message.contains("built-in"));
    }

    #[test]
    fn resource_types_path_relative_to_config() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("types.yaml"),
            "- name: wiki.space\n  permissions: [read]\n  combining: cumulative\n",
        )
        .unwrap();
        let path = dir.path().join("directory.yaml");
        std::fs::write(&path, "resource_types_file: types.yaml\n").unwrap();
        let config = args(&["--config", path.to_str().unwrap()])
            .resolve()
            .unwrap();
        assert_eq!(config.extra_resource_types.len(), 1);
    }
}
