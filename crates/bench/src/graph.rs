//! Positional adjacency over a [`Dataset`], and the rules each sampled check
//! touches.
//!
//! Peers express a subset of Work Teams' rules. For every check the harness
//! works out which rules could decide its answer ([`Rule`]); a peer that
//! cannot express one of them leaves that check out of its comparison. The
//! classification is conservative: a rule counts as touched whenever a
//! grant or membership it governs could reach the user on the resource.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use workteams_domain::{
    Combining, Grant, MemberRole, MemberStatus, PermissionSet, ResourceId, ResourceTypeDef,
    Subject, TeamId, UserId,
};

use crate::dataset::Dataset;

/// A rule of Work Teams that a check can depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A grant reaches the user through an ancestor of one of their teams.
    NestedTeams,
    /// A grant on an ancestor folder reaches the resource.
    FolderInheritance,
    /// An inheritance break cuts off a grant that would reach the user.
    InheritanceBreak,
    /// The nearest individual grant decides alone over other grants.
    IndividualPrecedence,
    /// An individual "no access" on the path.
    IndividualNoAccess,
    /// An expired team membership could have carried a grant.
    MembershipExpiry,
    /// An expired grant sits on the path for the user or their teams.
    GrantExpiry,
    /// Several grants add up on a cumulative type.
    CumulativePermissions,
    /// The organization's base level or administrators' highest level.
    OrganizationDefaults,
    /// The user is suspended, or not a member of the organization.
    SuspendedMember,
}

impl Rule {
    pub const ALL: [Rule; 10] = [
        Rule::NestedTeams,
        Rule::FolderInheritance,
        Rule::InheritanceBreak,
        Rule::IndividualPrecedence,
        Rule::IndividualNoAccess,
        Rule::MembershipExpiry,
        Rule::GrantExpiry,
        Rule::CumulativePermissions,
        Rule::OrganizationDefaults,
        Rule::SuspendedMember,
    ];

    pub const fn description(self) -> &'static str {
        match self {
            Self::NestedTeams => "nested teams",
            Self::FolderInheritance => "folder inheritance",
            Self::InheritanceBreak => "inheritance breaks",
            Self::IndividualPrecedence => {
                "individual precedence (nearest individual grant decides)"
            }
            Self::IndividualNoAccess => "individual no-access",
            Self::MembershipExpiry => "membership expiry",
            Self::GrantExpiry => "grant expiry",
            Self::CumulativePermissions => "cumulative permissions (union of grants)",
            Self::OrganizationDefaults => {
                "organization defaults (base level, administrators' highest level)"
            }
            Self::SuspendedMember => "suspended members",
        }
    }

    const fn bit(self) -> u16 {
        1 << self as u16
    }
}

/// A set of rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct RuleSet(u16);

impl RuleSet {
    pub const EMPTY: Self = Self(0);

    pub fn of(rules: &[Rule]) -> Self {
        Self(rules.iter().fold(0, |bits, rule| bits | rule.bit()))
    }

    pub fn insert(&mut self, rule: Rule) {
        self.0 |= rule.bit();
    }

    pub const fn contains(self, rule: Rule) -> bool {
        self.0 & rule.bit() != 0
    }

    pub const fn intersects(self, other: Self) -> bool {
        self.0 & other.0 != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Rule> {
        Rule::ALL
            .into_iter()
            .filter(move |rule| self.contains(*rule))
    }
}

/// The rules every peer model in this harness expresses: team membership,
/// nested teams, direct grants with implied lower levels, folder inheritance
/// with breaks, and the union of grants.
pub const PORTABLE_RULES: [Rule; 4] = [
    Rule::NestedTeams,
    Rule::FolderInheritance,
    Rule::InheritanceBreak,
    Rule::CumulativePermissions,
];

/// The rules outside [`PORTABLE_RULES`].
pub fn non_portable_rules() -> RuleSet {
    let portable = RuleSet::of(&PORTABLE_RULES);
    RuleSet::of(
        &Rule::ALL
            .into_iter()
            .filter(|rule| !portable.contains(*rule))
            .collect::<Vec<_>>(),
    )
}

/// One access question by positions in the dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckCase {
    pub user: usize,
    pub resource: usize,
    /// Index in the resource type's permission list.
    pub permission: usize,
}

/// Positional adjacency lists over a dataset.
#[derive(Debug)]
pub struct Graph<'a> {
    pub dataset: &'a Dataset,
    pub user_positions: HashMap<UserId, usize>,
    pub team_positions: HashMap<TeamId, usize>,
    pub resource_positions: HashMap<ResourceId, usize>,
    pub team_parents: Vec<Option<usize>>,
    pub team_children: Vec<Vec<usize>>,
    /// Membership positions of each user.
    pub user_memberships: Vec<Vec<usize>>,
    /// Membership positions of each team.
    pub team_memberships: Vec<Vec<usize>>,
    /// Each resource's parent, whether or not it inherits.
    pub resource_parents: Vec<Option<usize>>,
    pub resource_children: Vec<Vec<usize>>,
    /// Grant positions on each resource.
    pub resource_grants: Vec<Vec<usize>>,
    /// Each resource's type definition.
    pub definitions: Vec<Arc<ResourceTypeDef>>,
    /// Each grant's resolved permissions.
    pub grant_permissions: Vec<PermissionSet>,
    /// Each user's member record position, if any.
    pub user_members: Vec<Option<usize>>,
}

impl<'a> Graph<'a> {
    /// Builds the adjacency lists. Fails when an entity refers to one that
    /// does not exist or a grant names an unknown permission, since the
    /// generator never produces either.
    pub fn new(dataset: &'a Dataset) -> anyhow::Result<Self> {
        let user_positions: HashMap<_, _> = dataset
            .users
            .iter()
            .enumerate()
            .map(|(p, u)| (u.id, p))
            .collect();
        let team_positions: HashMap<_, _> = dataset
            .teams
            .iter()
            .enumerate()
            .map(|(p, t)| (t.id, p))
            .collect();
        let resource_positions: HashMap<_, _> = dataset
            .resources
            .iter()
            .enumerate()
            .map(|(p, r)| (r.id, p))
            .collect();

        let team_parents = dataset
            .teams
            .iter()
            .map(|team| {
                team.parent_team_id
                    .map(|parent| lookup(&team_positions, parent, "team"))
                    .transpose()
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut team_children = vec![Vec::new(); dataset.teams.len()];
        for (child, parent) in team_parents.iter().enumerate() {
            if let Some(parent) = parent {
                team_children[*parent].push(child);
            }
        }

        let mut user_memberships = vec![Vec::new(); dataset.users.len()];
        let mut team_memberships = vec![Vec::new(); dataset.teams.len()];
        for (position, membership) in dataset.memberships.iter().enumerate() {
            user_memberships[lookup(&user_positions, membership.user_id, "user")?].push(position);
            team_memberships[lookup(&team_positions, membership.team_id, "team")?].push(position);
        }

        let resource_parents = dataset
            .resources
            .iter()
            .map(|resource| {
                resource
                    .parent_resource_id
                    .map(|parent| lookup(&resource_positions, parent, "resource"))
                    .transpose()
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut resource_children = vec![Vec::new(); dataset.resources.len()];
        for (child, parent) in resource_parents.iter().enumerate() {
            if let Some(parent) = parent {
                resource_children[*parent].push(child);
            }
        }

        let definitions = dataset
            .resources
            .iter()
            .map(|resource| {
                dataset
                    .registry
                    .get(&resource.resource_type)
                    .cloned()
                    .ok_or_else(|| {
                        anyhow::anyhow!(
                            "resource {} has the unknown type {}",
                            resource.id,
                            resource.resource_type
                        )
                    })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;

        let mut resource_grants = vec![Vec::new(); dataset.resources.len()];
        let mut grant_permissions = Vec::with_capacity(dataset.grants.len());
        for (position, grant) in dataset.grants.iter().enumerate() {
            let resource = lookup(&resource_positions, grant.resource_id, "resource")?;
            resource_grants[resource].push(position);
            let permissions =
                definitions[resource].parse_grant_permissions("permissions", &grant.permissions)?;
            grant_permissions.push(permissions);
        }

        let mut user_members = vec![None; dataset.users.len()];
        for (position, member) in dataset.members.iter().enumerate() {
            if member.organization_id == dataset.organization.id {
                user_members[lookup(&user_positions, member.user_id, "user")?] = Some(position);
            }
        }

        Ok(Self {
            dataset,
            user_positions,
            team_positions,
            resource_positions,
            team_parents,
            team_children,
            user_memberships,
            team_memberships,
            resource_parents,
            resource_children,
            resource_grants,
            definitions,
            grant_permissions,
            user_members,
        })
    }

    /// Whether the resource's type passes grants down to descendants.
    pub fn propagates(&self, resource: usize) -> bool {
        self.definitions[resource].grants_propagate
    }

    /// The parent a grant reaches the resource from: the real parent when the
    /// type propagates grants and the resource inherits, else none.
    pub fn inheriting_parent(&self, resource: usize) -> Option<usize> {
        let inherits = self.dataset.resources[resource].inherits;
        if self.propagates(resource) && inherits {
            self.resource_parents[resource]
        } else {
            None
        }
    }

    /// The resource and the ancestors whose grants reach it.
    pub fn effective_path(&self, resource: usize) -> Vec<usize> {
        let mut path = vec![resource];
        let mut current = resource;
        while let Some(parent) = self.inheriting_parent(current) {
            path.push(parent);
            current = parent;
        }
        path
    }

    /// The resource and every ancestor, ignoring inheritance breaks.
    pub fn full_chain(&self, resource: usize) -> Vec<usize> {
        let mut chain = vec![resource];
        let mut current = resource;
        while let Some(parent) = self.resource_parents[current] {
            chain.push(parent);
            current = parent;
        }
        chain
    }

    /// The team and its ancestors, nearest first.
    pub fn team_and_ancestors(&self, team: usize) -> Vec<usize> {
        let mut teams = vec![team];
        let mut current = team;
        while let Some(parent) = self.team_parents[current] {
            teams.push(parent);
            current = parent;
        }
        teams
    }

    /// The user's teams with their ancestors: only memberships active at
    /// `now`, or every membership when `now` is `None`.
    pub fn user_teams(&self, user: usize, now: Option<DateTime<Utc>>) -> Vec<usize> {
        let mut teams = Vec::new();
        for membership in &self.user_memberships[user] {
            let membership = &self.dataset.memberships[*membership];
            if now.is_some_and(|now| !membership.is_active_at(now)) {
                continue;
            }
            for team in self.team_and_ancestors(self.team_positions[&membership.team_id]) {
                if !teams.contains(&team) {
                    teams.push(team);
                }
            }
        }
        teams
    }

    /// The teams the user is a direct, unexpired member of.
    pub fn direct_teams(&self, user: usize, now: DateTime<Utc>) -> Vec<usize> {
        self.user_memberships[user]
            .iter()
            .map(|membership| &self.dataset.memberships[*membership])
            .filter(|membership| membership.is_active_at(now))
            .map(|membership| self.team_positions[&membership.team_id])
            .collect()
    }

    /// Whether a grant's subject is the user or one of `teams`.
    fn reaches(&self, grant: &Grant, user: usize, teams: &[usize]) -> bool {
        match grant.subject {
            Subject::User(id) => self.dataset.users[user].id == id,
            Subject::Team(id) => self
                .team_positions
                .get(&id)
                .is_some_and(|team| teams.contains(team)),
        }
    }

    /// The rules whose outcome could decide `case` at `now`.
    pub fn rules_touched(&self, case: CheckCase, now: DateTime<Utc>) -> RuleSet {
        let mut rules = RuleSet::EMPTY;
        let dataset = self.dataset;
        let definition = &self.definitions[case.resource];
        let all_teams = self.user_teams(case.user, None);
        let active_direct = self.direct_teams(case.user, now);
        let active_teams = self.user_teams(case.user, Some(now));
        let path = self.effective_path(case.resource);
        let chain = self.full_chain(case.resource);

        let member = self.user_members[case.user].map(|position| &dataset.members[position]);
        if member.is_none_or(|member| member.status == MemberStatus::Suspended) {
            rules.insert(Rule::SuspendedMember);
        }

        let defaults = dataset
            .organization
            .settings
            .resource_type_defaults
            .iter()
            .find(|defaults| defaults.resource_type == definition.name);
        if let (Some(defaults), Some(member)) = (defaults, member) {
            let internal_base = defaults.base_level.is_some() && member.role.is_internal();
            let administrator = defaults.administrators_get_highest_level
                && matches!(member.role, MemberRole::Owner | MemberRole::Administrator);
            if internal_base || administrator {
                rules.insert(Rule::OrganizationDefaults);
            }
        }

        let mut reaching_on_path = 0;
        let mut individual_on_path = false;
        for (depth, resource) in chain.iter().enumerate() {
            let on_path = depth < path.len();
            for grant in &self.resource_grants[*resource] {
                let grant = &dataset.grants[*grant];
                if !self.reaches(grant, case.user, &all_teams) {
                    continue;
                }
                if !grant.is_active_at(now) {
                    rules.insert(Rule::GrantExpiry);
                    continue;
                }
                let active = self.reaches(grant, case.user, &active_teams);
                if !active {
                    rules.insert(Rule::MembershipExpiry);
                    continue;
                }
                if !on_path {
                    rules.insert(Rule::InheritanceBreak);
                    continue;
                }
                reaching_on_path += 1;
                if depth > 0 {
                    rules.insert(Rule::FolderInheritance);
                }
                match grant.subject {
                    Subject::User(_) => {
                        individual_on_path = true;
                        if grant.no_access {
                            rules.insert(Rule::IndividualNoAccess);
                        }
                    }
                    Subject::Team(id) => {
                        let team = self.team_positions[&id];
                        if !active_direct.contains(&team) {
                            rules.insert(Rule::NestedTeams);
                        }
                    }
                }
            }
        }

        if reaching_on_path > 1 {
            match definition.combining {
                Combining::IndividualPrecedence if individual_on_path => {
                    rules.insert(Rule::IndividualPrecedence)
                }
                Combining::IndividualPrecedence => {}
                Combining::Cumulative => rules.insert(Rule::CumulativePermissions),
            }
        }
        rules
    }

    /// The permissions under the rules every peer shares: the union of the
    /// grants on the effective path to the user and their teams (every
    /// membership, none expired), "no access" contributing nothing, with no
    /// organization defaults. Equals Work Teams' answer whenever
    /// [`rules_touched`](Self::rules_touched) lists only portable rules.
    pub fn portable_permissions(&self, user: usize, resource: usize) -> PermissionSet {
        let teams = self.user_teams(user, None);
        let mut permissions = PermissionSet::EMPTY;
        for resource in self.effective_path(resource) {
            for grant in &self.resource_grants[resource] {
                if self.reaches(&self.dataset.grants[*grant], user, &teams) {
                    permissions = permissions.union(self.grant_permissions[*grant]);
                }
            }
        }
        permissions
    }
}

fn lookup<K: std::hash::Hash + Eq + std::fmt::Display>(
    positions: &HashMap<K, usize>,
    key: K,
    what: &str,
) -> anyhow::Result<usize> {
    positions
        .get(&key)
        .copied()
        .ok_or_else(|| anyhow::anyhow!("unknown {what} {key}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn rule_set_round_trips() {
        let set = RuleSet::of(&[Rule::GrantExpiry, Rule::NestedTeams]);
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            vec![Rule::NestedTeams, Rule::GrantExpiry]
        );
    }

    #[test]
    fn non_portable_excludes_portable() {
        let rules = non_portable_rules();
        assert!(!rules.contains(Rule::NestedTeams));
        assert!(rules.contains(Rule::IndividualNoAccess));
    }

    #[test]
    fn effective_path_stops_at_break() {
        let dataset = generate(Size::Small, 5, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let broken = (0..dataset.resources.len())
            .find(|position| !dataset.resources[*position].inherits)
            .unwrap();
        assert_eq!(graph.effective_path(broken), vec![broken]);
        assert!(graph.full_chain(broken).len() > 1);
    }
}
