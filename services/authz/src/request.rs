//! Validation of the sidecar's requests into typed queries.
//!
//! Only the shape of a request is checked here: required fields, id syntax,
//! limits. Whether the named user, resource or permission exists is decided
//! against the index in [`crate::access`].

use workteams_domain::text::{
    MAX_EMAIL_CHARS, MAX_EXTERNAL_ID_CHARS, MAX_IDENTIFIER_CHARS, MAX_LOGIN_CHARS, MAX_NAME_CHARS,
};
use workteams_domain::{OrganizationId, ResourceId, UserId, ValidationError};
use workteams_proto::authz::v1 as proto;

use crate::consistency::Requirement;

/// Maximum number of checks in one `BatchCheckAccess` request.
pub const MAX_BATCH_CHECKS: usize = 10_000;
/// Page size of `ListEffectiveAccess` when the request sets none.
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Largest page of `ListEffectiveAccess`; larger requests get this many.
pub const MAX_PAGE_SIZE: usize = 1_000;

/// A user named by id or by a natural key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserSelector {
    Id(UserId),
    Login(String),
    Email(String),
}

/// An organization named by id or by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrganizationSelector {
    Id(OrganizationId),
    Name(String),
}

/// A resource named by id or by its organization, type and external id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResourceSelector {
    Id(ResourceId),
    Key {
        organization: OrganizationSelector,
        resource_type: String,
        external_id: String,
    },
}

/// One access question.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckQuery {
    pub user: UserSelector,
    pub resource: ResourceSelector,
    pub permission: String,
}

/// A single `CheckAccess` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRequest {
    pub query: CheckQuery,
    pub consistency: Requirement,
}

/// A `BatchCheckAccess` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCheckRequest {
    pub queries: Vec<CheckQuery>,
    pub consistency: Requirement,
}

/// The target of a `ListEffectiveAccess` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListTarget {
    /// The resources a user can use, optionally filtered.
    User {
        user: UserSelector,
        organization: Option<OrganizationSelector>,
        resource_type: Option<String>,
    },
    /// The users who can use a resource.
    Resource(ResourceSelector),
}

/// A `ListEffectiveAccess` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListRequest {
    pub target: ListTarget,
    pub page_size: usize,
    /// Still encoded: decoding needs the query's fingerprint.
    pub page_token: Option<String>,
    pub consistency: Requirement,
}

impl TryFrom<Option<proto::UserRef>> for UserSelector {
    type Error = ValidationError;

    fn try_from(user: Option<proto::UserRef>) -> Result<Self, Self::Error> {
        use proto::user_ref::Kind;

        let kind = user.and_then(|proto::UserRef { kind }| kind);
        match kind {
            None => Err(ValidationError::new("", "", "a user is required: set id, login or email")),
            Some(Kind::Id(id)) => Ok(Self::Id(UserId::parse("id", &id)?)),
            Some(Kind::Login(login)) => Ok(Self::Login(required("login", login, MAX_LOGIN_CHARS)?)),
            Some(Kind::Email(email)) => Ok(Self::Email(required("email", email, MAX_EMAIL_CHARS)?)),
        }
    }
}

impl TryFrom<Option<proto::OrganizationRef>> for OrganizationSelector {
    type Error = ValidationError;

    fn try_from(organization: Option<proto::OrganizationRef>) -> Result<Self, Self::Error> {
        use proto::organization_ref::Kind;

        let kind = organization.and_then(|proto::OrganizationRef { kind }| kind);
        match kind {
            None => Err(ValidationError::new("", "", "an organization is required: set id or name")),
            Some(Kind::Id(id)) => Ok(Self::Id(OrganizationId::parse("id", &id)?)),
            Some(Kind::Name(name)) => Ok(Self::Name(required("name", name, MAX_NAME_CHARS)?)),
        }
    }
}

impl TryFrom<Option<proto::ResourceRef>> for ResourceSelector {
    type Error = ValidationError;

    fn try_from(resource: Option<proto::ResourceRef>) -> Result<Self, Self::Error> {
        use proto::resource_ref::Kind;

        let kind = resource.and_then(|proto::ResourceRef { kind }| kind);
        match kind {
            None => Err(ValidationError::new("", "", "a resource is required: set id or key")),
            Some(Kind::Id(id)) => Ok(Self::Id(ResourceId::parse("id", &id)?)),
            Some(Kind::Key(proto::ResourceKey {
                organization,
                resource_type,
                external_id,
            })) => Ok(Self::Key {
                organization: OrganizationSelector::try_from(organization)
                    .map_err(|error| error.within("key.organization"))?,
                resource_type: required("key.resource_type", resource_type, MAX_IDENTIFIER_CHARS)?,
                external_id: required("key.external_id", external_id, MAX_EXTERNAL_ID_CHARS)?,
            }),
        }
    }
}

/// Converts the question part of a check; its consistency is handled by the
/// caller because a batch ignores per-check consistency.
fn check_query(
    user: Option<proto::UserRef>,
    resource: Option<proto::ResourceRef>,
    permission: String,
) -> Result<CheckQuery, ValidationError> {
    Ok(CheckQuery {
        user: UserSelector::try_from(user).map_err(|error| error.within("user"))?,
        resource: ResourceSelector::try_from(resource).map_err(|error| error.within("resource"))?,
        permission: required("permission", permission, MAX_IDENTIFIER_CHARS)?,
    })
}

impl TryFrom<proto::CheckAccessRequest> for CheckRequest {
    type Error = ValidationError;

    fn try_from(request: proto::CheckAccessRequest) -> Result<Self, Self::Error> {
        let proto::CheckAccessRequest {
            user,
            resource,
            permission,
            consistency,
        } = request;

        Ok(Self {
            query: check_query(user, resource, permission)?,
            consistency: Requirement::try_from(consistency).map_err(|error| error.within("consistency"))?,
        })
    }
}

impl TryFrom<proto::BatchCheckAccessRequest> for BatchCheckRequest {
    type Error = ValidationError;

    fn try_from(request: proto::BatchCheckAccessRequest) -> Result<Self, Self::Error> {
        let proto::BatchCheckAccessRequest { checks, consistency } = request;

        if checks.len() > MAX_BATCH_CHECKS {
            return Err(ValidationError::new(
                "checks",
                format!("{} checks", checks.len()),
                format!("a batch holds at most {MAX_BATCH_CHECKS} checks; split it into several requests"),
            ));
        }

        // The batch's consistency applies to every check, so each check's
        // own consistency is ignored, as the contract documents.
        let queries = checks
            .into_iter()
            .enumerate()
            .map(|(position, check)| {
                let proto::CheckAccessRequest {
                    user,
                    resource,
                    permission,
                    consistency: _,
                } = check;
                check_query(user, resource, permission).map_err(|error| error.within(&format!("checks[{position}]")))
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Self {
            queries,
            consistency: Requirement::try_from(consistency).map_err(|error| error.within("consistency"))?,
        })
    }
}

impl TryFrom<proto::ListEffectiveAccessRequest> for ListRequest {
    type Error = ValidationError;

    fn try_from(request: proto::ListEffectiveAccessRequest) -> Result<Self, Self::Error> {
        use proto::list_effective_access_request::Target;

        let proto::ListEffectiveAccessRequest {
            target,
            organization,
            resource_type,
            page_size,
            page_token,
            consistency,
        } = request;

        let target = match target {
            None => {
                return Err(ValidationError::new("user", "", "a target is required: set user or resource"));
            }
            Some(Target::User(user)) => ListTarget::User {
                user: UserSelector::try_from(Some(user)).map_err(|error| error.within("user"))?,
                organization: organization
                    .map(|organization| OrganizationSelector::try_from(Some(organization)))
                    .transpose()
                    .map_err(|error| error.within("organization"))?,
                resource_type: (!resource_type.is_empty())
                    .then(|| required("resource_type", resource_type, MAX_IDENTIFIER_CHARS))
                    .transpose()?,
            },
            Some(Target::Resource(resource)) => {
                if organization.is_some() {
                    return Err(ValidationError::new(
                        "organization",
                        "",
                        "the organization filter applies only when listing a user's access",
                    ));
                }
                if !resource_type.is_empty() {
                    return Err(ValidationError::new(
                        "resource_type",
                        &resource_type,
                        "the resource type filter applies only when listing a user's access",
                    ));
                }
                ListTarget::Resource(ResourceSelector::try_from(Some(resource)).map_err(|error| error.within("resource"))?)
            }
        };

        let page_size = match usize::try_from(page_size) {
            Err(_) => {
                return Err(ValidationError::new(
                    "page_size",
                    page_size.to_string(),
                    "must not be negative; 0 selects the default page size",
                ));
            }
            Ok(0) => DEFAULT_PAGE_SIZE,
            Ok(size) => size.min(MAX_PAGE_SIZE),
        };

        Ok(Self {
            target,
            page_size,
            page_token: (!page_token.is_empty()).then_some(page_token),
            consistency: Requirement::try_from(consistency).map_err(|error| error.within("consistency"))?,
        })
    }
}

/// Checks that `text` is not empty and at most `max_chars` characters long.
/// Longer text names nothing the directory accepts, so it is rejected before
/// any lookup work is spent on it.
fn required(field: &str, text: String, max_chars: usize) -> Result<String, ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new(field, "", "must not be empty"));
    }
    let length = text.chars().count();
    if length > max_chars {
        return Err(ValidationError::new(
            field,
            &text,
            format!("is {length} characters long; the maximum is {max_chars}"),
        ));
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user_id(id: &str) -> Option<proto::UserRef> {
        Some(proto::UserRef {
            kind: Some(proto::user_ref::Kind::Id(id.to_owned())),
        })
    }

    fn resource_id(id: &str) -> Option<proto::ResourceRef> {
        Some(proto::ResourceRef {
            kind: Some(proto::resource_ref::Kind::Id(id.to_owned())),
        })
    }

    fn check(user: &str, resource: &str, permission: &str) -> proto::CheckAccessRequest {
        proto::CheckAccessRequest {
            user: user_id(user),
            resource: resource_id(resource),
            permission: permission.to_owned(),
            consistency: None,
        }
    }

    #[test]
    fn missing_user_is_named() {
        let request = proto::CheckAccessRequest {
            user: None,
            ..check("", &ResourceId::generate().to_string(), "read")
        };
        let error = CheckRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "user");
    }

    #[test]
    fn malformed_id_is_named() {
        let request = check("not-an-id", &ResourceId::generate().to_string(), "read");
        let error = CheckRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "user.id");
    }

    #[test]
    fn empty_permission_is_named() {
        let request = check(&UserId::generate().to_string(), &ResourceId::generate().to_string(), "");
        let error = CheckRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "permission");
    }

    #[test]
    fn empty_key_parts_are_named() {
        let request = proto::CheckAccessRequest {
            resource: Some(proto::ResourceRef {
                kind: Some(proto::resource_ref::Kind::Key(proto::ResourceKey {
                    organization: Some(proto::OrganizationRef {
                        kind: Some(proto::organization_ref::Kind::Name("acme".to_owned())),
                    }),
                    resource_type: "mail.mailbox".to_owned(),
                    external_id: String::new(),
                })),
            }),
            ..check(&UserId::generate().to_string(), "", "read")
        };
        let error = CheckRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "resource.key.external_id");
    }

    #[test]
    fn overlong_text_is_rejected_with_limit() {
        let long_login = proto::CheckAccessRequest {
            user: Some(proto::UserRef {
                kind: Some(proto::user_ref::Kind::Login("a".repeat(MAX_LOGIN_CHARS + 1))),
            }),
            ..check("", &ResourceId::generate().to_string(), "read")
        };
        let error = CheckRequest::try_from(long_login).unwrap_err();
        assert_eq!(error.field, "user.login");
        assert!(error.reason.contains(&format!("maximum is {MAX_LOGIN_CHARS}")), "{error}");

        let long_permission = check(
            &UserId::generate().to_string(),
            &ResourceId::generate().to_string(),
            &"p".repeat(MAX_IDENTIFIER_CHARS + 1),
        );
        let error = CheckRequest::try_from(long_permission).unwrap_err();
        assert_eq!(error.field, "permission");

        let long_filter = proto::ListEffectiveAccessRequest {
            resource_type: "t".repeat(MAX_IDENTIFIER_CHARS + 1),
            ..list_for_user(0)
        };
        let error = ListRequest::try_from(long_filter).unwrap_err();
        assert_eq!(error.field, "resource_type");
    }

    #[test]
    fn text_at_limit_is_accepted() {
        let request = proto::CheckAccessRequest {
            user: Some(proto::UserRef {
                kind: Some(proto::user_ref::Kind::Login("a".repeat(MAX_LOGIN_CHARS))),
            }),
            ..check("", &ResourceId::generate().to_string(), "read")
        };
        assert!(CheckRequest::try_from(request).is_ok());
    }

    #[test]
    fn batch_error_names_check_position() {
        let good = check(&UserId::generate().to_string(), &ResourceId::generate().to_string(), "read");
        let bad = check(&UserId::generate().to_string(), "", "read");
        let request = proto::BatchCheckAccessRequest {
            checks: vec![good.clone(), good, bad],
            consistency: None,
        };
        let error = BatchCheckRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "checks[2].resource.id");
    }

    #[test]
    fn batch_over_limit_is_rejected() {
        let one = check(&UserId::generate().to_string(), &ResourceId::generate().to_string(), "read");
        let request = proto::BatchCheckAccessRequest {
            checks: vec![one; MAX_BATCH_CHECKS + 1],
            consistency: None,
        };
        let error = BatchCheckRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "checks");
    }

    #[test]
    fn batch_at_limit_is_accepted() {
        let one = check(&UserId::generate().to_string(), &ResourceId::generate().to_string(), "read");
        let request = proto::BatchCheckAccessRequest {
            checks: vec![one; MAX_BATCH_CHECKS],
            consistency: None,
        };
        assert!(BatchCheckRequest::try_from(request).is_ok());
    }

    fn list_for_user(page_size: i32) -> proto::ListEffectiveAccessRequest {
        proto::ListEffectiveAccessRequest {
            target: Some(proto::list_effective_access_request::Target::User(proto::UserRef {
                kind: Some(proto::user_ref::Kind::Login("ada".to_owned())),
            })),
            organization: None,
            resource_type: String::new(),
            page_size,
            page_token: String::new(),
            consistency: None,
        }
    }

    #[test]
    fn page_size_defaults_and_caps() {
        assert_eq!(ListRequest::try_from(list_for_user(0)).unwrap().page_size, DEFAULT_PAGE_SIZE);
        assert_eq!(ListRequest::try_from(list_for_user(5_000)).unwrap().page_size, MAX_PAGE_SIZE);
        assert_eq!(ListRequest::try_from(list_for_user(7)).unwrap().page_size, 7);
    }

    #[test]
    fn negative_page_size_is_rejected() {
        let error = ListRequest::try_from(list_for_user(-1)).unwrap_err();
        assert_eq!(error.field, "page_size");
    }

    #[test]
    fn resource_target_rejects_user_filters() {
        let request = proto::ListEffectiveAccessRequest {
            target: Some(proto::list_effective_access_request::Target::Resource(proto::ResourceRef {
                kind: Some(proto::resource_ref::Kind::Id(ResourceId::generate().to_string())),
            })),
            resource_type: "mail.mailbox".to_owned(),
            ..list_for_user(0)
        };
        let error = ListRequest::try_from(request).unwrap_err();
        assert_eq!(error.field, "resource_type");
    }
}
