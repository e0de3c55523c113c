//! The sidecar's configuration: command-line flags with environment
//! fallbacks, and the checks that run before anything binds or connects.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, ValueEnum};
use tonic::transport::Endpoint;
use workteams_domain::OrganizationId;

use crate::envoy::ExtAuthzMapping;

/// Default address of the sidecar's gRPC server.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50152";
/// Default address of the directory the sidecar follows.
pub const DEFAULT_DIRECTORY_ADDRESS: &str = "http://127.0.0.1:50151";
/// Default address of the metrics endpoint.
pub const DEFAULT_METRICS_LISTEN: &str = "127.0.0.1:9152";
/// Value of `--metrics-listen` that turns the metrics endpoint off.
pub const METRICS_OFF: &str = "off";
/// Default file mode of the Unix domain socket: the owner and its group.
pub const DEFAULT_UNIX_SOCKET_MODE: &str = "0660";
/// Default number of calls handled at once.
pub const DEFAULT_CONCURRENCY_LIMIT: usize = 1024;
/// Largest accepted `--concurrency-limit`.
pub const MAX_CONCURRENCY_LIMIT: usize = 1_000_000;

/// Settings of the authorization sidecar.
#[derive(Debug, Clone, PartialEq, Eq, Parser)]
#[command(
    name = "workteams-authz",
    version,
    about = "Decides Work Teams access checks from an in-memory index that follows the directory."
)]
pub struct AuthzConfig {
    /// Address and port the gRPC server listens on.
    #[arg(long, env = "WORKTEAMS_AUTHZ_LISTEN", value_name = "ADDRESS", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Allow a listen address outside the loopback range. Unless
    /// --auth-secret-file or a JWKS is set, the sidecar does not authenticate
    /// its callers, so only expose it on a trusted network.
    #[arg(long, env = "WORKTEAMS_AUTHZ_ALLOW_NON_LOOPBACK")]
    pub allow_non_loopback: bool,

    /// URL of the directory's gRPC server (http://HOST:PORT).
    #[arg(long, env = "WORKTEAMS_DIRECTORY_ADDRESS", value_name = "URL", default_value = DEFAULT_DIRECTORY_ADDRESS)]
    pub directory_address: String,

    /// Follow only this organization (its id). Unset follows every
    /// organization of the directory.
    #[arg(long, env = "WORKTEAMS_AUTHZ_ORGANIZATION_ID", value_name = "ID")]
    pub organization_id: Option<String>,

    /// How long a request that names a consistency token waits for the
    /// index when the request carries no deadline (for example 5s, 500ms).
    #[arg(long, env = "WORKTEAMS_AUTHZ_CONSISTENCY_WAIT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub consistency_wait: Duration,

    /// Reject requests with UNAVAILABLE once the index has not been confirmed
    /// up to date with the directory for this long. Unset never rejects.
    #[arg(long, env = "WORKTEAMS_AUTHZ_MAX_STALENESS", value_name = "DURATION", value_parser = parse_duration)]
    pub max_staleness: Option<Duration>,

    /// First delay before reconnecting to the directory; it doubles on each
    /// failed attempt.
    #[arg(long, env = "WORKTEAMS_AUTHZ_RECONNECT_MIN_BACKOFF", value_name = "DURATION", default_value = "100ms", value_parser = parse_duration)]
    pub reconnect_min_backoff: Duration,

    /// Maximum delay between reconnection attempts.
    #[arg(long, env = "WORKTEAMS_AUTHZ_RECONNECT_MAX_BACKOFF", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub reconnect_max_backoff: Duration,

    /// Time limit for opening a connection to the directory.
    #[arg(long, env = "WORKTEAMS_AUTHZ_CONNECT_TIMEOUT", value_name = "DURATION", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,

    /// Reconnect when the change stream sends nothing, not even a heartbeat,
    /// for this long.
    #[arg(long, env = "WORKTEAMS_AUTHZ_WATCH_IDLE_TIMEOUT", value_name = "DURATION", default_value = "60s", value_parser = parse_duration)]
    pub watch_idle_timeout: Duration,

    /// Log line format.
    #[arg(long, env = "WORKTEAMS_AUTHZ_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Address and port of the Prometheus metrics endpoint (/metrics), or
    /// off. Port 0 picks a free port.
    #[arg(long, env = "WORKTEAMS_AUTHZ_METRICS_LISTEN", value_name = "ADDRESS", default_value = DEFAULT_METRICS_LISTEN)]
    pub metrics_listen: String,

    /// Also serve gRPC on this Unix domain socket. A socket file left by an
    /// earlier run is replaced.
    #[arg(long, env = "WORKTEAMS_AUTHZ_UNIX_SOCKET", value_name = "PATH")]
    pub unix_socket: Option<PathBuf>,

    /// File mode of the Unix domain socket, in octal.
    #[arg(long, env = "WORKTEAMS_AUTHZ_UNIX_SOCKET_MODE", value_name = "MODE", default_value = DEFAULT_UNIX_SOCKET_MODE)]
    pub unix_socket_mode: String,

    /// How long shutdown waits for calls in flight before it stops anyway.
    #[arg(long, env = "WORKTEAMS_AUTHZ_SHUTDOWN_GRACE_PERIOD", value_name = "DURATION", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace_period: Duration,

    /// Calls handled at once; further calls get RESOURCE_EXHAUSTED at once
    /// instead of queueing.
    #[arg(long, env = "WORKTEAMS_AUTHZ_CONCURRENCY_LIMIT", value_name = "CALLS", default_value_t = DEFAULT_CONCURRENCY_LIMIT)]
    pub concurrency_limit: usize,

    /// Deadline of a call whose client sends no shorter grpc-timeout.
    #[arg(long, env = "WORKTEAMS_AUTHZ_DEFAULT_DEADLINE", value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub default_deadline: Duration,

    /// YAML file that maps HTTP requests to access checks for Envoy's
    /// external authorization (envoy.service.auth.v3.Authorization). Unset
    /// leaves that service off.
    #[arg(long, env = "WORKTEAMS_AUTHZ_EXT_AUTHZ_CONFIG", value_name = "FILE")]
    pub ext_authz_config: Option<PathBuf>,

    /// File holding the bearer token the sidecar sends to the directory.
    #[arg(long, env = "WORKTEAMS_AUTHZ_DIRECTORY_TOKEN_FILE", value_name = "FILE")]
    pub directory_token_file: Option<PathBuf>,

    /// Require a service-account token on the authorization API, verified
    /// with this HS256 secret file (development).
    #[arg(long, env = "WORKTEAMS_AUTHZ_AUTH_SECRET_FILE", value_name = "FILE")]
    pub auth_secret_file: Option<PathBuf>,

    /// Require a service-account token on the authorization API, verified
    /// with the RS256 or ES256 keys of this JWKS file.
    #[arg(long, env = "WORKTEAMS_AUTHZ_AUTH_JWKS_FILE", value_name = "FILE")]
    pub auth_jwks_file: Option<PathBuf>,

    /// Require a service-account token on the authorization API, verified
    /// with the keys of this https JWKS URL.
    #[arg(long, env = "WORKTEAMS_AUTHZ_AUTH_JWKS_URL", value_name = "URL")]
    pub auth_jwks_url: Option<String>,

    /// Issuer (iss claim) the tokens of callers must carry.
    #[arg(long, env = "WORKTEAMS_AUTHZ_AUTH_ISSUER", value_name = "ISSUER")]
    pub auth_issuer: Option<String>,

    /// Audience (aud claim) the tokens of callers must include.
    #[arg(long, env = "WORKTEAMS_AUTHZ_AUTH_AUDIENCE", value_name = "AUDIENCE")]
    pub auth_audience: Option<String>,

    /// YAML file of the service accounts allowed to call the authorization
    /// API.
    #[arg(long, env = "WORKTEAMS_AUTHZ_AUTH_SERVICE_ACCOUNTS_FILE", value_name = "FILE")]
    pub auth_service_accounts_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for AuthzConfig {
    /// Returns the documented defaults, without reading flags or the environment.
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 50152)),
            allow_non_loopback: false,
            directory_address: DEFAULT_DIRECTORY_ADDRESS.to_owned(),
            organization_id: None,
            consistency_wait: Duration::from_secs(5),
            max_staleness: None,
            reconnect_min_backoff: Duration::from_millis(100),
            reconnect_max_backoff: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            watch_idle_timeout: Duration::from_secs(60),
            log_format: LogFormat::Text,
            metrics_listen: DEFAULT_METRICS_LISTEN.to_owned(),
            unix_socket: None,
            unix_socket_mode: DEFAULT_UNIX_SOCKET_MODE.to_owned(),
            shutdown_grace_period: Duration::from_secs(10),
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            default_deadline: Duration::from_secs(30),
            ext_authz_config: None,
            directory_token_file: None,
            auth_secret_file: None,
            auth_jwks_file: None,
            auth_jwks_url: None,
            auth_issuer: None,
            auth_audience: None,
            auth_service_accounts_file: None,
        }
    }
}

/// A setting whose value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting} = {value:?}: {reason}")]
pub struct ConfigError {
    /// The command-line flag, as the operator types it.
    pub setting: &'static str,
    pub value: String,
    pub reason: String,
}

impl ConfigError {
    fn new(setting: &'static str, value: impl ToString, reason: impl Into<String>) -> Self {
        Self {
            setting,
            value: value.to_string(),
            reason: reason.into(),
        }
    }
}

impl AuthzConfig {
    /// Checks every setting, so a bad one stops the sidecar before it binds
    /// or connects.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.allow_non_loopback && !self.listen.ip().is_loopback() {
            return Err(ConfigError::new(
                "--listen",
                self.listen,
                "not a loopback address; the sidecar does not authenticate callers, \
                 so pass --allow-non-loopback to expose it on a trusted network",
            ));
        }

        self.directory_endpoint()?;
        self.organization_filter()?;
        self.api_auth_settings()?;

        let positive = [
            ("--consistency-wait", self.consistency_wait),
            ("--reconnect-min-backoff", self.reconnect_min_backoff),
            ("--reconnect-max-backoff", self.reconnect_max_backoff),
            ("--connect-timeout", self.connect_timeout),
            ("--watch-idle-timeout", self.watch_idle_timeout),
            ("--shutdown-grace-period", self.shutdown_grace_period),
            ("--default-deadline", self.default_deadline),
        ];
        for (setting, duration) in positive {
            if duration.is_zero() {
                return Err(ConfigError::new(
                    setting,
                    format_duration(duration),
                    "must be longer than zero",
                ));
            }
        }
        if self.max_staleness.is_some_and(|staleness| staleness.is_zero()) {
            return Err(ConfigError::new(
                "--max-staleness",
                "0s",
                "must be longer than zero; leave it unset to accept any staleness",
            ));
        }
        if self.reconnect_max_backoff < self.reconnect_min_backoff {
            return Err(ConfigError::new(
                "--reconnect-max-backoff",
                format_duration(self.reconnect_max_backoff),
                format!(
                    "must not be shorter than --reconnect-min-backoff ({})",
                    format_duration(self.reconnect_min_backoff)
                ),
            ));
        }

        if !(1..=MAX_CONCURRENCY_LIMIT).contains(&self.concurrency_limit) {
            return Err(ConfigError::new(
                "--concurrency-limit",
                self.concurrency_limit,
                format!("must be between 1 and {MAX_CONCURRENCY_LIMIT}"),
            ));
        }
        let metrics = self.metrics_address()?;
        if metrics == Some(self.listen) && self.listen.port() != 0 {
            return Err(ConfigError::new(
                "--metrics-listen",
                &self.metrics_listen,
                "is also the gRPC --listen address; choose another port",
            ));
        }
        self.unix_socket_permissions()?;
        self.ext_authz_mapping()?;
        Ok(())
    }

    /// Parses `--metrics-listen`: `None` when the endpoint is off.
    pub fn metrics_address(&self) -> Result<Option<SocketAddr>, ConfigError> {
        if self.metrics_listen == METRICS_OFF {
            return Ok(None);
        }
        self.metrics_listen.parse().map(Some).map_err(|_| {
            ConfigError::new(
                "--metrics-listen",
                &self.metrics_listen,
                "expected an address and port such as 127.0.0.1:9152, or off",
            )
        })
    }

    /// Parses `--unix-socket-mode`, an octal file mode such as 0660.
    pub fn unix_socket_permissions(&self) -> Result<u32, ConfigError> {
        let invalid = || {
            ConfigError::new(
                "--unix-socket-mode",
                &self.unix_socket_mode,
                "expected an octal file mode from 0 to 0777, such as 0660",
            )
        };
        let mode = u32::from_str_radix(&self.unix_socket_mode, 8).map_err(|_| invalid())?;
        if mode > 0o777 {
            return Err(invalid());
        }
        Ok(mode)
    }

    /// Reads and checks the Envoy mapping file, if one is set.
    pub fn ext_authz_mapping(&self) -> Result<Option<ExtAuthzMapping>, ConfigError> {
        let Some(path) = &self.ext_authz_config else {
            return Ok(None);
        };
        ExtAuthzMapping::from_file(path)
            .map(Some)
            .map_err(|reason| ConfigError::new("--ext-authz-config", path.display(), reason))
    }

    /// Builds the gRPC endpoint of the directory.
    pub fn directory_endpoint(&self) -> Result<Endpoint, ConfigError> {
        let invalid = |reason: &str| ConfigError::new("--directory-address", &self.directory_address, reason);

        let endpoint = Endpoint::from_shared(self.directory_address.clone())
            .map_err(|_| invalid("not a URL; expected http://HOST:PORT"))?;
        let uri = endpoint.uri();
        if uri.scheme_str() != Some("http") {
            return Err(invalid(
                "only http:// is supported; run the sidecar next to the directory or behind a TLS proxy",
            ));
        }
        if uri.host().is_none_or(str::is_empty) {
            return Err(invalid("the URL has no host; expected http://HOST:PORT"));
        }
        if uri.path_and_query().is_some_and(|path| path.as_str() != "/") {
            return Err(invalid("the URL must not have a path; expected http://HOST:PORT"));
        }

        Ok(endpoint
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(20))
            .keep_alive_timeout(Duration::from_secs(10))
            .keep_alive_while_idle(true))
    }

    /// Parses the organization to follow, or `None` to follow all of them.
    pub fn organization_filter(&self) -> Result<Option<OrganizationId>, ConfigError> {
        self.organization_id
            .as_deref()
            .map(|text| {
                OrganizationId::parse("--organization-id", text)
                    .map_err(|error| ConfigError::new("--organization-id", text, error.reason))
            })
            .transpose()
    }
}

/// Parses a duration such as `250ms`, `5s`, `2m` or `1h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let invalid = || format!("{text:?} is not a duration; use a number with a unit: ms, s, m or h (for example 5s)");

    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(invalid)?;
    let (digits, unit) = text.split_at(split);
    let amount: u64 = digits.parse().map_err(|_| invalid())?;

    let millis_per_unit = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(invalid()),
    };
    amount
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{text:?} is too long"))
}

/// Formats a duration the way [`parse_duration`] reads it.
pub fn format_duration(duration: Duration) -> String {
    if duration.subsec_nanos() == 0 {
        format!("{}s", duration.as_secs())
    } else {
        format!("{}ms", duration.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(AuthzConfig::default().validate(), Ok(()));
    }

    #[test]
    fn defaults_match_flags() {
        let parsed = AuthzConfig::try_parse_from(["workteams-authz"]);
        let default = AuthzConfig::default();
        // Only compare fields that no environment variable of this test run sets.
        let parsed = parsed.unwrap();
        assert_eq!(parsed.consistency_wait, default.consistency_wait);
        assert_eq!(parsed.reconnect_min_backoff, default.reconnect_min_backoff);
        assert_eq!(parsed.reconnect_max_backoff, default.reconnect_max_backoff);
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3_600)));
    }

    #[test]
    fn durations_without_unit_are_rejected() {
        for text in ["", "5", "s", "5 s", "-5s", "5d", "1.5s"] {
            assert!(parse_duration(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn public_listen_needs_opt_in() {
        let config = AuthzConfig {
            listen: "0.0.0.0:50152".parse().unwrap(),
            ..AuthzConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().setting, "--listen");

        let allowed = AuthzConfig {
            allow_non_loopback: true,
            ..config
        };
        assert_eq!(allowed.validate(), Ok(()));
    }

    #[test]
    fn directory_address_must_be_http_url() {
        for address in ["", "127.0.0.1:50151", "https://127.0.0.1:50151", "http://127.0.0.1:50151/api", "not a url"] {
            let config = AuthzConfig {
                directory_address: address.to_owned(),
                ..AuthzConfig::default()
            };
            let error = config.validate().unwrap_err();
            assert_eq!(error.setting, "--directory-address", "{address:?}");
        }
    }

    #[test]
    fn organization_filter_must_be_an_id() {
        let config = AuthzConfig {
            organization_id: Some("ACME".to_owned()),
            ..AuthzConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().setting, "--organization-id");
    }

    #[test]
    fn max_backoff_below_min_is_rejected() {
        let config = AuthzConfig {
            reconnect_min_backoff: Duration::from_secs(2),
            reconnect_max_backoff: Duration::from_secs(1),
            ..AuthzConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().setting, "--reconnect-max-backoff");
    }

    #[test]
    fn zero_wait_is_rejected() {
        let config = AuthzConfig {
            consistency_wait: Duration::ZERO,
            ..AuthzConfig::default()
        };
        assert_eq!(config.validate().unwrap_err().setting, "--consistency-wait");
    }

    #[test]
    fn bad_flag_value_is_a_parse_error() {
        let parsed = AuthzConfig::try_parse_from(["workteams-authz", "--max-staleness", "soon"]);
        assert!(parsed.is_err());
    }
}
