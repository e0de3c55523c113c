//! Connections to the directory and the authorization sidecar, retries of
//! calls that failed in transit, and the consistency token that makes reads
//! see the command's own writes.
//!
//! Every write returns a consistency token. Commands pass the newest one to
//! the sidecar (`at_least_as_fresh`), and store it in the data folder so the
//! next command, for example a `check` after an `apply`, waits for the same
//! state.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use workteams_auth::BearerToken;
use workteams_domain::ConsistencyToken;
use workteams_proto::authz::v1 as authz;
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;

use crate::error::CliError;

/// Largest gRPC message the command accepts, in bytes: snapshot pages and
/// effective-access listings of large organizations exceed tonic's 4 MiB
/// default.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// How long to wait for a TCP connection to a service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How many times a call that failed in transit is sent in total.
const MAX_ATTEMPTS: u32 = 4;

/// A directory client that sends the command's bearer token, if any, and
/// its trace context.
pub type DirectoryClient = DirectoryServiceClient<InterceptedService<Channel, CallMetadata>>;

/// A sidecar client that sends the command's trace context.
pub type AuthzClient = AuthorizationServiceClient<InterceptedService<Channel, CallMetadata>>;

/// The bearer token sent with every directory call, when one was found.
#[derive(Debug, Clone, Default)]
pub struct CallerToken(pub Option<BearerToken>);

/// Adds to every outgoing call the bearer token, when there is one, and the
/// W3C trace context (`traceparent`) of the current span, when that span
/// belongs to an exported trace.
#[derive(Debug, Clone, Default)]
pub struct CallMetadata {
    token: CallerToken,
}

impl CallMetadata {
    pub fn new(token: CallerToken) -> Self {
        Self { token }
    }
}

impl Interceptor for CallMetadata {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(token) = &self.token.0 {
            token.apply(&mut request);
        }
        workteams_telemetry::inject_current_context(request.metadata_mut());
        Ok(request)
    }
}

/// The services' addresses and the time limit of one call.
#[derive(Debug, Clone)]
pub struct Endpoints {
    pub directory: String,
    pub authz: String,
    /// Limit for one call, including waiting for freshness.
    pub timeout: Duration,
    /// Folder of the stored consistency token.
    pub data_dir: PathBuf,
    /// Bearer token for the directory.
    pub token: CallerToken,
    /// Service token for a sidecar that requires one.
    pub authz_token: CallerToken,
}

impl Endpoints {
    pub async fn directory(&self) -> Result<DirectoryClient, CliError> {
        let channel = connect(&self.directory, self.timeout).await?;
        let metadata = CallMetadata::new(self.token.clone());
        Ok(DirectoryServiceClient::with_interceptor(channel, metadata)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    /// Connects to the sidecar. Its calls carry the trace context and, when
    /// one was given, the sidecar's service token.
    pub async fn authz(&self) -> Result<AuthzClient, CliError> {
        let channel = connect(&self.authz, self.timeout).await?;
        let metadata = CallMetadata::new(self.authz_token.clone());
        Ok(AuthorizationServiceClient::with_interceptor(channel, metadata)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES))
    }

    pub fn token_store(&self) -> TokenStore {
        TokenStore::new(&self.data_dir)
    }
}

/// Accepts `host:port` as well as a full `http://host:port` URL.
pub fn endpoint_url(address: &str) -> String {
    if address.contains("://") {
        address.to_owned()
    } else {
        format!("http://{address}")
    }
}

async fn connect(address: &str, timeout: Duration) -> Result<Channel, CliError> {
    let url = endpoint_url(address);
    let endpoint = Endpoint::from_shared(url.clone())
        .map_err(|error| CliError::Usage(format!("invalid service address {address:?}: {error}")))?
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(timeout)
        .tcp_nodelay(true);
    endpoint.connect().await.map_err(|error| CliError::Connect {
        address: url,
        reason: transport_reason(&error),
    })
}

fn transport_reason(error: &tonic::transport::Error) -> String {
    let mut reason = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        reason.push_str(": ");
        reason.push_str(&cause.to_string());
        source = cause.source();
    }
    reason.push_str(" (is `workteams up` running?)");
    reason
}

/// Sends a call, and sends it again when it failed in transit. Writes carry
/// an idempotency key, so a repeated write is applied once.
pub async fn with_retry<T, F, Fut>(action: &str, mut call: F) -> Result<T, CliError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    let mut attempt = 1;
    loop {
        match call().await {
            Ok(response) => return Ok(response.into_inner()),
            Err(status) if attempt < MAX_ATTEMPTS && is_transient(&status) => {
                let delay = Duration::from_millis(200 * 2_u64.pow(attempt - 1));
                tracing::warn!(action, attempt, code = ?status.code(), message = status.message(), "call failed in transit; retrying");
                tokio::time::sleep(delay).await;
                attempt += 1;
            }
            Err(status) => return Err(CliError::rpc(action, status)),
        }
    }
}

/// Environment variable holding a bearer token for the directory.
pub const TOKEN_VARIABLE: &str = "WORKTEAMS_TOKEN";

/// Finds the bearer token for the directory: the `--token-file` file, else
/// the `WORKTEAMS_TOKEN` value, else the development owner token that
/// `workteams up` keeps in the data folder. Without any of them calls carry
/// no token, which a directory without authentication accepts.
pub fn find_token(
    token_file: Option<&Path>,
    environment_token: Option<&str>,
    data_dir: &Path,
) -> Result<CallerToken, CliError> {
    if let Some(path) = token_file {
        return BearerToken::from_file(path)
            .map(|token| CallerToken(Some(token)))
            .map_err(|error| CliError::Usage(format!("invalid --token-file: {error}")));
    }
    if let Some(token) = environment_token.filter(|token| !token.trim().is_empty()) {
        return BearerToken::new(token)
            .map(|token| CallerToken(Some(token)))
            .map_err(|error| CliError::Usage(format!("invalid {TOKEN_VARIABLE}: {error}")));
    }
    let development = workteams_auth::DevCredentials::paths(data_dir).token_file;
    match BearerToken::from_file(&development) {
        Ok(token) => Ok(CallerToken(Some(token))),
        Err(_) => Ok(CallerToken(None)),
    }
}

/// Reads the sidecar's service token from `--authz-token-file`. Without the
/// setting, sidecar calls carry no token, which the default sidecar accepts.
pub fn find_authz_token(token_file: Option<&Path>) -> Result<CallerToken, CliError> {
    match token_file {
        Some(path) => BearerToken::from_file(path)
            .map(|token| CallerToken(Some(token)))
            .map_err(|error| CliError::Usage(format!("invalid --authz-token-file: {error}"))),
        None => Ok(CallerToken(None)),
    }
}

/// Metadata key under which the directory records who made a change.
pub const ACTOR_METADATA: &str = "x-workteams-actor";

/// The actor sent with every call of this process, set once at start.
static ACTOR: OnceLock<MetadataValue<Ascii>> = OnceLock::new();

/// Sets the actor that every later call sends, for the directory's audit
/// log. Only the first call has an effect.
pub fn set_actor(actor: &str) -> Result<(), CliError> {
    let value = MetadataValue::try_from(actor).map_err(|_| {
        CliError::Usage(format!(
            "invalid actor {actor:?}: use printable ASCII characters only"
        ))
    })?;
    let _ = ACTOR.set(value);
    Ok(())
}

/// Sends `request` with `method` on a clone of `client`, retrying as
/// [`with_retry`] does. The request carries the actor set by [`set_actor`].
pub async fn call<C, Request, T, F, Fut>(
    client: &C,
    action: &str,
    request: Request,
    method: F,
) -> Result<T, CliError>
where
    C: Clone,
    Request: Clone,
    F: Fn(C, tonic::Request<Request>) -> Fut,
    Fut: Future<Output = Result<tonic::Response<T>, tonic::Status>>,
{
    with_retry(action, || {
        let mut message = tonic::Request::new(request.clone());
        if let Some(actor) = ACTOR.get() {
            message.metadata_mut().insert(ACTOR_METADATA, actor.clone());
        }
        method(client.clone(), message)
    })
    .await
}

fn is_transient(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Aborted
    ) || (status.code() == tonic::Code::Unknown && status.message().contains("transport"))
}

/// The newest consistency token seen by this command.
#[derive(Debug, Clone, Default)]
pub struct TokenTracker {
    newest: Option<(ConsistencyToken, String)>,
}

impl TokenTracker {
    pub fn starting_at(token: Option<String>) -> Self {
        let mut tracker = Self::default();
        if let Some(token) = token {
            tracker.observe(&token);
        }
        tracker
    }

    /// Keeps `token` if it is newer than the one held. A token of another
    /// directory installation replaces the one held.
    pub fn observe(&mut self, token: &str) {
        let Ok(decoded) = ConsistencyToken::decode("consistency_token", token) else {
            return;
        };
        let newer = match &self.newest {
            None => true,
            Some((held, _)) => held.epoch != decoded.epoch || held.revision < decoded.revision,
        };
        if newer {
            self.newest = Some((decoded, token.to_owned()));
        }
    }

    pub fn token(&self) -> Option<&str> {
        self.newest.as_ref().map(|(_, text)| text.as_str())
    }

    /// Returns the consistency requirement for a sidecar read: at least as fresh as
    /// the newest write, or the index as it is when no write is known.
    pub fn consistency(&self) -> authz::Consistency {
        let requirement = match self.token() {
            Some(token) => authz::consistency::Requirement::AtLeastAsFresh(token.to_owned()),
            None => authz::consistency::Requirement::MinimizeLatency(true),
        };
        authz::Consistency {
            requirement: Some(requirement),
        }
    }
}

/// The last write's consistency token, kept in a file of the data folder.
#[derive(Debug, Clone)]
pub struct TokenStore {
    path: PathBuf,
}

impl TokenStore {
    pub fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("last-consistency-token"),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads the stored token. A missing or unreadable file means none.
    pub fn load(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.path).ok()?;
        let token = text.trim();
        ConsistencyToken::decode("consistency_token", token)
            .is_ok()
            .then(|| token.to_owned())
    }

    /// Stores `token` unless the stored one is newer, writing a temporary
    /// file first so a concurrent reader never sees half a token.
    pub fn save(&self, token: &str) -> Result<(), CliError> {
        let mut tracker = TokenTracker::starting_at(self.load());
        tracker.observe(token);
        let Some(newest) = tracker.token() else {
            return Ok(());
        };

        if let Some(parent) = self.path.parent() {
            std::fs::create_dir_all(parent).map_err(|error| CliError::io(parent, error))?;
        }
        let temporary = self
            .path
            .with_extension(format!("tmp-{}", std::process::id()));
        std::fs::write(&temporary, format!("{newest}\n"))
            .map_err(|error| CliError::io(&temporary, error))?;
        std::fs::rename(&temporary, &self.path).map_err(|error| CliError::io(&self.path, error))
    }

    pub fn clear(&self) -> Result<(), CliError> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(error) => Err(CliError::io(&self.path, error)),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use uuid::Uuid;
    use workteams_domain::Revision;

    use super::*;

    #[test]
    fn tracker_keeps_newest() {
        let epoch = Uuid::now_v7();
        let old = ConsistencyToken::new(epoch, Revision(3)).encode();
        let new = ConsistencyToken::new(epoch, Revision(7)).encode();
        let mut tracker = TokenTracker::default();
        tracker.observe(&new);
        tracker.observe(&old);
        assert_eq!(tracker.token(), Some(new.as_str()));
    }

    #[test]
    fn other_installation_replaces_token() {
        let first = ConsistencyToken::new(Uuid::now_v7(), Revision(9)).encode();
        let second = ConsistencyToken::new(Uuid::now_v7(), Revision(1)).encode();
        let mut tracker = TokenTracker::starting_at(Some(first));
        tracker.observe(&second);
        assert_eq!(tracker.token(), Some(second.as_str()));
    }

    #[test]
    fn store_round_trips_and_keeps_newest() {
        let folder = tempfile::tempdir().unwrap();
        let store = TokenStore::new(folder.path());
        let epoch = Uuid::now_v7();
        let newer = ConsistencyToken::new(epoch, Revision(5)).encode();
        let older = ConsistencyToken::new(epoch, Revision(2)).encode();
        store.save(&newer).unwrap();
        store.save(&older).unwrap();
        assert_eq!(store.load(), Some(newer));
    }

    #[test]
    fn garbage_file_reads_as_none() {
        let folder = tempfile::tempdir().unwrap();
        let store = TokenStore::new(folder.path());
        std::fs::write(store.path(), "not a token").unwrap();
        assert_eq!(store.load(), None);
    }

    #[test]
    fn authz_token_read_from_file() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("sidecar-token");
        std::fs::write(&path, "sidecar-token-for-tests\n").unwrap();

        let token = find_authz_token(Some(&path)).unwrap();
        let mut metadata = CallMetadata::new(token);
        let sent = intercepted(&mut metadata);

        assert_eq!(
            sent.get("authorization").and_then(|value| value.to_str().ok()),
            Some("Bearer sidecar-token-for-tests")
        );
    }

    #[test]
    fn authz_token_absent_without_setting() {
        let token = find_authz_token(None).unwrap();
        assert!(token.0.is_none());
    }

    #[test]
    fn authz_token_missing_file_rejected() {
        let folder = tempfile::tempdir().unwrap();
        let missing = folder.path().join("missing");

        let error = find_authz_token(Some(&missing)).unwrap_err();

        assert!(error.to_string().contains("--authz-token-file"), "{error}");
    }

    /// Runs `call` under a subscriber that gives spans OpenTelemetry
    /// contexts, as the binary's does when span export is on.
    fn with_span_export<T>(call: impl FnOnce() -> T) -> T {
        use opentelemetry::trace::TracerProvider as _;
        use tracing_subscriber::layer::SubscriberExt as _;

        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), call)
    }

    fn intercepted(metadata: &mut CallMetadata) -> tonic::metadata::MetadataMap {
        metadata
            .call(tonic::Request::new(()))
            .expect("the interceptor accepts every call")
            .metadata()
            .clone()
    }

    fn is_lower_hex(text: &str, length: usize) -> bool {
        text.len() == length
            && text
                .chars()
                .all(|character| matches!(character, '0'..='9' | 'a'..='f'))
    }

    #[test]
    fn current_span_sent_as_traceparent_with_token() {
        use opentelemetry::trace::TraceContextExt as _;
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;

        let token = BearerToken::new("token-for-tests").unwrap();
        let mut metadata = CallMetadata::new(CallerToken(Some(token)));

        let (sent, trace_id, span_id) = with_span_export(|| {
            let span = tracing::info_span!("command");
            let _entered = span.enter();
            let context = span.context();
            let span_context = context.span().span_context().clone();
            (
                intercepted(&mut metadata),
                span_context.trace_id().to_string(),
                span_context.span_id().to_string(),
            )
        });

        let traceparent = sent.get("traceparent").unwrap().to_str().unwrap();
        let fields: Vec<&str> = traceparent.split('-').collect();
        assert_eq!(fields.len(), 4, "{traceparent}");
        assert_eq!(fields[0], "00", "{traceparent}");
        assert!(is_lower_hex(fields[1], 32), "{traceparent}");
        assert!(is_lower_hex(fields[2], 16), "{traceparent}");
        assert!(is_lower_hex(fields[3], 2), "{traceparent}");
        assert_eq!(fields[1], trace_id);
        assert_eq!(fields[2], span_id);
        assert_ne!(trace_id, "0".repeat(32));
        assert_eq!(
            sent.get("authorization").unwrap().to_str().unwrap(),
            "Bearer token-for-tests"
        );
    }

    #[test]
    fn no_traceparent_outside_an_exported_span() {
        let mut metadata = CallMetadata::default();

        let without_subscriber = intercepted(&mut metadata);
        let outside_span = with_span_export(|| intercepted(&mut metadata));
        let plain_logging = tracing::subscriber::with_default(
            tracing_subscriber::fmt().with_writer(std::io::sink).finish(),
            || {
                let span = tracing::info_span!("command");
                let _entered = span.enter();
                intercepted(&mut metadata)
            },
        );

        for sent in [without_subscriber, outside_span, plain_logging] {
            assert!(sent.get("traceparent").is_none(), "{sent:?}");
            assert!(sent.get("authorization").is_none(), "{sent:?}");
        }
    }

    #[test]
    fn address_without_scheme_gets_http() {
        assert_eq!(endpoint_url("127.0.0.1:50151"), "http://127.0.0.1:50151");
        assert_eq!(endpoint_url("http://[::1]:1"), "http://[::1]:1");
    }
}
