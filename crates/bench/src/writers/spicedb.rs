//! SpiceDB's schema language and relationships, also reused for OpenFGA's
//! tuples (both follow the Zanzibar model).
//!
//! Teams are `team` objects whose `member` relation holds users and the
//! members of child teams (`team:parent#member@team:child#member`). Each
//! resource type becomes a definition with one `granted_<permission>`
//! relation per permission, a permission per level that includes the next
//! higher level when levels are ordered, and, for types that propagate
//! grants, a `parent` relation that inheriting resources point through.

use std::fmt::Write as _;

use workteams_domain::ResourceTypeDef;

use super::{
    GrantSubject, Ids, grant_relation, portable_grants, portable_memberships, type_identifier,
    used_types,
};
use crate::graph::Graph;

pub const USER_TYPE: &str = "user";
pub const TEAM_TYPE: &str = "team";
pub const MEMBER_RELATION: &str = "member";
pub const PARENT_RELATION: &str = "parent";

/// One relationship: `resource_type:resource_id#relation@subject_type:subject_id[#subject_relation]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Relationship {
    pub resource_type: String,
    pub resource_id: String,
    pub relation: String,
    pub subject_type: String,
    pub subject_id: String,
    /// `member` for a team subject, empty for a user or a resource.
    pub subject_relation: String,
}

impl std::fmt::Display for Relationship {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}#{}@{}:{}",
            self.resource_type, self.resource_id, self.relation, self.subject_type, self.subject_id
        )?;
        if !self.subject_relation.is_empty() {
            write!(f, "#{}", self.subject_relation)?;
        }
        Ok(())
    }
}

/// The SpiceDB schema for the dataset's resource types.
pub fn schema(graph: &Graph<'_>) -> String {
    let mut schema = String::new();
    let _ = writeln!(schema, "definition {USER_TYPE} {{}}\n");
    let _ = writeln!(schema, "definition {TEAM_TYPE} {{");
    let _ = writeln!(
        schema,
        "    relation {MEMBER_RELATION}: {USER_TYPE} | {TEAM_TYPE}#{MEMBER_RELATION}"
    );
    let _ = writeln!(schema, "}}");
    for definition in used_types(graph) {
        schema.push('\n');
        schema.push_str(&type_definition(&definition));
    }
    schema
}

fn type_definition(definition: &ResourceTypeDef) -> String {
    let name = type_identifier(&definition.name);
    let mut text = format!("definition {name} {{\n");
    if definition.grants_propagate {
        let _ = writeln!(text, "    relation {PARENT_RELATION}: {name}");
    }
    for permission in &definition.permissions {
        let _ = writeln!(
            text,
            "    relation {}: {USER_TYPE} | {TEAM_TYPE}#{MEMBER_RELATION}",
            grant_relation(permission)
        );
    }
    for (index, permission) in definition.permissions.iter().enumerate() {
        let mut terms = vec![grant_relation(permission)];
        if definition.ordered_levels
            && let Some(higher) = definition.permissions.get(index + 1)
        {
            terms.push(higher.clone());
        }
        if definition.grants_propagate {
            terms.push(format!("{PARENT_RELATION}->{permission}"));
        }
        let _ = writeln!(text, "    permission {permission} = {}", terms.join(" + "));
    }
    text.push_str("}\n");
    text
}

/// Every relationship of the portable view.
pub fn relationships(graph: &Graph<'_>) -> Vec<Relationship> {
    let ids = Ids::new(graph);
    let mut relationships = Vec::new();

    for (team, parent) in graph.team_parents.iter().enumerate() {
        if let Some(parent) = parent {
            relationships.push(Relationship {
                resource_type: TEAM_TYPE.to_owned(),
                resource_id: ids.team(*parent),
                relation: MEMBER_RELATION.to_owned(),
                subject_type: TEAM_TYPE.to_owned(),
                subject_id: ids.team(team),
                subject_relation: MEMBER_RELATION.to_owned(),
            });
        }
    }
    for (user, team) in portable_memberships(graph) {
        relationships.push(Relationship {
            resource_type: TEAM_TYPE.to_owned(),
            resource_id: ids.team(team),
            relation: MEMBER_RELATION.to_owned(),
            subject_type: USER_TYPE.to_owned(),
            subject_id: ids.user(user),
            subject_relation: String::new(),
        });
    }
    for resource in 0..graph.dataset.resources.len() {
        if let Some(parent) = graph.inheriting_parent(resource) {
            let resource_type = type_identifier(&graph.definitions[resource].name);
            relationships.push(Relationship {
                resource_type: resource_type.clone(),
                resource_id: ids.resource(resource),
                relation: PARENT_RELATION.to_owned(),
                subject_type: resource_type,
                subject_id: ids.resource(parent),
                subject_relation: String::new(),
            });
        }
    }
    for grant in portable_grants(graph) {
        let definition = &graph.definitions[grant.resource];
        let (subject_type, subject_relation) = match grant.subject {
            GrantSubject::User(_) => (USER_TYPE, ""),
            GrantSubject::Team(_) => (TEAM_TYPE, MEMBER_RELATION),
        };
        for permission in &grant.permissions {
            relationships.push(Relationship {
                resource_type: type_identifier(&definition.name),
                resource_id: ids.resource(grant.resource),
                relation: grant_relation(&definition.permissions[*permission]),
                subject_type: subject_type.to_owned(),
                subject_id: ids.subject(grant.subject),
                subject_relation: subject_relation.to_owned(),
            });
        }
    }
    relationships
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn folder_levels_include_higher() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let schema = schema(&graph);
        assert!(
            schema.contains("permission view = granted_view + modify + parent->view"),
            "{schema}"
        );
    }

    #[test]
    fn mailbox_permissions_stand_alone() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let schema = schema(&graph);
        assert!(
            schema.contains("permission send = granted_send\n"),
            "{schema}"
        );
    }

    #[test]
    fn team_grant_points_at_members() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let relationships = relationships(&graph);
        let team_grant = relationships.iter().find(|relationship| {
            relationship.relation.starts_with("granted_") && relationship.subject_type == TEAM_TYPE
        });
        assert_eq!(
            team_grant.map(|relationship| relationship.subject_relation.as_str()),
            Some(MEMBER_RELATION)
        );
    }
}
