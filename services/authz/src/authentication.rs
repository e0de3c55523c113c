//! Tokens on both sides of the sidecar: the bearer token it sends to the
//! directory, and the optional service-account token it requires of the
//! callers of its authorization API. Health and reflection never need one.

use std::sync::Arc;
use std::time::Duration;

use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Request, Status};
use workteams_auth::settings::DEFAULT_LEEWAY;
use workteams_auth::{AuthSettings, Authenticator, BearerToken, DenialLog, KeySource};
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;

use crate::config::{AuthzConfig, ConfigError};
use crate::server::ServeError;

/// The directory client of the follower and the handler.
pub type DirectoryClient = DirectoryServiceClient<InterceptedService<Channel, DirectoryToken>>;

/// How often a JWKS URL is fetched again.
const JWKS_REFRESH: Duration = Duration::from_secs(300);

/// The token sent with every call to the directory, if one is configured.
#[derive(Debug, Clone, Default)]
pub struct DirectoryToken(Option<BearerToken>);

impl Interceptor for DirectoryToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = &self.0 {
            token.apply(&mut request);
        }
        Ok(request)
    }
}

/// Builds the directory client over `channel`, sending `token`.
pub fn directory_client(channel: Channel, token: DirectoryToken) -> DirectoryClient {
    DirectoryServiceClient::with_interceptor(channel, token)
}

/// Rejects calls to the authorization API without a valid service-account
/// token, when the sidecar is configured to require one.
#[derive(Debug, Clone)]
pub struct ServiceTokenGate {
    authenticator: Option<Authenticator>,
    denials: Arc<DenialLog>,
}

impl ServiceTokenGate {
    /// Loads the keys and service accounts named by the configuration, or
    /// lets every call through when none are set.
    pub async fn load(config: &AuthzConfig) -> Result<Self, ServeError> {
        let authenticator = match config.api_auth_settings()? {
            Some(settings) => {
                let authenticator = Authenticator::load(&settings).await.map_err(|error| {
                    ServeError::Config(ConfigError {
                        setting: flag_of(error.setting),
                        value: String::new(),
                        reason: error.message,
                    })
                })?;
                tracing::info!(
                    service_accounts = authenticator.service_account_count(),
                    "service tokens required on the authorization API"
                );
                Some(authenticator)
            }
            None => None,
        };
        Ok(Self {
            authenticator,
            denials: Arc::new(DenialLog::default()),
        })
    }
}

impl Interceptor for ServiceTokenGate {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        let Some(authenticator) = &self.authenticator else {
            return Ok(request);
        };
        match authenticator.authenticate_service(request.metadata()) {
            Ok(_) => Ok(request),
            Err(error) => {
                self.denials.record("AuthorizationService", &error);
                Err(Status::unauthenticated(format!("authentication failed: {error}")))
            }
        }
    }
}

impl AuthzConfig {
    /// Reads the token the sidecar sends to the directory.
    pub fn directory_token(&self) -> Result<DirectoryToken, ConfigError> {
        let Some(path) = &self.directory_token_file else {
            return Ok(DirectoryToken::default());
        };
        BearerToken::from_file(path)
            .map(|token| DirectoryToken(Some(token)))
            .map_err(|error| ConfigError {
                setting: "--directory-token-file",
                value: path.display().to_string(),
                reason: error.to_string(),
            })
    }

    /// Returns the settings that verify callers of the authorization API,
    /// or `None` when the API is open.
    pub fn api_auth_settings(&self) -> Result<Option<AuthSettings>, ConfigError> {
        let invalid = |setting: &'static str, value: &str, reason: &str| ConfigError {
            setting,
            value: value.to_owned(),
            reason: reason.to_owned(),
        };

        let mut sources = Vec::new();
        if let Some(path) = &self.auth_secret_file {
            sources.push(("--auth-secret-file", KeySource::SharedSecretFile(path.clone())));
        }
        if let Some(path) = &self.auth_jwks_file {
            sources.push(("--auth-jwks-file", KeySource::JwksFile(path.clone())));
        }
        if let Some(url) = &self.auth_jwks_url {
            sources.push((
                "--auth-jwks-url",
                KeySource::JwksUrl {
                    url: url.clone(),
                    refresh: JWKS_REFRESH,
                    ca_file: None,
                },
            ));
        }
        if sources.len() > 1 {
            return Err(invalid(
                sources[1].0,
                "",
                "set only one of --auth-secret-file, --auth-jwks-file and --auth-jwks-url",
            ));
        }
        let Some((_, keys)) = sources.pop() else {
            if self.auth_issuer.is_some() || self.auth_audience.is_some() || self.auth_service_accounts_file.is_some() {
                return Err(invalid(
                    "--auth-secret-file",
                    "",
                    "no token keys are set; set --auth-secret-file, --auth-jwks-file or --auth-jwks-url",
                ));
            }
            return Ok(None);
        };

        let issuer = self
            .auth_issuer
            .clone()
            .ok_or_else(|| invalid("--auth-issuer", "", "is required with token keys"))?;
        let audience = self
            .auth_audience
            .clone()
            .ok_or_else(|| invalid("--auth-audience", "", "is required with token keys"))?;
        let service_accounts_file = self.auth_service_accounts_file.clone().ok_or_else(|| {
            invalid(
                "--auth-service-accounts-file",
                "",
                "is required with token keys: only service accounts may call the sidecar",
            )
        })?;
        let settings = AuthSettings {
            keys,
            issuer,
            audience,
            leeway: DEFAULT_LEEWAY,
            service_accounts_file: Some(service_accounts_file),
        };
        settings
            .validate()
            .map_err(|error| invalid(flag_of(error.setting), "", &error.message))?;
        Ok(Some(settings))
    }
}

/// Maps an authentication setting to the sidecar's flag.
fn flag_of(setting: &str) -> &'static str {
    match setting {
        "auth_secret_file" => "--auth-secret-file",
        "auth_jwks_file" => "--auth-jwks-file",
        "auth_jwks_url" => "--auth-jwks-url",
        "auth_issuer" => "--auth-issuer",
        "auth_audience" => "--auth-audience",
        "auth_service_accounts_file" => "--auth-service-accounts-file",
        _ => "--auth-secret-file",
    }
}
