//! Persistence of the Work Teams directory on SQLite (the default) or
//! PostgreSQL, through sea-orm.
//!
//! [`Store`] implements the behaviour behind every directory RPC on domain
//! types: it validates commands, writes each mutation and its change-log rows
//! and audit events in one transaction under the change-head lock (so
//! revisions are gapless and commit in order), replays idempotent requests,
//! pages lists with signed keyset tokens, and serves the change log as
//! batches, a live watch stream and consistent snapshots.

mod audit;
mod context;
mod error;
mod page;
mod query;
mod schema;
mod store;

#[doc(hidden)]
pub mod fuzzing;
#[cfg(feature = "testing")]
pub mod testing;

pub use audit::{AuditEvent, AuditFilter, AuditOrder, EntityKind, audit_entity_id};
pub use context::{IdempotencyKey, RequestContext, Written};
pub use error::StoreError;
pub use page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, Page, PageRequest};
pub use query::{
    AcceptedInvitation, GrantBatchOutcome, GrantFilter, InvitationFilter, MemberWithUser,
    ResourceFilter, TeamFilter, TeamMemberEntry, TeamMembersQuery, UserTeamEntry, UserTeamsQuery,
};
pub use store::changes::{ChangeStream, PurgeOutcome, RetentionPolicy};
pub use store::snapshot::{Snapshot, SnapshotChunks};
pub use store::{Backend, PoolUsage, Store, StoreConfig};
