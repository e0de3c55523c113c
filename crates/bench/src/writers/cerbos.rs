//! Cerbos resource policies and the attributes of each request.
//!
//! Cerbos holds no relationship data: a request carries what the decision
//! needs. The harness sends the user's teams with their ancestor teams as a
//! principal attribute and, for the resource, the grantees of every grant on
//! its inheritance path, one list per permission. The policies apply the
//! ordered levels and the union of grants; nesting and inheritance are
//! resolved by the caller when it builds the attributes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use workteams_domain::ResourceTypeDef;

use super::{
    Ids, grant_relation, implying_permissions, portable_grants, type_identifier, used_types,
};
use crate::graph::{CheckCase, Graph};

/// The principal attribute listing the user's teams.
pub const TEAMS_ATTRIBUTE: &str = "teams";

/// Renders one policy file per resource type as (file name, YAML).
pub fn policies(graph: &Graph<'_>) -> Vec<(String, String)> {
    used_types(graph)
        .into_iter()
        .map(|definition| {
            (
                format!("{}.yaml", type_identifier(&definition.name)),
                policy(&definition),
            )
        })
        .collect()
}

fn policy(definition: &ResourceTypeDef) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "---");
    let _ = writeln!(text, "apiVersion: api.cerbos.dev/v1");
    let _ = writeln!(text, "resourcePolicy:");
    let _ = writeln!(text, "  version: default");
    let _ = writeln!(text, "  resource: {}", type_identifier(&definition.name));
    let _ = writeln!(text, "  rules:");
    for (index, permission) in definition.permissions.iter().enumerate() {
        let terms: Vec<String> = implying_permissions(definition, index)
            .into_iter()
            .flat_map(|implying| {
                let relation = grant_relation(&definition.permissions[implying]);
                [
                    format!("P.id in R.attr.{relation}"),
                    format!("hasIntersection(P.attr.{TEAMS_ATTRIBUTE}, R.attr.{relation})"),
                ]
            })
            .collect();
        let _ = writeln!(text, "    - actions: [\"{permission}\"]");
        let _ = writeln!(text, "      effect: EFFECT_ALLOW");
        let _ = writeln!(text, "      roles: [\"*\"]");
        let _ = writeln!(text, "      condition:");
        let _ = writeln!(text, "        match:");
        let _ = writeln!(text, "          expr: {}", terms.join(" || "));
    }
    text
}

/// The content of one Cerbos check request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CerbosCheck {
    pub principal_id: String,
    /// The user's teams with their ancestors.
    pub teams: Vec<String>,
    pub resource_kind: String,
    pub resource_id: String,
    /// `granted_<permission>` to the grantee ids on the inheritance path;
    /// every permission of the type is present.
    pub grantees: BTreeMap<String, Vec<String>>,
    pub action: String,
}

/// Precomputes the grantees per permission on each resource's path, so
/// building a request costs no walk.
pub struct CerbosRequests<'g, 'a> {
    graph: &'g Graph<'a>,
    /// Grantee ids per resource, per permission index.
    direct: Vec<Vec<Vec<String>>>,
}

impl<'g, 'a> CerbosRequests<'g, 'a> {
    pub fn new(graph: &'g Graph<'a>) -> Self {
        let ids = Ids::new(graph);
        let mut direct: Vec<Vec<Vec<String>>> = graph
            .definitions
            .iter()
            .map(|definition| vec![Vec::new(); definition.permissions.len()])
            .collect();
        for grant in portable_grants(graph) {
            for permission in &grant.permissions {
                direct[grant.resource][*permission].push(ids.subject(grant.subject));
            }
        }
        Self { graph, direct }
    }

    pub fn request(&self, case: CheckCase) -> CerbosCheck {
        let ids = Ids::new(self.graph);
        let definition = &self.graph.definitions[case.resource];
        let mut grantees: BTreeMap<String, Vec<String>> = definition
            .permissions
            .iter()
            .map(|permission| (grant_relation(permission), Vec::new()))
            .collect();
        for resource in self.graph.effective_path(case.resource) {
            for (permission, subjects) in self.direct[resource].iter().enumerate() {
                if let Some(list) =
                    grantees.get_mut(&grant_relation(&definition.permissions[permission]))
                {
                    list.extend(subjects.iter().cloned());
                }
            }
        }
        let teams = self
            .graph
            .user_teams(case.user, None)
            .into_iter()
            .map(|team| ids.team(team))
            .collect();
        CerbosCheck {
            principal_id: ids.user(case.user),
            teams,
            resource_kind: type_identifier(&definition.name),
            resource_id: ids.resource(case.resource),
            grantees,
            action: definition.permissions[case.permission].clone(),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn view_rule_accepts_higher_levels() {
        let definition = workteams_domain::resource_type::builtin_resource_types()
            .into_iter()
            .find(|definition| definition.name == "kdrive.folder")
            .unwrap();
        let text = policy(&definition);
        assert!(text.contains("P.id in R.attr.granted_view || hasIntersection(P.attr.teams, R.attr.granted_view) || P.id in R.attr.granted_modify"));
    }

    #[test]
    fn request_lists_every_permission() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let requests = CerbosRequests::new(&graph);
        let check = requests.request(CheckCase {
            user: 0,
            resource: 0,
            permission: 0,
        });
        assert_eq!(check.grantees.len(), graph.definitions[0].permissions.len());
    }
}
