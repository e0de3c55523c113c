//! Organization roles given to teams, and the role lookups of the
//! authorization layer.

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, Statement};
use workteams_domain::command::SetTeamRole;
use workteams_domain::{MemberRole, MemberStatus, OrganizationId, Team, UserId};

use super::write::begin_write;
use super::{Store, lookup, rows, time};
use crate::schema::tables::teams;
use crate::{RequestContext, StoreError, Written};

/// The distinct roles of the teams a user reaches through unexpired
/// memberships in an organization: the teams they are a direct member of
/// and every ancestor of those. `UNION` drops repeated teams, which also
/// ends the walk should the tree ever contain a cycle.
const REACHED_TEAM_ROLES: &str = "\
WITH RECURSIVE reached (team_id) AS (
    SELECT team_id FROM team_memberships
    WHERE organization_id = $1 AND user_id = $2 AND (expire_time_us IS NULL OR expire_time_us > $3)
    UNION
    SELECT teams.parent_team_id FROM teams JOIN reached ON teams.id = reached.team_id
    WHERE teams.parent_team_id IS NOT NULL
)
SELECT DISTINCT teams.organization_role AS organization_role
FROM teams JOIN reached ON teams.id = reached.team_id
WHERE teams.organization_role IS NOT NULL";

/// The ids of the teams a user leads through an unexpired membership.
const LED_TEAM_IDS: &str = "\
SELECT team_leaders.team_id AS team_id
FROM team_leaders
JOIN team_memberships
    ON team_memberships.team_id = team_leaders.team_id AND team_memberships.user_id = team_leaders.user_id
WHERE team_memberships.organization_id = $1 AND team_leaders.user_id = $2
    AND (team_memberships.expire_time_us IS NULL OR team_memberships.expire_time_us > $3)
ORDER BY team_leaders.team_id";

impl Store {
    /// Gives a team an organization role (administrator or collaborator),
    /// or takes it away with `None`.
    ///
    /// Errors: `Validation` on `role` (owner or external); `NotFound` on
    /// `team_id`; `Aborted`.
    pub async fn set_team_role(
        &self,
        context: &RequestContext,
        command: SetTeamRole,
    ) -> Result<Written<Team>, StoreError> {
        command.validate()?;
        let SetTeamRole { team_id, role, etag } = command;

        let mut tx = begin_write!(self, context, "set_team_role");

        let current = lookup::team(tx.db(), team_id, "team_id").await?;
        lookup::check_etag(etag, current.version, "team")?;
        if current.organization_role == role {
            return tx.commit(self, current).await;
        }

        let updated = Team {
            organization_role: role,
            ..current.clone()
        };
        let updated = super::teams::save_team(&mut tx, &current, updated).await?;
        tx.commit(self, updated).await
    }

    /// Returns the role and status a user holds in an organization at
    /// `now`, or `None` when they are not a member. An active member holds the
    /// highest of their own role and the roles given to the teams they
    /// reach through memberships unexpired at `now` (the teams themselves
    /// and their ancestors). A suspended member keeps their own role, and
    /// the caller must deny them access.
    pub async fn effective_role(
        &self,
        organization_id: OrganizationId,
        user_id: UserId,
        now: DateTime<Utc>,
    ) -> Result<Option<(MemberRole, MemberStatus)>, StoreError> {
        let txn = self.begin_read().await?;

        let Some(member) = lookup::member(&txn, organization_id, user_id).await? else {
            txn.commit().await?;
            return Ok(None);
        };
        if member.status != MemberStatus::Active {
            txn.commit().await?;
            return Ok(Some((member.role, member.status)));
        }

        let team_roles = txn
            .query_all_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                REACHED_TEAM_ROLES,
                [
                    organization_id.to_string().into(),
                    user_id.to_string().into(),
                    time::to_micros(now).into(),
                ],
            ))
            .await?;
        txn.commit().await?;

        let mut role = member.role;
        for row in team_roles {
            let text: String = row.try_get("", "organization_role")?;
            let team_role = rows::role_from_text(&text)?;
            if privilege(team_role) > privilege(role) {
                role = team_role;
            }
        }
        Ok(Some((role, member.status)))
    }

    /// Lists, by team id, the teams of an organization that a user leads as
    /// an active member through a team membership that has not expired. A
    /// user who is not a member, or is suspended, leads none.
    pub async fn led_teams(&self, organization_id: OrganizationId, user_id: UserId) -> Result<Vec<Team>, StoreError> {
        let txn = self.begin_read().await?;

        let member = lookup::member(&txn, organization_id, user_id).await?;
        if !member.is_some_and(|member| member.status == MemberStatus::Active) {
            txn.commit().await?;
            return Ok(Vec::new());
        }

        let led = txn
            .query_all_raw(Statement::from_sql_and_values(
                txn.get_database_backend(),
                LED_TEAM_IDS,
                [
                    organization_id.to_string().into(),
                    user_id.to_string().into(),
                    time::to_micros(time::now()).into(),
                ],
            ))
            .await?;
        let team_ids = led
            .iter()
            .map(|row| row.try_get::<String>("", "team_id"))
            .collect::<Result<Vec<_>, _>>()?;
        let mut team_rows = Vec::with_capacity(team_ids.len());
        for chunk in team_ids.chunks(lookup::IN_LIST_CHUNK) {
            let found = teams::Entity::find()
                .filter(teams::Column::Id.is_in(chunk.iter().cloned()))
                .order_by_asc(teams::Column::Id)
                .all(&txn)
                .await?;
            team_rows.extend(found);
        }
        let led_teams = lookup::teams_with_leaders(&txn, team_rows).await?;
        txn.commit().await?;

        Ok(led_teams)
    }
}

/// Orders roles by what they allow, external lowest.
fn privilege(role: MemberRole) -> u8 {
    match role {
        MemberRole::External => 0,
        MemberRole::Collaborator => 1,
        MemberRole::Administrator => 2,
        MemberRole::Owner => 3,
    }
}
