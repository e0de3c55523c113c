//! Checks of calls on organizations, users and members.

use workteams_domain::command::MemberSpec;
use workteams_domain::{MemberRole, Organization, OrganizationId, User, UserId};
use workteams_storage::{Page, StoreError};

use super::{Access, Ids, Standing, may_hand_out};
use crate::error::ApiError;

impl Access<'_> {
    /// Requires the caller to have any standing in the organization, to read
    /// its own record.
    pub async fn read_organization_record(
        &self,
        organization: &Organization,
    ) -> Result<(), ApiError> {
        if self.may_see_organization(organization.id).await? {
            return Ok(());
        }
        Err(self.deny_hidden("id"))
    }

    async fn may_see_organization(
        &self,
        organization_id: OrganizationId,
    ) -> Result<bool, ApiError> {
        Ok(self.standing(organization_id).await? != Standing::Outsider)
    }

    /// Keeps the organizations of a page that the caller may see. The page
    /// may come back shorter than requested; its token still continues
    /// after the last organization the store read.
    pub async fn visible_organizations(
        &self,
        mut page: Page<Organization>,
    ) -> Result<Page<Organization>, ApiError> {
        if self.is_global_reader() {
            return Ok(page);
        }
        let mut visible = Vec::with_capacity(page.items.len());
        for organization in page.items {
            if self.may_see_organization(organization.id).await? {
                visible.push(organization);
            }
        }
        page.items = visible;
        Ok(page)
    }

    /// Requires the caller to be the user, to read the records of every
    /// organization the user is an active member of, or to read everything.
    pub async fn read_user(&self, user: &User) -> Result<(), ApiError> {
        if self.is_global_reader() || self.caller().user_id() == Some(&user.id) {
            return Ok(());
        }
        for organization_id in self.store.active_organization_ids(user.id).await? {
            if self.standing(organization_id).await?.can_read() {
                return Ok(());
            }
        }
        Err(self.deny_hidden("id"))
    }

    /// Requires the caller to manage the organization, and to be an owner
    /// for any member spec that makes an owner.
    pub async fn add_members(
        &self,
        organization_id: OrganizationId,
        members: &[(String, &MemberSpec)],
    ) -> Result<(), ApiError> {
        let standing = self
            .manage(&Ids::organization("organization_id", organization_id))
            .await?;
        for (field, spec) in members {
            self.require_grantable(standing, field, spec.role)?;
        }
        Ok(())
    }

    /// Requires the caller to manage the organization, and to be an owner to
    /// make an owner or to change, suspend or remove one.
    pub async fn change_member(
        &self,
        organization_id: OrganizationId,
        user_id: UserId,
        new_role: Option<MemberRole>,
    ) -> Result<(), ApiError> {
        let standing = self
            .manage(&Ids::organization("organization_id", organization_id))
            .await?;
        if let Some(role) = new_role {
            self.require_grantable(standing, "role", role)?;
        }
        if may_hand_out(standing.grantable_role(), MemberRole::Owner) {
            return Ok(());
        }
        // Not found is left to the store: the caller manages this
        // organization, so its member list is no secret to them.
        match self.store.get_member(organization_id, user_id).await {
            Ok(current) if current.member.role == MemberRole::Owner => Err(self.deny(
                Some("user_id"),
                format!("user {user_id} is an owner; only an owner may change or remove an owner"),
            )),
            Ok(_) | Err(StoreError::NotFound { .. }) => Ok(()),
            Err(error) => Err(error.into()),
        }
    }

    /// Requires the caller to read the organization's members, or to be the
    /// member asked for.
    pub async fn read_member(
        &self,
        organization_id: OrganizationId,
        user_id: UserId,
    ) -> Result<(), ApiError> {
        let ids = Ids::organization("organization_id", organization_id);
        let (_, standing) = self.resolve(&ids).await?;
        if standing.can_read() || standing.member_user_id() == Some(user_id) {
            return Ok(());
        }
        if standing == Standing::Outsider {
            return Err(self.deny_outsider(&ids));
        }
        Err(self.deny(
            Some("user_id"),
            format!(
                "the caller may not read member {user_id} of organization {organization_id}; members \
                 read their own record, and owners and administrators every member's"
            ),
        ))
    }
}
