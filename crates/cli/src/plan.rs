//! The plan engine: what must be added, changed and removed in the directory
//! so that it contains the desired state, per organization.
//!
//! Entities are matched by the keys the directory compares them with:
//! folded logins, folded team names, and resource type plus external id
//! (folded for types that ignore case). A team or resource that is not found
//! under its name is matched under one of its former names, so a rename
//! keeps its id, memberships and grants.
//!
//! Removals are always computed; the caller applies them only with
//! `--prune`. Removing a team or a resource also removes its memberships
//! and grants, and the plan counts those with the team or resource.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use uuid::Uuid;
use workteams_domain::{
    MemberRole, MemberStatus, OrganizationId, OrganizationSettings, ResourceId,
    ResourceTypeDefault, ResourceTypeRegistry, Subject, TeamId, UserId,
};

use crate::current::{CurrentGrant, CurrentOrganization, CurrentState};
use crate::desired::{
    Access, BaseLevel, DesiredGrant, DesiredOrganization, DesiredSettings, DesiredState,
    ResourceKey, SubjectKey, SubjectName, login_key, organization_key, team_key,
};

#[derive(Debug, Clone, Copy, Default)]
pub struct PlanOptions {
    /// Whether removals will be applied. Leaders who are not mentioned in
    /// the file keep their leadership unless they are pruned.
    pub prune: bool,
}

/// A value before and after the change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change<T> {
    pub from: T,
    pub to: T,
}

impl<T: PartialEq> Change<T> {
    fn if_different(from: T, to: T) -> Option<Self> {
        (from != to).then_some(Self { from, to })
    }
}

/// Additions, changes and removals of one kind of entity.
#[derive(Debug, Clone)]
pub struct Section<A, C, R> {
    pub added: Vec<A>,
    pub changed: Vec<C>,
    pub removed: Vec<R>,
}

impl<A, C, R> Default for Section<A, C, R> {
    fn default() -> Self {
        Self {
            added: Vec::new(),
            changed: Vec::new(),
            removed: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewUser {
    pub login: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserChange {
    pub id: UserId,
    pub login: String,
    pub email: Option<Change<Option<String>>>,
    pub display_name: Option<Change<String>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberAdd {
    pub login: String,
    pub role: MemberRole,
    pub status: MemberStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberChange {
    pub login: String,
    pub user_id: UserId,
    pub role: Change<MemberRole>,
    pub status: Change<MemberStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRemove {
    pub login: String,
    pub user_id: UserId,
    pub role: MemberRole,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceAdd {
    pub resource_type: String,
    pub external_id: String,
    pub display_name: String,
    /// The parent's external id, of the same type.
    pub parent: Option<String>,
    pub inherits: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceChange {
    pub id: ResourceId,
    pub resource_type: String,
    /// The external id after the change.
    pub external_id: String,
    pub rename: Option<Change<String>>,
    pub display_name: Option<Change<String>>,
    /// Parent external ids.
    pub parent: Option<Change<Option<String>>>,
    pub inherits: Option<Change<bool>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceRemove {
    pub id: ResourceId,
    pub resource_type: String,
    pub external_id: String,
    /// Distance from the root of its tree, to remove children first.
    pub depth: usize,
    /// Grants on the resource, removed with it.
    pub grant_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamAdd {
    pub name: String,
    pub description: String,
    pub color: String,
    pub parent: Option<String>,
    pub organization_role: Option<MemberRole>,
    /// Logins of the leaders; each is also among the team's added members.
    pub leaders: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamChange {
    pub id: TeamId,
    /// The name after the change.
    pub name: String,
    pub rename: Option<Change<String>>,
    pub description: Option<Change<String>>,
    pub color: Option<Change<String>>,
    /// Parent team names.
    pub parent: Option<Change<Option<String>>>,
    pub organization_role: Option<Change<Option<MemberRole>>>,
    /// Leader logins, sorted.
    pub leaders: Option<Change<Vec<String>>>,
}

impl TeamChange {
    fn is_empty(&self) -> bool {
        self.rename.is_none()
            && self.description.is_none()
            && self.color.is_none()
            && self.parent.is_none()
            && self.organization_role.is_none()
            && self.leaders.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamRemove {
    pub id: TeamId,
    pub name: String,
    /// Memberships of the team, removed with it.
    pub membership_count: usize,
    /// Grants to the team on resources that stay, removed with it.
    pub grant_count: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipAdd {
    pub team: String,
    pub login: String,
    pub expire_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipChange {
    pub team: String,
    pub team_id: TeamId,
    pub login: String,
    pub expire_time: Change<Option<DateTime<Utc>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MembershipRemove {
    pub team: String,
    pub team_id: TeamId,
    pub login: String,
    pub user_id: UserId,
}

/// The access a grant gives, in the form the directory stores: the level for
/// ordered types, the permission names otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantValue {
    pub permissions: Vec<String>,
    pub no_access: bool,
    pub expire_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantAdd {
    pub resource_type: String,
    pub external_id: String,
    pub subject: SubjectName,
    pub value: GrantValue,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantChange {
    pub resource_type: String,
    pub external_id: String,
    pub subject: SubjectName,
    pub value: Change<GrantValue>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantRemove {
    pub resource_id: ResourceId,
    pub resource_type: String,
    pub external_id: String,
    pub subject: Subject,
    /// The team name or login, for display.
    pub subject_name: SubjectName,
    pub value: GrantValue,
}

/// Entity counts of an organization before the plan, for the removal guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub members: usize,
    pub memberships: usize,
    pub grants: usize,
}

#[derive(Debug, Clone)]
pub struct OrganizationPlan {
    pub name: String,
    /// `None` when the organization is created.
    pub id: Option<OrganizationId>,
    pub display_name: Option<Change<String>>,
    /// The settings the organization will hold; for a new organization
    /// `from` is the default settings.
    pub settings: Option<Change<OrganizationSettings>>,
    /// The settings to create a new organization with.
    pub new_settings: OrganizationSettings,
    pub new_display_name: String,
    pub members: Section<MemberAdd, MemberChange, MemberRemove>,
    pub resources: Section<ResourceAdd, ResourceChange, ResourceRemove>,
    pub teams: Section<TeamAdd, TeamChange, TeamRemove>,
    pub memberships: Section<MembershipAdd, MembershipChange, MembershipRemove>,
    pub grants: Section<GrantAdd, GrantChange, GrantRemove>,
    pub current: Counts,
    /// Existing teams by the folded name they will have.
    pub team_ids: HashMap<String, TeamId>,
    /// Existing resources by the key they will have.
    pub resource_ids: HashMap<ResourceKey, ResourceId>,
}

impl OrganizationPlan {
    pub fn is_created(&self) -> bool {
        self.id.is_none()
    }

    /// Additions and changes, which are applied with or without `--prune`.
    pub fn upsert_count(&self) -> usize {
        usize::from(self.is_created())
            + usize::from(self.display_name.is_some() && !self.is_created())
            + usize::from(self.settings.is_some() && !self.is_created())
            + self.members.added.len()
            + self.members.changed.len()
            + self.resources.added.len()
            + self.resources.changed.len()
            + self.teams.added.len()
            + self.teams.changed.len()
            + self.memberships.added.len()
            + self.memberships.changed.len()
            + self.grants.added.len()
            + self.grants.changed.len()
    }

    /// Entities the plan removes (only with `--prune`), not counting the
    /// memberships and grants that go with a removed team or resource.
    pub fn removal_count(&self) -> usize {
        self.members.removed.len()
            + self.resources.removed.len()
            + self.teams.removed.len()
            + self.memberships.removed.len()
            + self.grants.removed.len()
    }

    pub fn removed_members(&self) -> usize {
        self.members.removed.len()
    }

    /// Team memberships removed, directly or with their team.
    pub fn removed_memberships(&self) -> usize {
        self.memberships.removed.len()
            + self
                .teams
                .removed
                .iter()
                .map(|team| team.membership_count)
                .sum::<usize>()
    }

    /// Grants removed, directly or with their resource or team.
    pub fn removed_grants(&self) -> usize {
        self.grants.removed.len()
            + self
                .resources
                .removed
                .iter()
                .map(|resource| resource.grant_count)
                .sum::<usize>()
            + self
                .teams
                .removed
                .iter()
                .map(|team| team.grant_count)
                .sum::<usize>()
    }
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub users_created: Vec<NewUser>,
    pub users_changed: Vec<UserChange>,
    pub organizations: Vec<OrganizationPlan>,
    pub options: PlanOptions,
}

impl Plan {
    pub fn upsert_count(&self) -> usize {
        self.users_created.len()
            + self.users_changed.len()
            + self
                .organizations
                .iter()
                .map(OrganizationPlan::upsert_count)
                .sum::<usize>()
    }

    pub fn removal_count(&self) -> usize {
        self.organizations
            .iter()
            .map(OrganizationPlan::removal_count)
            .sum()
    }

    /// Tells whether applying the plan (with the options it was made with)
    /// changes nothing.
    pub fn is_empty(&self) -> bool {
        self.upsert_count() == 0 && (!self.options.prune || self.removal_count() == 0)
    }

    /// Lists the shares of members, memberships and grants the plan removes
    /// that exceed `max_percent` of what an organization has.
    pub fn removals_over(&self, max_percent: u32) -> Vec<RemovalShare> {
        let mut over = Vec::new();
        for organization in &self.organizations {
            let shares = [
                (
                    "organization members",
                    organization.removed_members(),
                    organization.current.members,
                ),
                (
                    "team memberships",
                    organization.removed_memberships(),
                    organization.current.memberships,
                ),
                (
                    "grants",
                    organization.removed_grants(),
                    organization.current.grants,
                ),
            ];
            for (kind, removed, current) in shares {
                if removed > 0
                    && removed.saturating_mul(100) > current.saturating_mul(max_percent as usize)
                {
                    over.push(RemovalShare {
                        organization: organization.name.clone(),
                        kind,
                        removed,
                        current,
                    });
                }
            }
        }
        over
    }
}

/// A share of an organization's entities a plan would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemovalShare {
    pub organization: String,
    pub kind: &'static str,
    pub removed: usize,
    pub current: usize,
}

impl RemovalShare {
    pub fn percent(&self) -> f64 {
        if self.current == 0 {
            100.0
        } else {
            self.removed as f64 * 100.0 / self.current as f64
        }
    }
}

/// Computes the plan that brings `current` to `desired`.
pub fn compute_plan(
    desired: &DesiredState,
    current: &CurrentState,
    registry: &ResourceTypeRegistry,
    options: PlanOptions,
) -> Plan {
    let mut users_created = Vec::new();
    let mut users_changed = Vec::new();
    for user in &desired.users {
        let Some(existing) = current.users.get(&login_key(&user.login)) else {
            users_created.push(NewUser {
                login: user.login.clone(),
                email: user.email.clone(),
                display_name: user.display_name.clone(),
            });
            continue;
        };
        let email = user
            .email
            .as_ref()
            .and_then(|email| Change::if_different(existing.email.clone(), Some(email.clone())));
        let display_name = user
            .display_name
            .as_ref()
            .and_then(|name| Change::if_different(existing.display_name.clone(), name.clone()));
        if email.is_some() || display_name.is_some() {
            users_changed.push(UserChange {
                id: existing.id,
                login: existing.login.clone(),
                email,
                display_name,
            });
        }
    }

    let organizations = desired
        .organizations
        .iter()
        .map(|organization| {
            let existing = current
                .organizations
                .get(&organization_key(&organization.name));
            OrganizationPlanner::new(organization, existing, current, registry, options).plan()
        })
        .collect();

    Plan {
        users_created,
        users_changed,
        organizations,
        options,
    }
}

/// Computes the settings an organization has after applying `desired` over
/// `current`, with defaults sorted by type.
pub fn merge_settings(
    desired: &DesiredSettings,
    current: &OrganizationSettings,
) -> OrganizationSettings {
    let mut defaults: BTreeMap<String, ResourceTypeDefault> = BTreeMap::new();
    let current_defaults: HashMap<&str, &ResourceTypeDefault> = current
        .resource_type_defaults
        .iter()
        .map(|default| (default.resource_type.as_str(), default))
        .collect();
    if !desired.remove_unlisted_defaults {
        for default in &current.resource_type_defaults {
            defaults.insert(default.resource_type.clone(), default.clone());
        }
    }
    for (resource_type, default) in &desired.resource_type_defaults {
        let Some(default) = default else {
            defaults.remove(resource_type);
            continue;
        };
        let base_level = match &default.base_level {
            BaseLevel::Keep => current_defaults
                .get(resource_type.as_str())
                .and_then(|existing| existing.base_level.clone()),
            BaseLevel::None => None,
            BaseLevel::Level(level) => Some(level.clone()),
        };
        defaults.insert(
            resource_type.clone(),
            ResourceTypeDefault {
                resource_type: resource_type.clone(),
                base_level,
                administrators_get_highest_level: default.administrators_get_highest_level,
            },
        );
    }

    OrganizationSettings {
        leaders_manage_members: desired
            .leaders_manage_members
            .unwrap_or(current.leaders_manage_members),
        resource_type_defaults: defaults.into_values().collect(),
    }
}

/// Converts a desired grant into the directory's form.
pub fn desired_grant_value(grant: &DesiredGrant, registry: &ResourceTypeRegistry) -> GrantValue {
    let (permissions, no_access) = match grant.access {
        Access::NoAccess => (Vec::new(), true),
        Access::Permissions(set) => {
            let names = registry
                .get(&grant.resource_type)
                .map(|definition| definition.grant_names(set))
                .unwrap_or_default();
            (names, false)
        }
    };
    GrantValue {
        permissions,
        no_access,
        expire_time: grant.expire_time,
    }
}

/// Normalizes a stored grant, so equal grants compare equal however
/// the permission names were listed.
pub fn current_grant_value(
    resource_type: &str,
    grant: &CurrentGrant,
    registry: &ResourceTypeRegistry,
) -> GrantValue {
    let normalized = registry.get(resource_type).and_then(|definition| {
        definition
            .parse_grant_permissions("permissions", &grant.permissions)
            .ok()
            .map(|set| definition.grant_names(set))
    });
    let permissions = normalized.unwrap_or_else(|| {
        let mut names = grant.permissions.clone();
        names.sort();
        names
    });
    GrantValue {
        permissions,
        no_access: grant.no_access,
        expire_time: grant.expire_time,
    }
}

struct OrganizationPlanner<'a> {
    desired: &'a DesiredOrganization,
    current: std::borrow::Cow<'a, CurrentOrganization>,
    exists: bool,
    state: &'a CurrentState,
    registry: &'a ResourceTypeRegistry,
    options: PlanOptions,
}

impl<'a> OrganizationPlanner<'a> {
    fn new(
        desired: &'a DesiredOrganization,
        current: Option<&'a CurrentOrganization>,
        state: &'a CurrentState,
        registry: &'a ResourceTypeRegistry,
        options: PlanOptions,
    ) -> Self {
        let (current, exists) = match current {
            Some(current) => (std::borrow::Cow::Borrowed(current), true),
            None => (
                std::borrow::Cow::Owned(CurrentOrganization::new(
                    OrganizationId::from_uuid(Uuid::nil()),
                    desired.name.clone(),
                    desired.display_name.clone(),
                    OrganizationSettings::default(),
                )),
                false,
            ),
        };
        Self {
            desired,
            current,
            exists,
            state,
            registry,
            options,
        }
    }

    fn plan(self) -> OrganizationPlan {
        let current = &*self.current;
        let new_settings = merge_settings(&self.desired.settings, &current.settings);
        let settings = Change::if_different(current.settings.clone(), new_settings.clone());
        let display_name = Change::if_different(
            current.display_name.clone(),
            self.desired.display_name.clone(),
        );

        let members = self.plan_members();
        let resource_match = self.match_resources();
        let team_match = self.match_teams();
        let resources = self.plan_resources(&resource_match);
        let (teams, memberships) = self.plan_teams(&team_match);
        let grants = self.plan_grants(&resource_match, &team_match);

        let mut plan = OrganizationPlan {
            name: self.desired.name.clone(),
            id: self.exists.then_some(current.id),
            display_name: if self.exists { display_name } else { None },
            settings: if self.exists { settings } else { None },
            new_settings,
            new_display_name: self.desired.display_name.clone(),
            members,
            resources,
            teams,
            memberships,
            grants,
            current: Counts {
                members: current.members.len(),
                memberships: current.memberships.len(),
                grants: current.grants.len(),
            },
            team_ids: team_match.by_key.clone(),
            resource_ids: resource_match.by_key.clone(),
        };
        self.count_cascades(&mut plan, &resource_match, &team_match);
        plan
    }

    fn plan_members(&self) -> Section<MemberAdd, MemberChange, MemberRemove> {
        let current = &*self.current;
        let mut section = Section::default();
        let mut desired_keys = HashSet::new();
        for member in &self.desired.members {
            let key = login_key(&member.login);
            desired_keys.insert(key.clone());
            let existing = self
                .state
                .users
                .get(&key)
                .and_then(|user| current.members.get(&user.id).map(|found| (user, found)));
            match existing {
                None => section.added.push(MemberAdd {
                    login: member.login.clone(),
                    role: member.role,
                    status: member.status,
                }),
                Some((user, found))
                    if found.role != member.role || found.status != member.status =>
                {
                    section.changed.push(MemberChange {
                        login: user.login.clone(),
                        user_id: user.id,
                        role: Change {
                            from: found.role,
                            to: member.role,
                        },
                        status: Change {
                            from: found.status,
                            to: member.status,
                        },
                    });
                }
                Some(_) => {}
            }
        }
        for (user_id, member) in &current.members {
            let key = self.login_key_of(*user_id);
            if !desired_keys.contains(&key) {
                section.removed.push(MemberRemove {
                    login: self.state.user_login(*user_id),
                    user_id: *user_id,
                    role: member.role,
                });
            }
        }
        section
    }

    fn login_key_of(&self, user_id: UserId) -> String {
        self.state
            .logins
            .get(&user_id)
            .cloned()
            .unwrap_or_else(|| user_id.to_string())
    }

    fn match_resources(&self) -> Matching<ResourceKey, ResourceId> {
        let current = &*self.current;
        let by_key: HashMap<ResourceKey, ResourceId> = current
            .resources
            .iter()
            .map(|(id, resource)| {
                (
                    ResourceKey::lookup(
                        self.registry,
                        &resource.resource_type,
                        &resource.external_id,
                    ),
                    *id,
                )
            })
            .collect();

        let mut matching = Matching::default();
        for resource in &self.desired.resources {
            let key = ResourceKey::lookup(
                self.registry,
                &resource.resource_type,
                &resource.external_id,
            );
            let candidates =
                std::iter::once(&resource.external_id).chain(resource.previous_external_ids.iter());
            for candidate in candidates {
                let candidate_key =
                    ResourceKey::lookup(self.registry, &resource.resource_type, candidate);
                if let Some(id) = by_key.get(&candidate_key)
                    && matching.claim(key.clone(), *id)
                {
                    break;
                }
            }
        }
        for (id, resource) in &current.resources {
            matching.identity.entry(*id).or_insert_with(|| {
                ResourceKey::lookup(
                    self.registry,
                    &resource.resource_type,
                    &resource.external_id,
                )
            });
        }
        matching
    }

    fn match_teams(&self) -> Matching<String, TeamId> {
        let current = &*self.current;
        let by_key: HashMap<String, TeamId> = current
            .teams
            .iter()
            .map(|(id, team)| (team_key(&team.name), *id))
            .collect();

        let mut matching = Matching::default();
        for team in &self.desired.teams {
            let key = team_key(&team.name);
            for candidate in std::iter::once(&team.name).chain(team.previous_names.iter()) {
                if let Some(id) = by_key.get(&team_key(candidate))
                    && matching.claim(key.clone(), *id)
                {
                    break;
                }
            }
        }
        for (id, team) in &current.teams {
            matching
                .identity
                .entry(*id)
                .or_insert_with(|| team_key(&team.name));
        }
        matching
    }

    fn plan_resources(
        &self,
        matching: &Matching<ResourceKey, ResourceId>,
    ) -> Section<ResourceAdd, ResourceChange, ResourceRemove> {
        let current = &*self.current;
        let mut section = Section::default();
        let desired_parent_key = |resource: &crate::desired::DesiredResource| {
            resource
                .parent
                .as_deref()
                .map(|parent| ResourceKey::lookup(self.registry, &resource.resource_type, parent))
        };

        for resource in &self.desired.resources {
            let key = ResourceKey::lookup(
                self.registry,
                &resource.resource_type,
                &resource.external_id,
            );
            let Some(id) = matching.by_key.get(&key) else {
                section.added.push(ResourceAdd {
                    resource_type: resource.resource_type.clone(),
                    external_id: resource.external_id.clone(),
                    display_name: resource
                        .display_name
                        .clone()
                        .unwrap_or_else(|| resource.external_id.clone()),
                    parent: resource.parent.clone(),
                    inherits: resource.inherits,
                });
                continue;
            };
            let Some(existing) = current.resources.get(id) else {
                continue;
            };

            let rename =
                Change::if_different(existing.external_id.clone(), resource.external_id.clone());
            let display_name = resource
                .display_name
                .as_ref()
                .and_then(|name| Change::if_different(existing.display_name.clone(), name.clone()));
            let wanted_parent = desired_parent_key(resource);
            let wanted_parent_id = wanted_parent
                .as_ref()
                .and_then(|parent| matching.by_key.get(parent));
            let parent_same = match (wanted_parent_id, existing.parent) {
                (None, None) => wanted_parent.is_none(),
                (Some(wanted), Some(held)) => *wanted == held,
                _ => false,
            };
            let parent = (!parent_same).then(|| Change {
                from: existing
                    .parent
                    .and_then(|parent| current.resources.get(&parent))
                    .map(|parent| parent.external_id.clone()),
                to: resource.parent.clone(),
            });
            let inherits = Change::if_different(existing.inherits, resource.inherits);

            if rename.is_some() || display_name.is_some() || parent.is_some() || inherits.is_some()
            {
                section.changed.push(ResourceChange {
                    id: *id,
                    resource_type: resource.resource_type.clone(),
                    external_id: resource.external_id.clone(),
                    rename,
                    display_name,
                    parent,
                    inherits,
                });
            }
        }

        let matched: HashSet<ResourceId> = matching.by_key.values().copied().collect();
        for (id, resource) in &current.resources {
            if matched.contains(id) {
                continue;
            }
            section.removed.push(ResourceRemove {
                id: *id,
                resource_type: resource.resource_type.clone(),
                external_id: resource.external_id.clone(),
                depth: resource_depth(current, *id),
                grant_count: 0,
            });
        }
        // Children before parents: the directory refuses to remove a
        // resource that still has children.
        section.removed.sort_by(|left, right| {
            right
                .depth
                .cmp(&left.depth)
                .then(left.external_id.cmp(&right.external_id))
        });
        section
    }

    fn plan_teams(
        &self,
        matching: &Matching<String, TeamId>,
    ) -> (
        Section<TeamAdd, TeamChange, TeamRemove>,
        Section<MembershipAdd, MembershipChange, MembershipRemove>,
    ) {
        let current = &*self.current;
        let mut teams = Section::default();
        let mut memberships = Section::default();

        for team in &self.desired.teams {
            let key = team_key(&team.name);
            let Some(id) = matching.by_key.get(&key) else {
                teams.added.push(TeamAdd {
                    name: team.name.clone(),
                    description: team.description.clone().unwrap_or_default(),
                    color: team.color.clone().unwrap_or_default(),
                    parent: team.parent.clone(),
                    organization_role: team.organization_role.flatten(),
                    leaders: team.leaders.clone(),
                });
                for member in &team.members {
                    memberships.added.push(MembershipAdd {
                        team: team.name.clone(),
                        login: member.login.clone(),
                        expire_time: member.expire_time,
                    });
                }
                continue;
            };
            let Some(existing) = current.teams.get(id) else {
                continue;
            };

            let wanted_parent_id = team
                .parent
                .as_deref()
                .and_then(|parent| matching.by_key.get(&team_key(parent)));
            let parent_same = match (wanted_parent_id, existing.parent) {
                (None, None) => team.parent.is_none(),
                (Some(wanted), Some(held)) => *wanted == held,
                _ => false,
            };
            let parent = (!parent_same).then(|| Change {
                from: existing
                    .parent
                    .and_then(|parent| current.teams.get(&parent))
                    .map(|parent| parent.name.clone()),
                to: team.parent.clone(),
            });

            let desired_member_keys: HashSet<String> = team
                .members
                .iter()
                .map(|member| login_key(&member.login))
                .collect();
            let mut leaders: BTreeMap<String, String> = team
                .leaders
                .iter()
                .map(|login| (login_key(login), login.clone()))
                .collect();
            if !self.options.prune {
                // A leader the file does not mention stays, like the member.
                for leader in &existing.leaders {
                    let key = self.login_key_of(*leader);
                    if !desired_member_keys.contains(&key) {
                        leaders.insert(key, self.state.user_login(*leader));
                    }
                }
            }
            let held_leaders: BTreeMap<String, String> = existing
                .leaders
                .iter()
                .map(|leader| (self.login_key_of(*leader), self.state.user_login(*leader)))
                .collect();
            let leaders = (leaders.keys().collect::<Vec<_>>()
                != held_leaders.keys().collect::<Vec<_>>())
            .then(|| Change {
                from: held_leaders.values().cloned().collect(),
                to: leaders.values().cloned().collect(),
            });

            let change = TeamChange {
                id: *id,
                name: team.name.clone(),
                rename: Change::if_different(existing.name.clone(), team.name.clone()),
                description: team.description.as_ref().and_then(|description| {
                    Change::if_different(existing.description.clone(), description.clone())
                }),
                color: team
                    .color
                    .as_ref()
                    .and_then(|color| Change::if_different(existing.color.clone(), color.clone())),
                parent,
                organization_role: team
                    .organization_role
                    .and_then(|role| Change::if_different(existing.organization_role, role)),
                leaders,
            };
            if !change.is_empty() {
                teams.changed.push(change);
            }

            let held: HashMap<String, (UserId, Option<DateTime<Utc>>)> = current
                .memberships
                .range((*id, UserId::from_uuid(Uuid::nil()))..)
                .take_while(|((team_id, _), _)| team_id == id)
                .map(|((_, user_id), expiry)| (self.login_key_of(*user_id), (*user_id, *expiry)))
                .collect();
            for member in &team.members {
                match held.get(&login_key(&member.login)) {
                    None => memberships.added.push(MembershipAdd {
                        team: team.name.clone(),
                        login: member.login.clone(),
                        expire_time: member.expire_time,
                    }),
                    Some((_, expiry)) if *expiry != member.expire_time => {
                        memberships.changed.push(MembershipChange {
                            team: team.name.clone(),
                            team_id: *id,
                            login: member.login.clone(),
                            expire_time: Change {
                                from: *expiry,
                                to: member.expire_time,
                            },
                        });
                    }
                    Some(_) => {}
                }
            }
            let mut removed: Vec<MembershipRemove> = held
                .iter()
                .filter(|(key, _)| !desired_member_keys.contains(*key))
                .map(|(_, (user_id, _))| MembershipRemove {
                    team: team.name.clone(),
                    team_id: *id,
                    login: self.state.user_login(*user_id),
                    user_id: *user_id,
                })
                .collect();
            removed.sort_by(|left, right| left.login.cmp(&right.login));
            memberships.removed.extend(removed);
        }

        let matched: HashSet<TeamId> = matching.by_key.values().copied().collect();
        for (id, team) in &current.teams {
            if matched.contains(id) {
                continue;
            }
            let membership_count = current
                .memberships
                .range((*id, UserId::from_uuid(Uuid::nil()))..)
                .take_while(|((team_id, _), _)| team_id == id)
                .count();
            teams.removed.push(TeamRemove {
                id: *id,
                name: team.name.clone(),
                membership_count,
                grant_count: 0,
            });
        }
        teams
            .removed
            .sort_by(|left, right| left.name.cmp(&right.name));

        (teams, memberships)
    }

    fn plan_grants(
        &self,
        resource_match: &Matching<ResourceKey, ResourceId>,
        team_match: &Matching<String, TeamId>,
    ) -> Section<GrantAdd, GrantChange, GrantRemove> {
        let current = &*self.current;
        let mut section = Section::default();

        // Current grants in the desired key space, so renamed resources and
        // teams compare under their new names.
        let mut held: HashMap<(ResourceKey, SubjectKey), (ResourceId, Subject, &CurrentGrant)> =
            HashMap::new();
        for ((resource_id, subject), grant) in &current.grants {
            let Some(resource_key) = resource_match.identity.get(resource_id) else {
                continue;
            };
            let subject_key = match subject {
                Subject::Team(team_id) => SubjectKey::Team(
                    team_match
                        .identity
                        .get(team_id)
                        .cloned()
                        .unwrap_or_else(|| team_id.to_string()),
                ),
                Subject::User(user_id) => SubjectKey::User(self.login_key_of(*user_id)),
            };
            held.insert(
                (resource_key.clone(), subject_key),
                (*resource_id, *subject, grant),
            );
        }

        let mut wanted = HashSet::new();
        for grant in &self.desired.grants {
            let resource_key =
                ResourceKey::lookup(self.registry, &grant.resource_type, &grant.external_id);
            let key = (resource_key, grant.subject.key());
            let value = desired_grant_value(grant, self.registry);
            match held.get(&key) {
                None => section.added.push(GrantAdd {
                    resource_type: grant.resource_type.clone(),
                    external_id: grant.external_id.clone(),
                    subject: grant.subject.clone(),
                    value,
                }),
                Some((_, _, existing)) => {
                    let held_value =
                        current_grant_value(&grant.resource_type, existing, self.registry);
                    if held_value != value {
                        section.changed.push(GrantChange {
                            resource_type: grant.resource_type.clone(),
                            external_id: grant.external_id.clone(),
                            subject: grant.subject.clone(),
                            value: Change {
                                from: held_value,
                                to: value,
                            },
                        });
                    }
                }
            }
            wanted.insert(key);
        }

        let kept_resources: HashSet<ResourceId> = resource_match.by_key.values().copied().collect();
        let kept_teams: HashSet<TeamId> = team_match.by_key.values().copied().collect();
        for (key, (resource_id, subject, grant)) in &held {
            if wanted.contains(key) || !kept_resources.contains(resource_id) {
                continue;
            }
            if let Subject::Team(team_id) = subject
                && !kept_teams.contains(team_id)
            {
                continue;
            }
            let Some(resource) = current.resources.get(resource_id) else {
                continue;
            };
            let subject_name = match subject {
                Subject::Team(team_id) => SubjectName::Team(
                    current
                        .teams
                        .get(team_id)
                        .map_or_else(|| team_id.to_string(), |team| team.name.clone()),
                ),
                Subject::User(user_id) => SubjectName::User(self.state.user_login(*user_id)),
            };
            section.removed.push(GrantRemove {
                resource_id: *resource_id,
                resource_type: resource.resource_type.clone(),
                external_id: resource.external_id.clone(),
                subject: *subject,
                subject_name,
                value: current_grant_value(&resource.resource_type, grant, self.registry),
            });
        }
        section.removed.sort_by(|left, right| {
            (&left.resource_type, &left.external_id, &left.subject_name).cmp(&(
                &right.resource_type,
                &right.external_id,
                &right.subject_name,
            ))
        });
        section
    }

    /// Counts the grants that go with removed resources and teams.
    fn count_cascades(
        &self,
        plan: &mut OrganizationPlan,
        resource_match: &Matching<ResourceKey, ResourceId>,
        team_match: &Matching<String, TeamId>,
    ) {
        let current = &*self.current;
        let kept_resources: HashSet<ResourceId> = resource_match.by_key.values().copied().collect();
        let kept_teams: HashSet<TeamId> = team_match.by_key.values().copied().collect();
        let mut by_resource: HashMap<ResourceId, usize> = HashMap::new();
        let mut by_team: HashMap<TeamId, usize> = HashMap::new();
        for (resource_id, subject) in current.grants.keys() {
            if !kept_resources.contains(resource_id) {
                *by_resource.entry(*resource_id).or_default() += 1;
            } else if let Subject::Team(team_id) = subject
                && !kept_teams.contains(team_id)
            {
                *by_team.entry(*team_id).or_default() += 1;
            }
        }
        for resource in &mut plan.resources.removed {
            resource.grant_count = by_resource.get(&resource.id).copied().unwrap_or(0);
        }
        for team in &mut plan.teams.removed {
            team.grant_count = by_team.get(&team.id).copied().unwrap_or(0);
        }
    }
}

/// The matching of desired entities with current ones, and the key every
/// current entity compares under.
struct Matching<K, I> {
    /// Desired key to the id of the matched current entity.
    by_key: HashMap<K, I>,
    /// Every current entity's key: the desired key when matched, its own otherwise.
    identity: HashMap<I, K>,
    claimed: BTreeSet<I>,
}

impl<K, I> Default for Matching<K, I> {
    fn default() -> Self {
        Self {
            by_key: HashMap::new(),
            identity: HashMap::new(),
            claimed: BTreeSet::new(),
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone, I: Ord + Copy + std::hash::Hash> Matching<K, I> {
    /// Matches `key` with `id` unless another key already took it.
    fn claim(&mut self, key: K, id: I) -> bool {
        if !self.claimed.insert(id) {
            return false;
        }
        self.identity.insert(id, key.clone());
        self.by_key.insert(key, id);
        true
    }
}

fn resource_depth(organization: &CurrentOrganization, id: ResourceId) -> usize {
    let mut depth = 0;
    let mut cursor = organization
        .resources
        .get(&id)
        .and_then(|resource| resource.parent);
    while let Some(parent) = cursor {
        depth += 1;
        if depth > organization.resources.len() {
            break;
        }
        cursor = organization
            .resources
            .get(&parent)
            .and_then(|resource| resource.parent);
    }
    depth
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
