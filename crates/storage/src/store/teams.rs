//! Teams, their leaders and their place in the team tree.

use std::collections::BTreeSet;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{
    Etag, GrantChange, GrantSpec, MAX_TEAM_DEPTH, NewTeam, SetTeamLeaders, SetTeamParent, TeamUpdate,
};
use workteams_domain::{Entity, Invitation, Membership, Subject, Team, TeamId, UserId, ValidationError};

use super::time::truncate;
use super::write::{WriteTransaction, begin_write};
use super::{Store, lookup, rows};
use crate::schema::tables::{grants, invitation_teams, team_leaders, team_memberships, teams};
use crate::{Page, PageRequest, RequestContext, StoreError, TeamFilter, Written};

const LIST_KIND: &str = "teams";

impl Store {
    /// Creates a team with its members, leaders and team grants in one
    /// transaction.
    ///
    /// Errors: `Validation` (also on `grants[i].permissions[j]` for
    /// permissions the resource's type lacks, and on `parent_team_id` when
    /// the team would be nested deeper than [`MAX_TEAM_DEPTH`]); `NotFound` on
    /// `organization_id`, `parent_team_id`, `members[i].user_id` or
    /// `grants[i].resource_id`; `AlreadyExists` on `name`;
    /// `FailedPrecondition` on `parent_team_id` (another organization),
    /// `members[i].user_id` (not an organization member) or
    /// `grants[i].resource_id` (another organization).
    pub async fn create_team(&self, context: &RequestContext, command: NewTeam) -> Result<Written<Team>, StoreError> {
        command.validate()?;
        let NewTeam {
            organization_id,
            name,
            description,
            color,
            parent_team_id,
            members,
            leader_user_ids,
            grants: team_grants,
            added_by,
        } = command;
        let registry = self.registry();

        let mut tx = begin_write!(self, context, "create_team");
        let now = tx.now();

        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        check_name_free(&tx, organization_id, &name, None).await?;
        if let Some(parent_id) = parent_team_id {
            let parent = lookup::team(tx.db(), parent_id, "parent_team_id").await?;
            if parent.organization_id != organization_id {
                return Err(StoreError::precondition(
                    "parent_team_id",
                    format!("team {parent_id} belongs to another organization"),
                ));
            }
            let depth = lookup::team_depth(tx.db(), parent_id).await? + 1;
            check_team_depth(parent_id, depth)?;
        }
        check_organization_members(&tx, organization_id, members.iter().map(|member| member.user_id), "members").await?;

        let mut leaders = leader_user_ids;
        leaders.sort();
        let team = Team {
            id: TeamId::generate(),
            organization_id,
            name,
            description,
            color,
            parent_team_id,
            leader_user_ids: leaders,
            organization_role: None,
            create_time: now,
            update_time: now,
            version: 1,
        };
        teams::Entity::insert(rows::team_row(&team)).exec_without_returning(tx.db()).await?;
        tx.created(Entity::Team(team.clone()));

        for member in members {
            let membership = Membership {
                team_id: team.id,
                user_id: member.user_id,
                organization_id,
                added_by,
                add_time: now,
                expire_time: member.expire_time.map(truncate),
            };
            super::memberships::insert_membership(&mut tx, &membership).await?;
        }
        insert_leader_rows(&tx, team.id, &team.leader_user_ids).await?;

        let grant_changes = team_grants
            .into_iter()
            .map(|grant| {
                GrantChange::Set(GrantSpec {
                    resource_id: grant.resource_id,
                    subject: Subject::Team(team.id),
                    permissions: grant.permissions,
                    no_access: false,
                    expire_time: grant.expire_time,
                    granted_by: added_by,
                })
            })
            .collect();
        super::grants::apply_grant_changes(
            &mut tx,
            &registry,
            grant_changes,
            |index| format!("grants[{index}]"),
            Some(organization_id),
        )
        .await?;

        tx.commit(self, team).await
    }

    /// Errors: `NotFound` on `id`.
    pub async fn get_team(&self, id: TeamId) -> Result<Team, StoreError> {
        lookup::team(self.db(), id, "id").await
    }

    /// Lists an organization's teams by id.
    ///
    /// Errors: `NotFound` on `organization_id` or `parent_team_id`.
    pub async fn list_teams(&self, filter: &TeamFilter, page: &PageRequest) -> Result<Page<Team>, StoreError> {
        let TeamFilter {
            organization_id,
            parent_team_id,
        } = *filter;
        let filter_text = format!(
            "{organization_id}|{}",
            parent_team_id.map(|id| id.to_string()).unwrap_or_default()
        );
        let position = self.pages().position(page, LIST_KIND, &filter_text)?;
        lookup::require_organization(self.db(), organization_id, "organization_id").await?;

        let mut select = teams::Entity::find()
            .filter(teams::Column::OrganizationId.eq(organization_id.to_string()))
            .order_by_asc(teams::Column::Id);
        if let Some(parent_id) = parent_team_id {
            lookup::team(self.db(), parent_id, "parent_team_id").await?;
            select = select.filter(teams::Column::ParentTeamId.eq(parent_id.to_string()));
        }
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            select = select.filter(teams::Column::Id.gt(after.clone()));
        }
        let found = select.limit(position.size as u64 + 1).all(self.db()).await?;
        let items = lookup::teams_with_leaders(self.db(), found).await?;

        Ok(self
            .pages()
            .page(LIST_KIND, &filter_text, position.size, items, |team| vec![team.id.to_string()]))
    }

    /// Errors: `Validation`; `NotFound` on `id`; `AlreadyExists` on `name`;
    /// `Aborted`.
    pub async fn update_team(&self, context: &RequestContext, command: TeamUpdate) -> Result<Written<Team>, StoreError> {
        command.validate()?;
        let TeamUpdate {
            id,
            name,
            description,
            color,
            etag,
        } = command;

        let mut tx = begin_write!(self, context, "update_team");

        let current = lookup::team(tx.db(), id, "id").await?;
        lookup::check_etag(etag, current.version, "team")?;

        let mut updated = current.clone();
        if let Some(name) = name {
            check_name_free(&tx, current.organization_id, &name, Some(id)).await?;
            updated.name = name;
        }
        if let Some(description) = description {
            updated.description = description;
        }
        if let Some(color) = color {
            updated.color = color;
        }
        if updated == current {
            return tx.commit(self, current).await;
        }

        let updated = save_team(&mut tx, &current, updated).await?;
        tx.commit(self, updated).await
    }

    /// Deletes a team with its memberships and the grants to it; its child
    /// teams move to its parent, and invitations into it lose it. The change
    /// log lists every removed and changed row.
    ///
    /// Errors: `NotFound` on `id`; `Aborted`.
    pub async fn delete_team(
        &self,
        context: &RequestContext,
        id: TeamId,
        etag: Option<Etag>,
    ) -> Result<Written<()>, StoreError> {
        let mut tx = begin_write!(self, context, "delete_team");

        let team = lookup::team(tx.db(), id, "id").await?;
        lookup::check_etag(etag, team.version, "team")?;
        let id_text = id.to_string();

        let children = teams::Entity::find()
            .filter(teams::Column::ParentTeamId.eq(id_text.clone()))
            .order_by_asc(teams::Column::Id)
            .all(tx.db())
            .await?;
        for child in lookup::teams_with_leaders(tx.db(), children).await? {
            let moved = Team {
                parent_team_id: team.parent_team_id,
                ..child.clone()
            };
            save_team(&mut tx, &child, moved).await?;
        }

        team_leaders::Entity::delete_many()
            .filter(team_leaders::Column::TeamId.eq(id_text.clone()))
            .exec(tx.db())
            .await?;
        let memberships = team_memberships::Entity::find()
            .filter(team_memberships::Column::TeamId.eq(id_text.clone()))
            .order_by_asc(team_memberships::Column::UserId)
            .all(tx.db())
            .await?;
        team_memberships::Entity::delete_many()
            .filter(team_memberships::Column::TeamId.eq(id_text.clone()))
            .exec(tx.db())
            .await?;
        for row in memberships {
            tx.removed(&Entity::Membership(rows::membership(row)?));
        }

        let team_grants = grants::Entity::find()
            .filter(grants::Column::SubjectKind.eq(rows::SUBJECT_TEAM))
            .filter(grants::Column::SubjectId.eq(id_text.clone()))
            .order_by_asc(grants::Column::ResourceId)
            .all(tx.db())
            .await?;
        for row in team_grants {
            let grant = rows::grant(row)?;
            super::grants::delete_grant(&mut tx, &grant).await?;
        }

        let invitation_ids: Vec<String> = invitation_teams::Entity::find()
            .filter(invitation_teams::Column::TeamId.eq(id_text.clone()))
            .order_by_asc(invitation_teams::Column::InvitationId)
            .all(tx.db())
            .await?
            .into_iter()
            .map(|row| row.invitation_id)
            .collect();
        let mut invitations_before = Vec::with_capacity(invitation_ids.len());
        for invitation_id in &invitation_ids {
            invitations_before.push(super::invitations::load_invitation(tx.db(), rows::parse_id(invitation_id)?, "id").await?);
        }
        invitation_teams::Entity::delete_many()
            .filter(invitation_teams::Column::TeamId.eq(id_text.clone()))
            .exec(tx.db())
            .await?;
        for before in invitations_before {
            let after = Invitation {
                team_ids: before.team_ids.iter().copied().filter(|team_id| *team_id != id).collect(),
                ..before.clone()
            };
            tx.updated(&Entity::Invitation(before), Entity::Invitation(after));
        }

        teams::Entity::delete_by_id(id_text).exec(tx.db()).await?;
        tx.removed(&Entity::Team(team));

        tx.commit(self, ()).await
    }

    /// Replaces the leader list.
    ///
    /// Errors: `Validation`; `NotFound` on `team_id`; `FailedPrecondition`
    /// on `leader_user_ids[i]` (not a member of the team); `Aborted`.
    pub async fn set_team_leaders(
        &self,
        context: &RequestContext,
        command: SetTeamLeaders,
    ) -> Result<Written<Team>, StoreError> {
        command.validate()?;
        let SetTeamLeaders {
            team_id,
            leader_user_ids,
            etag,
        } = command;

        let mut tx = begin_write!(self, context, "set_team_leaders");

        let current = lookup::team(tx.db(), team_id, "team_id").await?;
        lookup::check_etag(etag, current.version, "team")?;
        let memberships = lookup::memberships_among(tx.db(), team_id, leader_user_ids.iter().copied()).await?;
        for (index, user_id) in leader_user_ids.iter().enumerate() {
            if !memberships.contains_key(user_id) {
                return Err(StoreError::precondition(
                    format!("leader_user_ids[{index}]"),
                    format!("user {user_id} is not a member of the team; add them to the team first"),
                ));
            }
        }

        let wanted: BTreeSet<UserId> = leader_user_ids.into_iter().collect();
        let current_leaders: BTreeSet<UserId> = current.leader_user_ids.iter().copied().collect();
        if wanted == current_leaders {
            return tx.commit(self, current).await;
        }

        let removed: Vec<String> = current_leaders.difference(&wanted).map(ToString::to_string).collect();
        super::members::delete_leader_rows(&tx, team_id, &removed).await?;
        let added: Vec<UserId> = wanted.difference(&current_leaders).copied().collect();
        insert_leader_rows(&tx, team_id, &added).await?;

        let updated = Team {
            leader_user_ids: wanted.into_iter().collect(),
            ..current.clone()
        };
        let updated = save_team(&mut tx, &current, updated).await?;
        tx.commit(self, updated).await
    }

    /// Moves the team under another team, or to the top.
    ///
    /// Errors: `NotFound` on `team_id` or `parent_team_id`;
    /// `FailedPrecondition` on `parent_team_id` (another organization, or a
    /// cycle); `Validation` on `parent_team_id` when the team or one below
    /// it would be nested deeper than [`MAX_TEAM_DEPTH`]; `Aborted`.
    pub async fn set_team_parent(
        &self,
        context: &RequestContext,
        command: SetTeamParent,
    ) -> Result<Written<Team>, StoreError> {
        let SetTeamParent {
            team_id,
            parent_team_id,
            etag,
        } = command;

        let mut tx = begin_write!(self, context, "set_team_parent");

        let current = lookup::team(tx.db(), team_id, "team_id").await?;
        lookup::check_etag(etag, current.version, "team")?;
        if let Some(parent_id) = parent_team_id {
            let parent = lookup::team(tx.db(), parent_id, "parent_team_id").await?;
            if parent.organization_id != current.organization_id {
                return Err(StoreError::precondition(
                    "parent_team_id",
                    format!("team {parent_id} belongs to another organization"),
                ));
            }
            if lookup::team_is_within(tx.db(), parent_id, team_id).await? {
                return Err(StoreError::precondition(
                    "parent_team_id",
                    format!("team {parent_id} is the team itself or one of its descendants; the move would make a cycle"),
                ));
            }
            let subtree_levels = lookup::team_subtree_levels(tx.db(), team_id, MAX_TEAM_DEPTH).await?;
            let depth = lookup::team_depth(tx.db(), parent_id).await? + subtree_levels;
            check_team_depth(parent_id, depth)?;
        }
        if current.parent_team_id == parent_team_id {
            return tx.commit(self, current).await;
        }

        let updated = Team {
            parent_team_id,
            ..current.clone()
        };
        let updated = save_team(&mut tx, &current, updated).await?;
        tx.commit(self, updated).await
    }
}

/// Rejects a write that would leave a team `depth` levels deep, counted
/// from the top, under the parent `parent_id`.
fn check_team_depth(parent_id: TeamId, depth: usize) -> Result<(), StoreError> {
    if depth <= MAX_TEAM_DEPTH {
        return Ok(());
    }
    Err(ValidationError::new(
        "parent_team_id",
        parent_id.to_string(),
        format!(
            "teams would be nested {depth} levels deep under this parent; the maximum is {MAX_TEAM_DEPTH}, so choose a parent nearer the top"
        ),
    )
    .into())
}

/// Writes a changed team with the next version and records it with its
/// state `before`.
pub(crate) async fn save_team(tx: &mut WriteTransaction, before: &Team, mut team: Team) -> Result<Team, StoreError> {
    team.version += 1;
    team.update_time = tx.now();
    rows::team_row(&team).update(tx.db()).await?;
    tx.updated(&Entity::Team(before.clone()), Entity::Team(team.clone()));
    Ok(team)
}

async fn insert_leader_rows(tx: &WriteTransaction, team_id: TeamId, user_ids: &[UserId]) -> Result<(), StoreError> {
    if user_ids.is_empty() {
        return Ok(());
    }
    let rows: Vec<team_leaders::ActiveModel> = user_ids
        .iter()
        .map(|user_id| team_leaders::ActiveModel {
            team_id: Set(team_id.to_string()),
            user_id: Set(user_id.to_string()),
        })
        .collect();
    for chunk in rows.chunks(lookup::IN_LIST_CHUNK) {
        team_leaders::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(tx.db())
            .await?;
    }
    Ok(())
}

/// Fails with `AlreadyExists` on `name` when another team of the
/// organization has the name, ignoring case.
async fn check_name_free(
    tx: &WriteTransaction,
    organization_id: workteams_domain::OrganizationId,
    name: &str,
    except: Option<TeamId>,
) -> Result<(), StoreError> {
    let existing = teams::Entity::find()
        .filter(teams::Column::OrganizationId.eq(organization_id.to_string()))
        .filter(teams::Column::NameKey.eq(workteams_domain::text::fold(name)))
        .one(tx.db())
        .await?;
    match existing {
        Some(row) if Some(row.id.clone()) != except.map(|id| id.to_string()) => Err(StoreError::AlreadyExists {
            what: "team",
            field: "name".to_owned(),
            value: name.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// Fails unless every user exists (`NotFound`) and is a member of the
/// organization (`FailedPrecondition`), naming `{list}[i].user_id`.
async fn check_organization_members(
    tx: &WriteTransaction,
    organization_id: workteams_domain::OrganizationId,
    user_ids: impl Iterator<Item = UserId>,
    list: &str,
) -> Result<(), StoreError> {
    let user_ids: Vec<UserId> = user_ids.collect();
    let users = lookup::users_by_id(tx.db(), user_ids.iter().copied()).await?;
    let members = lookup::members_among(tx.db(), organization_id, user_ids.iter().copied()).await?;
    for (index, user_id) in user_ids.iter().enumerate() {
        let field = format!("{list}[{index}].user_id");
        if !users.contains_key(user_id) {
            return Err(StoreError::not_found("user", field, user_id));
        }
        if !members.contains_key(user_id) {
            return Err(StoreError::precondition(
                field,
                format!("user {user_id} is not a member of the organization; add them to it first"),
            ));
        }
    }
    Ok(())
}
