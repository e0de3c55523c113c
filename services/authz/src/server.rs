//! Start-up and shutdown of the sidecar. It runs the follower and the gRPC
//! services (authorization, Envoy's external authorization when configured,
//! health and reflection) behind the server layers of `workteams-telemetry`.
//! It serves them on TCP and optionally a Unix domain socket, next to the
//! metrics endpoint, and drains calls in flight for a grace period at
//! shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::server::NamedService;
use tonic::service::RoutesBuilder;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;
use workteams_proto::authz::v1::authorization_service_server::AuthorizationServiceServer;
use workteams_telemetry::{CallLimits, Metrics, ServerLayers, serve_metrics};

use crate::authentication::{ServiceTokenGate, directory_client};
use crate::config::{AuthzConfig, ConfigError};
use crate::envoy::ExtAuthzHandler;
use crate::follower::{Follower, FollowerSettings};
use crate::metrics::SidecarMetrics;
use crate::service::{AuthorizationHandler, HandlerSettings};
use crate::state::SharedIndex;

/// Largest request the sidecar accepts, in bytes: a batch of 10,000 checks
/// by natural key stays well below it.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// Full name of the gRPC health service.
const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// Full name of the gRPC server reflection service, version 1.
const REFLECTION_SERVICE: &str = "grpc.reflection.v1.ServerReflection";

/// A failure to start the sidecar, or an error that stopped it.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),

    #[error("cannot listen on {address} (setting --metrics-listen): {source}")]
    MetricsListen {
        address: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("cannot listen on the Unix socket {} (setting --unix-socket): {reason}", path.display())]
    UnixSocket { path: PathBuf, reason: String },

    #[error("cannot set up metrics: {0}")]
    Metrics(#[from] workteams_telemetry::prometheus::Error),

    #[error("could not build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),

    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// The bound sockets the sidecar serves on.
#[derive(Debug)]
pub struct ServeListeners {
    pub grpc: TcpListener,
    /// A second gRPC listener on a Unix domain socket.
    #[cfg(unix)]
    pub unix: Option<tokio::net::UnixListener>,
    /// Listener of the `/metrics` endpoint. `None` leaves the endpoint off.
    pub metrics: Option<TcpListener>,
}

impl ServeListeners {
    /// Only the gRPC TCP listener.
    pub fn tcp(grpc: TcpListener) -> Self {
        Self {
            grpc,
            #[cfg(unix)]
            unix: None,
            metrics: None,
        }
    }
}

/// Runs the sidecar on an already bound TCP listener until `shutdown`
/// completes. It binds nothing else: the metrics endpoint and the Unix
/// socket of `config` are left off; see [`serve_with`].
pub async fn serve<F>(config: AuthzConfig, listener: TcpListener, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    serve_with(config, ServeListeners::tcp(listener), shutdown).await
}

/// Binds the metrics endpoint's listener.
pub async fn bind_metrics(address: SocketAddr) -> Result<TcpListener, ServeError> {
    TcpListener::bind(address)
        .await
        .map_err(|source| ServeError::MetricsListen { address, source })
}

/// Binds a Unix domain socket at `path` with file mode `mode`. A socket
/// file left by an earlier run is removed first; any other file is kept
/// and is an error.
#[cfg(unix)]
pub fn bind_unix_socket(path: &Path, mode: u32) -> Result<tokio::net::UnixListener, ServeError> {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};

    let failed = |reason: String| ServeError::UnixSocket {
        path: path.to_path_buf(),
        reason,
    };

    match std::fs::symlink_metadata(path) {
        Ok(metadata) if metadata.file_type().is_socket() => {
            std::fs::remove_file(path).map_err(|error| failed(format!("cannot remove the old socket: {error}")))?;
        }
        Ok(_) => {
            return Err(failed(
                "a file that is not a socket is in the way; remove it or choose another path".to_owned(),
            ));
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {}
        Err(error) => return Err(failed(error.to_string())),
    }

    let listener = tokio::net::UnixListener::bind(path).map_err(|error| failed(error.to_string()))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|error| failed(format!("cannot set mode {mode:o}: {error}")))?;
    Ok(listener)
}

/// Runs the sidecar on already bound listeners until `shutdown` completes.
///
/// Health reports NOT_SERVING until the first snapshot is loaded. When
/// shutdown begins, health turns NOT_SERVING for good, the listeners stop
/// accepting, and calls in flight get up to `shutdown_grace_period` to
/// finish. The follower keeps the index current meanwhile, so calls that
/// wait for a revision can still get it.
pub async fn serve_with<F>(config: AuthzConfig, listeners: ServeListeners, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    config.validate()?;
    let endpoint = config.directory_endpoint()?;
    let organization = config.organization_filter()?;
    let mapping = config.ext_authz_mapping()?;

    // One lazily connected channel: it reconnects by itself after the
    // directory restarts, and the follower backs off while it cannot.
    let channel = endpoint.connect_lazy();
    let shared = Arc::new(SharedIndex::new());
    let telemetry = Metrics::new()?;
    let metrics = SidecarMetrics::register(telemetry.registry(), Arc::clone(&shared))?;

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_not_serving::<AuthorizationServiceServer<AuthorizationHandler>>().await;
    health.set_service_status("", ServingStatus::NotServing).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(workteams_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .with_service_name(<AuthorizationServiceServer<AuthorizationHandler> as NamedService>::NAME)
        .with_service_name(HEALTH_SERVICE)
        .with_service_name(REFLECTION_SERVICE)
        .build_v1()?;

    let (stopping, stopping_seen) = watch::channel(false);
    let directory = directory_client(channel, config.directory_token()?);
    let api_gate = ServiceTokenGate::load(&config).await?;
    let follower = Follower::new(
        directory.clone(),
        Arc::clone(&shared),
        health.clone(),
        FollowerSettings {
            organization,
            min_backoff: config.reconnect_min_backoff,
            max_backoff: config.reconnect_max_backoff,
            idle_timeout: config.watch_idle_timeout,
        },
        metrics.clone(),
        stopping_seen.clone(),
    );
    let follower_task = tokio::spawn(follower.run());

    let handler = AuthorizationHandler::new(
        shared,
        directory,
        HandlerSettings {
            consistency_wait: config.consistency_wait,
            max_staleness: config.max_staleness,
        },
        metrics.clone(),
    );
    let mut routes = RoutesBuilder::default();
    routes
        .add_service(health_service)
        .add_service(reflection)
        .add_service(InterceptedService::new(
            AuthorizationServiceServer::new(handler.clone()).max_decoding_message_size(MAX_REQUEST_BYTES),
            api_gate.clone(),
        ));
    let ext_authz = mapping.is_some();
    if let Some(mapping) = mapping {
        // Envoy's checks reveal decisions too, so they need the same token.
        routes.add_service(InterceptedService::new(
            AuthorizationServer::new(ExtAuthzHandler::new(mapping, handler)),
            api_gate,
        ));
    }
    let routes = routes.routes();
    let layers = ServerLayers::new(
        telemetry.clone(),
        CallLimits {
            concurrency_limit: config.concurrency_limit,
            default_deadline: config.default_deadline,
        },
    );

    let ServeListeners {
        grpc,
        #[cfg(unix)]
        unix,
        metrics: metrics_listener,
    } = listeners;
    let metrics_address = metrics_listener.as_ref().and_then(|listener| listener.local_addr().ok());
    let metrics_server = metrics_listener.map(|listener| {
        tokio::spawn(serve_metrics(listener, telemetry, stopped(stopping_seen.clone())))
    });
    tracing::info!(
        listen = ?grpc.local_addr().ok(),
        unix_socket = ?config.unix_socket,
        metrics = ?metrics_address,
        ext_authz,
        directory = %config.directory_address,
        organization = ?organization.map(|id| id.to_string()),
        "authorization sidecar started",
    );

    let tcp_server = Server::builder()
        .layer(layers.clone())
        .add_routes(routes.clone())
        .serve_with_incoming_shutdown(
            TcpIncoming::from(grpc).with_nodelay(Some(true)),
            stopped(stopping_seen.clone()),
        );
    #[cfg(unix)]
    let unix_server = async {
        match unix {
            Some(unix) => {
                Server::builder()
                    .layer(layers)
                    .add_routes(routes)
                    .serve_with_incoming_shutdown(
                        tokio_stream::wrappers::UnixListenerStream::new(unix),
                        stopped(stopping_seen),
                    )
                    .await
            }
            None => Ok(()),
        }
    };
    #[cfg(not(unix))]
    let unix_server = async { Ok::<(), tonic::transport::Error>(()) };
    let servers = async {
        let (tcp, unix) = tokio::join!(tcp_server, unix_server);
        tcp.and(unix)
    };

    let grace_period = config.shutdown_grace_period;
    let grace_period_over = async {
        shutdown.await;
        begin_shutdown(health, &stopping).await;
        tokio::time::sleep(grace_period).await;
    };
    let served = tokio::select! {
        served = servers => served,
        () = grace_period_over => {
            tracing::warn!(
                grace_period = ?grace_period,
                "calls still open after the shutdown grace period; stopping without them",
            );
            Ok(())
        }
    };

    follower_task.abort();
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    tracing::info!(
        checks.allowed = metrics.allowed(),
        checks.denied = metrics.denied(),
        "authorization sidecar stopped",
    );
    served.map_err(ServeError::from)
}

/// Marks the sidecar NOT_SERVING and signals the servers to stop accepting.
/// Clearing the statuses ends health Watch streams, which would otherwise
/// keep their connections, and so the drain, open.
async fn begin_shutdown(mut health: HealthReporter, stopping: &watch::Sender<bool>) {
    tracing::info!("authorization sidecar shutting down");
    // Sent first, so the follower no longer reports SERVING.
    stopping.send_replace(true);

    let authz_service = <AuthorizationServiceServer<AuthorizationHandler> as NamedService>::NAME;
    for service in [authz_service, ""] {
        health.set_service_status(service, ServingStatus::NotServing).await;
        health.clear_service_status(service).await;
    }
}

/// Completes once shutdown has begun.
async fn stopped(mut stopping: watch::Receiver<bool>) {
    // An error means the sender is gone, which happens only after serving.
    let _ = stopping.wait_for(|stopping| *stopping).await;
}
