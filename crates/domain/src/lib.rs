//! The Work Teams domain model, free of gRPC and database concerns.
//!
//! Both services and the evaluation core share these types: the directory
//! validates requests into them and stores them, the change log carries them,
//! and the authorization sidecar indexes them.

pub mod caller;
pub mod change;
pub mod command;
pub mod error;
pub mod ids;
pub mod model;
pub mod resource_type;
pub mod text;
pub mod token;

pub use caller::{Caller, Scope, ServiceAccount};
pub use change::{Change, ChangeBatch, Entity, EntityKey};
pub use error::ValidationError;
pub use ids::{InvitationId, OrganizationId, ResourceId, TeamId, UserId};
pub use model::{
    Grant, GrantKey, Invitation, InvitationState, Member, MemberRole, MemberStatus, Membership,
    Organization, OrganizationSettings, Resource, ResourceTypeDefault, Subject, Team, User,
};
pub use resource_type::{Combining, PermissionSet, ResourceTypeDef, ResourceTypeRegistry};
pub use token::{ConsistencyToken, Revision};
