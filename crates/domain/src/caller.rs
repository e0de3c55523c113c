//! The caller of an RPC, as established by authentication.
//!
//! The directory decides what a caller may do from this and from the
//! organization's own roles and teams. The sidecar only checks that a
//! service token is valid.

use crate::ids::{OrganizationId, UserId};

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A user of the directory, named by the token's subject. What the user
    /// may do follows from their organization roles and team memberships.
    User(UserId),
    /// A configured service account with explicit scopes.
    Service(ServiceAccount),
    /// Authentication is turned off by an explicit insecure setting. Every
    /// call is allowed, and the server logs a warning at every start.
    Unauthenticated,
}

/// A non-human caller configured by the operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccount {
    /// The account's name, the `sub` claim of its tokens.
    pub name: String,
    pub scopes: Vec<Scope>,
}

/// A permission given to a service account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Read everything in every organization.
    ReadAll,
    /// Read and change everything, including creating organizations.
    AdminAll,
    /// Read everything in one organization.
    ReadOrganization(OrganizationId),
    /// Read and change everything in one organization.
    AdminOrganization(OrganizationId),
}

impl Caller {
    /// Returns the user id of a user caller.
    pub fn user_id(&self) -> Option<&UserId> {
        match self {
            Self::User(user_id) => Some(user_id),
            Self::Service(_) | Self::Unauthenticated => None,
        }
    }

    /// Returns the name recorded as the actor of changes and audit events:
    /// `user:<id>`, `service:<name>`, or `None` without authentication.
    pub fn actor_name(&self) -> Option<String> {
        match self {
            Self::User(user_id) => Some(format!("user:{user_id}")),
            Self::Service(account) => Some(format!("service:{}", account.name)),
            Self::Unauthenticated => None,
        }
    }
}
