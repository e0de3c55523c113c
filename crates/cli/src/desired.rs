//! The state a manifest or a Peribolos configuration declares: organizations
//! with their members, teams, resources and grants, in a form both readers
//! produce and the plan engine compares with the directory.
//!
//! Names and logins are kept as written; the `*_key` functions give the keys
//! under which the directory compares them (ignoring case for logins, team
//! names and case-insensitive external ids).

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use workteams_domain::text::fold;
use workteams_domain::{
    MemberRole, MemberStatus, PermissionSet, ResourceTypeDef, ResourceTypeRegistry,
};

use crate::yaml::{Diagnostics, Location};

/// Everything one manifest or Peribolos configuration declares.
#[derive(Debug, Clone, Default)]
pub struct DesiredState {
    /// Every user any organization refers to, once each (by folded login),
    /// in the spelling first seen.
    pub users: Vec<DesiredUser>,
    pub organizations: Vec<DesiredOrganization>,
}

/// A user account. `None` fields are not managed: the directory keeps
/// whatever value it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredUser {
    pub login: String,
    pub email: Option<String>,
    pub display_name: Option<String>,
    pub origin: Location,
}

#[derive(Debug, Clone)]
pub struct DesiredOrganization {
    /// The unique organization name.
    pub name: String,
    pub display_name: String,
    pub settings: DesiredSettings,
    /// One entry per folded login.
    pub members: Vec<DesiredMember>,
    /// Parents before children; one entry per folded name.
    pub teams: Vec<DesiredTeam>,
    /// Parents before children; one entry per resource key.
    pub resources: Vec<DesiredResource>,
    /// One entry per resource and subject.
    pub grants: Vec<DesiredGrant>,
    pub origin: Location,
}

/// Organization settings. `None` and absent entries are not managed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredSettings {
    pub leaders_manage_members: Option<bool>,
    /// Per resource type: the default to hold, or `None` to hold none.
    pub resource_type_defaults: BTreeMap<String, Option<TypeDefault>>,
    /// Whether defaults of types not listed above are removed.
    pub remove_unlisted_defaults: bool,
}

/// The default access an organization gives on every resource of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeDefault {
    pub base_level: BaseLevel,
    pub administrators_get_highest_level: bool,
}

/// The level every internal member holds on every resource of a type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BaseLevel {
    /// Not managed: the directory's current base level stays.
    Keep,
    /// No base level.
    None,
    Level(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredMember {
    pub login: String,
    pub role: MemberRole,
    pub status: MemberStatus,
    pub origin: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTeam {
    pub name: String,
    /// Former names: an existing team with one of them is renamed.
    pub previous_names: Vec<String>,
    /// `None` leaves the directory's value as it is.
    pub description: Option<String>,
    /// `None` leaves the directory's value as it is.
    pub color: Option<String>,
    /// The parent team's name; `None` for a top-level team.
    pub parent: Option<String>,
    /// The organization role the team gives its members (administrator or
    /// collaborator), `Some(None)` for none; `None` leaves it as it is.
    pub organization_role: Option<Option<MemberRole>>,
    /// Logins; every leader is also in `members`.
    pub leaders: Vec<String>,
    pub members: Vec<DesiredTeamMember>,
    pub origin: Location,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredTeamMember {
    pub login: String,
    pub expire_time: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredResource {
    pub resource_type: String,
    pub external_id: String,
    /// Former external ids: an existing resource with one of them is renamed.
    pub previous_external_ids: Vec<String>,
    /// `None` leaves the directory's value as it is (the external id is used
    /// when the resource is created).
    pub display_name: Option<String>,
    /// The parent's external id, of the same type.
    pub parent: Option<String>,
    pub inherits: bool,
    pub origin: Location,
}

/// The team or user a desired grant is given to, by team name or login.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectName {
    Team(String),
    User(String),
}

impl SubjectName {
    /// Returns the key under which the directory compares the subject.
    pub fn key(&self) -> SubjectKey {
        match self {
            Self::Team(name) => SubjectKey::Team(team_key(name)),
            Self::User(login) => SubjectKey::User(login_key(login)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SubjectKey {
    Team(String),
    User(String),
}

/// The access a grant gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Permissions(PermissionSet),
    /// An explicit "no access", for individual grants only.
    NoAccess,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredGrant {
    pub resource_type: String,
    pub external_id: String,
    pub subject: SubjectName,
    pub access: Access,
    pub expire_time: Option<DateTime<Utc>>,
    pub origin: Location,
}

/// Identifies a resource within an organization: its type and its external
/// id, folded when the type compares external ids ignoring case.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceKey {
    pub resource_type: String,
    pub external_id: String,
}

impl ResourceKey {
    pub fn new(definition: &ResourceTypeDef, external_id: &str) -> Self {
        let external_id = if definition.case_insensitive_external_ids {
            fold(external_id)
        } else {
            external_id.to_owned()
        };
        Self {
            resource_type: definition.name.clone(),
            external_id,
        }
    }

    /// Returns the key of a resource of a type the registry may not know.
    /// Unknown types compare external ids exactly.
    pub fn lookup(registry: &ResourceTypeRegistry, resource_type: &str, external_id: &str) -> Self {
        match registry.get(resource_type) {
            Some(definition) => Self::new(definition, external_id),
            None => Self {
                resource_type: resource_type.to_owned(),
                external_id: external_id.to_owned(),
            },
        }
    }
}

pub fn login_key(login: &str) -> String {
    fold(login)
}

pub fn team_key(name: &str) -> String {
    fold(name)
}

pub fn organization_key(name: &str) -> String {
    fold(name)
}

/// Collects users across organizations: the first spelling of a login wins,
/// and managed attributes must agree wherever the user is described.
#[derive(Debug, Default)]
pub struct UserCollector {
    users: Vec<DesiredUser>,
    index: HashMap<String, usize>,
}

impl UserCollector {
    /// Records a reference to `login`, with the attributes given at `origin`.
    /// Returns the spelling in force for the login.
    pub fn add(
        &mut self,
        diagnostics: &mut Diagnostics,
        login: &str,
        email: Option<String>,
        display_name: Option<String>,
        origin: &Location,
    ) -> String {
        let key = login_key(login);
        let Some(&position) = self.index.get(&key) else {
            self.index.insert(key, self.users.len());
            self.users.push(DesiredUser {
                login: login.to_owned(),
                email,
                display_name,
                origin: origin.clone(),
            });
            return login.to_owned();
        };

        let user = &mut self.users[position];
        merge_attribute(
            diagnostics,
            &mut user.email,
            email,
            "e-mail address",
            &user.login,
            &user.origin,
            origin,
        );
        merge_attribute(
            diagnostics,
            &mut user.display_name,
            display_name,
            "display name",
            &user.login,
            &user.origin,
            origin,
        );
        user.login.clone()
    }

    pub fn into_users(self) -> Vec<DesiredUser> {
        self.users
    }
}

fn merge_attribute(
    diagnostics: &mut Diagnostics,
    kept: &mut Option<String>,
    given: Option<String>,
    attribute: &str,
    login: &str,
    first_origin: &Location,
    origin: &Location,
) {
    let Some(given) = given else {
        return;
    };
    match kept {
        None => *kept = Some(given),
        Some(existing) if *existing == given => {}
        Some(existing) => diagnostics.error(
            origin.clone(),
            format!(
                "user {login} is given the {attribute} {given:?} here but {existing:?} at {first_origin}; \
                 give one value"
            ),
        ),
    }
}

/// Orders teams so every parent comes before its children, recording an
/// error for an unknown parent or a cycle. Teams keep their file order
/// otherwise.
pub fn order_teams(teams: Vec<DesiredTeam>, diagnostics: &mut Diagnostics) -> Vec<DesiredTeam> {
    let keys: HashSet<String> = teams.iter().map(|team| team_key(&team.name)).collect();
    for team in &teams {
        let Some(parent) = &team.parent else {
            continue;
        };
        if !keys.contains(&team_key(parent)) {
            diagnostics.error(
                team.origin.clone(),
                format!(
                    "team {} names the parent team {parent}, which is not declared",
                    team.name
                ),
            );
        }
    }

    order_parents_first(
        teams,
        |team| team_key(&team.name),
        |team| team.parent.as_deref().map(team_key),
        |team, diagnostics| {
            diagnostics.error(
                team.origin.clone(),
                format!(
                    "team {} is its own ancestor: the parent chain forms a cycle",
                    team.name
                ),
            );
        },
        diagnostics,
    )
}

/// Orders resources so every parent comes before its children, recording
/// an error for an unknown parent, a parent on a type without nesting, or a
/// cycle.
pub fn order_resources(
    resources: Vec<DesiredResource>,
    registry: &ResourceTypeRegistry,
    diagnostics: &mut Diagnostics,
) -> Vec<DesiredResource> {
    let keys: HashSet<ResourceKey> = resources
        .iter()
        .map(|resource| {
            ResourceKey::lookup(registry, &resource.resource_type, &resource.external_id)
        })
        .collect();
    for resource in &resources {
        let Some(parent) = &resource.parent else {
            continue;
        };
        let nestable = registry
            .get(&resource.resource_type)
            .is_some_and(|definition| definition.nestable);
        if !nestable {
            diagnostics.error(
                resource.origin.clone(),
                format!(
                    "resources of type {} cannot have a parent; remove `parent: {parent}`",
                    resource.resource_type
                ),
            );
        } else if !keys.contains(&ResourceKey::lookup(
            registry,
            &resource.resource_type,
            parent,
        )) {
            diagnostics.error(
                resource.origin.clone(),
                format!(
                    "resource {} {} names the parent {parent}, which is not declared with the same type",
                    resource.resource_type, resource.external_id
                ),
            );
        }
    }

    order_parents_first(
        resources,
        |resource| ResourceKey::lookup(registry, &resource.resource_type, &resource.external_id),
        |resource| {
            resource
                .parent
                .as_deref()
                .map(|parent| ResourceKey::lookup(registry, &resource.resource_type, parent))
        },
        |resource, diagnostics| {
            diagnostics.error(
                resource.origin.clone(),
                format!(
                    "resource {} {} is its own ancestor: the parent chain forms a cycle",
                    resource.resource_type, resource.external_id
                ),
            );
        },
        diagnostics,
    )
}

/// Sorts a forest given by parent keys topologically, keeping the input
/// order otherwise. Items whose parent is unknown count as roots (the caller
/// reports them). Items on a cycle are reported through `on_cycle` and
/// appended at the end.
fn order_parents_first<T, K>(
    items: Vec<T>,
    key_of: impl Fn(&T) -> K,
    parent_of: impl Fn(&T) -> Option<K>,
    on_cycle: impl Fn(&T, &mut Diagnostics),
    diagnostics: &mut Diagnostics,
) -> Vec<T>
where
    K: std::hash::Hash + Eq + Clone,
{
    let keys: Vec<K> = items.iter().map(&key_of).collect();
    let position: HashMap<K, usize> = keys
        .iter()
        .cloned()
        .enumerate()
        .map(|(index, key)| (key, index))
        .collect();
    let parents: Vec<Option<usize>> = items
        .iter()
        .map(|item| parent_of(item).and_then(|parent| position.get(&parent).copied()))
        .collect();

    let mut children: Vec<Vec<usize>> = vec![Vec::new(); items.len()];
    let mut roots = Vec::new();
    for (index, parent) in parents.iter().enumerate() {
        match parent {
            Some(parent) => children[*parent].push(index),
            None => roots.push(index),
        }
    }

    let mut order = Vec::with_capacity(items.len());
    let mut placed = vec![false; items.len()];
    for root in roots {
        let mut stack = vec![root];
        while let Some(index) = stack.pop() {
            placed[index] = true;
            order.push(index);
            stack.extend(children[index].iter().rev().copied());
        }
    }
    for (index, was_placed) in placed.iter().enumerate() {
        if !was_placed {
            on_cycle(&items[index], diagnostics);
            order.push(index);
        }
    }

    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order
        .into_iter()
        .filter_map(|index| slots[index].take())
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn here(line: usize) -> Location {
        Location {
            file: Arc::from("test.yaml"),
            line,
            column: 1,
        }
    }

    fn team(name: &str, parent: Option<&str>) -> DesiredTeam {
        DesiredTeam {
            name: name.to_owned(),
            previous_names: Vec::new(),
            description: None,
            color: None,
            parent: parent.map(str::to_owned),
            organization_role: None,
            leaders: Vec::new(),
            members: Vec::new(),
            origin: here(1),
        }
    }

    #[test]
    fn parents_come_first() {
        let mut diagnostics = Diagnostics::default();
        let teams = vec![
            team("leaf", Some("Mid")),
            team("mid", Some("root")),
            team("root", None),
        ];
        let ordered = order_teams(teams, &mut diagnostics);
        let names: Vec<&str> = ordered.iter().map(|team| team.name.as_str()).collect();
        assert_eq!(names, vec!["root", "mid", "leaf"]);
        assert!(diagnostics.errors.is_empty());
    }

    #[test]
    fn team_cycle_is_reported() {
        let mut diagnostics = Diagnostics::default();
        let teams = vec![team("a", Some("b")), team("b", Some("a")), team("c", None)];
        let ordered = order_teams(teams, &mut diagnostics);
        assert_eq!(ordered.len(), 3);
        assert_eq!(diagnostics.errors.len(), 2);
    }

    #[test]
    fn unknown_parent_is_reported() {
        let mut diagnostics = Diagnostics::default();
        order_teams(vec![team("a", Some("ghost"))], &mut diagnostics);
        assert_eq!(diagnostics.errors.len(), 1);
        assert!(diagnostics.errors[0].message.contains("ghost"));
    }

    #[test]
    fn first_login_spelling_wins() {
        let mut diagnostics = Diagnostics::default();
        let mut users = UserCollector::default();
        users.add(&mut diagnostics, "Dev0042", None, None, &here(1));
        let kept = users.add(&mut diagnostics, "dev0042", None, None, &here(2));
        assert_eq!(kept, "Dev0042");
        assert_eq!(users.into_users().len(), 1);
    }

    #[test]
    fn conflicting_user_attributes_are_errors() {
        let mut diagnostics = Diagnostics::default();
        let mut users = UserCollector::default();
        users.add(
            &mut diagnostics,
            "ada",
            Some("ada@example.com".to_owned()),
            None,
            &here(1),
        );
        users.add(
            &mut diagnostics,
            "ADA",
            Some("ada@example.org".to_owned()),
            None,
            &here(7),
        );
        assert_eq!(diagnostics.errors.len(), 1);
        assert_eq!(diagnostics.errors[0].location.line, 7);
    }

    #[test]
    fn repository_keys_ignore_case() {
        let registry = ResourceTypeRegistry::with_builtins(Vec::new()).unwrap();
        let upper = ResourceKey::lookup(&registry, "git.repository", "Kubernetes");
        let lower = ResourceKey::lookup(&registry, "git.repository", "kubernetes");
        assert_eq!(upper, lower);
    }
}
