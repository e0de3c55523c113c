//! Benchmark harness of Work Teams: seeded directories, the peers' input
//! formats, in-process and gRPC measurements, agreement checks and the
//! Markdown report.
//!
//! The peer engines themselves (Cedar, regorus, casbin, SpiceDB, OpenFGA,
//! Cerbos) live in the separate `bench/` workspace, which implements the
//! traits of [`engine`] and hands them to [`runner::run`]; this crate keeps
//! only normal project dependencies, so its smoke test runs with the
//! project's tests.

pub mod agreement;
pub mod cases;
pub mod dataset;
pub mod engine;
pub mod graph;
pub mod import;
pub mod lists;
pub mod machine;
pub mod measure;
pub mod ours;
pub mod propagation;
pub mod report;
pub mod runner;
pub mod services;
pub mod sidecar;
pub mod writers;
