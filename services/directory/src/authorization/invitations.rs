//! Checks of calls on invitations.

use workteams_domain::command::UserLookup;
use workteams_domain::{Caller, InvitationId, OrganizationId, TeamId};

use super::{Access, Ids};
use crate::error::ApiError;

impl Access<'_> {
    /// Requires the caller to manage the organization and to be allowed to
    /// hand out the roles of the teams an invitation adds its invitee to.
    pub async fn create_invitation(
        &self,
        organization_id: OrganizationId,
        team_ids: &[TeamId],
    ) -> Result<(), ApiError> {
        let mut ids = Ids::organization("organization_id", organization_id);
        for (index, team_id) in team_ids.iter().enumerate() {
            ids = ids.and_team(&format!("team_ids[{index}]"), *team_id);
        }
        let standing = self.manage(&ids).await?;
        for (index, team_id) in team_ids.iter().enumerate() {
            self.require_conferred_grantable(standing, &format!("team_ids[{index}]"), *team_id)
                .await?;
        }
        Ok(())
    }

    /// Requires the caller to read the invitation's organization.
    pub async fn read_invitation(&self, invitation_id: InvitationId) -> Result<(), ApiError> {
        let ids = self.invitation_ids(invitation_id).await?;
        self.read(&ids).await?;
        Ok(())
    }

    /// Requires the caller to manage the invitation's organization.
    pub async fn revoke_invitation(&self, invitation_id: InvitationId) -> Result<(), ApiError> {
        let ids = self.invitation_ids(invitation_id).await?;
        self.manage(&ids).await?;
        Ok(())
    }

    /// Requires the caller to manage the invitation's organization (a
    /// service acting for the invitee), or to be the user with the
    /// invitation's e-mail address.
    pub async fn accept_invitation(&self, invitation_id: InvitationId) -> Result<(), ApiError> {
        if *self.caller() == Caller::Unauthenticated {
            return Ok(());
        }
        let Some((organization_id, email)) =
            self.store.invitation_organization(invitation_id).await?
        else {
            return self.unknown_invitation(invitation_id);
        };
        if let Some(user_id) = self.caller().user_id() {
            let user = self.store.get_user(&UserLookup::Id(*user_id)).await?;
            let is_invitee = user.email.as_deref().is_some_and(|address| {
                workteams_domain::text::fold(address) == workteams_domain::text::fold(&email)
            });
            if is_invitee {
                return Ok(());
            }
        }
        self.manage(&Ids::organization("id", organization_id))
            .await?;
        Ok(())
    }

    /// Returns the invitation's organization as ids to check. A missing
    /// invitation gives no ids when the caller may see everything (the
    /// store then reports it) and is denied otherwise.
    async fn invitation_ids(&self, invitation_id: InvitationId) -> Result<Ids, ApiError> {
        if *self.caller() == Caller::Unauthenticated {
            return Ok(Ids::default());
        }
        match self.store.invitation_organization(invitation_id).await? {
            Some((organization_id, _)) => Ok(Ids::organization("id", organization_id)),
            None => self
                .unknown_invitation(invitation_id)
                .map(|()| Ids::default()),
        }
    }

    fn unknown_invitation(&self, invitation_id: InvitationId) -> Result<(), ApiError> {
        if self.is_global_reader() {
            return Ok(());
        }
        Err(self.deny(
            Some("id"),
            format!("id {invitation_id} does not name an invitation the caller may access"),
        ))
    }
}
