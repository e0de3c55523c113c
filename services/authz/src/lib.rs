//! The Work Teams authorization sidecar.
//!
//! A [`follower`] keeps an in-memory [`workteams_evaluation::Index`] in step
//! with the directory's snapshot and change stream. The gRPC
//! [`service`] decides access checks and listings from it without touching
//! the database, and fails closed when it cannot decide. The [`envoy`]
//! module decides Envoy's external authorization checks from the same index,
//! and [`server`] runs it all on TCP and optionally a Unix domain socket.

#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

pub mod access;
pub mod authentication;
pub mod config;
pub mod consistency;
pub mod convert;
pub mod envoy;
pub mod error;
pub mod follower;
pub mod metrics;
pub mod page_token;
pub mod request;
pub mod response;
pub mod server;
pub mod service;
pub mod state;

pub use config::{AuthzConfig, ConfigError};
pub use server::{MAX_REQUEST_BYTES, ServeError, ServeListeners, bind_metrics, bind_unix_socket, serve, serve_with};
