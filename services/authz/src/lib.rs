//! The Work Teams authorization sidecar.
//!
//! A [`follower`] keeps an in-memory [`workteams_evaluation::Index`] in step
//! with the directory's snapshot and change stream. The gRPC
//! [`service`] decides access checks and listings from it without touching
//! the database, and fails closed when it cannot decide.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod config;
pub mod consistency;
pub mod convert;
pub mod error;
pub mod follower;
pub mod page_token;
pub mod request;
pub mod response;
pub mod service;
pub mod state;

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::transport::Server;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;
use workteams_proto::authz::v1::authorization_service_server::AuthorizationServiceServer;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;

pub use config::{AuthzConfig, ConfigError};

use crate::follower::{Follower, FollowerSettings};
use crate::service::{AuthorizationHandler, DecisionCounts, HandlerSettings};
use crate::state::SharedIndex;

/// Largest request the sidecar accepts, in bytes: a batch of 10,000 checks
/// by natural key stays well below it.
pub const MAX_REQUEST_BYTES: usize = 16 * 1024 * 1024;

/// A failure to start the sidecar, or an error that stopped it.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("could not build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("the gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Runs the sidecar on an already bound listener until `shutdown` completes:
/// follows the directory named in `config` and serves the authorization,
/// health and reflection services.
pub async fn serve<F>(config: AuthzConfig, listener: TcpListener, shutdown: F) -> Result<(), ServeError>
where
    F: Future<Output = ()> + Send,
{
    config.validate()?;
    let endpoint = config.directory_endpoint()?;
    let organization = config.organization_filter()?;

    // One lazily connected channel: it reconnects by itself after the
    // directory restarts, and the follower backs off while it cannot.
    let channel = endpoint.connect_lazy();
    let shared = Arc::new(SharedIndex::new());

    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_not_serving::<AuthorizationServiceServer<AuthorizationHandler>>().await;
    health.set_service_status("", ServingStatus::NotServing).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(workteams_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let follower = Follower::new(
        channel.clone(),
        Arc::clone(&shared),
        health,
        FollowerSettings {
            organization,
            min_backoff: config.reconnect_min_backoff,
            max_backoff: config.reconnect_max_backoff,
            idle_timeout: config.watch_idle_timeout,
        },
    );
    let follower_task = tokio::spawn(follower.run());

    let decisions = Arc::new(DecisionCounts::default());
    let handler = AuthorizationHandler::new(
        shared,
        DirectoryServiceClient::new(channel),
        HandlerSettings {
            consistency_wait: config.consistency_wait,
            max_staleness: config.max_staleness,
        },
        Arc::clone(&decisions),
    );

    tracing::info!(
        listen = ?listener.local_addr().ok(),
        directory = %config.directory_address,
        organization = ?organization.map(|id| id.to_string()),
        "authorization sidecar started",
    );
    let served = Server::builder()
        .add_service(health_service)
        .add_service(reflection)
        .add_service(AuthorizationServiceServer::new(handler).max_decoding_message_size(MAX_REQUEST_BYTES))
        .serve_with_incoming_shutdown(TcpIncoming::from(listener).with_nodelay(Some(true)), shutdown)
        .await;

    follower_task.abort();
    tracing::info!(
        checks.allowed = decisions.allowed(),
        checks.denied = decisions.denied(),
        "authorization sidecar stopped",
    );
    served.map_err(ServeError::from)
}
