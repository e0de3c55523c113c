//! Evaluation against the index: the allocation-free permission check and
//! the full evaluation with reasons. Both follow the same rules; the tests
//! compare each with the reference evaluator.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use smallvec::SmallVec;
use workteams_domain::{Combining, MemberRole, MemberStatus, PermissionSet, ResourceTypeDef};

use super::Index;
use super::slots::{
    GrantSlot, OrganizationMembership, OrganizationSlot, ResourceSlot, TEAM_SUBJECT, UserSlot,
    higher_role,
};
use super::store::instant;
use crate::access::{DenyReason, Evaluation, Reason, ReasonKind};

/// Teams a user is in at one instant: direct teams and their ancestors.
/// Inline room for 32 covers most users without touching the heap.
pub(super) type TeamClosure = SmallVec<[u32; 32]>;

/// Above this many team grants on one resource, the check looks each of the
/// user's teams up instead of testing each grant.
const TEAM_GRANTS_SCAN_MAX: usize = 16;

/// Inputs of one evaluation, once the user, resource, type and organization
/// membership are known to be usable.
pub(super) struct Subjects<'a> {
    pub(super) user: u32,
    pub(super) user_slot: &'a UserSlot,
    pub(super) resource: &'a ResourceSlot,
    pub(super) definition: &'a Arc<ResourceTypeDef>,
    pub(super) organization: &'a OrganizationSlot,
    pub(super) membership: &'a OrganizationMembership,
}

/// Reasons an evaluation cannot start.
pub(super) enum Unusable<'a> {
    UnknownResource,
    UnknownUser(&'a Arc<ResourceTypeDef>),
    NotActiveMember(&'a Arc<ResourceTypeDef>),
}

impl Index {
    pub(super) fn subjects(
        &self,
        user: Option<u32>,
        resource: Option<u32>,
    ) -> Result<Subjects<'_>, Unusable<'_>> {
        let resource_slot = resource
            .map(|handle| self.resources.get(handle))
            .filter(|slot| slot.present)
            .ok_or(Unusable::UnknownResource)?;
        let definition = self
            .types
            .definition(resource_slot.resource_type)
            .ok_or(Unusable::UnknownResource)?;
        let (user, user_slot) = user
            .map(|handle| (handle, self.users.get(handle)))
            .filter(|(_, slot)| slot.present)
            .ok_or(Unusable::UnknownUser(definition))?;
        let organization = self.organizations.get(resource_slot.organization);
        let membership = user_slot
            .organization(resource_slot.organization)
            .filter(|membership| organization.present && membership.status == MemberStatus::Active)
            .ok_or(Unusable::NotActiveMember(definition))?;
        Ok(Subjects {
            user,
            user_slot,
            resource: resource_slot,
            definition,
            organization,
            membership,
        })
    }

    /// Walks the resources whose grants reach `resource`: itself, then, for types
    /// whose grants propagate, its ancestors up to and including the first
    /// one that does not inherit. An absent parent ends the path.
    pub(super) fn path<'a>(
        &'a self,
        resource: &'a ResourceSlot,
        propagate: bool,
    ) -> impl Iterator<Item = &'a ResourceSlot> + 'a {
        // A parent cycle cannot come from a valid directory; the bound keeps
        // a corrupt one from looping.
        let max_steps = self.resources.len() as usize;
        std::iter::successors(Some(resource), move |slot| {
            if !propagate || !slot.inherits {
                return None;
            }
            slot.parent()
                .map(|parent| self.resources.get(parent))
                .filter(|parent| parent.present)
        })
        .take(max_steps.max(1))
    }

    /// Collects the teams `user` is in at `now`.
    pub(super) fn team_closure(&self, user: &UserSlot, now: i64) -> TeamClosure {
        let mut closure = TeamClosure::new();
        for membership in &user.teams {
            if now >= membership.expire {
                continue;
            }
            let team = self.teams.get(membership.team);
            if team.present {
                closure.push(membership.team);
                closure.extend_from_slice(&team.ancestors);
            }
        }
        closure
    }

    /// Computes the permissions `user` holds on `resource`, stopping early
    /// once every permission in `wanted` is held.
    pub(super) fn permissions_of(
        &self,
        user: u32,
        resource: u32,
        now: i64,
        wanted: PermissionSet,
    ) -> PermissionSet {
        let Ok(subjects) = self.subjects(Some(user), Some(resource)) else {
            return PermissionSet::EMPTY;
        };
        let covers = |held: PermissionSet| held.0 & wanted.0 == wanted.0;
        let propagate = subjects.definition.grants_propagate;

        match subjects.definition.combining {
            Combining::IndividualPrecedence => {
                // One walk: an individual grant anywhere on the path
                // overrides the team grants met before it.
                let mut closure: Option<TeamClosure> = None;
                let mut held = PermissionSet::EMPTY;
                for slot in self.path(subjects.resource, propagate) {
                    if let Some(grant) = slot.grant(user).filter(|grant| grant.is_active_at(now)) {
                        return self.types.permissions(slot.resource_type, grant);
                    }
                    if !slot.team_grants().is_empty() {
                        let closure = closure
                            .get_or_insert_with(|| self.team_closure(subjects.user_slot, now));
                        held = held.union(self.team_grants_held(slot, closure, now));
                    }
                }
                held
            }
            Combining::Cumulative => {
                let mut closure: Option<TeamClosure> = None;
                let mut held = PermissionSet::EMPTY;
                if let Some(default) = subjects
                    .organization
                    .default_for(subjects.resource.resource_type)
                {
                    // Teams give at most the administrator role, so they can
                    // only matter to collaborators and external members.
                    let mut role = subjects.membership.role;
                    if !role.is_administrator() {
                        let closure = closure
                            .get_or_insert_with(|| self.team_closure(subjects.user_slot, now));
                        role = self.effective_role(role, subjects.resource.organization, closure);
                    }
                    held = default.for_role(role);
                }
                if covers(held) {
                    return held;
                }

                for slot in self.path(subjects.resource, propagate) {
                    if let Some(grant) = slot.grant(user).filter(|grant| grant.is_active_at(now)) {
                        held = held.union(self.types.permissions(slot.resource_type, grant));
                    }
                    if !slot.team_grants().is_empty() {
                        let closure = closure
                            .get_or_insert_with(|| self.team_closure(subjects.user_slot, now));
                        held = held.union(self.team_grants_held(slot, closure, now));
                    }
                    if covers(held) {
                        break;
                    }
                }
                held
            }
        }
    }

    /// Evaluates with reasons; `None` handles stand for unknown entities.
    pub(super) fn evaluate_handles(
        &self,
        user: Option<u32>,
        resource: Option<u32>,
        now: DateTime<Utc>,
    ) -> Evaluation {
        let subjects = match self.subjects(user, resource) {
            Ok(subjects) => subjects,
            Err(Unusable::UnknownResource) => {
                return Evaluation::denied(None, DenyReason::UnknownResource);
            }
            Err(Unusable::UnknownUser(definition)) => {
                return Evaluation::denied(Some(definition), DenyReason::UnknownUser);
            }
            Err(Unusable::NotActiveMember(definition)) => {
                return Evaluation::denied(Some(definition), DenyReason::NotActiveMember);
            }
        };
        let now = instant(now);
        let propagate = subjects.definition.grants_propagate;
        let closure = self.team_closure(subjects.user_slot, now);

        match subjects.definition.combining {
            Combining::IndividualPrecedence => {
                let mut team_reasons = Vec::new();
                for slot in self.path(subjects.resource, propagate) {
                    self.push_team_reasons(
                        slot,
                        subjects.user_slot,
                        &closure,
                        now,
                        &mut team_reasons,
                    );
                }
                let team_permissions = union_of(&team_reasons);

                let decided = self.path(subjects.resource, propagate).find_map(|slot| {
                    slot.grant(subjects.user)
                        .filter(|grant| grant.is_active_at(now))
                        .map(|grant| self.individual_reason(slot, grant))
                });
                match decided {
                    Some(reason) => {
                        let permissions = reason.permissions;
                        Evaluation {
                            permissions,
                            resource_type: Some(Arc::clone(subjects.definition)),
                            reasons: vec![reason],
                            overridden: PermissionSet(team_permissions.0 & !permissions.0),
                            deny_reason: permissions
                                .is_empty()
                                .then_some(DenyReason::IndividualOverride),
                        }
                    }
                    None => Evaluation::granted(subjects.definition, team_reasons),
                }
            }
            Combining::Cumulative => {
                let mut reasons = Vec::new();
                for slot in self.path(subjects.resource, propagate) {
                    if let Some(grant) = slot
                        .grant(subjects.user)
                        .filter(|grant| grant.is_active_at(now) && !grant.no_access())
                    {
                        reasons.push(self.individual_reason(slot, grant));
                    }
                    self.push_team_reasons(slot, subjects.user_slot, &closure, now, &mut reasons);
                }

                if let Some(default) = subjects
                    .organization
                    .default_for(subjects.resource.resource_type)
                {
                    let role = self.effective_role(
                        subjects.membership.role,
                        subjects.resource.organization,
                        &closure,
                    );
                    if role.is_internal() && !default.base_level.is_empty() {
                        reasons.push(organization_reason(
                            subjects.resource,
                            ReasonKind::OrganizationBaseLevel,
                            default.base_level,
                        ));
                    }
                    if role.is_administrator() && !default.administrator_level.is_empty() {
                        reasons.push(organization_reason(
                            subjects.resource,
                            ReasonKind::OrganizationAdministrator,
                            default.administrator_level,
                        ));
                    }
                }
                Evaluation::granted(subjects.definition, reasons)
            }
        }
    }

    /// Appends a reason for each active team grant on `slot` that reaches
    /// the user, ordered by team id.
    fn push_team_reasons(
        &self,
        slot: &ResourceSlot,
        user: &UserSlot,
        closure: &TeamClosure,
        now: i64,
        reasons: &mut Vec<Reason>,
    ) {
        let start = reasons.len();
        for grant in slot.team_grants() {
            let Some(team) = grant.team() else {
                continue;
            };
            if !grant.is_active_at(now) || grant.no_access() || !closure.contains(&team) {
                continue;
            }
            let Some(via) = self.via_team(user, team, now) else {
                continue;
            };
            reasons.push(Reason {
                kind: ReasonKind::TeamGrant,
                resource_id: slot.id,
                team_id: Some(self.teams.get(team).id),
                via_team_id: Some(self.teams.get(via).id),
                permissions: self.types.permissions(slot.resource_type, grant),
                no_access: false,
            });
        }
        reasons[start..].sort_by_key(|reason| reason.team_id);
    }

    /// Returns the highest of a member's own role and the roles that the
    /// teams in `closure` of organization `organization` give.
    pub(super) fn effective_role(
        &self,
        own: MemberRole,
        organization: u32,
        closure: &TeamClosure,
    ) -> MemberRole {
        closure
            .iter()
            .map(|team| self.teams.get(*team))
            .filter(|team| team.organization == organization)
            .filter_map(|team| team.organization_role)
            .fold(own, higher_role)
    }

    /// Finds the direct team through which `user` is in `team` at `now`: `team`
    /// itself when the user is a direct member, otherwise the smallest team
    /// id among the direct teams below it.
    fn via_team(&self, user: &UserSlot, team: u32, now: i64) -> Option<u32> {
        let mut via: Option<u32> = None;
        for membership in &user.teams {
            if now >= membership.expire {
                continue;
            }
            let direct = self.teams.get(membership.team);
            if !direct.present {
                continue;
            }
            if membership.team == team {
                return Some(team);
            }
            if direct.ancestors.contains(&team)
                && via.is_none_or(|current| direct.id < self.teams.get(current).id)
            {
                via = Some(membership.team);
            }
        }
        via
    }

    /// Computes what the team grants on `slot` give a user in `closure`.
    fn team_grants_held(
        &self,
        slot: &ResourceSlot,
        closure: &TeamClosure,
        now: i64,
    ) -> PermissionSet {
        let grants = slot.team_grants();
        let mut held = PermissionSet::EMPTY;
        if grants.len() <= TEAM_GRANTS_SCAN_MAX {
            for grant in grants {
                if grant.is_active_at(now) && closure.contains(&(grant.subject & !TEAM_SUBJECT)) {
                    held = held.union(self.types.permissions(slot.resource_type, grant));
                }
            }
        } else {
            for team in closure {
                if let Some(grant) = slot
                    .grant(team | TEAM_SUBJECT)
                    .filter(|grant| grant.is_active_at(now))
                {
                    held = held.union(self.types.permissions(slot.resource_type, grant));
                }
            }
        }
        held
    }

    fn individual_reason(&self, slot: &ResourceSlot, grant: &GrantSlot) -> Reason {
        Reason {
            kind: ReasonKind::IndividualGrant,
            resource_id: slot.id,
            team_id: None,
            via_team_id: None,
            permissions: self.types.permissions(slot.resource_type, grant),
            no_access: grant.no_access(),
        }
    }
}

fn union_of(reasons: &[Reason]) -> PermissionSet {
    reasons.iter().fold(PermissionSet::EMPTY, |set, reason| {
        set.union(reason.permissions)
    })
}

fn organization_reason(
    slot: &ResourceSlot,
    kind: ReasonKind,
    permissions: PermissionSet,
) -> Reason {
    Reason {
        kind,
        resource_id: slot.id,
        team_id: None,
        via_team_id: None,
        permissions,
        no_access: false,
    }
}

impl Evaluation {
    pub(crate) fn denied(definition: Option<&Arc<ResourceTypeDef>>, reason: DenyReason) -> Self {
        Self {
            permissions: PermissionSet::EMPTY,
            resource_type: definition.cloned(),
            reasons: Vec::new(),
            overridden: PermissionSet::EMPTY,
            deny_reason: Some(reason),
        }
    }

    /// Builds the result of the union of `reasons`, none of them an
    /// individual override.
    pub(crate) fn granted(definition: &Arc<ResourceTypeDef>, reasons: Vec<Reason>) -> Self {
        let permissions = union_of(&reasons);
        let deny_reason = match (permissions.is_empty(), reasons.is_empty()) {
            (false, _) => None,
            (true, false) => Some(DenyReason::PermissionNotHeld),
            (true, true) => Some(DenyReason::NoGrant),
        };
        Self {
            permissions,
            resource_type: Some(Arc::clone(definition)),
            reasons,
            overridden: PermissionSet::EMPTY,
            deny_reason,
        }
    }
}
