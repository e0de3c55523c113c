//! Reads of the authorization layer: which organization an entity belongs
//! to, the organization role a team confers, and whether a user is a member
//! of a team. None of them writes.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use workteams_domain::{
    InvitationId, MemberRole, MemberStatus, OrganizationId, ResourceId, TeamId, UserId,
};

use super::{Store, lookup, rows};
use crate::StoreError;
use crate::schema::tables::{invitations, members, resources, team_memberships, teams};

impl Store {
    /// Returns the organization of each team among `team_ids` that exists.
    /// A missing team is absent from the map.
    pub async fn team_organizations(
        &self,
        team_ids: &[TeamId],
    ) -> Result<HashMap<TeamId, OrganizationId>, StoreError> {
        let ids: Vec<String> = team_ids.iter().map(ToString::to_string).collect();
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(lookup::IN_LIST_CHUNK) {
            let team_rows = teams::Entity::find()
                .filter(teams::Column::Id.is_in(chunk.iter().cloned()))
                .all(self.db())
                .await?;
            for row in team_rows {
                found.insert(
                    rows::parse_id(&row.id)?,
                    rows::parse_id(&row.organization_id)?,
                );
            }
        }
        Ok(found)
    }

    /// Returns the organization of each resource among `resource_ids` that
    /// exists. A missing resource is absent from the map.
    pub async fn resource_organizations(
        &self,
        resource_ids: &[ResourceId],
    ) -> Result<HashMap<ResourceId, OrganizationId>, StoreError> {
        let ids: Vec<String> = resource_ids.iter().map(ToString::to_string).collect();
        let mut found = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(lookup::IN_LIST_CHUNK) {
            let resource_rows = resources::Entity::find()
                .filter(resources::Column::Id.is_in(chunk.iter().cloned()))
                .all(self.db())
                .await?;
            for row in resource_rows {
                found.insert(
                    rows::parse_id(&row.id)?,
                    rows::parse_id(&row.organization_id)?,
                );
            }
        }
        Ok(found)
    }

    /// Returns the organization of an invitation and the e-mail address it
    /// was sent to, or `None` when no invitation has this id.
    pub async fn invitation_organization(
        &self,
        invitation_id: InvitationId,
    ) -> Result<Option<(OrganizationId, String)>, StoreError> {
        let row = invitations::Entity::find_by_id(invitation_id.to_string())
            .one(self.db())
            .await?;
        row.map(|row| Ok((rows::parse_id(&row.organization_id)?, row.email)))
            .transpose()
    }

    /// Lists the organizations in which a user is an active member, in no
    /// particular order.
    pub async fn active_organization_ids(
        &self,
        user_id: UserId,
    ) -> Result<Vec<OrganizationId>, StoreError> {
        let member_rows = members::Entity::find()
            .filter(members::Column::UserId.eq(user_id.to_string()))
            .filter(members::Column::Status.eq(MemberStatus::Active.as_str()))
            .all(self.db())
            .await?;
        member_rows
            .iter()
            .map(|row| rows::parse_id(&row.organization_id))
            .collect()
    }

    /// Returns the highest organization role that membership of a team
    /// confers: the role given to the team itself or to any of its
    /// ancestors, since members of a team also hold the roles of the teams
    /// above it. `None` when no team on the path carries a role.
    ///
    /// Errors: `NotFound` on `team_id`.
    pub async fn conferred_role(&self, team_id: TeamId) -> Result<Option<MemberRole>, StoreError> {
        let txn = self.begin_read().await?;

        let mut highest: Option<MemberRole> = None;
        let mut current = Some(lookup::team(&txn, team_id, "team_id").await?);
        let mut steps = 0_usize;
        while let Some(team) = current {
            if let Some(role) = team.organization_role
                && highest.is_none_or(|highest| role < highest)
            {
                // `MemberRole` orders from owner down, so a smaller role
                // allows more.
                highest = Some(role);
            }
            steps += 1;
            if steps > MAX_ANCESTORS {
                return Err(StoreError::corrupt(format!(
                    "team tree deeper than {MAX_ANCESTORS} levels at {team_id}"
                )));
            }
            current = match team.parent_team_id {
                Some(parent_id) => Some(lookup::team(&txn, parent_id, "parent_team_id").await?),
                None => None,
            };
        }
        txn.commit().await?;

        Ok(highest)
    }

    /// Returns whether a user is a direct member of a team through a
    /// membership that has not expired at `now`.
    pub async fn is_team_member(
        &self,
        team_id: TeamId,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let row = team_memberships::Entity::find_by_id((team_id.to_string(), user_id.to_string()))
            .one(self.db())
            .await?;
        match row {
            Some(row) => Ok(rows::membership(row)?.is_active_at(now)),
            None => Ok(false),
        }
    }
}

/// A bound on the walk up a team tree; the write rules prevent cycles, so
/// reaching it means corrupt data.
const MAX_ANCESTORS: usize = 10_000;
