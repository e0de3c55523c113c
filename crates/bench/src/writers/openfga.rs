//! OpenFGA's modeling language and a store file for `fga model test`.
//!
//! The model mirrors the SpiceDB schema: `team#member` holds users and the
//! members of child teams, each resource type has one `granted_<permission>`
//! relation per permission, ordered levels include the next higher level,
//! and propagating types add `<permission> from parent`. The store file
//! carries the tuples and, as test assertions, the answers the harness
//! expects, so every failed assertion is a disagreement.

use std::fmt::Write as _;

use serde::Serialize;
use workteams_domain::ResourceTypeDef;

use super::spicedb::{
    MEMBER_RELATION, PARENT_RELATION, Relationship, TEAM_TYPE, USER_TYPE, relationships,
};
use super::{grant_relation, type_identifier, used_types};
use crate::graph::Graph;

/// Renders the authorization model in the OpenFGA DSL (schema 1.1).
pub fn model(graph: &Graph<'_>) -> String {
    let mut model = String::from("model\n  schema 1.1\n");
    let _ = writeln!(model, "type {USER_TYPE}");
    let _ = writeln!(
        model,
        "type {TEAM_TYPE}\n  relations\n    define {MEMBER_RELATION}: [{USER_TYPE}, {TEAM_TYPE}#{MEMBER_RELATION}]"
    );
    for definition in used_types(graph) {
        model.push_str(&type_definition(&definition));
    }
    model
}

fn type_definition(definition: &ResourceTypeDef) -> String {
    let name = type_identifier(&definition.name);
    let mut text = format!("type {name}\n  relations\n");
    if definition.grants_propagate {
        let _ = writeln!(text, "    define {PARENT_RELATION}: [{name}]");
    }
    for permission in &definition.permissions {
        let _ = writeln!(
            text,
            "    define {}: [{USER_TYPE}, {TEAM_TYPE}#{MEMBER_RELATION}]",
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
            terms.push(format!("{permission} from {PARENT_RELATION}"));
        }
        let _ = writeln!(text, "    define {permission}: {}", terms.join(" or "));
    }
    text
}

/// One tuple of a store file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Tuple {
    pub user: String,
    pub relation: String,
    pub object: String,
}

impl From<&Relationship> for Tuple {
    fn from(relationship: &Relationship) -> Self {
        let mut user = format!("{}:{}", relationship.subject_type, relationship.subject_id);
        if !relationship.subject_relation.is_empty() {
            user.push('#');
            user.push_str(&relationship.subject_relation);
        }
        Self {
            user,
            relation: relationship.relation.clone(),
            object: format!(
                "{}:{}",
                relationship.resource_type, relationship.resource_id
            ),
        }
    }
}

/// One expected check answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedCheck {
    /// `user:<id>`.
    pub user: String,
    /// `<type>:<id>`.
    pub object: String,
    pub relation: String,
    pub allowed: bool,
}

/// One expected list-objects answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectedList {
    pub user: String,
    pub object_type: String,
    pub relation: String,
    /// `<type>:<id>` of every object the user holds `relation` on.
    pub objects: Vec<String>,
}

#[derive(Serialize)]
struct StoreFile<'a> {
    name: &'a str,
    model: String,
    tuples: Vec<Tuple>,
    tests: Vec<StoreTest>,
}

#[derive(Serialize)]
struct StoreTest {
    name: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    check: Vec<CheckTest>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    list_objects: Vec<ListObjectsTest>,
}

#[derive(Serialize)]
struct CheckTest {
    user: String,
    object: String,
    assertions: std::collections::BTreeMap<String, bool>,
}

#[derive(Serialize)]
struct ListObjectsTest {
    user: String,
    #[serde(rename = "type")]
    object_type: String,
    assertions: std::collections::BTreeMap<String, Vec<String>>,
}

/// The test name of the single test a store file holds.
pub const TEST_NAME: &str = "sampled-checks";

/// A store file for `fga model test` with the dataset's tuples and one test
/// holding every expected answer. `fga model test` loads the tuples into a
/// fresh in-memory store for each test, so all assertions share one test.
/// Failures are reported per `(user, relation, object)` for checks and
/// `(user, relation, type)` for list queries, which map back to the inputs.
pub fn store_file(
    graph: &Graph<'_>,
    checks: &[ExpectedCheck],
    lists: &[ExpectedList],
) -> anyhow::Result<String> {
    let tuples = relationships(graph).iter().map(Tuple::from).collect();
    let check = checks
        .iter()
        .map(|check| CheckTest {
            user: check.user.clone(),
            object: check.object.clone(),
            assertions: [(check.relation.clone(), check.allowed)]
                .into_iter()
                .collect(),
        })
        .collect();
    let list_objects = lists
        .iter()
        .map(|list| ListObjectsTest {
            user: list.user.clone(),
            object_type: list.object_type.clone(),
            assertions: [(list.relation.clone(), list.objects.clone())]
                .into_iter()
                .collect(),
        })
        .collect();
    let test = StoreTest {
        name: TEST_NAME.to_owned(),
        check,
        list_objects,
    };
    let file = StoreFile {
        name: "work-teams-bench",
        model: model(graph),
        tuples,
        tests: vec![test],
    };
    Ok(serde_yaml::to_string(&file)?)
}

/// A failed assertion's key: `(user, relation, object or type)`.
pub type AssertionKey = (String, String, String);

/// The failed assertions in the plain output of `fga model test`: checks as
/// `(user, relation, object)` and list queries as `(user, relation, type)`.
pub fn parse_failures(output: &str) -> (Vec<AssertionKey>, Vec<AssertionKey>) {
    let mut checks = Vec::new();
    let mut lists = Vec::new();
    for line in output.lines() {
        let line = line.trim_start_matches(|character: char| !character.is_ascii_alphabetic());
        let (kind, rest) = match line.split_once('(') {
            Some(split) => split,
            None => continue,
        };
        let Some((arguments, _)) = rest.split_once(')') else {
            continue;
        };
        let mut values = std::collections::HashMap::new();
        for pair in arguments.split(',') {
            if let Some((key, value)) = pair.split_once('=') {
                values.insert(key.trim(), value.trim().to_owned());
            }
        }
        let field = |name: &str| values.get(name).cloned().unwrap_or_default();
        match kind {
            "Check" => checks.push((field("user"), field("relation"), field("object"))),
            "ListObjects" => lists.push((field("user"), field("relation"), field("type"))),
            _ => {}
        }
    }
    (checks, lists)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn model_inherits_from_parent() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        assert!(model(&graph).contains("define view: granted_view or modify or view from parent"));
    }

    #[test]
    fn team_tuple_user_has_relation() {
        let relationship = Relationship {
            resource_type: "kdrive_folder".to_owned(),
            resource_id: "f".to_owned(),
            relation: "granted_view".to_owned(),
            subject_type: TEAM_TYPE.to_owned(),
            subject_id: "t".to_owned(),
            subject_relation: MEMBER_RELATION.to_owned(),
        };
        assert_eq!(Tuple::from(&relationship).user, "team:t#member");
    }

    #[test]
    fn failures_are_parsed() {
        let output = "(FAILING) sampled-checks: Checks (4/5 passing)\n\
                      ⅹ Check(user=user:a,relation=view,object=kdrive_folder:f): expected=true, got=false\n\
                      ⅹ ListObjects(user=user:a,relation=view,type=kdrive_folder): expected=[], got=[kdrive_folder:f]\n";
        let (checks, lists) = parse_failures(output);
        assert_eq!(
            checks,
            vec![(
                "user:a".to_owned(),
                "view".to_owned(),
                "kdrive_folder:f".to_owned()
            )]
        );
        assert_eq!(
            lists,
            vec![(
                "user:a".to_owned(),
                "view".to_owned(),
                "kdrive_folder".to_owned()
            )]
        );
    }

    #[test]
    fn store_file_names_tests() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let check = ExpectedCheck {
            user: "user:u".to_owned(),
            object: "kdrive_folder:f".to_owned(),
            relation: "view".to_owned(),
            allowed: false,
        };
        let file = store_file(&graph, &[check], &[]).unwrap();
        assert!(file.contains("name: sampled-checks"));
    }
}
