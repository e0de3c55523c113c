//! Access decisions against one index version: resolving users and
//! resources named by id or natural key, checking the permission name against
//! the resource type, evaluating, and listing effective access.
//!
//! Fail-closed rules: an id that names nothing is NOT_FOUND, because the
//! caller holds a wrong reference. A natural key that names nothing (a login,
//! an e-mail address, an organization name, a type or an external id) is a
//! deny with the matching reason, never an allow.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use workteams_domain::{OrganizationId, ResourceId, ResourceTypeDef, Revision, UserId, ValidationError};
use workteams_evaluation::{AccessFilter, AccessPage, DenyReason, Evaluation, Index, PageRequest};

use crate::error::AuthzError;
use crate::request::{CheckQuery, OrganizationSelector, ResourceSelector, UserSelector};

/// The reason for a deny, including the reasons that only natural keys have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denial {
    Evaluated(DenyReason),
    UnknownUser,
    UnknownResource,
    UnknownOrganization,
}

/// The decision of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub user_id: Option<UserId>,
    pub resource_id: Option<ResourceId>,
    pub permission: String,
    /// `None` when the user or the resource is unknown.
    pub evaluation: Option<Evaluation>,
    /// `None` exactly when access is allowed.
    pub denial: Option<Denial>,
}

impl Decision {
    pub fn allowed(&self) -> bool {
        self.denial.is_none()
    }

    fn unknown(user_id: Option<UserId>, resource_id: Option<ResourceId>, permission: &str, denial: Denial) -> Self {
        Self {
            user_id,
            resource_id,
            permission: permission.to_owned(),
            evaluation: None,
            denial: Some(denial),
        }
    }
}

/// A resource reference resolved against the index.
#[derive(Debug, Clone)]
enum ResolvedResource {
    Known {
        id: ResourceId,
        /// `None` when the resource's type is not defined.
        definition: Option<Arc<ResourceTypeDef>>,
    },
    Unknown {
        denial: Denial,
        /// The type the key names, when it is defined, for checking the
        /// permission name even though the resource is missing.
        definition: Option<Arc<ResourceTypeDef>>,
    },
}

/// Decides one check at `now`. Errors name fields relative to the check.
pub fn check(index: &Index, query: &CheckQuery, now: DateTime<Utc>) -> Result<Decision, AuthzError> {
    let revision = index.revision();

    let resource = resolve_resource(index, &query.resource).map_err(|error| error.within("resource"))?;
    let definition = match &resource {
        ResolvedResource::Known { definition, .. } | ResolvedResource::Unknown { definition, .. } => definition,
    };
    let permission_index = match definition {
        Some(definition) => Some(permission_index(definition, &query.permission)?),
        None => None,
    };

    let user = resolve_user(index, &query.user, revision).map_err(|error| error.within("user"))?;

    let (resource_id, permission_index) = match (&resource, permission_index) {
        (ResolvedResource::Unknown { denial, .. }, _) => {
            return Ok(Decision::unknown(user, None, &query.permission, *denial));
        }
        // A resource of an undefined type grants nothing.
        (ResolvedResource::Known { id, .. }, None) => {
            return Ok(Decision::unknown(user, Some(*id), &query.permission, Denial::UnknownResource));
        }
        (ResolvedResource::Known { id, .. }, Some(permission_index)) => (*id, permission_index),
    };
    let Some(user_id) = user else {
        return Ok(Decision::unknown(None, Some(resource_id), &query.permission, Denial::UnknownUser));
    };

    let evaluation = index.evaluate(user_id, resource_id, now);
    let denial = evaluation.deny_reason_for(permission_index).map(Denial::Evaluated);
    Ok(Decision {
        user_id: Some(user_id),
        resource_id: Some(resource_id),
        permission: query.permission.clone(),
        evaluation: Some(evaluation),
        denial,
    })
}

/// Lists one page of the resources the user can use at `now`, sorted by
/// resource id. A user or filter named by an unknown natural key yields an
/// empty page.
pub fn list_user_access(
    index: &Index,
    user: &UserSelector,
    organization: Option<&OrganizationSelector>,
    resource_type: Option<&str>,
    now: DateTime<Utc>,
    page: PageRequest<ResourceId>,
) -> Result<AccessPage, AuthzError> {
    let revision = index.revision();

    let organization = match organization {
        None => None,
        Some(selector) => match resolve_organization(index, selector, revision)
            .map_err(|error| error.within("organization"))?
        {
            Some(id) => Some(id),
            None => return Ok(AccessPage::default()),
        },
    };
    if resource_type.is_some_and(|name| index.resource_type(name).is_none()) {
        return Ok(AccessPage::default());
    }
    let Some(user) = resolve_user(index, user, revision).map_err(|error| error.within("user"))? else {
        return Ok(AccessPage::default());
    };

    let filter = AccessFilter {
        organization,
        resource_type: resource_type.map(str::to_owned),
    };
    Ok(index.list_user_access_page(user, &filter, now, page))
}

/// Lists one page of the users who can use the resource at `now`, sorted by
/// user id. A resource named by an unknown natural key yields an empty page.
pub fn list_resource_access(
    index: &Index,
    resource: &ResourceSelector,
    now: DateTime<Utc>,
    page: PageRequest<UserId>,
) -> Result<AccessPage, AuthzError> {
    match resolve_resource(index, resource).map_err(|error| error.within("resource"))? {
        ResolvedResource::Known { id, .. } => Ok(index.list_resource_access_page(id, now, page)),
        ResolvedResource::Unknown { .. } => Ok(AccessPage::default()),
    }
}

/// Resolves a user selector to an id: `Ok(None)` for an unknown login or
/// e-mail address, NOT_FOUND for an unknown id.
pub fn resolve_user(index: &Index, selector: &UserSelector, revision: Revision) -> Result<Option<UserId>, AuthzError> {
    match selector {
        UserSelector::Id(id) => index
            .user(*id)
            .map(|user| Some(user.id))
            .ok_or_else(|| AuthzError::not_found("user", "id", id, revision)),
        UserSelector::Login(login) => Ok(index.user_by_login(login)),
        UserSelector::Email(email) => Ok(index.user_by_email(email)),
    }
}

/// Resolves an organization selector to an id: `Ok(None)` for an unknown
/// name, NOT_FOUND for an unknown id.
pub fn resolve_organization(
    index: &Index,
    selector: &OrganizationSelector,
    revision: Revision,
) -> Result<Option<OrganizationId>, AuthzError> {
    match selector {
        OrganizationSelector::Id(id) => index
            .organization(*id)
            .map(|organization| Some(organization.id))
            .ok_or_else(|| AuthzError::not_found("organization", "id", id, revision)),
        OrganizationSelector::Name(name) => Ok(index.organization_by_name(name)),
    }
}

fn resolve_resource(index: &Index, selector: &ResourceSelector) -> Result<ResolvedResource, AuthzError> {
    let revision = index.revision();
    match selector {
        ResourceSelector::Id(id) => {
            let resource = index
                .resource(*id)
                .ok_or_else(|| AuthzError::not_found("resource", "id", id, revision))?;
            Ok(ResolvedResource::Known {
                id: resource.id,
                definition: resource.definition.cloned(),
            })
        }
        ResourceSelector::Key {
            organization,
            resource_type,
            external_id,
        } => {
            let definition = index.resource_type(resource_type).cloned();
            let organization = resolve_organization(index, organization, revision)
                .map_err(|error| error.within("key.organization"))?;
            let Some(organization) = organization else {
                return Ok(ResolvedResource::Unknown {
                    denial: Denial::UnknownOrganization,
                    definition,
                });
            };
            if definition.is_none() {
                return Ok(ResolvedResource::Unknown {
                    denial: Denial::UnknownResource,
                    definition,
                });
            }
            match index.resource_by_key(organization, resource_type, external_id) {
                Some(id) => Ok(ResolvedResource::Known { id, definition }),
                None => Ok(ResolvedResource::Unknown {
                    denial: Denial::UnknownResource,
                    definition,
                }),
            }
        }
    }
}

fn permission_index(definition: &ResourceTypeDef, permission: &str) -> Result<usize, AuthzError> {
    definition.permission_index(permission).ok_or_else(|| {
        AuthzError::InvalidArgument(ValidationError::new(
            "permission",
            permission,
            format!(
                "{} has no permission {permission:?}; valid: {}",
                definition.name,
                definition.permissions.join(", ")
            ),
        ))
    })
}
