//! Listing who can use what. Each listing gathers a superset of candidates
//! from the index's reverse links, then evaluates the candidates of the
//! requested page with [`Index::evaluate_handles`], so a listing always
//! agrees with evaluation.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use foldhash::fast::FixedState;
use workteams_domain::{MemberStatus, PermissionSet, ResourceId, UserId};

use super::Index;
use super::store::instant;
use crate::access::{AccessEntry, AccessFilter, AccessPage, PageRequest};

impl Index {
    pub(super) fn list_for_user(
        &self,
        user: u32,
        filter: &AccessFilter,
        now: DateTime<Utc>,
        page: PageRequest<ResourceId>,
    ) -> AccessPage {
        let user_slot = self.users.get(user);
        if !user_slot.present {
            return AccessPage::default();
        }
        let organization_filter = match filter.organization {
            Some(id) => match self.organization_handle(id) {
                Some(handle) => Some(handle),
                None => return AccessPage::default(),
            },
            None => None,
        };
        let type_filter = match &filter.resource_type {
            Some(name) => match self.types.handle(name) {
                Some(handle) => Some(handle),
                None => return AccessPage::default(),
            },
            None => None,
        };
        let instant_now = instant(now);
        let closure = self.team_closure(user_slot, instant_now);

        let mut granted = user_slot.grants.to_vec();
        for team in closure.iter().copied() {
            self.teams
                .get(team)
                .grants
                .for_each(|resource| granted.push(resource));
        }
        let mut candidates = self.with_inheriting_descendants(granted);

        for membership in &user_slot.organizations {
            let organization = self.organizations.get(membership.organization);
            if !organization.present
                || membership.status != MemberStatus::Active
                || organization_filter.is_some_and(|handle| handle != membership.organization)
            {
                continue;
            }
            let role = self.effective_role(membership.role, membership.organization, &closure);
            for default in organization.resolved_defaults.as_slice() {
                if default.for_role(role).is_empty()
                    || type_filter.is_some_and(|handle| handle != default.resource_type)
                {
                    continue;
                }
                if let Some(resources) = organization.resources_of_type(default.resource_type) {
                    resources.for_each(|resource| candidates.push(resource));
                }
            }
        }

        candidates.sort_unstable();
        candidates.dedup();
        candidates.retain(|resource| {
            let slot = self.resources.get(*resource);
            organization_filter.is_none_or(|handle| handle == slot.organization)
                && type_filter.is_none_or(|handle| handle == slot.resource_type)
        });
        select_page(
            candidates,
            |resource| self.resources.get(resource).id,
            page,
            |resource| self.access_entry(user, resource, now),
        )
    }

    pub(super) fn list_for_resource(
        &self,
        resource: u32,
        now: DateTime<Utc>,
        page: PageRequest<UserId>,
    ) -> AccessPage {
        let resource_slot = self.resources.get(resource);
        if !resource_slot.present {
            return AccessPage::default();
        }
        let Some(definition) = self.types.definition(resource_slot.resource_type) else {
            return AccessPage::default();
        };

        let mut candidates = Vec::new();
        let mut granted_teams = Vec::new();
        for slot in self.path(resource_slot, definition.grants_propagate) {
            for grant in slot.user_grants() {
                candidates.push(grant.subject);
            }
            for grant in slot.team_grants() {
                granted_teams.extend(grant.team());
            }
        }
        for team in self.with_descendant_teams(granted_teams) {
            self.teams
                .get(team)
                .members
                .for_each(|user| candidates.push(user));
        }

        let organization = self.organizations.get(resource_slot.organization);
        let has_defaults = organization
            .default_for(resource_slot.resource_type)
            .is_some_and(|default| {
                !default
                    .base_level
                    .union(default.administrator_level)
                    .is_empty()
            });
        if has_defaults {
            organization.members.for_each(|user| candidates.push(user));
        }

        candidates.sort_unstable();
        candidates.dedup();
        select_page(
            candidates,
            |user| self.users.get(user).id,
            page,
            |user| self.access_entry(user, resource, now),
        )
    }

    fn access_entry(&self, user: u32, resource: u32, now: DateTime<Utc>) -> Option<AccessEntry> {
        let evaluation = self.evaluate_handles(Some(user), Some(resource), now);
        if evaluation.permissions == PermissionSet::EMPTY {
            return None;
        }
        let slot = self.resources.get(resource);
        Some(AccessEntry {
            user_id: self.users.get(user).id,
            resource_id: slot.id,
            organization_id: self.organizations.get(slot.organization).id,
            evaluation,
        })
    }

    /// `resources` plus every descendant that grants on them reach: children
    /// that are present, inherit, and have a type whose grants propagate.
    fn with_inheriting_descendants(&self, resources: Vec<u32>) -> Vec<u32> {
        let mut visited: HashSet<u32, FixedState> = HashSet::default();
        let mut pending = resources;
        let mut reached = Vec::new();
        while let Some(resource) = pending.pop() {
            if !visited.insert(resource) {
                continue;
            }
            reached.push(resource);
            self.resource_children.for_each(resource, |child| {
                let slot = self.resources.get(child);
                let propagates = self
                    .types
                    .definition(slot.resource_type)
                    .is_some_and(|definition| definition.grants_propagate);
                if slot.present && slot.inherits && propagates {
                    pending.push(child);
                }
            });
        }
        reached
    }

    /// `teams` plus all their present descendant teams.
    fn with_descendant_teams(&self, teams: Vec<u32>) -> Vec<u32> {
        let mut visited: HashSet<u32, FixedState> = HashSet::default();
        let mut pending = teams;
        let mut reached = Vec::new();
        while let Some(team) = pending.pop() {
            if !visited.insert(team) {
                continue;
            }
            reached.push(team);
            self.teams.get(team).children.for_each(|child| {
                if self.teams.get(child).present {
                    pending.push(child);
                }
            });
        }
        reached
    }
}

/// Smallest number of candidates sorted and evaluated at a time.
const MIN_PAGE_CHUNK: usize = 64;

/// Evaluates distinct `candidates` in the order of their listed id, from
/// just after `page.after`, until the page is full and one more entry shows
/// that another page follows. Only the candidates a page needs are sorted
/// and evaluated, so a page costs a pass over the candidates plus its own
/// evaluations, wherever it starts in the listing.
fn select_page<Id: Ord + Copy>(
    candidates: Vec<u32>,
    listed_id: impl Fn(u32) -> Id,
    page: PageRequest<Id>,
    entry: impl Fn(u32) -> Option<AccessEntry>,
) -> AccessPage {
    let mut remaining: Vec<(Id, u32)> = candidates
        .into_iter()
        .map(|candidate| (listed_id(candidate), candidate))
        .filter(|(id, _)| page.after.is_none_or(|after| *id > after))
        .collect();
    let needed_entries = page.size.saturating_add(1);
    let mut entries = Vec::new();
    let mut chunk_size = 0;
    let mut rest = remaining.as_mut_slice();

    while entries.len() < needed_entries && !rest.is_empty() {
        // Doubling the chunk keeps the passes over the candidates few even
        // when most of them grant nothing.
        chunk_size = (needed_entries - entries.len())
            .max(chunk_size * 2)
            .max(MIN_PAGE_CHUNK)
            .min(rest.len());
        if chunk_size < rest.len() {
            rest.select_nth_unstable(chunk_size - 1);
        }
        let (chunk, tail) = std::mem::take(&mut rest).split_at_mut(chunk_size);
        chunk.sort_unstable();

        for (_, candidate) in chunk.iter() {
            if let Some(found) = entry(*candidate) {
                entries.push(found);
                if entries.len() == needed_entries {
                    break;
                }
            }
        }
        rest = tail;
    }

    let more = entries.len() > page.size;
    entries.truncate(page.size);
    AccessPage { entries, more }
}
