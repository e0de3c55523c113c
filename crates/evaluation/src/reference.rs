//! A deliberately slow evaluator that works on plain lists of entities.
//!
//! It has no indexes and no caches: every question is answered by linear
//! scans and by following the rules as they are stated, so it is easy to
//! check by reading. The tests compare [`Index`](crate::Index) with it;
//! nothing on a request path should use it.
//!
//! The rules, for user U and resource R of type T at instant `now`:
//! - U must be an active member of R's (present) organization.
//! - U's teams are the teams of U's memberships that have not expired, plus
//!   their ancestors; the parent chain ends at the first missing team.
//! - A grant counts only if it has not expired; expiry takes effect at the
//!   instant `expire_time` is reached.
//! - The path is R alone or, when T's grants propagate, R and its ancestors
//!   up to and including the first resource that does not inherit.
//! - Individual precedence: the nearest individual grant on the path
//!   decides alone; without one, the union of U's team grants on the path.
//! - Cumulative: the union of U's individual and team grants on the path
//!   (an explicit "no access" adds nothing), plus the organization's base
//!   level for internal members and the highest level for administrators.
//!   U's role there is the highest of U's own role and the roles that U's
//!   teams in R's organization give.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use workteams_domain::{
    Change, Combining, Entity, EntityKey, Grant, Member, MemberRole, MemberStatus, Membership,
    Organization, PermissionSet, Resource, ResourceId, ResourceTypeDef, ResourceTypeRegistry,
    Subject, Team, TeamId, User, UserId,
};

use crate::access::{AccessEntry, AccessFilter, DenyReason, Evaluation, Reason, ReasonKind};

/// A directory as plain lists of entities.
#[derive(Debug, Clone, Default)]
pub struct Directory {
    pub types: ResourceTypeRegistry,
    pub organizations: Vec<Organization>,
    pub users: Vec<User>,
    pub members: Vec<Member>,
    pub teams: Vec<Team>,
    pub memberships: Vec<Membership>,
    pub resources: Vec<Resource>,
    pub grants: Vec<Grant>,
}

/// Replaces the entity of `list` with the same key as `entity`, or appends it.
fn upsert_by<T, K: PartialEq>(list: &mut Vec<T>, entity: T, key: impl Fn(&T) -> K) {
    let wanted = key(&entity);
    match list.iter_mut().find(|stored| key(stored) == wanted) {
        Some(stored) => *stored = entity,
        None => list.push(entity),
    }
}

impl Directory {
    pub fn new(types: ResourceTypeRegistry) -> Self {
        Self {
            types,
            ..Self::default()
        }
    }

    /// Inserts or replaces one entity.
    pub fn upsert(&mut self, entity: Entity) {
        match entity {
            Entity::Organization(organization) => {
                upsert_by(&mut self.organizations, organization, |o| o.id)
            }
            Entity::User(user) => upsert_by(&mut self.users, user, |u| u.id),
            Entity::Member(member) => {
                upsert_by(&mut self.members, member, |m| {
                    (m.organization_id, m.user_id)
                });
            }
            Entity::Team(team) => upsert_by(&mut self.teams, team, |t| t.id),
            Entity::Membership(membership) => {
                upsert_by(&mut self.memberships, membership, |m| {
                    (m.team_id, m.user_id)
                });
            }
            Entity::Resource(resource) => upsert_by(&mut self.resources, resource, |r| r.id),
            Entity::Grant(grant) => upsert_by(&mut self.grants, grant, Grant::key),
            Entity::Invitation(_) => {}
            Entity::ResourceType(definition) => {
                let name = definition.name.clone();
                if self.types.insert(definition).is_err() {
                    self.types.remove(&name);
                }
            }
        }
    }

    /// Removes one entity, if present.
    pub fn delete(&mut self, key: &EntityKey) {
        match key {
            EntityKey::Organization(id) => self.organizations.retain(|o| o.id != *id),
            EntityKey::User(id) => self.users.retain(|u| u.id != *id),
            EntityKey::Member {
                organization_id,
                user_id,
            } => self
                .members
                .retain(|m| (m.organization_id, m.user_id) != (*organization_id, *user_id)),
            EntityKey::Team(id) => self.teams.retain(|t| t.id != *id),
            EntityKey::Membership { team_id, user_id } => self
                .memberships
                .retain(|m| (m.team_id, m.user_id) != (*team_id, *user_id)),
            EntityKey::Resource(id) => self.resources.retain(|r| r.id != *id),
            EntityKey::Grant(key) => self.grants.retain(|g| g.key() != *key),
            EntityKey::Invitation(_) => {}
            EntityKey::ResourceType(name) => self.types.remove(name),
        }
    }

    pub fn apply_change(&mut self, change: &Change) {
        match change {
            Change::Upserted(entity) => self.upsert(entity.clone()),
            Change::Deleted { key, .. } => self.delete(key),
        }
    }

    fn find_resource(&self, id: ResourceId) -> Option<&Resource> {
        self.resources.iter().find(|resource| resource.id == id)
    }

    fn find_team(&self, id: TeamId) -> Option<&Team> {
        self.teams.iter().find(|team| team.id == id)
    }

    /// Returns `team` and its ancestors, stopping at a missing team or a
    /// cycle.
    fn team_and_ancestors(&self, team: TeamId) -> Vec<TeamId> {
        let mut chain = Vec::new();
        let mut next = self.find_team(team);
        while let Some(current) = next {
            if chain.contains(&current.id) {
                break;
            }
            chain.push(current.id);
            next = current
                .parent_team_id
                .and_then(|parent| self.find_team(parent));
        }
        chain
    }

    /// Returns the user's memberships that have not expired at `now`, of
    /// teams that exist.
    fn active_memberships(&self, user: UserId, now: DateTime<Utc>) -> Vec<&Membership> {
        self.memberships
            .iter()
            .filter(|m| {
                m.user_id == user && m.is_active_at(now) && self.find_team(m.team_id).is_some()
            })
            .collect()
    }

    /// Finds the direct team through which `user` is in `team`: `team` itself if
    /// the user is a direct member, otherwise the smallest id among the
    /// direct teams below it.
    fn via_team(&self, user: UserId, team: TeamId, now: DateTime<Utc>) -> Option<TeamId> {
        let vias: Vec<TeamId> = self
            .active_memberships(user, now)
            .into_iter()
            .map(|m| m.team_id)
            .filter(|direct| self.team_and_ancestors(*direct).contains(&team))
            .collect();
        if vias.contains(&team) {
            Some(team)
        } else {
            vias.into_iter().min()
        }
    }

    fn path(&self, resource: &Resource, definition: &ResourceTypeDef) -> Vec<Resource> {
        let mut path = vec![resource.clone()];
        let mut current = resource.clone();
        while definition.grants_propagate && current.inherits {
            let Some(parent) = current
                .parent_resource_id
                .and_then(|id| self.find_resource(id))
            else {
                break;
            };
            if path.iter().any(|seen| seen.id == parent.id) {
                break;
            }
            path.push(parent.clone());
            current = parent.clone();
        }
        path
    }

    /// Resolves what a grant gives with its resource's type, dropping
    /// unknown names. A "no access" grant gives nothing.
    fn grant_permissions(&self, grant: &Grant) -> PermissionSet {
        if grant.no_access {
            return PermissionSet::EMPTY;
        }
        let definition = self
            .find_resource(grant.resource_id)
            .and_then(|resource| self.types.get(&resource.resource_type));
        let Some(definition) = definition else {
            return PermissionSet::EMPTY;
        };
        let mut set = PermissionSet::EMPTY;
        for name in &grant.permissions {
            if let Some(index) = definition.permission_index(name) {
                set = set.union(definition.expand(index));
            }
        }
        set
    }

    fn active_grants_on(&self, resource: ResourceId, now: DateTime<Utc>) -> Vec<&Grant> {
        self.grants
            .iter()
            .filter(|g| g.resource_id == resource && g.is_active_at(now))
            .collect()
    }

    fn individual_reason(&self, grant: &Grant) -> Reason {
        Reason {
            kind: ReasonKind::IndividualGrant,
            resource_id: grant.resource_id,
            team_id: None,
            via_team_id: None,
            permissions: self.grant_permissions(grant),
            no_access: grant.no_access,
        }
    }

    /// Builds reasons for the team grants on `resource` that reach `user`,
    /// ordered by team id.
    fn team_reasons(&self, user: UserId, resource: ResourceId, now: DateTime<Utc>) -> Vec<Reason> {
        let mut reasons: Vec<Reason> = self
            .active_grants_on(resource, now)
            .into_iter()
            .filter(|grant| !grant.no_access)
            .filter_map(|grant| match grant.subject {
                Subject::Team(team) => {
                    let via = self.via_team(user, team, now)?;
                    Some(Reason {
                        kind: ReasonKind::TeamGrant,
                        resource_id: resource,
                        team_id: Some(team),
                        via_team_id: Some(via),
                        permissions: self.grant_permissions(grant),
                        no_access: false,
                    })
                }
                Subject::User(_) => None,
            })
            .collect();
        reasons.sort_by_key(|reason| reason.team_id);
        reasons
    }

    pub fn evaluate(&self, user: UserId, resource: ResourceId, now: DateTime<Utc>) -> Evaluation {
        let Some(resource) = self.find_resource(resource) else {
            return Evaluation::denied(None, DenyReason::UnknownResource);
        };
        let Some(definition) = self.types.get(&resource.resource_type) else {
            return Evaluation::denied(None, DenyReason::UnknownResource);
        };
        if !self.users.iter().any(|u| u.id == user) {
            return Evaluation::denied(Some(definition), DenyReason::UnknownUser);
        }
        let organization_exists = self
            .organizations
            .iter()
            .any(|o| o.id == resource.organization_id);
        let member = self.members.iter().find(|m| {
            m.organization_id == resource.organization_id
                && m.user_id == user
                && m.status == MemberStatus::Active
        });
        let Some(member) = member.filter(|_| organization_exists) else {
            return Evaluation::denied(Some(definition), DenyReason::NotActiveMember);
        };

        let path = self.path(resource, definition);
        match definition.combining {
            Combining::IndividualPrecedence => {
                let nearest_individual = path.iter().find_map(|on_path| {
                    self.active_grants_on(on_path.id, now)
                        .into_iter()
                        .find(|g| g.subject == Subject::User(user))
                });
                let team_reasons: Vec<Reason> = path
                    .iter()
                    .flat_map(|on_path| self.team_reasons(user, on_path.id, now))
                    .collect();
                match nearest_individual {
                    Some(grant) => {
                        let reason = self.individual_reason(grant);
                        let permissions = reason.permissions;
                        let team_permissions = team_reasons
                            .iter()
                            .fold(PermissionSet::EMPTY, |set, r| set.union(r.permissions));
                        Evaluation {
                            permissions,
                            resource_type: Some(Arc::clone(definition)),
                            reasons: vec![reason],
                            overridden: PermissionSet(team_permissions.0 & !permissions.0),
                            deny_reason: permissions
                                .is_empty()
                                .then_some(DenyReason::IndividualOverride),
                        }
                    }
                    None => Evaluation::granted(definition, team_reasons),
                }
            }
            Combining::Cumulative => {
                let mut reasons = Vec::new();
                for on_path in &path {
                    for grant in self.active_grants_on(on_path.id, now) {
                        if grant.subject == Subject::User(user) && !grant.no_access {
                            reasons.push(self.individual_reason(grant));
                        }
                    }
                    reasons.extend(self.team_reasons(user, on_path.id, now));
                }
                let role = self.effective_role(member, now);
                reasons.extend(self.organization_reasons(resource, definition, role));
                Evaluation::granted(definition, reasons)
            }
        }
    }

    /// Returns the highest of the member's own role and the roles given by
    /// the member's teams in the same organization.
    fn effective_role(&self, member: &Member, now: DateTime<Utc>) -> MemberRole {
        let rank = |role: MemberRole| match role {
            MemberRole::Owner => 3,
            MemberRole::Administrator => 2,
            MemberRole::Collaborator => 1,
            MemberRole::External => 0,
        };
        let team_roles = self
            .active_memberships(member.user_id, now)
            .into_iter()
            .flat_map(|membership| self.team_and_ancestors(membership.team_id))
            .filter_map(|team| self.find_team(team))
            .filter(|team| team.organization_id == member.organization_id)
            .filter_map(|team| team.organization_role);
        std::iter::once(member.role)
            .chain(team_roles)
            .max_by_key(|role| rank(*role))
            .unwrap_or(member.role)
    }

    fn organization_reasons(
        &self,
        resource: &Resource,
        definition: &ResourceTypeDef,
        role: MemberRole,
    ) -> Vec<Reason> {
        let Some(organization) = self
            .organizations
            .iter()
            .find(|o| o.id == resource.organization_id)
        else {
            return Vec::new();
        };
        let Some(default) = organization
            .settings
            .resource_type_defaults
            .iter()
            .find(|d| d.resource_type == resource.resource_type)
        else {
            return Vec::new();
        };
        let reason = |kind, permissions| Reason {
            kind,
            resource_id: resource.id,
            team_id: None,
            via_team_id: None,
            permissions,
            no_access: false,
        };

        let mut reasons = Vec::new();
        let base_level = default
            .base_level
            .as_ref()
            .and_then(|level| definition.permission_index(level))
            .map(|index| definition.expand(index));
        if let Some(base_level) = base_level.filter(|set| !set.is_empty() && role.is_internal()) {
            reasons.push(reason(ReasonKind::OrganizationBaseLevel, base_level));
        }
        if default.administrators_get_highest_level && role.is_administrator() {
            reasons.push(reason(
                ReasonKind::OrganizationAdministrator,
                definition.highest_level(),
            ));
        }
        reasons
    }

    /// Evaluates `user` on every resource and keeps those with access.
    pub fn list_user_access(
        &self,
        user: UserId,
        filter: &AccessFilter,
        now: DateTime<Utc>,
    ) -> Vec<AccessEntry> {
        let mut entries: Vec<AccessEntry> = self
            .resources
            .iter()
            .filter(|r| filter.organization.is_none_or(|id| id == r.organization_id))
            .filter(|r| {
                filter
                    .resource_type
                    .as_ref()
                    .is_none_or(|name| *name == r.resource_type)
            })
            .map(|r| AccessEntry {
                user_id: user,
                resource_id: r.id,
                organization_id: r.organization_id,
                evaluation: self.evaluate(user, r.id, now),
            })
            .filter(|entry| !entry.evaluation.permissions.is_empty())
            .collect();
        entries.sort_by_key(|entry| entry.resource_id);
        entries
    }

    /// Evaluates every user on `resource` and keeps those with access.
    pub fn list_resource_access(
        &self,
        resource: ResourceId,
        now: DateTime<Utc>,
    ) -> Vec<AccessEntry> {
        let Some(found) = self.find_resource(resource) else {
            return Vec::new();
        };
        let mut entries: Vec<AccessEntry> = self
            .users
            .iter()
            .map(|u| AccessEntry {
                user_id: u.id,
                resource_id: resource,
                organization_id: found.organization_id,
                evaluation: self.evaluate(u.id, resource, now),
            })
            .filter(|entry| !entry.evaluation.permissions.is_empty())
            .collect();
        entries.sort_by_key(|entry| entry.user_id);
        entries
    }
}
