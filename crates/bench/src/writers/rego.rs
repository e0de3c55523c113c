//! A Rego policy and its data document, for OPA-compatible engines.
//!
//! The data contains each user's direct teams, each team's parent, each
//! resource's parent when the resource inherits, each resource's type and
//! grants (subject id to permission names) and the rank of every ordered
//! level. The policy walks both hierarchies with `graph.reachable`, so the
//! engine resolves nesting and inheritance at query time.

use serde_json::{Map, Value, json};

use super::{Ids, portable_grants, portable_memberships, used_types};
use crate::graph::{CheckCase, Graph};

/// The rule to evaluate.
pub const ALLOW_RULE: &str = "data.workteams.allow";

/// The policy module.
pub const POLICY: &str = r#"package workteams

import rego.v1

default allow := false

user_teams := graph.reachable(data.team_parents, object.get(data.user_teams, input.user, []))

resource_path := graph.reachable(data.resource_parents, [input.resource])

allow if {
	some resource in resource_path
	some subject, permissions in data.grants[resource]
	holds(subject)
	some granted in permissions
	implies(granted)
}

holds(subject) if subject == input.user

holds(subject) if subject in user_teams

implies(granted) if granted == input.permission

implies(granted) if {
	levels := data.levels[data.resource_types[input.resource]]
	levels[granted] > levels[input.permission]
}
"#;

/// Builds the data document.
pub fn data(graph: &Graph<'_>) -> Value {
    let ids = Ids::new(graph);
    let dataset = graph.dataset;

    let mut user_teams: Vec<Vec<Value>> = vec![Vec::new(); dataset.users.len()];
    for (user, team) in portable_memberships(graph) {
        user_teams[user].push(Value::String(ids.team(team)));
    }
    let user_teams: Map<String, Value> = user_teams
        .into_iter()
        .enumerate()
        .filter(|(_, teams)| !teams.is_empty())
        .map(|(user, teams)| (ids.user(user), Value::Array(teams)))
        .collect();

    let team_parents: Map<String, Value> = graph
        .team_parents
        .iter()
        .enumerate()
        .map(|(team, parent)| {
            (
                ids.team(team),
                json!(
                    parent
                        .iter()
                        .map(|parent| ids.team(*parent))
                        .collect::<Vec<_>>()
                ),
            )
        })
        .collect();

    // `graph.reachable` leaves out a start node that is not a key of the
    // graph, so every resource is a key, with no parent when it does not
    // inherit.
    let resource_parents: Map<String, Value> = (0..dataset.resources.len())
        .map(|resource| {
            let parents: Vec<String> = graph
                .inheriting_parent(resource)
                .map(|parent| ids.resource(parent))
                .into_iter()
                .collect();
            (ids.resource(resource), json!(parents))
        })
        .collect();

    let resource_types: Map<String, Value> = dataset
        .resources
        .iter()
        .map(|resource| {
            (
                resource.id.to_string(),
                Value::String(resource.resource_type.clone()),
            )
        })
        .collect();

    let mut grants: Map<String, Value> = Map::new();
    for grant in portable_grants(graph) {
        let definition = &graph.definitions[grant.resource];
        let names: Vec<Value> = grant
            .permissions
            .iter()
            .map(|permission| Value::String(definition.permissions[*permission].clone()))
            .collect();
        let subjects = grants
            .entry(ids.resource(grant.resource))
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(subjects) = subjects {
            subjects.insert(ids.subject(grant.subject), Value::Array(names));
        }
    }

    let levels: Map<String, Value> = used_types(graph)
        .into_iter()
        .filter(|definition| definition.ordered_levels)
        .map(|definition| {
            let ranks: Map<String, Value> = definition
                .permissions
                .iter()
                .enumerate()
                .map(|(rank, permission)| (permission.clone(), json!(rank)))
                .collect();
            (definition.name.clone(), Value::Object(ranks))
        })
        .collect();

    json!({
        "user_teams": user_teams,
        "team_parents": team_parents,
        "resource_parents": resource_parents,
        "resource_types": resource_types,
        "grants": grants,
        "levels": levels,
    })
}

/// Builds the input document of one check.
pub fn input(graph: &Graph<'_>, case: CheckCase) -> Value {
    let ids = Ids::new(graph);
    json!({
        "user": ids.user(case.user),
        "resource": ids.resource(case.resource),
        "permission": graph.definitions[case.resource].permissions[case.permission],
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn data_ranks_folder_levels() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let data = data(&graph);
        assert_eq!(data["levels"]["kdrive.folder"]["manage"], json!(2));
    }

    #[test]
    fn mailbox_has_no_ranks() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let data = data(&graph);
        assert!(data["levels"].get("mail.mailbox").is_none());
    }
}
