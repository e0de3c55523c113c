//! Read requests into store lookups, filters and page requests.
//!
//! Page sizes and page tokens pass through unchanged: the store resolves
//! them (0 means 100, larger than 1,000 is lowered to 1,000, negative is
//! invalid) and rejects tampered tokens or tokens of another list or filter,
//! naming `page_size` or `page_token`.

use workteams_domain::command::{OrganizationLookup, ResourceLookup, UserLookup};
use workteams_domain::text::check_identifier;
use workteams_domain::{
    ConsistencyToken, InvitationId, OrganizationId, TeamId, UserId, ValidationError,
};
use workteams_proto::directory::v1 as proto;
use workteams_storage::{
    GrantFilter, InvitationFilter, PageRequest, ResourceFilter, TeamFilter, TeamMembersQuery,
    UserTeamsQuery,
};

use super::fields::{
    optional_id, optional_invitation_state, optional_subject, optional_text, required_id,
};
use super::{RequestFacts, TryIntoDomain};

/// An organization member to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberKey {
    pub organization_id: OrganizationId,
    pub user_id: UserId,
}

/// The start position and organization filter of a Watch stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchStart {
    /// `None` starts at the current head.
    pub from: Option<ConsistencyToken>,
    pub organization_id: Option<OrganizationId>,
}

fn required_text(field: &str, text: String, what: &str) -> Result<String, ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new(
            field,
            "",
            format!("{what} is required"),
        ));
    }
    Ok(text)
}

fn missing_lookup(fields: &str) -> ValidationError {
    ValidationError::new("lookup", "", format!("set one of {fields}"))
}

impl TryIntoDomain for proto::GetOrganizationRequest {
    type Domain = OrganizationLookup;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<OrganizationLookup, ValidationError> {
        use proto::get_organization_request::Lookup;

        let Self { lookup } = self;
        match lookup.ok_or_else(|| missing_lookup("id, name"))? {
            Lookup::Id(id) => required_id("id", &id).map(OrganizationLookup::Id),
            Lookup::Name(name) => {
                required_text("name", name, "an organization name").map(OrganizationLookup::Name)
            }
        }
    }
}

impl TryIntoDomain for proto::ListOrganizationsRequest {
    type Domain = PageRequest;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<PageRequest, ValidationError> {
        let Self {
            page_size,
            page_token,
        } = self;

        Ok(PageRequest {
            page_size,
            page_token,
        })
    }
}

impl TryIntoDomain for proto::GetUserRequest {
    type Domain = UserLookup;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<UserLookup, ValidationError> {
        use proto::get_user_request::Lookup;

        let Self { lookup } = self;
        match lookup.ok_or_else(|| missing_lookup("id, login, email"))? {
            Lookup::Id(id) => required_id("id", &id).map(UserLookup::Id),
            Lookup::Login(login) => required_text("login", login, "a login").map(UserLookup::Login),
            Lookup::Email(email) => {
                required_text("email", email, "an e-mail address").map(UserLookup::Email)
            }
        }
    }
}

impl TryIntoDomain for proto::ListUsersRequest {
    type Domain = PageRequest;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<PageRequest, ValidationError> {
        let Self {
            page_size,
            page_token,
        } = self;

        Ok(PageRequest {
            page_size,
            page_token,
        })
    }
}

impl TryIntoDomain for proto::GetOrganizationMemberRequest {
    type Domain = MemberKey;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<MemberKey, ValidationError> {
        let Self {
            organization_id,
            user_id,
        } = self;

        Ok(MemberKey {
            organization_id: required_id("organization_id", &organization_id)?,
            user_id: required_id("user_id", &user_id)?,
        })
    }
}

impl TryIntoDomain for proto::ListOrganizationMembersRequest {
    type Domain = (OrganizationId, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(OrganizationId, PageRequest), ValidationError> {
        let Self {
            organization_id,
            page_size,
            page_token,
        } = self;

        Ok((
            required_id("organization_id", &organization_id)?,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::GetTeamRequest {
    type Domain = TeamId;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<TeamId, ValidationError> {
        let Self { id } = self;

        required_id("id", &id)
    }
}

impl TryIntoDomain for proto::ListTeamsRequest {
    type Domain = (TeamFilter, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(TeamFilter, PageRequest), ValidationError> {
        let Self {
            organization_id,
            page_size,
            page_token,
            parent_team_id,
        } = self;

        let filter = TeamFilter {
            organization_id: required_id("organization_id", &organization_id)?,
            parent_team_id: optional_id("parent_team_id", &parent_team_id)?,
        };
        Ok((
            filter,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::ListTeamMembersRequest {
    type Domain = (TeamMembersQuery, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(TeamMembersQuery, PageRequest), ValidationError> {
        let Self {
            team_id,
            include_descendants,
            include_expired,
            page_size,
            page_token,
        } = self;

        let query = TeamMembersQuery {
            team_id: required_id("team_id", &team_id)?,
            include_descendants,
            include_expired,
        };
        Ok((
            query,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::ListUserTeamsRequest {
    type Domain = (UserTeamsQuery, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(UserTeamsQuery, PageRequest), ValidationError> {
        let Self {
            user_id,
            organization_id,
            include_expired,
            page_size,
            page_token,
        } = self;

        let query = UserTeamsQuery {
            user_id: required_id("user_id", &user_id)?,
            organization_id: optional_id("organization_id", &organization_id)?,
            include_expired,
        };
        Ok((
            query,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::GetResourceRequest {
    type Domain = ResourceLookup;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<ResourceLookup, ValidationError> {
        use proto::get_resource_request::Lookup;

        let Self { lookup } = self;
        match lookup.ok_or_else(|| missing_lookup("id, key"))? {
            Lookup::Id(id) => required_id("id", &id).map(ResourceLookup::Id),
            Lookup::Key(key) => {
                let proto::ResourceKey {
                    organization_id,
                    resource_type,
                    external_id,
                } = key;
                check_identifier("key.resource_type", &resource_type)?;
                Ok(ResourceLookup::Key {
                    organization_id: required_id("key.organization_id", &organization_id)?,
                    resource_type,
                    external_id: required_text("key.external_id", external_id, "an external id")?,
                })
            }
        }
    }
}

impl TryIntoDomain for proto::ListResourcesRequest {
    type Domain = (ResourceFilter, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(ResourceFilter, PageRequest), ValidationError> {
        let Self {
            organization_id,
            resource_type,
            parent_resource_id,
            page_size,
            page_token,
        } = self;

        let resource_type = optional_text(resource_type);
        if let Some(resource_type) = &resource_type {
            check_identifier("resource_type", resource_type)?;
        }
        let filter = ResourceFilter {
            organization_id: required_id("organization_id", &organization_id)?,
            resource_type,
            parent_resource_id: optional_id("parent_resource_id", &parent_resource_id)?,
        };
        Ok((
            filter,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::ListGrantsRequest {
    type Domain = (GrantFilter, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(GrantFilter, PageRequest), ValidationError> {
        let Self {
            organization_id,
            resource_id,
            subject,
            page_size,
            page_token,
        } = self;

        let filter = GrantFilter {
            organization_id: required_id("organization_id", &organization_id)?,
            resource_id: optional_id("resource_id", &resource_id)?,
            subject: optional_subject("subject", subject)?,
        };
        Ok((
            filter,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::GetInvitationRequest {
    type Domain = InvitationId;

    fn try_into_domain(self, _facts: &RequestFacts) -> Result<InvitationId, ValidationError> {
        let Self { id } = self;

        required_id("id", &id)
    }
}

impl TryIntoDomain for proto::ListInvitationsRequest {
    type Domain = (InvitationFilter, PageRequest);

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<(InvitationFilter, PageRequest), ValidationError> {
        let Self {
            organization_id,
            state,
            page_size,
            page_token,
        } = self;

        let filter = InvitationFilter {
            organization_id: required_id("organization_id", &organization_id)?,
            state: optional_invitation_state("state", state)?,
        };
        Ok((
            filter,
            PageRequest {
                page_size,
                page_token,
            },
        ))
    }
}

impl TryIntoDomain for proto::WatchRequest {
    type Domain = WatchStart;

    fn try_into_domain(self, facts: &RequestFacts) -> Result<WatchStart, ValidationError> {
        let Self {
            from_consistency_token,
            organization_id,
        } = self;

        let from = if from_consistency_token.is_empty() {
            None
        } else {
            Some(ConsistencyToken::decode_for(
                "from_consistency_token",
                &from_consistency_token,
                facts.epoch,
            )?)
        };
        Ok(WatchStart {
            from,
            organization_id: optional_id("organization_id", &organization_id)?,
        })
    }
}

impl TryIntoDomain for proto::ExportSnapshotRequest {
    type Domain = Option<OrganizationId>;

    fn try_into_domain(
        self,
        _facts: &RequestFacts,
    ) -> Result<Option<OrganizationId>, ValidationError> {
        let Self { organization_id } = self;

        optional_id("organization_id", &organization_id)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;
    use uuid::Uuid;
    use workteams_domain::Revision;

    use super::*;

    fn facts(epoch: Uuid) -> RequestFacts {
        RequestFacts {
            now: Utc::now(),
            actor_user_id: None,
            epoch,
        }
    }

    #[test]
    fn missing_lookup_named() {
        let request = proto::GetUserRequest { lookup: None };
        let error = request.try_into_domain(&facts(Uuid::now_v7())).unwrap_err();
        assert_eq!(error.field, "lookup");
    }

    #[test]
    fn watch_token_of_other_epoch_rejected() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(3)).encode();
        let request = proto::WatchRequest {
            from_consistency_token: token,
            organization_id: String::new(),
        };
        let error = request.try_into_domain(&facts(Uuid::now_v7())).unwrap_err();
        assert_eq!(error.field, "from_consistency_token");
    }

    #[test]
    fn watch_empty_token_starts_at_head() {
        let request = proto::WatchRequest::default();
        let start = request.try_into_domain(&facts(Uuid::now_v7())).unwrap();
        assert_eq!(start.from, None);
    }

    #[test]
    fn resource_key_type_checked() {
        let request = proto::GetResourceRequest {
            lookup: Some(proto::get_resource_request::Lookup::Key(
                proto::ResourceKey {
                    organization_id: OrganizationId::generate().to_string(),
                    resource_type: "Mail Box".to_owned(),
                    external_id: "a@example.com".to_owned(),
                },
            )),
        };
        let error = request.try_into_domain(&facts(Uuid::now_v7())).unwrap_err();
        assert_eq!(error.field, "key.resource_type");
    }
}
