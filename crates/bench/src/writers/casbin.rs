//! A casbin model and its policy lines.
//!
//! Role links `g` carry team membership (user to team) and nesting (child
//! team to parent team); a second role graph `g2` carries inheritance
//! (inheriting resource to parent). Casbin has no ordered levels, so a grant
//! of a level becomes one policy line per implied permission. Actions are
//! `<type>:<permission>`.

use super::{Ids, implying_permissions, portable_grants, portable_memberships};
use crate::graph::{CheckCase, Graph};

/// The model in casbin's configuration syntax.
pub const MODEL: &str = "[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _
g2 = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && g2(r.obj, p.obj) && r.act == p.act
";

/// The action name of a permission on a type.
pub fn action(resource_type: &str, permission: &str) -> String {
    format!("{resource_type}:{permission}")
}

/// The policy input: `p` lines, `g` lines and `g2` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policies {
    pub permissions: Vec<Vec<String>>,
    pub team_links: Vec<Vec<String>>,
    pub resource_links: Vec<Vec<String>>,
}

pub fn policies(graph: &Graph<'_>) -> Policies {
    let ids = Ids::new(graph);
    let mut policies = Policies::default();

    for grant in portable_grants(graph) {
        let definition = &graph.definitions[grant.resource];
        // A permission implied by several named ones is written once.
        let mut implied: Vec<usize> = Vec::new();
        for permission in &grant.permissions {
            for lower in 0..=*permission {
                if implying_permissions(definition, lower).contains(permission)
                    && !implied.contains(&lower)
                {
                    implied.push(lower);
                }
            }
        }
        for permission in implied {
            policies.permissions.push(vec![
                ids.subject(grant.subject),
                ids.resource(grant.resource),
                action(&definition.name, &definition.permissions[permission]),
            ]);
        }
    }
    for (user, team) in portable_memberships(graph) {
        policies
            .team_links
            .push(vec![ids.user(user), ids.team(team)]);
    }
    for (team, parent) in graph.team_parents.iter().enumerate() {
        if let Some(parent) = parent {
            policies
                .team_links
                .push(vec![ids.team(team), ids.team(*parent)]);
        }
    }
    for resource in 0..graph.dataset.resources.len() {
        if let Some(parent) = graph.inheriting_parent(resource) {
            policies
                .resource_links
                .push(vec![ids.resource(resource), ids.resource(parent)]);
        }
    }
    policies
}

/// A check as casbin's request values.
pub fn request(graph: &Graph<'_>, case: CheckCase) -> (String, String, String) {
    let ids = Ids::new(graph);
    let definition = &graph.definitions[case.resource];
    (
        ids.user(case.user),
        ids.resource(case.resource),
        action(&definition.name, &definition.permissions[case.permission]),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn level_grant_expands_to_lower() {
        let dataset = generate(Size::Tiny, 2, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let policies = policies(&graph);
        let manage = policies
            .permissions
            .iter()
            .find(|line| line[2] == "kdrive.folder:manage")
            .unwrap();
        let implied_view = policies.permissions.iter().any(|line| {
            line[0] == manage[0] && line[1] == manage[1] && line[2] == "kdrive.folder:view"
        });
        assert!(implied_view);
    }
}
