//! The dataset as a manifest for `workteams apply` (YAML).
//!
//! Unlike the peers' formats this is the whole directory, every rule
//! included: roles and statuses, organization defaults, memberships and
//! grants with their expiry, individual "no access" and inheritance breaks.
//! Teams name their parent team and resources their parent's external id,
//! as the manifest format asks.

use serde_yaml::{Mapping, Value};
use workteams_domain::{MemberRole, MemberStatus, Subject};

use crate::graph::Graph;

fn string(text: impl Into<String>) -> Value {
    Value::String(text.into())
}

fn mapping(entries: Vec<(&str, Value)>) -> Value {
    let mut mapping = Mapping::new();
    for (key, value) in entries {
        mapping.insert(string(key), value);
    }
    Value::Mapping(mapping)
}

fn role(role: MemberRole) -> &'static str {
    role.as_str()
}

fn status(status: MemberStatus) -> &'static str {
    status.as_str()
}

fn time(instant: chrono::DateTime<chrono::Utc>) -> Value {
    string(instant.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// Renders the manifest text.
pub fn manifest(graph: &Graph<'_>) -> anyhow::Result<String> {
    let dataset = graph.dataset;
    let organization = &dataset.organization;

    let mut defaults = Mapping::new();
    for default in &organization.settings.resource_type_defaults {
        defaults.insert(
            string(default.resource_type.clone()),
            mapping(vec![
                (
                    "base_level",
                    string(
                        default
                            .base_level
                            .clone()
                            .unwrap_or_else(|| "none".to_owned()),
                    ),
                ),
                (
                    "administrators_get_highest_level",
                    Value::Bool(default.administrators_get_highest_level),
                ),
            ]),
        );
    }
    let settings = mapping(vec![
        (
            "leaders_manage_members",
            Value::Bool(organization.settings.leaders_manage_members),
        ),
        ("defaults", Value::Mapping(defaults)),
    ]);

    let members: Vec<Value> = dataset
        .members
        .iter()
        .map(|member| {
            let user = &dataset.users[graph.user_positions[&member.user_id]];
            let mut entries = vec![("login", string(user.login.clone()))];
            if let Some(email) = &user.email {
                entries.push(("email", string(email.clone())));
            }
            entries.push(("display_name", string(user.display_name.clone())));
            entries.push(("role", string(role(member.role))));
            entries.push(("status", string(status(member.status))));
            mapping(entries)
        })
        .collect();

    let teams: Vec<Value> = dataset
        .teams
        .iter()
        .enumerate()
        .map(|(position, team)| {
            let mut entries = vec![("name", string(team.name.clone()))];
            if let Some(parent) = graph.team_parents[position] {
                entries.push(("parent", string(dataset.teams[parent].name.clone())));
            }
            let team_members: Vec<Value> = graph.team_memberships[position]
                .iter()
                .map(|membership| {
                    let membership = &dataset.memberships[*membership];
                    let login = string(
                        dataset.users[graph.user_positions[&membership.user_id]]
                            .login
                            .clone(),
                    );
                    match membership.expire_time {
                        Some(expiry) => mapping(vec![("login", login), ("expires", time(expiry))]),
                        None => login,
                    }
                })
                .collect();
            entries.push(("members", Value::Sequence(team_members)));
            mapping(entries)
        })
        .collect();

    let resources: Vec<Value> = dataset
        .resources
        .iter()
        .enumerate()
        .map(|(position, resource)| {
            let definition = &graph.definitions[position];
            let mut entries = vec![
                ("type", string(resource.resource_type.clone())),
                ("external_id", string(resource.external_id.clone())),
                ("display_name", string(resource.display_name.clone())),
            ];
            if let Some(parent) = graph.resource_parents[position] {
                entries.push((
                    "parent",
                    string(dataset.resources[parent].external_id.clone()),
                ));
            }
            if !resource.inherits {
                entries.push(("inherits", Value::Bool(false)));
            }
            let grants: Vec<Value> = graph.resource_grants[position]
                .iter()
                .map(|grant| {
                    let grant = &dataset.grants[*grant];
                    let mut grant_entries = vec![match grant.subject {
                        Subject::Team(id) => (
                            "team",
                            string(dataset.teams[graph.team_positions[&id]].name.clone()),
                        ),
                        Subject::User(id) => (
                            "user",
                            string(dataset.users[graph.user_positions[&id]].login.clone()),
                        ),
                    }];
                    if grant.no_access {
                        grant_entries.push(("no_access", Value::Bool(true)));
                    } else if definition.ordered_levels {
                        let level = grant.permissions.first().cloned().unwrap_or_default();
                        grant_entries.push(("level", string(level)));
                    } else {
                        grant_entries.push((
                            "permissions",
                            Value::Sequence(
                                grant.permissions.iter().cloned().map(string).collect(),
                            ),
                        ));
                    }
                    if let Some(expiry) = grant.expire_time {
                        grant_entries.push(("expires", time(expiry)));
                    }
                    mapping(grant_entries)
                })
                .collect();
            if !grants.is_empty() {
                entries.push(("grants", Value::Sequence(grants)));
            }
            mapping(entries)
        })
        .collect();

    let document = mapping(vec![(
        "organizations",
        Value::Sequence(vec![mapping(vec![
            ("name", string(organization.name.clone())),
            ("display_name", string(organization.display_name.clone())),
            ("settings", settings),
            ("members", Value::Sequence(members)),
            ("teams", Value::Sequence(teams)),
            ("resources", Value::Sequence(resources)),
        ])]),
    )]);
    Ok(serde_yaml::to_string(&document)?)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn cli_accepts_manifest() {
        let dataset = generate(Size::Tiny, 3, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let text = manifest(&graph).unwrap();
        let loaded =
            workteams_cli::manifest::parse_manifest("bench.yaml", &text, &dataset.registry);
        assert!(loaded.is_ok(), "{:?}", loaded.err());
    }

    #[test]
    fn breaks_are_written() {
        let dataset = generate(Size::Small, 3, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        assert!(manifest(&graph).unwrap().contains("inherits: false"));
    }
}
