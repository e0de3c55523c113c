//! What an authorization engine offers the harness.
//!
//! Three shapes: an engine called in process ([`CheckEngine`], driven by
//! threads), one called over a connection ([`RemoteEngine`], driven by async
//! tasks), and one that only runs a whole batch of checks at once
//! ([`BatchEngine`]). Peers implement them in the separate `bench/`
//! workspace; Work Teams' own engines implement them in this crate.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::graph::{CheckCase, Graph, RuleSet};

/// A boxed future, as remote engines return them.
pub type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// The way the harness reaches an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    InProcess,
    /// gRPC over loopback TCP.
    Grpc,
    /// A whole batch through a command-line tool.
    Batch,
}

impl Transport {
    pub const fn name(self) -> &'static str {
        match self {
            Self::InProcess => "in process",
            Self::Grpc => "gRPC over loopback",
            Self::Batch => "batch (CLI)",
        }
    }
}

/// Describes an engine in the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineInfo {
    pub name: String,
    pub version: String,
    pub transport: Transport,
    /// The engine's model of the directory, in a sentence or two.
    pub model: String,
    /// Rules it cannot express: checks touching them leave its comparison.
    pub unsupported: RuleSet,
    /// Per-rule notes, such as how the engine could express it with a
    /// feature this harness does not use.
    pub notes: Vec<String>,
}

/// The error a list query returns when the engine stopped it at its own
/// time limit. The harness records such a query as "longer than the limit"
/// instead of dropping the engine's list rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the query passed the engine's own time limit of {} s", limit.as_secs())]
pub struct QueryTimedOut {
    pub limit: Duration,
}

/// The cost of loading the data into an engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LoadReport {
    pub elapsed: Duration,
    /// Bytes the engine's data occupies, when the harness can count them.
    pub bytes: Option<u64>,
}

/// One thread's checker: answers the prepared check at a position (taken
/// modulo the number of cases).
pub type CheckWorker<'e> = Box<dyn FnMut(usize) -> anyhow::Result<bool> + Send + 'e>;

/// An engine answering checks in this process.
pub trait CheckEngine: Send + Sync {
    fn info(&self) -> EngineInfo;

    /// Prepares a checker for `cases`, building each request ahead of the
    /// timed calls.
    fn worker(&self, graph: &Graph<'_>, cases: &[CheckCase]) -> anyhow::Result<CheckWorker<'_>>;

    /// Lists the resource ids of `resource_type` on which the user (by id)
    /// holds `permission`; `None` when the engine has no such query.
    fn list_resources(
        &self,
        _user_id: &str,
        _resource_type: &str,
        _permission: &str,
    ) -> Option<anyhow::Result<Vec<String>>> {
        None
    }

    /// Lists the user ids holding `permission` on the resource (by id);
    /// `None` when the engine has no such query.
    fn list_users(
        &self,
        _resource_id: &str,
        _resource_type: &str,
        _permission: &str,
    ) -> Option<anyhow::Result<Vec<String>>> {
        None
    }

    /// Names the list queries in the report, such as `LookupResources`.
    fn list_query_names(&self) -> Option<(&'static str, &'static str)> {
        None
    }
}

/// Checks prepared for a remote engine.
pub trait PreparedChecks: Send + Sync {
    /// Answers the prepared check at `position` (taken modulo the number of
    /// cases).
    fn check(&self, position: usize) -> BoxFuture<anyhow::Result<bool>>;
}

/// An engine reached over a connection.
pub trait RemoteEngine: Send + Sync {
    fn info(&self) -> EngineInfo;

    fn prepare(
        &self,
        graph: &Graph<'_>,
        cases: &[CheckCase],
    ) -> anyhow::Result<Arc<dyn PreparedChecks>>;
}

/// The outcome of one batch run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchOutcome {
    /// The whole run, loading included.
    pub elapsed: Duration,
    /// The same run with no checks: loading and start-up alone.
    pub load_elapsed: Duration,
    /// Positions of checks whose answer differed from the expected one.
    pub check_failures: Vec<usize>,
    /// Positions of list queries whose answer differed.
    pub list_failures: Vec<usize>,
}

/// An expected list answer for a batch engine: the user, the resource type,
/// the permission and every resource id it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedListing {
    pub user: usize,
    pub resource_type: String,
    pub permission: String,
    pub resources: Vec<usize>,
}

/// An engine that runs a batch of checks with expected answers.
pub trait BatchEngine: Send + Sync {
    fn info(&self) -> EngineInfo;

    /// Runs `cases`, comparing with `expected` (one answer per case) and
    /// the list queries with `listings`.
    fn run(
        &self,
        graph: &Graph<'_>,
        cases: &[CheckCase],
        expected: &[bool],
        listings: &[ExpectedListing],
    ) -> anyhow::Result<BatchOutcome>;
}

/// A peer built for one dataset.
pub enum PeerEngine {
    Check(Box<dyn CheckEngine>),
    Remote(Box<dyn RemoteEngine>),
    Batch(Box<dyn BatchEngine>),
}

/// Builds a peer for a dataset; returning `Ok(None)` skips the peer with
/// the given reason (not installed, too large for its model).
pub trait PeerFactory {
    fn name(&self) -> &str;

    /// Loads the dataset into the peer. `runtime` runs any async work; the
    /// call itself is made outside the runtime, so it may block on it.
    fn build(
        &self,
        graph: &Graph<'_>,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>>;
}
