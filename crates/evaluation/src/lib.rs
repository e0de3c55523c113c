//! Access evaluation for Work Teams: the rules that decide what a user may do
//! on a resource, and the in-memory [`Index`] that answers them quickly.
//!
//! The crate is synchronous and free of I/O. The authorization sidecar loads
//! a directory snapshot into an [`Index`], follows the change stream with
//! [`Index::apply_batch`], and publishes each new version behind a pointer
//! swap; cloning an index is cheap because its storage is shared copy-on-write.
//!
//! [`reference`] holds a deliberately slow evaluator written straight from
//! the rules, which the tests compare the index against.

pub mod access;
#[cfg(feature = "generator")]
pub mod generator;
pub mod index;
pub mod reference;

pub use access::{
    AccessEntry, AccessFilter, AccessPage, DenyReason, Evaluation, IndexStats, MemberView,
    OrganizationView, PageRequest, Reason, ReasonKind, ResourceView, UserView,
};
pub use index::Index;
