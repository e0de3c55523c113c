//! The manifest format of `workteams apply`: one or more organizations with
//! their settings, members, teams, resources and grants.
//!
//! A manifest is read completely and checked against the resource types in
//! force before anything is sent to the directory. Every problem is reported
//! with file, line and column. Unknown keys are errors, because a misspelt
//! key would otherwise silently drop what it was meant to declare.
//!
//! ```yaml
//! organizations:
//!   - name: acme
//!     display_name: Acme
//!     settings:
//!       leaders_manage_members: true
//!       defaults:
//!         kchat.channel: { base_level: member, administrators_get_highest_level: true }
//!     members:
//!       - { login: alice, email: alice@acme.example, role: owner }
//!       - { login: bob }
//!     teams:
//!       - name: Support
//!         organization_role: collaborator   # or administrator, none
//!         leaders: [alice]
//!         members: [bob, { login: carol, expires: 2026-12-31 }]
//!     resources:
//!       - type: mail.mailbox
//!         external_id: help@acme.example
//!         grants:
//!           - { team: Support, permissions: [read, send] }
//!           - { user: alice, no_access: true }
//! ```

use std::collections::{HashMap, HashSet};
use std::path::Path;

use chrono::{DateTime, NaiveDate, Utc};
use marked_yaml::Node;
use workteams_domain::text::{
    MAX_EXTERNAL_ID_CHARS, MAX_NAME_CHARS, check_color, check_description, check_email,
    check_login, check_name,
};
use workteams_domain::{Combining, MemberRole, MemberStatus, ResourceTypeRegistry};

use crate::desired::{
    Access, BaseLevel, DesiredGrant, DesiredMember, DesiredOrganization, DesiredResource,
    DesiredSettings, DesiredState, DesiredTeam, DesiredTeamMember, ResourceKey, SubjectName,
    TypeDefault, UserCollector, login_key, order_resources, order_teams, organization_key,
    team_key,
};
use crate::yaml::{
    Diagnostic, Diagnostics, Location, MappingView, Reader, UnknownKeys, parse_source,
};

/// A configuration read without errors, with the warnings met on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub state: DesiredState,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and checks the manifest at `path`.
pub fn load_manifest(path: &Path, registry: &ResourceTypeRegistry) -> Result<Loaded, Diagnostics> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => parse_manifest(&name, &text, registry),
        Err(error) => {
            let mut diagnostics = Diagnostics::default();
            diagnostics.error(
                Location::whole_file(&name.as_str().into()),
                format!("cannot read the manifest: {error}"),
            );
            Err(diagnostics)
        }
    }
}

/// Parses and checks manifest text; `name` is the file name used in messages.
pub fn parse_manifest(
    name: &str,
    text: &str,
    registry: &ResourceTypeRegistry,
) -> Result<Loaded, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let source = match parse_source(name, text) {
        Ok(source) => source,
        Err(error) => {
            diagnostics.errors.push(error);
            return Err(diagnostics);
        }
    };

    let state = {
        let mut reader = Reader::new(&source.name, &mut diagnostics);
        read_manifest(&mut reader, &source.root, registry)
    };

    if diagnostics.has_errors() {
        Err(diagnostics)
    } else {
        Ok(Loaded {
            state,
            warnings: diagnostics.warnings,
        })
    }
}

const MANIFEST_KEYS: &[&str] = &["organizations"];
const ORGANIZATION_KEYS: &[&str] = &[
    "name",
    "display_name",
    "settings",
    "members",
    "teams",
    "resources",
];
const SETTINGS_KEYS: &[&str] = &["leaders_manage_members", "defaults"];
const DEFAULT_KEYS: &[&str] = &["base_level", "administrators_get_highest_level"];
const MEMBER_KEYS: &[&str] = &["login", "email", "display_name", "role", "status"];
const TEAM_KEYS: &[&str] = &[
    "name",
    "previous_names",
    "description",
    "color",
    "parent",
    "organization_role",
    "leaders",
    "members",
];
const TEAM_MEMBER_KEYS: &[&str] = &["login", "expires"];
const RESOURCE_KEYS: &[&str] = &[
    "type",
    "external_id",
    "previous_external_ids",
    "display_name",
    "parent",
    "inherits",
    "grants",
];
const GRANT_KEYS: &[&str] = &[
    "team",
    "user",
    "permissions",
    "level",
    "no_access",
    "expires",
];

fn read_manifest(
    reader: &mut Reader<'_>,
    root: &Node,
    registry: &ResourceTypeRegistry,
) -> DesiredState {
    let Some(root) = reader.mapping(root, "the manifest") else {
        return DesiredState::default();
    };
    if let Some(mapping) = root.node() {
        reader.check_keys(mapping, "the manifest", MANIFEST_KEYS, UnknownKeys::Reject);
    }

    let Some(organizations) = root.get("organizations") else {
        let location = Location::whole_file(reader.file());
        reader.error(location, "the manifest has no `organizations` list");
        return DesiredState::default();
    };
    let organization_nodes = reader
        .sequence(organizations, "organizations")
        .unwrap_or(&[]);

    let mut users = UserCollector::default();
    let mut seen_organizations: HashMap<String, Location> = HashMap::new();
    let mut result = Vec::with_capacity(organization_nodes.len());
    for (index, node) in organization_nodes.iter().enumerate() {
        let Some(organization) = read_organization(reader, node, index, registry, &mut users)
        else {
            continue;
        };
        let key = organization_key(&organization.name);
        if let Some(first) = seen_organizations.get(&key) {
            let message = format!(
                "organization {} is declared twice (first at {first})",
                organization.name
            );
            reader.error(organization.origin.clone(), message);
            continue;
        }
        seen_organizations.insert(key, organization.origin.clone());
        result.push(organization);
    }

    DesiredState {
        users: users.into_users(),
        organizations: result,
    }
}

fn read_organization(
    reader: &mut Reader<'_>,
    node: &Node,
    index: usize,
    registry: &ResourceTypeRegistry,
    users: &mut UserCollector,
) -> Option<DesiredOrganization> {
    let what = format!("organizations[{index}]");
    let origin = reader.location(node);
    let mapping = reader.mapping(node, &what)?;
    if let Some(node) = mapping.node() {
        reader.check_keys(node, &what, ORGANIZATION_KEYS, UnknownKeys::Reject);
    }

    let name = required_name(reader, mapping, &what, "name", &origin)?;
    let display_name = match mapping.get("display_name") {
        Some(node) => {
            checked_name(reader, node, &format!("{what}.display_name")).unwrap_or_default()
        }
        None => name.clone(),
    };
    let settings = match mapping.get("settings") {
        Some(node) => read_settings(reader, node, &format!("{what}.settings"), registry),
        None => DesiredSettings::default(),
    };

    let members = read_members(reader, mapping.get("members"), &what, users);
    let member_keys: HashSet<String> = members
        .iter()
        .map(|member| login_key(&member.login))
        .collect();

    let teams = read_teams(reader, mapping.get("teams"), &what, &member_keys, users);
    let team_keys: HashSet<String> = teams.iter().map(|team| team_key(&team.name)).collect();

    let (resources, grants) = read_resources(
        reader,
        mapping.get("resources"),
        &what,
        registry,
        &member_keys,
        &team_keys,
        users,
    );

    let teams = order_teams(teams, reader.diagnostics);
    let resources = order_resources(resources, registry, reader.diagnostics);

    Some(DesiredOrganization {
        name,
        display_name,
        settings,
        members,
        teams,
        resources,
        grants,
        origin,
    })
}

fn read_settings(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
    registry: &ResourceTypeRegistry,
) -> DesiredSettings {
    let mut settings = DesiredSettings::default();
    let Some(mapping) = reader.mapping(node, what) else {
        return settings;
    };
    if let Some(node) = mapping.node() {
        reader.check_keys(node, what, SETTINGS_KEYS, UnknownKeys::Reject);
    }

    if let Some(node) = mapping.get("leaders_manage_members") {
        settings.leaders_manage_members =
            reader.boolean(node, &format!("{what}.leaders_manage_members"));
    }

    let Some(defaults_node) = mapping.get("defaults") else {
        return settings;
    };
    settings.remove_unlisted_defaults = true;
    let defaults_what = format!("{what}.defaults");
    let Some(defaults) = reader.mapping(defaults_node, &defaults_what) else {
        return settings;
    };
    for (type_name, value) in defaults.entries() {
        let type_name = type_name.as_str().to_owned();
        let entry_what = format!("{defaults_what}.{type_name}");
        if let Some(default) = read_type_default(reader, value, &entry_what, &type_name, registry) {
            settings.resource_type_defaults.insert(type_name, default);
        }
    }
    settings
}

/// Reads the default of one type; `Some(None)` is an explicit "no default".
fn read_type_default(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
    type_name: &str,
    registry: &ResourceTypeRegistry,
) -> Option<Option<TypeDefault>> {
    let location = reader.location(node);
    let Some(definition) = registry.get(type_name) else {
        reader.error(
            location,
            format!("{what}: unknown resource type {type_name:?}"),
        );
        return None;
    };
    if !definition.ordered_levels || definition.combining != Combining::Cumulative {
        reader.error(
            location,
            format!("{what}: defaults apply only to cumulative types with ordered levels, and {type_name} is not one"),
        );
        return None;
    }

    let mapping = reader.mapping(node, what)?;
    let Some(present) = mapping.node() else {
        return Some(None);
    };
    reader.check_keys(present, what, DEFAULT_KEYS, UnknownKeys::Reject);

    let base_level = match mapping.get("base_level") {
        None => BaseLevel::None,
        Some(node) => match reader.optional_string(node, &format!("{what}.base_level"))? {
            None => BaseLevel::None,
            Some(level) if level == "none" => BaseLevel::None,
            Some(level) => {
                if definition.permission_index(&level).is_none() {
                    let location = reader.location(node);
                    reader.error(
                        location,
                        format!(
                            "{what}.base_level: {type_name} has no level {level:?}; valid: none, {}",
                            definition.permissions.join(", ")
                        ),
                    );
                    return None;
                }
                BaseLevel::Level(level)
            }
        },
    };
    let administrators_get_highest_level = match mapping.get("administrators_get_highest_level") {
        Some(node) => reader.boolean(node, &format!("{what}.administrators_get_highest_level"))?,
        None => false,
    };

    Some(Some(TypeDefault {
        base_level,
        administrators_get_highest_level,
    }))
}

fn read_members(
    reader: &mut Reader<'_>,
    node: Option<&Node>,
    organization_what: &str,
    users: &mut UserCollector,
) -> Vec<DesiredMember> {
    let Some(node) = node else {
        return Vec::new();
    };
    let what = format!("{organization_what}.members");
    let items = reader.sequence(node, &what).unwrap_or(&[]);

    let mut members: Vec<DesiredMember> = Vec::with_capacity(items.len());
    let mut seen: HashMap<String, Location> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let item_what = format!("{what}[{index}]");
        let origin = reader.location(item);
        let Some(mapping) = reader.mapping(item, &item_what) else {
            continue;
        };
        if let Some(node) = mapping.node() {
            reader.check_keys(node, &item_what, MEMBER_KEYS, UnknownKeys::Reject);
        }

        let Some(login) = required_login(reader, mapping, &item_what, &origin) else {
            continue;
        };
        let email = optional_checked(reader, mapping, &item_what, "email", |field, value| {
            check_email(field, value)
        });
        let display_name = optional_checked(
            reader,
            mapping,
            &item_what,
            "display_name",
            |field, value| check_name(field, value, MAX_NAME_CHARS),
        );
        let role = match mapping.get("role") {
            Some(node) => read_role(reader, node, &format!("{item_what}.role")),
            None => Some(MemberRole::Collaborator),
        };
        let status = match mapping.get("status") {
            Some(node) => read_status(reader, node, &format!("{item_what}.status")),
            None => Some(MemberStatus::Active),
        };

        let key = login_key(&login);
        if let Some(first) = seen.get(&key) {
            reader.error(
                origin,
                format!("member {login} is listed twice (first at {first})"),
            );
            continue;
        }
        seen.insert(key, origin.clone());

        let login = users.add(reader.diagnostics, &login, email, display_name, &origin);
        if let (Some(role), Some(status)) = (role, status) {
            members.push(DesiredMember {
                login,
                role,
                status,
                origin,
            });
        }
    }
    members
}

fn read_role(reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<MemberRole> {
    let text = reader.string(node, what)?;
    let role = match text.as_str() {
        "owner" => MemberRole::Owner,
        "administrator" => MemberRole::Administrator,
        "collaborator" => MemberRole::Collaborator,
        "external" => MemberRole::External,
        _ => {
            let location = reader.location(node);
            reader.error(
                location,
                format!("{what}: unknown role {text:?}; valid: owner, administrator, collaborator, external"),
            );
            return None;
        }
    };
    Some(role)
}

/// Reads the organization role a team gives: administrator, collaborator,
/// or none. Owner stays personal and external is never given by a team.
fn read_team_role(reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<Option<MemberRole>> {
    let text = reader.string(node, what)?;
    match text.as_str() {
        "administrator" => Some(Some(MemberRole::Administrator)),
        "collaborator" => Some(Some(MemberRole::Collaborator)),
        "none" => Some(None),
        _ => {
            let location = reader.location(node);
            reader.error(
                location,
                format!("{what}: {text:?} cannot be given by a team; valid: administrator, collaborator, none"),
            );
            None
        }
    }
}

fn read_status(reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<MemberStatus> {
    let text = reader.string(node, what)?;
    match text.as_str() {
        "active" => Some(MemberStatus::Active),
        "suspended" => Some(MemberStatus::Suspended),
        _ => {
            let location = reader.location(node);
            reader.error(
                location,
                format!("{what}: unknown status {text:?}; valid: active, suspended"),
            );
            None
        }
    }
}

fn read_teams(
    reader: &mut Reader<'_>,
    node: Option<&Node>,
    organization_what: &str,
    member_keys: &HashSet<String>,
    users: &mut UserCollector,
) -> Vec<DesiredTeam> {
    let Some(node) = node else {
        return Vec::new();
    };
    let what = format!("{organization_what}.teams");
    let items = reader.sequence(node, &what).unwrap_or(&[]);

    let mut teams: Vec<DesiredTeam> = Vec::with_capacity(items.len());
    let mut names: HashMap<String, Location> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let Some(team) = read_team(
            reader,
            item,
            &format!("{what}[{index}]"),
            member_keys,
            users,
        ) else {
            continue;
        };
        let mut claimed = vec![team.name.clone()];
        claimed.extend(team.previous_names.iter().cloned());
        let mut clash = false;
        for name in &claimed {
            if let Some(first) = names.get(&team_key(name)) {
                let message =
                    format!("team name {name} is already used by the team declared at {first}");
                reader.error(team.origin.clone(), message);
                clash = true;
            }
        }
        if clash {
            continue;
        }
        for name in claimed {
            names.insert(team_key(&name), team.origin.clone());
        }
        teams.push(team);
    }
    teams
}

fn read_team(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
    member_keys: &HashSet<String>,
    users: &mut UserCollector,
) -> Option<DesiredTeam> {
    let origin = reader.location(node);
    let mapping = reader.mapping(node, what)?;
    if let Some(node) = mapping.node() {
        reader.check_keys(node, what, TEAM_KEYS, UnknownKeys::Reject);
    }

    let name = required_name(reader, mapping, what, "name", &origin)?;
    let previous_names = match mapping.get("previous_names") {
        Some(node) => reader
            .string_list(node, &format!("{what}.previous_names"))
            .into_iter()
            .filter_map(|(previous, location)| {
                match check_name(&format!("{what}.previous_names"), &previous, MAX_NAME_CHARS) {
                    Ok(()) => Some(previous),
                    Err(error) => {
                        reader.error(location, error.to_string());
                        None
                    }
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let description = optional_checked(reader, mapping, what, "description", |field, value| {
        check_description(field, value)
    });
    let color = optional_checked(reader, mapping, what, "color", |field, value| {
        check_color(field, value)
    });
    let parent = optional_checked(reader, mapping, what, "parent", |field, value| {
        check_name(field, value, MAX_NAME_CHARS)
    });
    let organization_role = match mapping.get("organization_role") {
        Some(node) => Some(read_team_role(
            reader,
            node,
            &format!("{what}.organization_role"),
        )?),
        None => None,
    };

    let mut members: Vec<DesiredTeamMember> = Vec::new();
    let mut member_positions: HashMap<String, usize> = HashMap::new();
    if let Some(node) = mapping.get("members") {
        let members_what = format!("{what}.members");
        let items = reader.sequence(node, &members_what).unwrap_or(&[]);
        for (index, item) in items.iter().enumerate() {
            let item_what = format!("{members_what}[{index}]");
            let Some((login, expire_time, location)) = read_team_member(reader, item, &item_what)
            else {
                continue;
            };
            if !require_member(reader, member_keys, &login, &name, &location) {
                continue;
            }
            let key = login_key(&login);
            if member_positions.contains_key(&key) {
                reader.error(
                    location,
                    format!("{login} is listed twice in the members of team {name}"),
                );
                continue;
            }
            let login = users.add(reader.diagnostics, &login, None, None, &location);
            member_positions.insert(key, members.len());
            members.push(DesiredTeamMember { login, expire_time });
        }
    }

    let mut leaders = Vec::new();
    if let Some(node) = mapping.get("leaders") {
        let mut seen = HashSet::new();
        for (login, location) in reader.string_list(node, &format!("{what}.leaders")) {
            if !require_member(reader, member_keys, &login, &name, &location) {
                continue;
            }
            let key = login_key(&login);
            if !seen.insert(key.clone()) {
                reader.error(
                    location,
                    format!("{login} is listed twice in the leaders of team {name}"),
                );
                continue;
            }
            let login = users.add(reader.diagnostics, &login, None, None, &location);
            // A leader is always a member of the team.
            if let std::collections::hash_map::Entry::Vacant(entry) = member_positions.entry(key) {
                entry.insert(members.len());
                members.push(DesiredTeamMember {
                    login: login.clone(),
                    expire_time: None,
                });
            }
            leaders.push(login);
        }
    }

    Some(DesiredTeam {
        name,
        previous_names,
        description,
        color,
        parent,
        organization_role,
        leaders,
        members,
        origin,
    })
}

/// Reads a team member: a login, or a mapping with `login` and `expires`.
fn read_team_member(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
) -> Option<(String, Option<DateTime<Utc>>, Location)> {
    let location = reader.location(node);
    if let Node::Scalar(_) = node {
        let login = reader.string(node, what)?;
        return check_login_at(reader, &login, what, &location).then_some((login, None, location));
    }

    let mapping = reader.mapping(node, what)?;
    if let Some(node) = mapping.node() {
        reader.check_keys(node, what, TEAM_MEMBER_KEYS, UnknownKeys::Reject);
    }
    let login = required_login(reader, mapping, what, &location)?;
    let expire_time = match mapping.get("expires") {
        Some(node) => Some(read_time(reader, node, &format!("{what}.expires"))?),
        None => None,
    };
    Some((login, expire_time, location))
}

fn require_member(
    reader: &mut Reader<'_>,
    member_keys: &HashSet<String>,
    login: &str,
    team: &str,
    location: &Location,
) -> bool {
    if member_keys.contains(&login_key(login)) {
        return true;
    }
    reader.error(
        location.clone(),
        format!(
            "{login} is in team {team} but not in the organization's members; add them to `members`"
        ),
    );
    false
}

type ResourcesAndGrants = (Vec<DesiredResource>, Vec<DesiredGrant>);

fn read_resources(
    reader: &mut Reader<'_>,
    node: Option<&Node>,
    organization_what: &str,
    registry: &ResourceTypeRegistry,
    member_keys: &HashSet<String>,
    team_keys: &HashSet<String>,
    users: &mut UserCollector,
) -> ResourcesAndGrants {
    let Some(node) = node else {
        return (Vec::new(), Vec::new());
    };
    let what = format!("{organization_what}.resources");
    let items = reader.sequence(node, &what).unwrap_or(&[]);

    let mut resources = Vec::with_capacity(items.len());
    let mut grants = Vec::new();
    let mut seen: HashMap<ResourceKey, Location> = HashMap::new();
    for (index, item) in items.iter().enumerate() {
        let item_what = format!("{what}[{index}]");
        let Some((resource, resource_grants)) = read_resource(reader, item, &item_what, registry)
        else {
            continue;
        };

        let mut claimed = vec![resource.external_id.clone()];
        claimed.extend(resource.previous_external_ids.iter().cloned());
        let mut clash = false;
        for external_id in &claimed {
            let key = ResourceKey::lookup(registry, &resource.resource_type, external_id);
            if let Some(first) = seen.get(&key) {
                let message = format!(
                    "{} {external_id} is already used by the resource declared at {first}",
                    resource.resource_type
                );
                reader.error(resource.origin.clone(), message);
                clash = true;
            }
        }
        if clash {
            continue;
        }
        for external_id in &claimed {
            seen.insert(
                ResourceKey::lookup(registry, &resource.resource_type, external_id),
                resource.origin.clone(),
            );
        }

        let mut subjects = HashSet::new();
        for grant in resource_grants {
            let subject_known = match &grant.subject {
                SubjectName::Team(name) => team_keys.contains(&team_key(name)),
                SubjectName::User(login) => member_keys.contains(&login_key(login)),
            };
            if !subject_known {
                let message = match &grant.subject {
                    SubjectName::Team(name) => {
                        format!("the grant names team {name}, which is not declared")
                    }
                    SubjectName::User(login) => {
                        format!("the grant names {login}, who is not in the organization's members")
                    }
                };
                reader.error(grant.origin.clone(), message);
                continue;
            }
            if !subjects.insert(grant.subject.key()) {
                reader.error(
                    grant.origin.clone(),
                    "this resource already has a grant for the same team or user; merge them into one",
                );
                continue;
            }
            let subject = match grant.subject {
                SubjectName::User(login) => SubjectName::User(users.add(
                    reader.diagnostics,
                    &login,
                    None,
                    None,
                    &grant.origin,
                )),
                team @ SubjectName::Team(_) => team,
            };
            grants.push(DesiredGrant { subject, ..grant });
        }
        resources.push(resource);
    }
    (resources, grants)
}

fn read_resource(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
    registry: &ResourceTypeRegistry,
) -> Option<(DesiredResource, Vec<DesiredGrant>)> {
    let origin = reader.location(node);
    let mapping = reader.mapping(node, what)?;
    if let Some(node) = mapping.node() {
        reader.check_keys(node, what, RESOURCE_KEYS, UnknownKeys::Reject);
    }

    let Some(type_node) = mapping.get("type") else {
        reader.error(origin, format!("{what} has no `type`"));
        return None;
    };
    let resource_type = reader.string(type_node, &format!("{what}.type"))?;
    let Some(definition) = registry.get(&resource_type) else {
        let location = reader.location(type_node);
        let known: Vec<&str> = registry
            .iter()
            .map(|definition| definition.name.as_str())
            .collect();
        reader.error(
            location,
            format!(
                "{what}.type: unknown resource type {resource_type:?}; known types: {}",
                known.join(", ")
            ),
        );
        return None;
    };
    let definition = definition.clone();

    let external_id = required_external_id(reader, mapping, what, &origin)?;
    let previous_external_ids = match mapping.get("previous_external_ids") {
        Some(node) => reader
            .string_list(node, &format!("{what}.previous_external_ids"))
            .into_iter()
            .filter_map(|(previous, location)| {
                match check_name(
                    &format!("{what}.previous_external_ids"),
                    &previous,
                    MAX_EXTERNAL_ID_CHARS,
                ) {
                    Ok(()) => Some(previous),
                    Err(error) => {
                        reader.error(location, error.to_string());
                        None
                    }
                }
            })
            .collect(),
        None => Vec::new(),
    };
    let display_name = optional_checked(reader, mapping, what, "display_name", |field, value| {
        check_name(field, value, MAX_NAME_CHARS)
    });
    let parent = optional_checked(reader, mapping, what, "parent", |field, value| {
        check_name(field, value, MAX_EXTERNAL_ID_CHARS)
    });
    let inherits = match mapping.get("inherits") {
        Some(node) => reader
            .boolean(node, &format!("{what}.inherits"))
            .unwrap_or(true),
        None => true,
    };
    if !inherits && !definition.grants_propagate {
        let location = mapping
            .get("inherits")
            .map_or_else(|| origin.clone(), |node| reader.location(node));
        reader.error(
            location,
            format!("{what}.inherits: grants on {resource_type} do not propagate, so there is no inheritance to break"),
        );
    }

    let mut grants = Vec::new();
    if let Some(node) = mapping.get("grants") {
        let grants_what = format!("{what}.grants");
        let items = reader.sequence(node, &grants_what).unwrap_or(&[]);
        for (index, item) in items.iter().enumerate() {
            if let Some(grant) = read_grant(
                reader,
                item,
                &format!("{grants_what}[{index}]"),
                &definition,
                &external_id,
            ) {
                grants.push(grant);
            }
        }
    }

    let resource = DesiredResource {
        resource_type,
        external_id,
        previous_external_ids,
        display_name,
        parent,
        inherits,
        origin,
    };
    Some((resource, grants))
}

fn read_grant(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
    definition: &workteams_domain::ResourceTypeDef,
    external_id: &str,
) -> Option<DesiredGrant> {
    let origin = reader.location(node);
    let mapping = reader.mapping(node, what)?;
    if let Some(node) = mapping.node() {
        reader.check_keys(node, what, GRANT_KEYS, UnknownKeys::Reject);
    }

    let subject = match (mapping.get("team"), mapping.get("user")) {
        (Some(team), None) => SubjectName::Team(reader.string(team, &format!("{what}.team"))?),
        (None, Some(user)) => {
            let login = reader.string(user, &format!("{what}.user"))?;
            let location = reader.location(user);
            if !check_login_at(reader, &login, &format!("{what}.user"), &location) {
                return None;
            }
            SubjectName::User(login)
        }
        _ => {
            reader.error(
                origin,
                format!("{what} needs exactly one of `team` and `user`"),
            );
            return None;
        }
    };

    let no_access = match mapping.get("no_access") {
        Some(node) => reader.boolean(node, &format!("{what}.no_access"))?,
        None => false,
    };
    let access = match (mapping.get("permissions"), mapping.get("level"), no_access) {
        (Some(node), None, false) => {
            let names: Vec<String> = reader
                .string_list(node, &format!("{what}.permissions"))
                .into_iter()
                .map(|(name, _)| name)
                .collect();
            if names.is_empty() {
                let location = reader.location(node);
                reader.error(
                    location,
                    format!("{what}.permissions is empty; for no access write `no_access: true`"),
                );
                return None;
            }
            parse_permissions(
                reader,
                node,
                &format!("{what}.permissions"),
                definition,
                &names,
            )?
        }
        (None, Some(node), false) => {
            let level = reader.string(node, &format!("{what}.level"))?;
            if !definition.ordered_levels {
                let location = reader.location(node);
                reader.error(
                    location,
                    format!(
                        "{what}.level: {} has no ordered levels; list `permissions` instead",
                        definition.name
                    ),
                );
                return None;
            }
            parse_permissions(reader, node, &format!("{what}.level"), definition, &[level])?
        }
        (None, None, true) => {
            if matches!(subject, SubjectName::Team(_)) {
                reader.error(
                    origin,
                    format!("{what}: only grants to a user can be `no_access`"),
                );
                return None;
            }
            Access::NoAccess
        }
        _ => {
            reader.error(
                origin,
                format!("{what} needs exactly one of `permissions`, `level` and `no_access: true`"),
            );
            return None;
        }
    };

    let expire_time = match mapping.get("expires") {
        Some(node) => Some(read_time(reader, node, &format!("{what}.expires"))?),
        None => None,
    };

    Some(DesiredGrant {
        resource_type: definition.name.clone(),
        external_id: external_id.to_owned(),
        subject,
        access,
        expire_time,
        origin,
    })
}

fn parse_permissions(
    reader: &mut Reader<'_>,
    node: &Node,
    what: &str,
    definition: &workteams_domain::ResourceTypeDef,
    names: &[String],
) -> Option<Access> {
    match definition.parse_grant_permissions(what, names) {
        Ok(set) => Some(Access::Permissions(set)),
        Err(error) => {
            let location = reader.location(node);
            reader.error(location, format!("{}: {}", error.field, error.reason));
            None
        }
    }
}

/// Reads an instant: RFC 3339 (`2026-06-30T18:00:00Z`) or a date, which
/// means midnight UTC at the start of that day.
pub fn read_time(reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<DateTime<Utc>> {
    let text = reader.string(node, what)?;
    match parse_time(&text) {
        Some(time) => Some(time),
        None => {
            let location = reader.location(node);
            reader.error(
                location,
                format!("{what}: {text:?} is not a date or time; write 2026-12-31 or 2026-12-31T18:00:00Z"),
            );
            None
        }
    }
}

/// Parses RFC 3339 or a plain date (midnight UTC).
pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(time) = DateTime::parse_from_rfc3339(text) {
        return Some(time.with_timezone(&Utc));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|date| date.and_hms_opt(0, 0, 0))
        .map(|time| time.and_utc())
}

fn required_name(
    reader: &mut Reader<'_>,
    mapping: MappingView<'_>,
    what: &str,
    key: &str,
    origin: &Location,
) -> Option<String> {
    let Some(node) = mapping.get(key) else {
        reader.error(origin.clone(), format!("{what} has no `{key}`"));
        return None;
    };
    checked_name(reader, node, &format!("{what}.{key}"))
}

fn checked_name(reader: &mut Reader<'_>, node: &Node, what: &str) -> Option<String> {
    let value = reader.string(node, what)?;
    if let Err(error) = check_name(what, &value, MAX_NAME_CHARS) {
        let location = reader.location(node);
        reader.error(location, error.to_string());
        return None;
    }
    Some(value)
}

fn required_login(
    reader: &mut Reader<'_>,
    mapping: MappingView<'_>,
    what: &str,
    origin: &Location,
) -> Option<String> {
    let Some(node) = mapping.get("login") else {
        reader.error(origin.clone(), format!("{what} has no `login`"));
        return None;
    };
    let login = reader.string(node, &format!("{what}.login"))?;
    let location = reader.location(node);
    check_login_at(reader, &login, &format!("{what}.login"), &location).then_some(login)
}

fn check_login_at(reader: &mut Reader<'_>, login: &str, what: &str, location: &Location) -> bool {
    match check_login(what, login) {
        Ok(()) => true,
        Err(error) => {
            reader.error(location.clone(), error.to_string());
            false
        }
    }
}

fn required_external_id(
    reader: &mut Reader<'_>,
    mapping: MappingView<'_>,
    what: &str,
    origin: &Location,
) -> Option<String> {
    let Some(node) = mapping.get("external_id") else {
        reader.error(origin.clone(), format!("{what} has no `external_id`"));
        return None;
    };
    let value = reader.string(node, &format!("{what}.external_id"))?;
    if let Err(error) = check_name(
        &format!("{what}.external_id"),
        &value,
        MAX_EXTERNAL_ID_CHARS,
    ) {
        let location = reader.location(node);
        reader.error(location, error.to_string());
        return None;
    }
    Some(value)
}

/// Reads an optional text field checked by `check`. Absent or null gives
/// `None`.
fn optional_checked(
    reader: &mut Reader<'_>,
    mapping: MappingView<'_>,
    what: &str,
    key: &str,
    check: impl Fn(&str, &str) -> Result<(), workteams_domain::ValidationError>,
) -> Option<String> {
    let node = mapping.get(key)?;
    let field = format!("{what}.{key}");
    let value = reader.optional_string(node, &field)??;
    match check(&field, &value) {
        Ok(()) => Some(value),
        Err(error) => {
            let location = reader.location(node);
            reader.error(location, error.to_string());
            None
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn registry() -> ResourceTypeRegistry {
        ResourceTypeRegistry::with_builtins(Vec::new()).unwrap()
    }

    fn parse(text: &str) -> Result<Loaded, Diagnostics> {
        parse_manifest("company.yaml", text, &registry())
    }

    #[test]
    fn deeply_nested_yaml_is_rejected() {
        let depth = 100_000;
        let text = format!("organizations: {}{}\n", "[".repeat(depth), "]".repeat(depth));
        let errors = parse(&text).unwrap_err();
        assert!(errors.has_errors());
    }

    const SMALL: &str = "\
organizations:
  - name: acme
    display_name: Acme
    settings:
      leaders_manage_members: true
      defaults:
        kchat.channel: { base_level: member, administrators_get_highest_level: true }
    members:
      - { login: alice, email: alice@acme.example, role: owner }
      - { login: Bob }
      - { login: carol, role: external, status: suspended }
    teams:
      - name: Support
        leaders: [alice]
        members: [bob, { login: carol, expires: 2030-01-31 }]
      - name: Tier 2
        parent: support
    resources:
      - type: mail.mailbox
        external_id: help@acme.example
        grants:
          - { team: Support, permissions: [send, read] }
          - { user: alice, no_access: true }
      - type: kdrive.folder
        external_id: \"10\"
      - type: kdrive.folder
        external_id: \"11\"
        parent: \"10\"
        inherits: false
        grants:
          - { team: Tier 2, level: modify, expires: 2030-06-30T18:00:00Z }
";

    #[test]
    fn small_manifest_reads() {
        let loaded = parse(SMALL).unwrap();
        let organization = &loaded.state.organizations[0];
        assert_eq!(organization.members.len(), 3);
        assert_eq!(organization.teams.len(), 2);
        assert_eq!(organization.resources.len(), 3);
        assert_eq!(organization.grants.len(), 3);
        assert_eq!(loaded.state.users.len(), 3);
    }

    #[test]
    fn leaders_become_members() {
        let loaded = parse(SMALL).unwrap();
        let support = &loaded.state.organizations[0].teams[0];
        let logins: Vec<&str> = support
            .members
            .iter()
            .map(|member| member.login.as_str())
            .collect();
        assert_eq!(logins, vec!["Bob", "carol", "alice"]);
    }

    #[test]
    fn member_spelling_is_kept() {
        let loaded = parse(SMALL).unwrap();
        let support = &loaded.state.organizations[0].teams[0];
        assert_eq!(support.members[0].login, "Bob");
    }

    #[test]
    fn date_expiry_is_midnight_utc() {
        let loaded = parse(SMALL).unwrap();
        let carol = &loaded.state.organizations[0].teams[0].members[1];
        assert_eq!(
            carol.expire_time.unwrap().to_rfc3339(),
            "2030-01-31T00:00:00+00:00"
        );
    }

    #[test]
    fn unknown_key_is_an_error_with_line() {
        let text = "organizations:\n  - name: acme\n    memebrs: []\n";
        let errors = parse(text).unwrap_err().errors;
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].location.line, 3);
        assert!(errors[0].message.contains("memebrs"), "{}", errors[0]);
    }

    #[test]
    fn team_member_must_be_member() {
        let text =
            "organizations:\n  - name: acme\n    teams:\n      - name: a\n        members: [zed]\n";
        let errors = parse(text).unwrap_err().errors;
        assert_eq!(errors[0].location.line, 5);
        assert!(errors[0].message.contains("zed"));
    }

    #[test]
    fn unknown_permission_is_reported() {
        let text = "\
organizations:
  - name: acme
    members: [{ login: a }]
    resources:
      - type: mail.mailbox
        external_id: x@acme.example
        grants:
          - { user: a, permissions: [read, fly] }
";
        let errors = parse(text).unwrap_err().errors;
        assert_eq!(errors[0].location.line, 8);
        assert!(errors[0].message.contains("fly"), "{}", errors[0]);
    }

    #[test]
    fn team_no_access_is_rejected() {
        let text = "\
organizations:
  - name: acme
    teams: [{ name: t }]
    resources:
      - type: kdrive.folder
        external_id: \"1\"
        grants: [{ team: t, no_access: true }]
";
        let errors = parse(text).unwrap_err().errors;
        assert!(
            errors[0].message.contains("only grants to a user"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn defaults_need_cumulative_ordered_type() {
        let text = "organizations:\n  - name: acme\n    settings:\n      defaults:\n        kdrive.folder: { base_level: view }\n";
        let errors = parse(text).unwrap_err().errors;
        assert_eq!(errors[0].location.line, 5);
    }

    #[test]
    fn duplicate_repository_ignores_case() {
        let text = "\
organizations:
  - name: acme
    resources:
      - { type: git.repository, external_id: Api }
      - { type: git.repository, external_id: api }
";
        let errors = parse(text).unwrap_err().errors;
        assert_eq!(errors[0].location.line, 5);
    }

    #[test]
    fn inheritance_break_needs_propagation() {
        let text = "organizations:\n  - name: acme\n    resources:\n      - { type: mail.mailbox, external_id: a@acme.example, inherits: false }\n";
        assert!(parse(text).is_err());
    }

    #[test]
    fn syntax_error_names_file_and_line() {
        let errors = parse("organizations:\n  - name: [acme\n")
            .unwrap_err()
            .errors;
        assert_eq!(&*errors[0].location.file, "company.yaml");
        assert!(errors[0].location.line >= 2);
    }

    #[test]
    fn company_example_reads() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/company.yaml");
        let loaded = load_manifest(&path, &registry()).unwrap();
        let organization = &loaded.state.organizations[0];
        assert_eq!(organization.name, "lumen-studio");
        assert_eq!(organization.resources.len(), 10);
        assert!(loaded.warnings.is_empty());
    }

    #[test]
    fn every_error_is_reported() {
        let text = "organizations:\n  - name: acme\n    members:\n      - { login: -bad }\n      - { login: ok, role: king }\n";
        let errors = parse(text).unwrap_err().errors;
        assert_eq!(errors.len(), 2);
    }
}
