//! Reads shared by the operations, usable inside a write transaction or on
//! the pool.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder};
use workteams_domain::command::Etag;
use workteams_domain::{
    Member, Membership, Organization, OrganizationId, Resource, ResourceId, Team, TeamId, User, UserId,
};

use super::rows;
use crate::error::StoreError;
use crate::schema::tables::{members, organizations, resources, team_leaders, team_memberships, teams, users};

/// Rows per `IN (...)` list, well under SQLite's bound-parameter limit.
pub(crate) const IN_LIST_CHUNK: usize = 500;

/// Fails with `Aborted` unless the etag (when given) names `version`.
pub(crate) fn check_etag(etag: Option<Etag>, version: i64, what: &'static str) -> Result<(), StoreError> {
    match etag {
        Some(expected) if !expected.matches(version) => Err(StoreError::Aborted {
            what,
            current_etag: Etag::of_version(version),
        }),
        _ => Ok(()),
    }
}

pub(crate) async fn organization(
    db: &impl ConnectionTrait,
    id: OrganizationId,
    field: &str,
) -> Result<Organization, StoreError> {
    let row = organizations::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::not_found("organization", field, id))?;
    rows::organization(row)
}

/// Fails with `NotFound` unless the organization exists.
pub(crate) async fn require_organization(
    db: &impl ConnectionTrait,
    id: OrganizationId,
    field: &str,
) -> Result<(), StoreError> {
    let exists = organizations::Entity::find_by_id(id.to_string()).one(db).await?.is_some();
    if exists {
        Ok(())
    } else {
        Err(StoreError::not_found("organization", field, id))
    }
}

pub(crate) async fn user(db: &impl ConnectionTrait, id: UserId, field: &str) -> Result<User, StoreError> {
    let row = users::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::not_found("user", field, id))?;
    rows::user(row)
}

pub(crate) async fn user_by_login(db: &impl ConnectionTrait, login: &str) -> Result<Option<User>, StoreError> {
    let key = workteams_domain::text::fold(login);
    let row = users::Entity::find().filter(users::Column::LoginKey.eq(key)).one(db).await?;
    row.map(rows::user).transpose()
}

pub(crate) async fn user_by_email(db: &impl ConnectionTrait, email: &str) -> Result<Option<User>, StoreError> {
    let key = workteams_domain::text::fold(email);
    let row = users::Entity::find().filter(users::Column::EmailKey.eq(key)).one(db).await?;
    row.map(rows::user).transpose()
}

/// Users by id, for the ids that exist.
pub(crate) async fn users_by_id(
    db: &impl ConnectionTrait,
    ids: impl IntoIterator<Item = UserId>,
) -> Result<HashMap<UserId, User>, StoreError> {
    let ids: Vec<String> = ids.into_iter().map(|id| id.to_string()).collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows = users::Entity::find()
            .filter(users::Column::Id.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for row in rows {
            let user = rows::user(row)?;
            found.insert(user.id, user);
        }
    }
    Ok(found)
}

pub(crate) async fn member(
    db: &impl ConnectionTrait,
    organization_id: OrganizationId,
    user_id: UserId,
) -> Result<Option<Member>, StoreError> {
    let row = members::Entity::find_by_id((organization_id.to_string(), user_id.to_string()))
        .one(db)
        .await?;
    row.map(rows::member).transpose()
}

/// Members of an organization among `user_ids`, by user id.
pub(crate) async fn members_among(
    db: &impl ConnectionTrait,
    organization_id: OrganizationId,
    user_ids: impl IntoIterator<Item = UserId>,
) -> Result<HashMap<UserId, Member>, StoreError> {
    let ids: Vec<String> = user_ids.into_iter().map(|id| id.to_string()).collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows = members::Entity::find()
            .filter(members::Column::OrganizationId.eq(organization_id.to_string()))
            .filter(members::Column::UserId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for row in rows {
            let member = rows::member(row)?;
            found.insert(member.user_id, member);
        }
    }
    Ok(found)
}

pub(crate) async fn team_leaders(db: &impl ConnectionTrait, team_id: TeamId) -> Result<Vec<UserId>, StoreError> {
    let rows = team_leaders::Entity::find()
        .filter(team_leaders::Column::TeamId.eq(team_id.to_string()))
        .order_by_asc(team_leaders::Column::UserId)
        .all(db)
        .await?;
    rows.iter().map(|row| rows::parse_id(&row.user_id)).collect()
}

pub(crate) async fn team(db: &impl ConnectionTrait, id: TeamId, field: &str) -> Result<Team, StoreError> {
    let row = teams::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::not_found("team", field, id))?;
    let leaders = team_leaders(db, id).await?;
    rows::team(row, leaders)
}

/// Builds teams from rows, reading all their leaders in a few queries.
pub(crate) async fn teams_with_leaders(
    db: &impl ConnectionTrait,
    team_rows: Vec<teams::Model>,
) -> Result<Vec<Team>, StoreError> {
    let ids: Vec<String> = team_rows.iter().map(|row| row.id.clone()).collect();
    let mut leaders: HashMap<String, Vec<UserId>> = HashMap::new();
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows = team_leaders::Entity::find()
            .filter(team_leaders::Column::TeamId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for row in rows {
            leaders.entry(row.team_id).or_default().push(rows::parse_id(&row.user_id)?);
        }
    }
    team_rows
        .into_iter()
        .map(|row| {
            let team_leaders = leaders.remove(&row.id).unwrap_or_default();
            rows::team(row, team_leaders)
        })
        .collect()
}

pub(crate) async fn membership(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    user_id: UserId,
) -> Result<Option<Membership>, StoreError> {
    let row = team_memberships::Entity::find_by_id((team_id.to_string(), user_id.to_string()))
        .one(db)
        .await?;
    row.map(rows::membership).transpose()
}

/// Memberships of a team among `user_ids`, by user id.
pub(crate) async fn memberships_among(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    user_ids: impl IntoIterator<Item = UserId>,
) -> Result<HashMap<UserId, Membership>, StoreError> {
    let ids: Vec<String> = user_ids.into_iter().map(|id| id.to_string()).collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(IN_LIST_CHUNK) {
        let rows = team_memberships::Entity::find()
            .filter(team_memberships::Column::TeamId.eq(team_id.to_string()))
            .filter(team_memberships::Column::UserId.is_in(chunk.iter().cloned()))
            .all(db)
            .await?;
        for row in rows {
            let membership = rows::membership(row)?;
            found.insert(membership.user_id, membership);
        }
    }
    Ok(found)
}

pub(crate) async fn resource(db: &impl ConnectionTrait, id: ResourceId, field: &str) -> Result<Resource, StoreError> {
    let row = resources::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::not_found("resource", field, id))?;
    rows::resource(row)
}

/// The resource with the given external-id key (already folded when the
/// type compares ignoring case).
pub(crate) async fn resource_by_key(
    db: &impl ConnectionTrait,
    organization_id: OrganizationId,
    resource_type: &str,
    external_id_key: &str,
) -> Result<Option<Resource>, StoreError> {
    let row = resources::Entity::find()
        .filter(resources::Column::OrganizationId.eq(organization_id.to_string()))
        .filter(resources::Column::ResourceType.eq(resource_type))
        .filter(resources::Column::ExternalIdKey.eq(external_id_key))
        .one(db)
        .await?;
    row.map(rows::resource).transpose()
}

/// Whether a team is `ancestor` or lies below it, walking up from `team_id`.
pub(crate) async fn team_is_within(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    ancestor: TeamId,
) -> Result<bool, StoreError> {
    let mut current = Some(team_id.to_string());
    let ancestor = ancestor.to_string();
    let mut steps = 0_usize;
    while let Some(id) = current {
        if id == ancestor {
            return Ok(true);
        }
        steps += 1;
        if steps > MAX_TREE_DEPTH {
            return Err(StoreError::corrupt(format!("team tree deeper than {MAX_TREE_DEPTH} levels at {id}")));
        }
        current = teams::Entity::find_by_id(id).one(db).await?.and_then(|row| row.parent_team_id);
    }
    Ok(false)
}

/// Whether a resource is `ancestor` or lies below it, walking up from
/// `resource_id`.
pub(crate) async fn resource_is_within(
    db: &impl ConnectionTrait,
    resource_id: ResourceId,
    ancestor: ResourceId,
) -> Result<bool, StoreError> {
    let mut current = Some(resource_id.to_string());
    let ancestor = ancestor.to_string();
    let mut steps = 0_usize;
    while let Some(id) = current {
        if id == ancestor {
            return Ok(true);
        }
        steps += 1;
        if steps > MAX_TREE_DEPTH {
            return Err(StoreError::corrupt(format!("resource tree deeper than {MAX_TREE_DEPTH} levels at {id}")));
        }
        current = resources::Entity::find_by_id(id).one(db).await?.and_then(|row| row.parent_resource_id);
    }
    Ok(false)
}

/// A bound on tree walks; the write rules prevent cycles, so reaching it
/// means corrupt data.
const MAX_TREE_DEPTH: usize = 10_000;

/// Counts the teams on the path from `team_id` to the top, itself included:
/// 1 for a top-level team.
pub(crate) async fn team_depth(db: &impl ConnectionTrait, team_id: TeamId) -> Result<usize, StoreError> {
    let mut current = Some(team_id.to_string());
    let mut depth = 0_usize;
    while let Some(id) = current {
        depth += 1;
        if depth > MAX_TREE_DEPTH {
            return Err(StoreError::corrupt(format!("team tree deeper than {MAX_TREE_DEPTH} levels at {id}")));
        }
        current = teams::Entity::find_by_id(id).one(db).await?.and_then(|row| row.parent_team_id);
    }
    Ok(depth)
}

/// Counts the levels of the subtree under `team_id`, itself included: 1 for
/// a team without children. Counting stops once it passes `max_levels`,
/// because the caller only needs to know the subtree is too deep.
pub(crate) async fn team_subtree_levels(
    db: &impl ConnectionTrait,
    team_id: TeamId,
    max_levels: usize,
) -> Result<usize, StoreError> {
    let mut levels = 0_usize;
    let mut frontier = vec![team_id.to_string()];
    while !frontier.is_empty() && levels <= max_levels {
        levels += 1;
        let mut next = Vec::new();
        for chunk in frontier.chunks(IN_LIST_CHUNK) {
            let children = teams::Entity::find()
                .filter(teams::Column::ParentTeamId.is_in(chunk.iter().cloned()))
                .all(db)
                .await?;
            next.extend(children.into_iter().map(|row| row.id));
        }
        frontier = next;
    }
    Ok(levels)
}

/// The ids of a team's descendants (not the team itself), breadth first.
pub(crate) async fn descendant_teams(db: &impl ConnectionTrait, team_id: TeamId) -> Result<Vec<TeamId>, StoreError> {
    let mut descendants = Vec::new();
    let mut frontier = vec![team_id.to_string()];
    while !frontier.is_empty() {
        let mut next = Vec::new();
        for chunk in frontier.chunks(IN_LIST_CHUNK) {
            let children = teams::Entity::find()
                .filter(teams::Column::ParentTeamId.is_in(chunk.iter().cloned()))
                .all(db)
                .await?;
            next.extend(children.into_iter().map(|row| row.id));
        }
        if descendants.len() + next.len() > MAX_TREE_DEPTH * 10 {
            return Err(StoreError::corrupt("team tree too large or cyclic"));
        }
        for id in &next {
            descendants.push(rows::parse_id(id)?);
        }
        frontier = next;
    }
    Ok(descendants)
}
