//! The Work Teams directory: the gRPC system of record for organizations,
//! users, members, teams, resources, grants and invitations, with the change
//! stream that authorization sidecars follow.
//!
//! [`serve`] runs the whole server on a bound listener, and [`serve_with`]
//! on bound gRPC and metrics listeners. The `workteams-directory` binary and
//! in-process callers (the CLI, end-to-end tests) start it that way.

pub mod authentication;
pub mod authorization;
pub mod config;
pub mod context;
pub mod convert;
pub mod error;
pub mod pool_metrics;
pub mod server;
pub mod service;
pub mod stream;

pub use config::{Authentication, ConfigError, DirectoryArgs, DirectoryConfig, TlsSettings};
pub use server::{ServeError, ServeListeners, bind_metrics, serve, serve_with};
pub use service::{Directory, StreamSettings};
