//! Invitations of external people.

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{AcceptInvitation, MemberSpec, NewInvitation, NewUser};
use workteams_domain::{
    Entity, Invitation, InvitationId, InvitationState, MemberRole, MemberStatus, Membership, TeamId, ValidationError,
};

use super::time::{to_micros, truncate};
use super::write::begin_write;
use super::{Store, lookup, rows};
use crate::schema::tables::{invitation_teams, invitations};
use crate::{AcceptedInvitation, InvitationFilter, MemberWithUser, Page, PageRequest, RequestContext, StoreError, Written};

const LIST_KIND: &str = "invitations";

/// How long an invitation stays valid when the request gives no expiry.
const DEFAULT_INVITATION_LIFETIME: chrono::Duration = chrono::Duration::days(30);

impl Store {
    /// Creates a pending invitation; the expiry defaults to 30 days.
    ///
    /// Errors: `Validation` (also on `expire_time` in the past); `NotFound`
    /// on `organization_id`, `team_ids[i]` or `invited_by_user_id`;
    /// `FailedPrecondition` on `team_ids[i]` (team of another organization).
    pub async fn create_invitation(
        &self,
        context: &RequestContext,
        command: NewInvitation,
    ) -> Result<Written<Invitation>, StoreError> {
        command.validate()?;
        let NewInvitation {
            organization_id,
            email,
            team_ids,
            expire_time,
            invited_by,
        } = command;

        let mut tx = begin_write!(self, context, "create_invitation");
        let now = tx.now();

        let expire_time = expire_time.map_or(now + DEFAULT_INVITATION_LIFETIME, truncate);
        if expire_time <= now {
            return Err(ValidationError::new("expire_time", expire_time.to_rfc3339(), "must be in the future").into());
        }
        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        for (index, team_id) in team_ids.iter().enumerate() {
            let field = format!("team_ids[{index}]");
            let team = lookup::team(tx.db(), *team_id, &field).await?;
            if team.organization_id != organization_id {
                return Err(StoreError::precondition(
                    field,
                    format!("team {team_id} belongs to another organization"),
                ));
            }
        }
        if let Some(inviter) = invited_by {
            lookup::user(tx.db(), inviter, "invited_by_user_id").await?;
        }

        let invitation = Invitation {
            id: InvitationId::generate(),
            organization_id,
            email,
            team_ids,
            state: InvitationState::Pending,
            invited_by,
            create_time: now,
            expire_time,
            accepted_user_id: None,
            accept_time: None,
        };
        invitations::Entity::insert(rows::invitation_row(&invitation))
            .exec_without_returning(tx.db())
            .await?;
        let team_rows: Vec<invitation_teams::ActiveModel> = invitation
            .team_ids
            .iter()
            .enumerate()
            .map(|(position, team_id)| invitation_teams::ActiveModel {
                invitation_id: Set(invitation.id.to_string()),
                team_id: Set(team_id.to_string()),
                position: Set(i32::try_from(position).unwrap_or(i32::MAX)),
            })
            .collect();
        if !team_rows.is_empty() {
            invitation_teams::Entity::insert_many(team_rows)
                .exec_without_returning(tx.db())
                .await?;
        }
        tx.created(Entity::Invitation(invitation.clone()));

        tx.commit(self, invitation).await
    }

    /// Returns the invitation with its stored state; use
    /// [`Invitation::state_at`] for the state as of now.
    ///
    /// Errors: `NotFound` on `id`.
    pub async fn get_invitation(&self, id: InvitationId) -> Result<Invitation, StoreError> {
        load_invitation(self.db(), id, "id").await
    }

    /// Accepts an invitation: finds the user by e-mail or creates one with
    /// `login`, makes them an external member (an existing member keeps their
    /// role and status) and adds them to the invitation's teams.
    ///
    /// Errors: `Validation`; `NotFound` on `id`; `FailedPrecondition` on
    /// `id` (expired, revoked or already accepted); `Validation` on `login`
    /// (required when no user has the e-mail); `AlreadyExists` on `login`.
    pub async fn accept_invitation(
        &self,
        context: &RequestContext,
        command: AcceptInvitation,
    ) -> Result<Written<AcceptedInvitation>, StoreError> {
        command.validate()?;
        let AcceptInvitation { id, login, display_name } = command;

        let mut tx = begin_write!(self, context, "accept_invitation");
        let now = tx.now();

        let invitation = load_invitation(tx.db(), id, "id").await?;
        match invitation.state_at(now) {
            InvitationState::Pending => {}
            InvitationState::Expired => {
                return Err(StoreError::precondition("id", "the invitation has expired; ask for a new one"));
            }
            InvitationState::Revoked => {
                return Err(StoreError::precondition("id", "the invitation was revoked"));
            }
            InvitationState::Accepted => {
                return Err(StoreError::precondition("id", "the invitation was already accepted"));
            }
        }

        let user = match lookup::user_by_email(tx.db(), &invitation.email).await? {
            Some(user) => user,
            None => {
                let login = login.ok_or_else(|| {
                    ValidationError::new(
                        "login",
                        "",
                        "no user has the invitation's e-mail address yet; give a login for the new user",
                    )
                })?;
                super::users::check_login_free(tx.db(), &login, "login", None).await?;
                let new_user = NewUser {
                    login,
                    email: Some(invitation.email.clone()),
                    display_name,
                };
                super::users::insert_user(&mut tx, new_user).await?
            }
        };

        let member = match lookup::member(tx.db(), invitation.organization_id, user.id).await? {
            Some(member) => member,
            None => {
                let spec = MemberSpec {
                    user_id: user.id,
                    role: MemberRole::External,
                    status: MemberStatus::Active,
                };
                super::members::insert_member(&mut tx, invitation.organization_id, &spec).await?
            }
        };

        for team_id in &invitation.team_ids {
            if lookup::membership(tx.db(), *team_id, user.id).await?.is_none() {
                let membership = Membership {
                    team_id: *team_id,
                    user_id: user.id,
                    organization_id: invitation.organization_id,
                    added_by: invitation.invited_by,
                    add_time: now,
                    expire_time: None,
                };
                super::memberships::insert_membership(&mut tx, &membership).await?;
            }
        }

        let accepted = Invitation {
            state: InvitationState::Accepted,
            accepted_user_id: Some(user.id),
            accept_time: Some(now),
            ..invitation.clone()
        };
        rows::invitation_row(&accepted).update(tx.db()).await?;
        tx.updated(&Entity::Invitation(invitation), Entity::Invitation(accepted.clone()));

        let result = AcceptedInvitation {
            invitation: accepted,
            member: MemberWithUser { member, user },
        };
        tx.commit(self, result).await
    }

    /// Errors: `NotFound` on `id`; `FailedPrecondition` on `id` (already
    /// accepted). Revoking a revoked invitation changes nothing.
    pub async fn revoke_invitation(
        &self,
        context: &RequestContext,
        id: InvitationId,
    ) -> Result<Written<Invitation>, StoreError> {
        let mut tx = begin_write!(self, context, "revoke_invitation");

        let invitation = load_invitation(tx.db(), id, "id").await?;
        match invitation.state {
            InvitationState::Accepted => {
                return Err(StoreError::precondition("id", "the invitation was already accepted; remove the member instead"));
            }
            InvitationState::Revoked => return tx.commit(self, invitation).await,
            InvitationState::Pending | InvitationState::Expired => {}
        }

        let revoked = Invitation {
            state: InvitationState::Revoked,
            ..invitation.clone()
        };
        rows::invitation_row(&revoked).update(tx.db()).await?;
        tx.updated(&Entity::Invitation(invitation), Entity::Invitation(revoked.clone()));
        tx.commit(self, revoked).await
    }

    /// Lists an organization's invitations by id.
    ///
    /// Errors: `NotFound` on `organization_id`.
    pub async fn list_invitations(
        &self,
        filter: &InvitationFilter,
        page: &PageRequest,
    ) -> Result<Page<Invitation>, StoreError> {
        let InvitationFilter { organization_id, state } = *filter;
        let filter_text = format!("{organization_id}|{}", state.map(rows::state_text).unwrap_or_default());
        let position = self.pages().position(page, LIST_KIND, &filter_text)?;
        lookup::require_organization(self.db(), organization_id, "organization_id").await?;

        let now = to_micros(super::time::now());
        let mut select = invitations::Entity::find()
            .filter(invitations::Column::OrganizationId.eq(organization_id.to_string()))
            .order_by_asc(invitations::Column::Id);
        select = match state {
            None => select,
            Some(InvitationState::Pending) => select
                .filter(invitations::Column::State.eq(rows::state_text(InvitationState::Pending)))
                .filter(invitations::Column::ExpireTimeUs.gt(now)),
            Some(InvitationState::Expired) => select
                .filter(invitations::Column::State.eq(rows::state_text(InvitationState::Pending)))
                .filter(invitations::Column::ExpireTimeUs.lte(now)),
            Some(stored) => select.filter(invitations::Column::State.eq(rows::state_text(stored))),
        };
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            select = select.filter(invitations::Column::Id.gt(after.clone()));
        }
        let found = select.limit(position.size as u64 + 1).all(self.db()).await?;
        let mut items = Vec::with_capacity(found.len());
        for row in found {
            let team_ids = invitation_team_ids(self.db(), &row.id).await?;
            items.push(rows::invitation(row, team_ids)?);
        }

        Ok(self.pages().page(LIST_KIND, &filter_text, position.size, items, |invitation| {
            vec![invitation.id.to_string()]
        }))
    }
}

/// Reads an invitation with its teams.
pub(crate) async fn load_invitation(
    db: &impl ConnectionTrait,
    id: InvitationId,
    field: &str,
) -> Result<Invitation, StoreError> {
    let row = invitations::Entity::find_by_id(id.to_string())
        .one(db)
        .await?
        .ok_or_else(|| StoreError::not_found("invitation", field, id))?;
    let team_ids = invitation_team_ids(db, &row.id).await?;
    rows::invitation(row, team_ids)
}

async fn invitation_team_ids(db: &impl ConnectionTrait, invitation_id: &str) -> Result<Vec<TeamId>, StoreError> {
    invitation_teams::Entity::find()
        .filter(invitation_teams::Column::InvitationId.eq(invitation_id))
        .order_by_asc(invitation_teams::Column::Position)
        .all(db)
        .await?
        .iter()
        .map(|row| rows::parse_id(&row.team_id))
        .collect()
}
