//! Per-call authorization: what the caller may read and change.
//!
//! Every handler calls one check of [`Access`] after decoding its request
//! and before it writes or returns anything. A check first resolves the
//! organization of every id the request names (team, resource, invitation,
//! parent team, grant resource and subject team), requires them all to lie
//! in one organization, and then applies the caller's standing there:
//!
//! - owners, administrators and `AdminOrganization` service accounts manage
//!   everything in the organization. Only owners and `AdminOrganization`
//!   accounts may make, change, demote or remove owners;
//! - `ReadOrganization` and `ReadAll` service accounts read everything;
//! - collaborators read their own member record, the teams they are a direct
//!   member of and those teams' member lists;
//! - external members read their own member record and the teams they are a
//!   direct member of;
//! - team leaders, when the organization's `leaders_manage_members` setting
//!   is on, add and remove members of the teams they lead, unless the team
//!   or one of its ancestors carries an organization role.
//!
//! A user's role is their effective role ([`Store::effective_role`]): their
//! own member role raised by the roles of the teams they reach through
//! unexpired memberships. It is read from the database on every call, so a
//! change applies from the next call on. Suspended members and non-members
//! have no standing at all.
//!
//! Every refusal is PERMISSION_DENIED, also when an id does not exist, so a
//! caller cannot tell an id of another organization from an unknown one.
//! Callers allowed everywhere (no authentication, `AdminAll`, and `ReadAll`
//! for reads) get the store's own NOT_FOUND instead.

mod denial_log;
mod ids;
mod invitations;
mod members;
mod standing;
mod teams;
#[cfg(test)]
mod tests;

use chrono::Utc;
use workteams_domain::{
    Caller, MemberRole, MemberStatus, OrganizationId, ResourceId, Scope, TeamId,
};
use workteams_storage::{Store, StoreError};

use crate::context::CallContext;
use crate::error::ApiError;

pub use ids::Ids;
pub use standing::Standing;

use denial_log::log_denial;
use ids::NamedId;
use standing::{may_hand_out, service_standing};

/// A call the caller may not make.
#[derive(Debug, thiserror::Error)]
#[error("permission denied: {message}")]
pub struct Denied {
    /// The request field whose value the caller may not act on, if any.
    pub field: Option<String>,
    /// The rule the call breaks and what to do instead. Never contains a token.
    pub message: String,
}

/// The authorization checks of one call.
///
/// NOTE: the checks read roles and memberships before the store opens its
/// write transaction, so a role removed between the check and the write
/// does not stop that one write.
pub struct Access<'a> {
    store: &'a Store,
    call: &'a CallContext,
}

impl<'a> Access<'a> {
    pub fn new(store: &'a Store, call: &'a CallContext) -> Self {
        Self { store, call }
    }

    fn caller(&self) -> &Caller {
        &self.call.caller
    }

    /// Returns whether the caller may change everything, in every organization.
    fn is_global_admin(&self) -> bool {
        match self.caller() {
            Caller::Unauthenticated => true,
            Caller::Service(account) => account.scopes.contains(&Scope::AdminAll),
            Caller::User(_) => false,
        }
    }

    /// Returns whether the caller may read everything, in every organization.
    fn is_global_reader(&self) -> bool {
        self.is_global_admin()
            || matches!(self.caller(), Caller::Service(account) if account.scopes.contains(&Scope::ReadAll))
    }

    /// Requires an `AdminAll` service account (or no authentication), for
    /// what is shared by every organization: organizations and users.
    pub fn require_global_admin(&self, what: &str) -> Result<(), ApiError> {
        if self.is_global_admin() {
            return Ok(());
        }
        Err(self.deny(
            None,
            format!("{what} requires a service account with the `admin` scope"),
        ))
    }

    /// Requires a `ReadAll` or `AdminAll` service account (or no
    /// authentication), for reads across every organization such as the
    /// change stream and snapshots.
    pub fn require_global_read(&self, what: &str) -> Result<(), ApiError> {
        if self.is_global_reader() {
            return Ok(());
        }
        Err(self.deny(
            None,
            format!("{what} requires a service account with the `read` or `admin` scope"),
        ))
    }

    /// Returns the caller's standing in an organization.
    pub async fn standing(&self, organization_id: OrganizationId) -> Result<Standing, ApiError> {
        match self.caller() {
            Caller::Unauthenticated => Ok(Standing::Unrestricted),
            Caller::Service(account) => Ok(service_standing(&account.scopes, organization_id)),
            Caller::User(user_id) => {
                let role = self
                    .store
                    .effective_role(organization_id, *user_id, Utc::now())
                    .await?;
                Ok(match role {
                    Some((_, MemberStatus::Suspended)) | None => Standing::Outsider,
                    Some((MemberRole::Owner, MemberStatus::Active)) => Standing::Owner,
                    Some((MemberRole::Administrator, MemberStatus::Active)) => {
                        Standing::Administrator
                    }
                    Some((MemberRole::Collaborator, MemberStatus::Active)) => {
                        Standing::Collaborator(*user_id)
                    }
                    Some((MemberRole::External, MemberStatus::Active)) => {
                        Standing::External(*user_id)
                    }
                })
            }
        }
    }

    /// Resolves the one organization that every id in `ids` belongs to.
    ///
    /// Returns `None` when no id resolves and the caller may act
    /// everywhere, so the store reports the missing id. Denies when the ids
    /// span organizations, or when an id does not resolve for any other
    /// caller.
    async fn organization_of(&self, ids: &Ids) -> Result<Option<OrganizationId>, ApiError> {
        let team_ids: Vec<TeamId> = ids
            .named
            .iter()
            .filter_map(|(_, id)| match id {
                NamedId::Team(team_id) => Some(*team_id),
                _ => None,
            })
            .collect();
        let resource_ids: Vec<ResourceId> = ids
            .named
            .iter()
            .filter_map(|(_, id)| match id {
                NamedId::Resource(resource_id) => Some(*resource_id),
                _ => None,
            })
            .collect();
        let team_organizations = if team_ids.is_empty() {
            Default::default()
        } else {
            self.store.team_organizations(&team_ids).await?
        };
        let resource_organizations = if resource_ids.is_empty() {
            Default::default()
        } else {
            self.store.resource_organizations(&resource_ids).await?
        };

        let mut resolved: Vec<(&str, OrganizationId)> = Vec::with_capacity(ids.named.len());
        let mut texts: Vec<String> = Vec::with_capacity(ids.named.len());
        for (field, id) in &ids.named {
            let (text, organization) = match id {
                NamedId::Organization(organization_id) => {
                    (organization_id.to_string(), Some(*organization_id))
                }
                NamedId::Team(team_id) => (
                    team_id.to_string(),
                    team_organizations.get(team_id).copied(),
                ),
                NamedId::Resource(resource_id) => (
                    resource_id.to_string(),
                    resource_organizations.get(resource_id).copied(),
                ),
            };
            match organization {
                Some(organization_id) => resolved.push((field, organization_id)),
                None if self.is_global_reader() => {}
                None => return Err(self.deny_unknown(field, &text)),
            }
            texts.push(text);
        }

        let Some(&(first_field, first_organization)) = resolved.first() else {
            return Ok(None);
        };
        if let Some(position) = resolved
            .iter()
            .position(|(_, organization_id)| *organization_id != first_organization)
        {
            let (other_field, other_organization) = resolved[position];
            if !self.is_global_reader() {
                return Err(self.deny_unknown(other_field, &texts[position]));
            }
            return Err(self.deny(
                Some(other_field),
                format!(
                    "{first_field} is in organization {first_organization} but {other_field} is in \
                     organization {other_organization}; a request acts on one organization only"
                ),
            ));
        }
        Ok(Some(first_organization))
    }

    /// Resolves the organization of `ids` and the caller's standing there.
    /// No authentication skips the resolution, since everything is allowed
    /// and the store reports inconsistent ids itself.
    async fn resolve(&self, ids: &Ids) -> Result<(Option<OrganizationId>, Standing), ApiError> {
        if *self.caller() == Caller::Unauthenticated {
            return Ok((None, Standing::Unrestricted));
        }
        match self.organization_of(ids).await? {
            Some(organization_id) => {
                Ok((Some(organization_id), self.standing(organization_id).await?))
            }
            None if self.is_global_admin() => Ok((None, Standing::Unrestricted)),
            None if self.is_global_reader() => Ok((None, Standing::Reader)),
            None => Ok((None, Standing::Outsider)),
        }
    }

    /// Requires the caller to manage the one organization `ids` name, and
    /// returns their standing there.
    pub async fn manage(&self, ids: &Ids) -> Result<Standing, ApiError> {
        let (organization_id, standing) = self.resolve(ids).await?;
        if standing.can_manage() {
            return Ok(standing);
        }
        if standing == Standing::Outsider {
            return Err(self.deny_outsider(ids));
        }
        Err(self.deny_organization(organization_id, "change", "an owner or administrator"))
    }

    /// Requires the caller to read everything in the one organization `ids`
    /// name: owners, administrators and reading service accounts.
    pub async fn read(&self, ids: &Ids) -> Result<Standing, ApiError> {
        let (organization_id, standing) = self.resolve(ids).await?;
        if standing.can_read() {
            return Ok(standing);
        }
        if standing == Standing::Outsider {
            return Err(self.deny_outsider(ids));
        }
        Err(self.deny_organization(organization_id, "read", "an owner or administrator"))
    }

    /// Turns a store NOT_FOUND into a denial for callers who may not see
    /// everything, so a lookup by name does not reveal what exists in other
    /// organizations.
    pub fn hide_not_found<T>(
        &self,
        field: &str,
        result: Result<T, StoreError>,
    ) -> Result<T, ApiError> {
        match result {
            Err(StoreError::NotFound { .. }) if !self.is_global_reader() => {
                Err(self.deny_hidden(field))
            }
            other => Ok(other?),
        }
    }

    fn require_grantable(
        &self,
        standing: Standing,
        field: &str,
        role: MemberRole,
    ) -> Result<(), ApiError> {
        if may_hand_out(standing.grantable_role(), role) {
            return Ok(());
        }
        Err(self.deny(
            Some(field),
            format!(
                "the caller may not hand out the organization role {}; only owners may make owners",
                role.as_str()
            ),
        ))
    }

    /// Requires the caller to be allowed to hand out the role that
    /// membership of the team confers (its own role or an ancestor's).
    async fn require_conferred_grantable(
        &self,
        standing: Standing,
        field: &str,
        team_id: TeamId,
    ) -> Result<(), ApiError> {
        if standing == Standing::Unrestricted {
            return Ok(());
        }
        let conferred = match self.store.conferred_role(team_id).await {
            Ok(conferred) => conferred,
            // The caller manages this organization: the store reports the
            // missing team in its own words.
            Err(StoreError::NotFound { .. }) => return Ok(()),
            Err(error) => return Err(error.into()),
        };
        match conferred {
            Some(role) if !may_hand_out(standing.grantable_role(), role) => Err(self.deny(
                Some(field),
                format!(
                    "team {team_id} gives its members the organization role {}, which the caller \
                     may not hand out",
                    role.as_str()
                ),
            )),
            _ => Ok(()),
        }
    }

    fn deny_organization(
        &self,
        organization_id: Option<OrganizationId>,
        verb: &str,
        who: &str,
    ) -> ApiError {
        let organization = organization_id.map_or_else(
            || "this organization".to_owned(),
            |id| format!("organization {id}"),
        );
        self.deny(
            Some("organization_id"),
            format!("the caller may not {verb} {organization}; ask {who} of the organization"),
        )
    }

    /// Denies an id that names nothing in an organization the caller may
    /// access. Ids of other organizations and ids that name nothing get this
    /// same message, so a denial does not reveal what exists elsewhere.
    pub(super) fn deny_unknown(&self, field: &str, text: &str) -> ApiError {
        self.deny(
            Some(field),
            format!(
                "{field} {text} does not name anything in an organization the caller may \
                 access; use an id of your own organization"
            ),
        )
    }

    /// Denies a caller without standing in the organization `ids` name, with
    /// the message an unknown id gets.
    pub(super) fn deny_outsider(&self, ids: &Ids) -> ApiError {
        match ids.named.first() {
            Some((field, id)) => self.deny_unknown(field, &id.to_string()),
            None => self.deny_hidden("organization_id"),
        }
    }

    /// Denies a lookup, by id or by name, whose record the caller may not
    /// see, with the message a lookup that finds nothing gets.
    pub(super) fn deny_hidden(&self, field: &str) -> ApiError {
        self.deny(
            Some(field),
            format!("{field} does not name anything the caller may access"),
        )
    }

    /// Builds the denial and logs it, rate-limited, with the caller's actor
    /// name and the reason.
    fn deny(&self, field: Option<&str>, message: String) -> ApiError {
        log_denial(self.call, field, &message);
        ApiError::PermissionDenied(Denied {
            field: field.map(str::to_owned),
            message,
        })
    }
}
