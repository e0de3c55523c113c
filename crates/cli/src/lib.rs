//! The `workteams` command line: declarative sync of organizations from a
//! manifest or a Peribolos configuration, access checks, and everyday
//! administration of the team directory.
//!
//! The binary is a thin shell over this library, so tests drive the same
//! functions against real servers.

pub mod apply;
pub mod cli;
pub mod commands;
pub mod connect;
pub mod current;
pub mod desired;
pub mod error;
pub mod manifest;
pub mod output;
pub mod peribolos;
pub mod plan;
pub mod render;
pub mod resolve;
pub mod sync;
pub mod yaml;
