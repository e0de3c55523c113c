//! Cedar entities and policies.
//!
//! The model follows Cedar's documented style for groups and sharing: a
//! user's teams are its parents (and a team's parent team is the team's
//! parent), so `principal in Team::"…"` covers nested teams; the grants on a
//! resource are entity attributes, one set of grantees per permission; no
//! policy mentions a particular grant. A propagating resource that inherits
//! carries its parent as the `parent` attribute. Cedar has no recursion, so
//! each policy unrolls the walk up the parents to the deepest folder level
//! the generator creates ([`MAX_FOLDER_DEPTH`]); deeper trees would need a
//! longer policy.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use workteams_domain::ResourceTypeDef;

use super::{
    GrantSubject, Ids, grant_relation, implying_permissions, portable_grants, portable_memberships,
    type_identifier, used_types,
};
use crate::dataset::MAX_FOLDER_DEPTH;
use crate::graph::{CheckCase, Graph};

pub const USER_ENTITY: &str = "User";
pub const TEAM_ENTITY: &str = "Team";
pub const PARENT_ATTRIBUTE: &str = "parent";

/// The entity type of a resource type.
pub fn resource_entity(resource_type: &str) -> String {
    type_identifier(resource_type)
}

/// The action id of a permission on a type: `kdrive.folder:view`.
pub fn action_id(resource_type: &str, permission: &str) -> String {
    format!("{resource_type}:{permission}")
}

/// Every policy, as Cedar policy text.
pub fn policies(graph: &Graph<'_>) -> String {
    let mut text = String::new();
    for definition in used_types(graph) {
        for permission in 0..definition.permissions.len() {
            text.push_str(&policy(&definition, permission));
            text.push('\n');
        }
    }
    text
}

fn policy(definition: &ResourceTypeDef, permission: usize) -> String {
    let depth = if definition.grants_propagate {
        MAX_FOLDER_DEPTH
    } else {
        0
    };
    let condition = reaches_at(definition, permission, "resource", depth);
    format!(
        "permit(principal, action == Action::\"{}\", resource is {})\nwhen {{\n  {condition}\n}};\n",
        action_id(&definition.name, &definition.permissions[permission]),
        resource_entity(&definition.name),
    )
}

/// The condition that a grant on `expression` or, up to `remaining` more
/// levels, on its parents gives the permission.
fn reaches_at(
    definition: &ResourceTypeDef,
    permission: usize,
    expression: &str,
    remaining: usize,
) -> String {
    let here = implying_permissions(definition, permission)
        .into_iter()
        .map(|implying| {
            format!(
                "principal in {expression}.{}",
                grant_relation(&definition.permissions[implying])
            )
        })
        .collect::<Vec<_>>()
        .join(" || ");
    if remaining == 0 {
        return format!("({here})");
    }
    let parent = format!("{expression}.{PARENT_ATTRIBUTE}");
    format!(
        "({here} || ({expression} has {PARENT_ATTRIBUTE} && {}))",
        reaches_at(definition, permission, &parent, remaining - 1)
    )
}

fn entity_reference(entity_type: &str, id: String) -> Value {
    json!({"type": entity_type, "id": id})
}

fn attribute_reference(entity_type: &str, id: String) -> Value {
    json!({"__entity": {"type": entity_type, "id": id}})
}

/// Every entity in Cedar's JSON entity format.
pub fn entities(graph: &Graph<'_>) -> Value {
    let ids = Ids::new(graph);
    let dataset = graph.dataset;
    let mut user_parents: Vec<Vec<Value>> = vec![Vec::new(); dataset.users.len()];
    for (user, team) in portable_memberships(graph) {
        user_parents[user].push(entity_reference(TEAM_ENTITY, ids.team(team)));
    }

    let mut grantees: Vec<BTreeMap<String, Vec<Value>>> =
        vec![BTreeMap::new(); dataset.resources.len()];
    for grant in portable_grants(graph) {
        let definition = &graph.definitions[grant.resource];
        let subject = match grant.subject {
            GrantSubject::User(user) => attribute_reference(USER_ENTITY, ids.user(user)),
            GrantSubject::Team(team) => attribute_reference(TEAM_ENTITY, ids.team(team)),
        };
        for permission in grant.permissions {
            grantees[grant.resource]
                .entry(grant_relation(&definition.permissions[permission]))
                .or_default()
                .push(subject.clone());
        }
    }

    let mut entities =
        Vec::with_capacity(dataset.users.len() + dataset.teams.len() + dataset.resources.len());
    for (user, parents) in user_parents.into_iter().enumerate() {
        entities.push(json!({"uid": entity_reference(USER_ENTITY, ids.user(user)), "attrs": {}, "parents": parents}));
    }
    for (team, parent) in graph.team_parents.iter().enumerate() {
        let parents: Vec<Value> = parent
            .iter()
            .map(|parent| entity_reference(TEAM_ENTITY, ids.team(*parent)))
            .collect();
        entities.push(json!({"uid": entity_reference(TEAM_ENTITY, ids.team(team)), "attrs": {}, "parents": parents}));
    }
    for (resource, mut attributes) in grantees.into_iter().enumerate() {
        let definition = &graph.definitions[resource];
        let entity_type = resource_entity(&definition.name);
        let mut attrs = serde_json::Map::new();
        // Every permission's set exists, empty or not, so the policies never
        // read a missing attribute.
        for permission in &definition.permissions {
            let relation = grant_relation(permission);
            let set = attributes.remove(&relation).unwrap_or_default();
            attrs.insert(relation, Value::Array(set));
        }
        if let Some(parent) = graph.inheriting_parent(resource) {
            attrs.insert(
                PARENT_ATTRIBUTE.to_owned(),
                attribute_reference(&entity_type, ids.resource(parent)),
            );
        }
        entities.push(json!({
            "uid": entity_reference(&entity_type, ids.resource(resource)),
            "attrs": attrs,
            "parents": [],
        }));
    }
    Value::Array(entities)
}

/// A check as Cedar's principal, action and resource ids in the
/// `Type::"id"` syntax.
pub fn request(graph: &Graph<'_>, case: CheckCase) -> (String, String, String) {
    let ids = Ids::new(graph);
    let definition = &graph.definitions[case.resource];
    (
        format!("{USER_ENTITY}::\"{}\"", ids.user(case.user)),
        format!(
            "Action::\"{}\"",
            action_id(&definition.name, &definition.permissions[case.permission])
        ),
        format!(
            "{}::\"{}\"",
            resource_entity(&definition.name),
            ids.resource(case.resource)
        ),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn folder_policy_walks_parents() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let text = policies(&graph);
        let deepest = format!("resource{}", ".parent".repeat(MAX_FOLDER_DEPTH));
        assert!(text.contains(&deepest));
    }

    #[test]
    fn mailbox_policy_has_no_parent() {
        let definition = workteams_domain::resource_type::builtin_resource_types()
            .into_iter()
            .find(|definition| definition.name == "mail.mailbox")
            .unwrap();
        assert!(!policy(&definition, 1).contains("parent"));
    }

    #[test]
    fn every_resource_has_every_set() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let entities = entities(&graph);
        let folder = entities
            .as_array()
            .unwrap()
            .iter()
            .find(|entity| entity["uid"]["type"] == "kdrive_folder")
            .unwrap();
        assert!(folder["attrs"]["granted_manage"].is_array());
    }
}
