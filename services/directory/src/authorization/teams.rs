//! Checks of calls on teams and their members.

use chrono::Utc;
use workteams_domain::command::{NewTeam, OrganizationLookup};
use workteams_domain::{MemberRole, OrganizationId, TeamId, UserId};
use workteams_storage::{TeamMembersQuery, UserTeamsQuery};

use super::{Access, Ids, Standing};
use crate::error::ApiError;

impl Access<'_> {
    /// Requires the caller to manage the organization of `ids`, and to be
    /// allowed to hand out the organization role that membership of `team`
    /// confers, for a team that gains members or a new parent.
    pub async fn manage_with_team_role(
        &self,
        ids: &Ids,
        field: &str,
        team_id: TeamId,
    ) -> Result<Standing, ApiError> {
        let standing = self.manage(ids).await?;
        self.require_conferred_grantable(standing, field, team_id)
            .await?;
        Ok(standing)
    }

    /// Requires the caller to manage the organization of a new team, its
    /// parent and its grants' resources, and to be allowed to hand out the
    /// role that the parent confers on the new team's members.
    pub async fn create_team(&self, team: &NewTeam) -> Result<(), ApiError> {
        let ids = Ids::of_new_team(team);
        match team.parent_team_id {
            Some(parent_id) => {
                self.manage_with_team_role(&ids, "parent_team_id", parent_id)
                    .await?
            }
            None => self.manage(&ids).await?,
        };
        Ok(())
    }

    /// Requires the caller to manage the organization of both teams, and to
    /// be allowed to hand out the role the new parent confers.
    pub async fn set_team_parent(
        &self,
        team_id: TeamId,
        parent_team_id: Option<TeamId>,
    ) -> Result<(), ApiError> {
        let ids = Ids::team("team_id", team_id).and_optional_team("parent_team_id", parent_team_id);
        match parent_team_id {
            Some(parent_id) => {
                self.manage_with_team_role(&ids, "parent_team_id", parent_id)
                    .await?
            }
            None => self.manage(&ids).await?,
        };
        Ok(())
    }

    /// Requires the caller to manage the team's organization and to be
    /// allowed to hand out `role`.
    pub async fn set_team_role(
        &self,
        team_id: TeamId,
        role: Option<MemberRole>,
    ) -> Result<(), ApiError> {
        let standing = self.manage(&Ids::team("team_id", team_id)).await?;
        if let Some(role) = role {
            self.require_grantable(standing, "role", role)?;
        }
        Ok(())
    }

    /// Requires the caller to manage the team's organization, or to lead the
    /// team while the organization lets leaders manage members and no role
    /// comes with the team. Applies to adding and to removing members.
    pub async fn change_team_members(&self, team_id: TeamId) -> Result<(), ApiError> {
        let (organization_id, standing) = self.resolve(&Ids::team("team_id", team_id)).await?;
        if standing.can_manage() {
            return self
                .require_conferred_grantable(standing, "team_id", team_id)
                .await;
        }

        let (Some(organization_id), Some(user_id)) = (organization_id, standing.member_user_id())
        else {
            return Err(self.deny_organization(
                organization_id,
                "change",
                "an owner, administrator or team leader",
            ));
        };
        if !self.leads(organization_id, team_id, user_id).await? {
            return Err(self.deny(
                Some("team_id"),
                format!(
                    "the caller may not change the members of team {team_id}; only owners, \
                     administrators and the team's leaders (when the organization lets leaders \
                     manage members) may"
                ),
            ));
        }
        if let Some(role) = self.store.conferred_role(team_id).await? {
            return Err(self.deny(
                Some("team_id"),
                format!(
                    "team {team_id} gives its members the organization role {}, directly or through \
                     a parent team; only owners and administrators may change its members",
                    role.as_str()
                ),
            ));
        }
        Ok(())
    }

    /// Returns whether a user leads a team and the organization lets leaders
    /// manage members.
    async fn leads(
        &self,
        organization_id: OrganizationId,
        team_id: TeamId,
        user_id: UserId,
    ) -> Result<bool, ApiError> {
        let organization = self
            .store
            .get_organization(&OrganizationLookup::Id(organization_id))
            .await?;
        if !organization.settings.leaders_manage_members {
            return Ok(false);
        }
        let led = self.store.led_teams(organization_id, user_id).await?;
        Ok(led.iter().any(|team| team.id == team_id))
    }

    /// Requires the caller to read the organization, or to be a direct,
    /// unexpired member of the team.
    pub async fn read_team(&self, team_id: TeamId) -> Result<(), ApiError> {
        let ids = Ids::team("id", team_id);
        let (_, standing) = self.resolve(&ids).await?;
        if standing.can_read() {
            return Ok(());
        }
        if standing == Standing::Outsider {
            return Err(self.deny_outsider(&ids));
        }
        if let Some(user_id) = standing.member_user_id()
            && self
                .store
                .is_team_member(team_id, user_id, Utc::now())
                .await?
        {
            return Ok(());
        }
        Err(self.deny(
            Some("id"),
            format!(
                "the caller may not read team {team_id}; members read the teams they belong to"
            ),
        ))
    }

    /// Requires the caller to read the organization, or, without
    /// descendants, to be a collaborator who is a direct member of the team
    /// or a leader of it.
    pub async fn read_team_members(&self, query: &TeamMembersQuery) -> Result<(), ApiError> {
        let team_id = query.team_id;
        let (organization_id, standing) = self.resolve(&Ids::team("team_id", team_id)).await?;
        if standing.can_read() {
            return Ok(());
        }
        if !query.include_descendants
            && let (Some(organization_id), Some(user_id)) =
                (organization_id, standing.member_user_id())
        {
            let is_collaborator_member = matches!(standing, Standing::Collaborator(_))
                && self
                    .store
                    .is_team_member(team_id, user_id, Utc::now())
                    .await?;
            if is_collaborator_member || self.leads_team(organization_id, team_id, user_id).await? {
                return Ok(());
            }
        }
        Err(self.deny(
            Some("team_id"),
            format!(
                "the caller may not list the members of team {team_id}; collaborators list the \
                 teams they belong to and leaders the teams they lead, without descendants"
            ),
        ))
    }

    async fn leads_team(
        &self,
        organization_id: OrganizationId,
        team_id: TeamId,
        user_id: UserId,
    ) -> Result<bool, ApiError> {
        let led = self.store.led_teams(organization_id, user_id).await?;
        Ok(led.iter().any(|team| team.id == team_id))
    }

    /// Requires the caller to be the user, or to read the organization
    /// filtered on (every organization without a filter).
    pub async fn read_user_teams(&self, query: &UserTeamsQuery) -> Result<(), ApiError> {
        if self.caller().user_id() == Some(&query.user_id) {
            return Ok(());
        }
        match query.organization_id {
            Some(organization_id) => {
                self.read(&Ids::organization("organization_id", organization_id))
                    .await?;
                Ok(())
            }
            None => self.require_global_read("listing another user's teams in every organization"),
        }
    }
}
