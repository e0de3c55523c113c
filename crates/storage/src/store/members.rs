//! Organization members.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{BatchAddMembers, MemberSpec, MemberUpdate, NewMember};
use workteams_domain::{Entity, Member, MemberRole, MemberStatus, OrganizationId, UserId};

use super::write::{WriteTransaction, begin_write};
use super::{Store, lookup, rows};
use crate::schema::tables::{grants, members, team_leaders, team_memberships};
use crate::{MemberWithUser, Page, PageRequest, RequestContext, StoreError, Written};

const LIST_KIND: &str = "members";

impl Store {
    /// Errors: `NotFound` on `organization_id` or `user_id`;
    /// `AlreadyExists` on `user_id` when the user is already a member.
    pub async fn add_member(
        &self,
        context: &RequestContext,
        command: NewMember,
    ) -> Result<Written<MemberWithUser>, StoreError> {
        let NewMember {
            organization_id,
            member: spec,
        } = command;

        let mut tx = begin_write!(self, context, "add_member");

        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        let user = lookup::user(tx.db(), spec.user_id, "user_id").await?;
        if lookup::member(tx.db(), organization_id, spec.user_id).await?.is_some() {
            return Err(StoreError::AlreadyExists {
                what: "organization member",
                field: "user_id".to_owned(),
                value: spec.user_id.to_string(),
            });
        }
        let member = insert_member(&mut tx, organization_id, &spec).await?;

        tx.commit(self, MemberWithUser { member, user }).await
    }

    /// Adds members, or sets the role and status of existing ones, in
    /// request order.
    ///
    /// Errors: `Validation`; `NotFound` on `organization_id` or
    /// `members[i].user_id`; `FailedPrecondition` on `members[i].role` or
    /// `members[i].status` when the batch would leave the organization
    /// without an active owner.
    pub async fn batch_add_members(
        &self,
        context: &RequestContext,
        command: BatchAddMembers,
    ) -> Result<Written<Vec<MemberWithUser>>, StoreError> {
        command.validate()?;
        let BatchAddMembers {
            organization_id,
            members: specs,
        } = command;

        let mut tx = begin_write!(self, context, "batch_add_members");

        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        let users = lookup::users_by_id(tx.db(), specs.iter().map(|spec| spec.user_id)).await?;
        let existing = lookup::members_among(tx.db(), organization_id, specs.iter().map(|spec| spec.user_id)).await?;

        let mut result = Vec::with_capacity(specs.len());
        let mut first_lost_owner = None;
        for (index, spec) in specs.iter().enumerate() {
            let user = users
                .get(&spec.user_id)
                .cloned()
                .ok_or_else(|| StoreError::not_found("user", format!("members[{index}].user_id"), spec.user_id))?;
            let member = match existing.get(&spec.user_id) {
                Some(current) => {
                    let updated = set_role_and_status(&mut tx, current, Some(spec.role), Some(spec.status)).await?;
                    if first_lost_owner.is_none()
                        && let Some(field) = lost_ownership_field(current, &updated)
                    {
                        first_lost_owner = Some((format!("members[{index}].{field}"), updated.user_id));
                    }
                    updated
                }
                None => insert_member(&mut tx, organization_id, spec).await?,
            };
            result.push(MemberWithUser { member, user });
        }

        // Counted after the writes, so an owner added or promoted in the
        // same batch keeps the organization owned.
        if let Some((field, user_id)) = first_lost_owner {
            check_owner_remains(&tx, organization_id, field, user_id).await?;
        }

        tx.commit(self, result).await
    }

    /// Errors: `NotFound` on `user_id` (not a member) or `organization_id`.
    pub async fn get_member(
        &self,
        organization_id: OrganizationId,
        user_id: UserId,
    ) -> Result<MemberWithUser, StoreError> {
        let Some(member) = lookup::member(self.db(), organization_id, user_id).await? else {
            lookup::require_organization(self.db(), organization_id, "organization_id").await?;
            return Err(StoreError::not_found("organization member", "user_id", user_id));
        };
        let user = lookup::user(self.db(), user_id, "user_id").await?;
        Ok(MemberWithUser { member, user })
    }

    /// Errors: `NotFound` on `user_id`; `Aborted`. `FailedPrecondition` on
    /// `role` or `status` when the update demotes or suspends the
    /// organization's last active owner.
    pub async fn update_member(
        &self,
        context: &RequestContext,
        command: MemberUpdate,
    ) -> Result<Written<MemberWithUser>, StoreError> {
        let MemberUpdate {
            organization_id,
            user_id,
            role,
            status,
            etag,
        } = command;

        let mut tx = begin_write!(self, context, "update_member");

        let current = lookup::member(tx.db(), organization_id, user_id)
            .await?
            .ok_or_else(|| StoreError::not_found("organization member", "user_id", user_id))?;
        lookup::check_etag(etag, current.version, "organization member")?;
        let user = lookup::user(tx.db(), user_id, "user_id").await?;
        let member = set_role_and_status(&mut tx, &current, role, status).await?;
        if let Some(field) = lost_ownership_field(&current, &member) {
            check_owner_remains(&tx, organization_id, field.to_owned(), user_id).await?;
        }

        tx.commit(self, MemberWithUser { member, user }).await
    }

    /// Removes the member with their team memberships, leaderships and
    /// individual grants in the organization; the change log lists each.
    ///
    /// Errors: `NotFound` on `user_id` (not a member); `FailedPrecondition`
    /// on `user_id` when the member is the organization's last active owner.
    pub async fn remove_member(
        &self,
        context: &RequestContext,
        organization_id: OrganizationId,
        user_id: UserId,
    ) -> Result<Written<()>, StoreError> {
        let mut tx = begin_write!(self, context, "remove_member");

        let member = lookup::member(tx.db(), organization_id, user_id)
            .await?
            .ok_or_else(|| StoreError::not_found("organization member", "user_id", user_id))?;
        if is_active_owner(&member) && active_owner_count(&tx, organization_id).await? <= 1 {
            return Err(last_owner_error("user_id".to_owned(), user_id, "removed"));
        }

        let team_ids: Vec<String> = team_memberships::Entity::find()
            .filter(team_memberships::Column::OrganizationId.eq(organization_id.to_string()))
            .filter(team_memberships::Column::UserId.eq(user_id.to_string()))
            .order_by_asc(team_memberships::Column::TeamId)
            .all(tx.db())
            .await?
            .into_iter()
            .map(|row| row.team_id)
            .collect();
        for team_id in &team_ids {
            super::memberships::remove_memberships(&mut tx, rows::parse_id(team_id)?, &[user_id]).await?;
        }

        let individual_grants = grants::Entity::find()
            .filter(grants::Column::OrganizationId.eq(organization_id.to_string()))
            .filter(grants::Column::SubjectKind.eq(rows::SUBJECT_USER))
            .filter(grants::Column::SubjectId.eq(user_id.to_string()))
            .order_by_asc(grants::Column::ResourceId)
            .all(tx.db())
            .await?;
        for row in individual_grants {
            let grant = rows::grant(row)?;
            super::grants::delete_grant(&mut tx, &grant).await?;
        }

        members::Entity::delete_by_id((organization_id.to_string(), user_id.to_string()))
            .exec(tx.db())
            .await?;
        tx.removed(&Entity::Member(member));

        tx.commit(self, ()).await
    }

    /// Lists an organization's members by user id.
    ///
    /// Errors: `NotFound` on `organization_id`.
    pub async fn list_members(
        &self,
        organization_id: OrganizationId,
        page: &PageRequest,
    ) -> Result<Page<MemberWithUser>, StoreError> {
        let filter = organization_id.to_string();
        let position = self.pages().position(page, LIST_KIND, &filter)?;
        lookup::require_organization(self.db(), organization_id, "organization_id").await?;

        let mut query = members::Entity::find()
            .filter(members::Column::OrganizationId.eq(organization_id.to_string()))
            .order_by_asc(members::Column::UserId);
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            query = query.filter(members::Column::UserId.gt(after.clone()));
        }
        let found = query.limit(position.size as u64 + 1).all(self.db()).await?;
        let found = found.into_iter().map(rows::member).collect::<Result<Vec<_>, _>>()?;

        let mut users = lookup::users_by_id(self.db(), found.iter().map(|member| member.user_id)).await?;
        let mut items = Vec::with_capacity(found.len());
        for member in found {
            let user = users
                .remove(&member.user_id)
                .ok_or_else(|| StoreError::corrupt(format!("member {} has no user row", member.user_id)))?;
            items.push(MemberWithUser { member, user });
        }

        Ok(self.pages().page(LIST_KIND, &filter, position.size, items, |entry| {
            vec![entry.member.user_id.to_string()]
        }))
    }
}

/// Inserts a new member.
pub(crate) async fn insert_member(
    tx: &mut WriteTransaction,
    organization_id: OrganizationId,
    spec: &MemberSpec,
) -> Result<Member, StoreError> {
    let now = tx.now();
    let member = Member {
        organization_id,
        user_id: spec.user_id,
        role: spec.role,
        status: spec.status,
        create_time: now,
        update_time: now,
        version: 1,
    };
    members::Entity::insert(rows::member_row(&member))
        .exec_without_returning(tx.db())
        .await?;
    tx.created(Entity::Member(member.clone()));
    Ok(member)
}

/// Sets a member's role and status; writes nothing when both are unchanged.
async fn set_role_and_status(
    tx: &mut WriteTransaction,
    current: &Member,
    role: Option<workteams_domain::MemberRole>,
    status: Option<workteams_domain::MemberStatus>,
) -> Result<Member, StoreError> {
    let mut updated = current.clone();
    if let Some(role) = role {
        updated.role = role;
    }
    if let Some(status) = status {
        updated.status = status;
    }
    if updated == *current {
        return Ok(updated);
    }

    updated.version += 1;
    updated.update_time = tx.now();
    rows::member_row(&updated).update(tx.db()).await?;
    tx.updated(&Entity::Member(current.clone()), Entity::Member(updated.clone()));
    Ok(updated)
}

fn is_active_owner(member: &Member) -> bool {
    member.role == MemberRole::Owner && member.status == MemberStatus::Active
}

/// Returns the field (`role` or `status`) of a change that makes an active
/// owner stop being one, or `None` when the change keeps them one or they
/// were not one.
fn lost_ownership_field(before: &Member, after: &Member) -> Option<&'static str> {
    if !is_active_owner(before) || is_active_owner(after) {
        return None;
    }
    if after.role == MemberRole::Owner {
        Some("status")
    } else {
        Some("role")
    }
}

async fn active_owner_count(tx: &WriteTransaction, organization_id: OrganizationId) -> Result<u64, StoreError> {
    let count = members::Entity::find()
        .filter(members::Column::OrganizationId.eq(organization_id.to_string()))
        .filter(members::Column::Role.eq(MemberRole::Owner.as_str()))
        .filter(members::Column::Status.eq(MemberStatus::Active.as_str()))
        .count(tx.db())
        .await?;
    Ok(count)
}

/// Fails with `FailedPrecondition` on `field` when the organization has no
/// active owner left after `user_id` stopped being one. Writers hold the
/// change-head lock, so no concurrent write can remove another owner
/// between this count and the commit.
async fn check_owner_remains(
    tx: &WriteTransaction,
    organization_id: OrganizationId,
    field: String,
    user_id: UserId,
) -> Result<(), StoreError> {
    if active_owner_count(tx, organization_id).await? == 0 {
        let change = if field.ends_with("status") { "suspended" } else { "demoted" };
        return Err(last_owner_error(field, user_id, change));
    }
    Ok(())
}

fn last_owner_error(field: String, user_id: UserId, change: &str) -> StoreError {
    StoreError::precondition(
        field,
        format!(
            "user {user_id} is the organization's last active owner and cannot be {change}; \
             make another member an active owner first"
        ),
    )
}

/// Removes leadership rows for `user_ids` in a team, returning whether any
/// existed.
pub(crate) async fn delete_leader_rows(
    tx: &WriteTransaction,
    team_id: workteams_domain::TeamId,
    user_ids: &[String],
) -> Result<bool, StoreError> {
    let mut removed = 0;
    for chunk in user_ids.chunks(lookup::IN_LIST_CHUNK) {
        let result = team_leaders::Entity::delete_many()
            .filter(team_leaders::Column::TeamId.eq(team_id.to_string()))
            .filter(team_leaders::Column::UserId.is_in(chunk.iter().cloned()))
            .exec(tx.db())
            .await?;
        removed += result.rows_affected;
    }
    Ok(removed > 0)
}
