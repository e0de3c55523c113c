//! Start-up and shutdown of the directory server: database connection and
//! migrations, resource type sync, health and reflection services, the
//! metrics endpoint, the background purge, and serving on a bound listener
//! until shutdown. The server layers of `workteams-telemetry` (request ids,
//! RPC spans and metrics, load shedding, deadlines) wrap every service.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::net::TcpListener;
use tokio::sync::{oneshot, watch};
use tonic::server::NamedService;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use workteams_proto::directory::v1::directory_service_server::DirectoryServiceServer;
use workteams_storage::{RequestContext, RetentionPolicy, Store, StoreConfig, StoreError};
use workteams_telemetry::{CallLimits, Metrics, ServerLayers, serve_metrics};

use workteams_auth::Authenticator;

use crate::authentication::CallGate;
use crate::config::{Authentication, ConfigError, DirectoryConfig, TlsSettings};
use crate::pool_metrics::PoolCollector;
use crate::service::{Directory, StreamSettings};

/// Full name of the gRPC health service.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// Full name of the gRPC server reflection service, version 1.
const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// An error that kept the server from starting or stopped it.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("cannot create the database directory {path}: {source}")]
    DataDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot open the directory database: {0}")]
    Store(#[from] StoreError),

    #[error("cannot listen on {address} (setting metrics_listen_address): {source}")]
    MetricsListen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] workteams_telemetry::prometheus::Error),

    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),

    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The bound sockets the directory serves on.
#[derive(Debug)]
pub struct ServeListeners {
    pub grpc: TcpListener,
    /// Where `/metrics` is served; `None` turns the endpoint off.
    pub metrics: Option<TcpListener>,
}

/// Runs the directory on `listener` until `shutdown` completes, binding the
/// metrics endpoint at `config.metrics_listen_address` when one is set.
/// See [`serve_with`].
pub async fn serve(
    config: DirectoryConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;

    let metrics = match config.metrics_listen_address {
        Some(address) => Some(bind_metrics(address).await?),
        None => None,
    };
    let listeners = ServeListeners {
        grpc: listener,
        metrics,
    };
    serve_with(config, listeners, shutdown).await
}

/// Binds the metrics endpoint's listener.
pub async fn bind_metrics(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::MetricsListen { address, source })
}

/// Runs the directory on already-bound listeners until `shutdown`
/// completes.
///
/// Before serving it migrates the database and syncs the configured
/// resource types into it. Health reports SERVING for the directory service
/// once the listener is served, and NOT_SERVING as soon as shutdown begins.
/// Open Watch streams then end with UNAVAILABLE, and other calls drain for
/// at most `shutdown_grace_period`. Connections still open after that are
/// left to end with the runtime.
pub async fn serve_with(
    config: DirectoryConfig,
    listeners: ServeListeners,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    config.validate()?;
    let ServeListeners {
        grpc: listener,
        metrics: metrics_listener,
    } = listeners;
    let registry = config.resource_type_registry()?;
    let authenticator = load_authenticator(&config.authentication).await?;
    let tls = config.tls.as_ref().map(read_tls).transpose()?;

    let store = open_store(&config).await?;
    let synced = store
        .sync_resource_types(&RequestContext::system(), &registry)
        .await
        .map_err(|error| match error {
            // A type dropped from the configuration while resources use it.
            StoreError::FailedPrecondition { reason, .. } => {
                ServeError::Config(ConfigError::new("resource_types_file", reason))
            }
            other => ServeError::Store(other),
        })?;
    tracing::info!(
        revision = %synced.revision,
        resource_types = registry.iter().count(),
        "database ready"
    );

    let (health, health_service) = tonic_health::server::health_reporter();
    // Only the services this server runs: the contract file also describes
    // the authorization sidecar's service.
    let reflection_service = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(workteams_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(<DirectoryServiceServer<Directory> as NamedService>::NAME)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_SERVICE)
        .build_v1()?;

    let (stop_streams, streams_stopped) = watch::channel(false);
    let directory = Directory::new(
        store.clone(),
        StreamSettings {
            heartbeat_interval: config.heartbeat_interval,
            max_message_size: config.max_message_size,
        },
        streams_stopped.clone(),
        CallGate::new(authenticator, config.rate_limit),
    );
    let directory_service = DirectoryServiceServer::new(directory)
        .max_decoding_message_size(config.max_message_size)
        .max_encoding_message_size(config.max_message_size);

    let purge = tokio::spawn(purge_periodically(
        store.clone(),
        config.clone(),
        streams_stopped.clone(),
    ));

    let metrics = Metrics::new()?;
    metrics
        .registry()
        .register(Box::new(PoolCollector::new(store)?))?;
    let metrics_server = metrics_listener.map(|metrics_listener| {
        if let Ok(address) = metrics_listener.local_addr() {
            tracing::info!(%address, "metrics endpoint serving");
        }
        let mut stopped = streams_stopped;
        tokio::spawn(serve_metrics(metrics_listener, metrics.clone(), async move {
            let _ = stopped.wait_for(|stopping| *stopping).await;
        }))
    });
    let layers = ServerLayers::new(
        metrics,
        CallLimits {
            concurrency_limit: config.concurrency_limit,
            default_deadline: config.default_deadline,
        },
    );

    let local_address = listener.local_addr();
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    health
        .set_serving::<DirectoryServiceServer<Directory>>()
        .await;
    match local_address {
        Ok(address) => tracing::info!(%address, "directory serving"),
        Err(error) => {
            tracing::warn!(%error, "directory serving on a listener without a local address")
        }
    }

    let (drain_started, drain_start) = oneshot::channel();
    let drain = async move {
        begin_shutdown(shutdown, health, stop_streams).await;
        let _ = drain_started.send(());
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    let server = builder
        .layer(layers)
        .add_service(health_service)
        .add_service(reflection_service)
        .add_service(directory_service)
        .serve_with_incoming_shutdown(incoming, drain);
    let grace_period_over = async {
        match drain_start.await {
            Ok(()) => tokio::time::sleep(config.shutdown_grace_period).await,
            // The server stopped without a shutdown request.
            Err(_) => std::future::pending().await,
        }
    };
    let served = tokio::select! {
        served = server => served,
        () = grace_period_over => {
            tracing::warn!(
                grace_period = ?config.shutdown_grace_period,
                "connections still open after the shutdown grace period; stopping without them"
            );
            Ok(())
        }
    };

    purge.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!("directory stopped");
    served.map_err(ServeError::from)
}

/// Waits for `shutdown`, then marks the server NOT_SERVING and ends every
/// stream that would otherwise keep the drain waiting: directory Watch
/// streams end with UNAVAILABLE, and health Watch streams end after sending
/// NOT_SERVING because their statuses are removed.
async fn begin_shutdown(
    shutdown: impl Future<Output = ()>,
    mut health: HealthReporter,
    stop_streams: watch::Sender<bool>,
) {
    shutdown.await;
    tracing::info!("directory shutting down");

    let directory_service = <DirectoryServiceServer<Directory> as NamedService>::NAME;
    for service in [directory_service, ""] {
        health
            .set_service_status(service, ServingStatus::NotServing)
            .await;
        health.clear_service_status(service).await;
    }

    // Fails only when no stream or purge task listens any more.
    let _ = stop_streams.send(true);
}

/// Loads the token keys and service accounts, or warns that every call is
/// accepted without credentials. Health and reflection never need a token.
async fn load_authenticator(
    authentication: &Authentication,
) -> Result<Option<Authenticator>, ServeError> {
    match authentication {
        Authentication::Unconfigured => Err(ServeError::Config(ConfigError::new(
            "authentication",
            "no authentication is configured",
        ))),
        Authentication::InsecureNoAuth => {
            tracing::warn!(
                "authentication is off (insecure_no_auth): anyone who reaches the listen address \
                 can read and change every organization"
            );
            Ok(None)
        }
        Authentication::Tokens(settings) => {
            let authenticator = Authenticator::load(settings)
                .await
                .map_err(|error| ServeError::Config(ConfigError::new(error.setting, error.message)))?;
            tracing::info!(
                issuer = %settings.issuer,
                audience = %settings.audience,
                service_accounts = authenticator.service_account_count(),
                "bearer token authentication on"
            );
            Ok(Some(authenticator))
        }
    }
}

/// Reads the TLS certificate, key and optional client CA files.
fn read_tls(settings: &TlsSettings) -> Result<ServerTlsConfig, ServeError> {
    let read = |setting: &'static str, path: &PathBuf| {
        std::fs::read(path).map_err(|error| {
            ServeError::Config(ConfigError::new(
                setting,
                format!("cannot read {}: {error}", path.display()),
            ))
        })
    };
    let certificate = read("tls_cert_file", &settings.cert_file)?;
    let key = read("tls_key_file", &settings.key_file)?;
    let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(certificate, key));
    if let Some(path) = &settings.client_ca_file {
        let authorities = read("tls_client_ca_file", path)?;
        tls = tls
            .client_ca_root(Certificate::from_pem(authorities))
            .client_auth_optional(false);
    }
    Ok(tls)
}

async fn open_store(config: &DirectoryConfig) -> Result<Store, ServeError> {
    if let Some(directory) = sqlite_parent_dir(&config.database_url) {
        std::fs::create_dir_all(&directory).map_err(|source| ServeError::DataDir {
            path: directory.clone(),
            source,
        })?;
    }

    let mut store_config = StoreConfig::new(config.database_url.clone());
    store_config.idempotency_retention = config.idempotency_retention;
    Ok(Store::connect(store_config).await?)
}

/// The directory that must exist for a SQLite database file, if the URL
/// names one (not `sqlite::memory:`).
fn sqlite_parent_dir(url: &str) -> Option<PathBuf> {
    let path = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path.starts_with(':') {
        return None;
    }
    PathBuf::from(path)
        .parent()
        .filter(|parent| !parent.as_os_str().is_empty())
        .map(PathBuf::from)
}

/// Purges the change log and the idempotency records every
/// `purge_interval` until shutdown. Failures are logged and retried at the
/// next interval.
async fn purge_periodically(
    store: Store,
    config: DirectoryConfig,
    mut stopped: watch::Receiver<bool>,
) {
    let policy = RetentionPolicy {
        keep_for: Some(config.change_log_retention),
        keep_revisions: None,
    };
    let mut interval = tokio::time::interval(config.purge_interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            _ = stopped.wait_for(|stopping| *stopping) => return,
            _ = interval.tick() => {}
        }

        match store.purge_change_log(policy).await {
            Ok(outcome) if outcome.deleted_batches > 0 => tracing::info!(
                deleted_batches = outcome.deleted_batches,
                oldest_available = %outcome.oldest_available,
                "change log purged"
            ),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "change log purge failed; retrying at the next interval")
            }
        }
        match store.purge_idempotency_records().await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "idempotency records purged"),
            Err(error) => {
                tracing::warn!(%error, "idempotency record purge failed; retrying at the next interval");
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_file_parent_found() {
        let parent = sqlite_parent_dir("sqlite:///srv/wt/directory.db?mode=rwc");
        assert_eq!(parent, Some(PathBuf::from("/srv/wt")));
    }

    #[test]
    fn memory_database_has_no_dir() {
        assert_eq!(sqlite_parent_dir("sqlite::memory:"), None);
    }

    #[test]
    fn postgres_has_no_dir() {
        assert_eq!(sqlite_parent_dir("postgres://postgres@127.0.0.1/wt"), None);
    }
}
