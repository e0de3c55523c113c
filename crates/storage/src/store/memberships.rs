//! Team memberships.

use sea_orm::sea_query::Condition;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{AddTeamMembers, RemoveTeamMembers};
use workteams_domain::{Entity, Membership, Team, TeamId, UserId};

use super::time::{to_micros, truncate};
use super::write::{WriteTransaction, begin_write};
use super::{Store, lookup, rows};
use crate::schema::tables::{team_memberships, teams};
use crate::{
    Page, PageRequest, RequestContext, StoreError, TeamMemberEntry, TeamMembersQuery, UserTeamEntry, UserTeamsQuery,
    Written,
};

const TEAM_MEMBERS_KIND: &str = "team_members";
const USER_TEAMS_KIND: &str = "user_teams";

impl Store {
    /// Adds users to a team, all or nothing; adding an existing member again
    /// updates the expiry. Returns the memberships in request order.
    ///
    /// Errors: `Validation`; `NotFound` on `team_id` or
    /// `members[i].user_id`; `FailedPrecondition` on `members[i].user_id`
    /// (not a member of the team's organization).
    pub async fn add_team_members(
        &self,
        context: &RequestContext,
        command: AddTeamMembers,
    ) -> Result<Written<Vec<Membership>>, StoreError> {
        command.validate()?;
        let AddTeamMembers {
            team_id,
            members,
            added_by,
        } = command;

        let mut tx = begin_write!(self, context, "add_team_members");

        let team = lookup::team(tx.db(), team_id, "team_id").await?;
        let user_ids: Vec<UserId> = members.iter().map(|member| member.user_id).collect();
        let users = lookup::users_by_id(tx.db(), user_ids.iter().copied()).await?;
        let organization_members = lookup::members_among(tx.db(), team.organization_id, user_ids.iter().copied()).await?;
        for (index, user_id) in user_ids.iter().enumerate() {
            let field = format!("members[{index}].user_id");
            if !users.contains_key(user_id) {
                return Err(StoreError::not_found("user", field, user_id));
            }
            if !organization_members.contains_key(user_id) {
                return Err(StoreError::precondition(
                    field,
                    format!("user {user_id} is not a member of the team's organization; add them to it first"),
                ));
            }
        }

        let existing = lookup::memberships_among(tx.db(), team_id, user_ids.iter().copied()).await?;
        let mut result = Vec::with_capacity(members.len());
        for member in members {
            let expire_time = member.expire_time.map(truncate);
            let membership = match existing.get(&member.user_id) {
                Some(current) if current.expire_time == expire_time => current.clone(),
                Some(current) => {
                    let updated = Membership {
                        expire_time,
                        ..current.clone()
                    };
                    rows::membership_row(&updated).update(tx.db()).await?;
                    tx.updated(&Entity::Membership(current.clone()), Entity::Membership(updated.clone()));
                    updated
                }
                None => {
                    let membership = Membership {
                        team_id,
                        user_id: member.user_id,
                        organization_id: team.organization_id,
                        added_by,
                        add_time: tx.now(),
                        expire_time,
                    };
                    insert_membership(&mut tx, &membership).await?;
                    membership
                }
            };
            result.push(membership);
        }

        tx.commit(self, result).await
    }

    /// Removes users from a team; non-members are ignored, and a removed
    /// leader also loses the leadership.
    ///
    /// Errors: `Validation`; `NotFound` on `team_id`.
    pub async fn remove_team_members(
        &self,
        context: &RequestContext,
        command: RemoveTeamMembers,
    ) -> Result<Written<()>, StoreError> {
        command.validate()?;
        let RemoveTeamMembers { team_id, user_ids } = command;

        let mut tx = begin_write!(self, context, "remove_team_members");

        lookup::team(tx.db(), team_id, "team_id").await?;
        remove_memberships(&mut tx, team_id, &user_ids).await?;

        tx.commit(self, ()).await
    }

    /// Lists a team's memberships by (user id, team id), optionally with the
    /// descendant teams' members and with expired memberships.
    ///
    /// Errors: `NotFound` on `team_id`.
    pub async fn list_team_members(
        &self,
        query: &TeamMembersQuery,
        page: &PageRequest,
    ) -> Result<Page<TeamMemberEntry>, StoreError> {
        let TeamMembersQuery {
            team_id,
            include_descendants,
            include_expired,
        } = *query;
        let filter = format!("{team_id}|{include_descendants}|{include_expired}");
        let position = self.pages().position(page, TEAM_MEMBERS_KIND, &filter)?;
        lookup::team(self.db(), team_id, "team_id").await?;

        let mut team_ids = vec![team_id];
        if include_descendants {
            team_ids.extend(lookup::descendant_teams(self.db(), team_id).await?);
        }
        let team_ids: Vec<String> = team_ids.iter().map(ToString::to_string).collect();

        // Each chunk of team ids yields its first rows after the key, so the
        // merged and truncated rows are the first rows overall.
        let mut found = Vec::new();
        for chunk in team_ids.chunks(lookup::IN_LIST_CHUNK) {
            let mut select = team_memberships::Entity::find()
                .filter(team_memberships::Column::TeamId.is_in(chunk.iter().cloned()))
                .order_by_asc(team_memberships::Column::UserId)
                .order_by_asc(team_memberships::Column::TeamId);
            if !include_expired {
                select = select.filter(not_expired(to_micros(super::time::now())));
            }
            if let Some(after) = &position.after {
                select = select.filter(after_pair(after, team_memberships::Column::UserId, team_memberships::Column::TeamId)?);
            }
            let rows = select.limit(position.size as u64 + 1).all(self.db()).await?;
            found.extend(rows);
        }
        found.sort_by(|left, right| (&left.user_id, &left.team_id).cmp(&(&right.user_id, &right.team_id)));
        found.truncate(position.size + 1);

        let memberships = found.into_iter().map(rows::membership).collect::<Result<Vec<_>, _>>()?;
        let mut users = lookup::users_by_id(self.db(), memberships.iter().map(|membership| membership.user_id)).await?;
        let mut items = Vec::with_capacity(memberships.len());
        for membership in memberships {
            let user = users
                .get(&membership.user_id)
                .cloned()
                .ok_or_else(|| StoreError::corrupt(format!("membership of missing user {}", membership.user_id)))?;
            let via_team_id = (membership.team_id != team_id).then_some(membership.team_id);
            items.push(TeamMemberEntry {
                membership,
                user,
                via_team_id,
            });
        }
        users.clear();

        Ok(self.pages().page(TEAM_MEMBERS_KIND, &filter, position.size, items, |entry| {
            vec![entry.membership.user_id.to_string(), entry.membership.team_id.to_string()]
        }))
    }

    /// Lists a user's teams by team id.
    ///
    /// Errors: `NotFound` on `user_id`.
    pub async fn list_user_teams(
        &self,
        query: &UserTeamsQuery,
        page: &PageRequest,
    ) -> Result<Page<UserTeamEntry>, StoreError> {
        let UserTeamsQuery {
            user_id,
            organization_id,
            include_expired,
        } = *query;
        let filter = format!(
            "{user_id}|{}|{include_expired}",
            organization_id.map(|id| id.to_string()).unwrap_or_default()
        );
        let position = self.pages().position(page, USER_TEAMS_KIND, &filter)?;
        lookup::user(self.db(), user_id, "user_id").await?;

        let mut select = team_memberships::Entity::find()
            .filter(team_memberships::Column::UserId.eq(user_id.to_string()))
            .order_by_asc(team_memberships::Column::TeamId);
        if let Some(organization_id) = organization_id {
            select = select.filter(team_memberships::Column::OrganizationId.eq(organization_id.to_string()));
        }
        if !include_expired {
            select = select.filter(not_expired(to_micros(super::time::now())));
        }
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            select = select.filter(team_memberships::Column::TeamId.gt(after.clone()));
        }
        let found = select.limit(position.size as u64 + 1).all(self.db()).await?;
        let memberships = found.into_iter().map(rows::membership).collect::<Result<Vec<_>, _>>()?;

        let team_rows = teams::Entity::find()
            .filter(teams::Column::Id.is_in(memberships.iter().map(|membership| membership.team_id.to_string())))
            .all(self.db())
            .await?;
        let teams = lookup::teams_with_leaders(self.db(), team_rows).await?;
        let mut items = Vec::with_capacity(memberships.len());
        for membership in memberships {
            let team = teams
                .iter()
                .find(|team| team.id == membership.team_id)
                .cloned()
                .ok_or_else(|| StoreError::corrupt(format!("membership of missing team {}", membership.team_id)))?;
            items.push(UserTeamEntry { team, membership });
        }

        Ok(self.pages().page(USER_TEAMS_KIND, &filter, position.size, items, |entry| {
            vec![entry.team.id.to_string()]
        }))
    }
}

pub(crate) async fn insert_membership(tx: &mut WriteTransaction, membership: &Membership) -> Result<(), StoreError> {
    team_memberships::Entity::insert(rows::membership_row(membership))
        .exec_without_returning(tx.db())
        .await?;
    tx.created(Entity::Membership(membership.clone()));
    Ok(())
}

/// Deletes the memberships of `user_ids` in a team (ignoring non-members)
/// and their leaderships, recording each change.
pub(crate) async fn remove_memberships(
    tx: &mut WriteTransaction,
    team_id: TeamId,
    user_ids: &[UserId],
) -> Result<(), StoreError> {
    let existing = lookup::memberships_among(tx.db(), team_id, user_ids.iter().copied()).await?;
    if existing.is_empty() {
        return Ok(());
    }
    let mut removed: Vec<UserId> = existing.keys().copied().collect();
    removed.sort();
    let removed_text: Vec<String> = removed.iter().map(ToString::to_string).collect();

    let team = lookup::team(tx.db(), team_id, "team_id").await?;
    if super::members::delete_leader_rows(tx, team_id, &removed_text).await? {
        let led_by_others = Team {
            leader_user_ids: team
                .leader_user_ids
                .iter()
                .copied()
                .filter(|leader| !existing.contains_key(leader))
                .collect(),
            ..team.clone()
        };
        super::teams::save_team(tx, &team, led_by_others).await?;
    }

    for chunk in removed_text.chunks(lookup::IN_LIST_CHUNK) {
        team_memberships::Entity::delete_many()
            .filter(team_memberships::Column::TeamId.eq(team_id.to_string()))
            .filter(team_memberships::Column::UserId.is_in(chunk.iter().cloned()))
            .exec(tx.db())
            .await?;
    }
    for user_id in removed {
        if let Some(membership) = existing.get(&user_id) {
            tx.removed(&Entity::Membership(membership.clone()));
        }
    }
    Ok(())
}

/// Memberships without an expiry or expiring after `now_micros`.
fn not_expired(now_micros: i64) -> Condition {
    Condition::any()
        .add(team_memberships::Column::ExpireTimeUs.is_null())
        .add(team_memberships::Column::ExpireTimeUs.gt(now_micros))
}

/// Rows strictly after the key pair `after` in (first, second) order.
pub(crate) fn after_pair<C: ColumnTrait>(after: &[String], first: C, second: C) -> Result<Condition, StoreError> {
    let [first_value, second_value] = after else {
        return Err(workteams_domain::ValidationError::new(
            "page_token",
            "",
            "not a page token of this list; pass next_page_token exactly as returned",
        )
        .into());
    };
    Ok(Condition::any().add(first.gt(first_value.clone())).add(
        Condition::all()
            .add(ColumnTrait::eq(&first, first_value.clone()))
            .add(second.gt(second_value.clone())),
    ))
}
