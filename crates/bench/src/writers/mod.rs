//! Writers of the peers' own input formats.
//!
//! Every writer exports the same portable view of a dataset
//! ([`PORTABLE_RULES`](crate::graph::PORTABLE_RULES)): every team membership
//! (expiry dropped), team nesting, every grant except the individual
//! "no access" ones (expiry dropped), and a resource's parent only where the
//! type propagates grants and the resource inherits, which is how an
//! inheritance break is expressed. Rules outside that view are left to the
//! agreement checker, which leaves the checks they touch out of a peer's
//! comparison.

pub mod casbin;
pub mod cedar;
pub mod cerbos;
pub mod manifest;
pub mod openfga;
pub mod rego;
pub mod spicedb;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use workteams_domain::ResourceTypeDef;

use crate::graph::Graph;

/// Writes every format into `directory`, for inspection or for loading a
/// peer by hand: the `workteams apply` manifest, the SpiceDB schema and
/// relationships, the OpenFGA store file, the Cedar policies and entities,
/// the Rego policy and data, the casbin model and policy, and the Cerbos
/// policies.
pub fn write_all(graph: &Graph<'_>, directory: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(directory)?;
    std::fs::write(
        directory.join("workteams-manifest.yaml"),
        manifest::manifest(graph)?,
    )?;
    std::fs::write(directory.join("spicedb-schema.zed"), spicedb::schema(graph))?;
    let relationships: Vec<String> = spicedb::relationships(graph)
        .iter()
        .map(ToString::to_string)
        .collect();
    std::fs::write(
        directory.join("spicedb-relationships.txt"),
        relationships.join("\n") + "\n",
    )?;
    std::fs::write(
        directory.join("openfga-store.fga.yaml"),
        openfga::store_file(graph, &[], &[])?,
    )?;
    std::fs::write(
        directory.join("cedar-policies.cedar"),
        cedar::policies(graph),
    )?;
    std::fs::write(
        directory.join("cedar-entities.json"),
        serde_json::to_vec(&cedar::entities(graph))?,
    )?;
    std::fs::write(directory.join("rego-policy.rego"), rego::POLICY)?;
    std::fs::write(
        directory.join("rego-data.json"),
        serde_json::to_vec(&rego::data(graph))?,
    )?;
    std::fs::write(directory.join("casbin-model.conf"), casbin::MODEL)?;
    let policies = casbin::policies(graph);
    let mut lines = Vec::new();
    for line in &policies.permissions {
        lines.push(format!("p, {}", line.join(", ")));
    }
    for line in &policies.team_links {
        lines.push(format!("g, {}", line.join(", ")));
    }
    for line in &policies.resource_links {
        lines.push(format!("g2, {}", line.join(", ")));
    }
    std::fs::write(directory.join("casbin-policy.csv"), lines.join("\n") + "\n")?;
    let cerbos_directory = directory.join("cerbos-policies");
    std::fs::create_dir_all(&cerbos_directory)?;
    for (name, policy) in cerbos::policies(graph) {
        std::fs::write(cerbos_directory.join(name), policy)?;
    }
    Ok(())
}

/// Turns a resource type name into an identifier the peers accept
/// (`kdrive.folder` becomes `kdrive_folder`).
pub fn type_identifier(resource_type: &str) -> String {
    resource_type.replace(['.', '-'], "_")
}

/// Names the relation that contains the direct grants of one permission.
pub fn grant_relation(permission: &str) -> String {
    format!("granted_{permission}")
}

/// Lists the resource types the dataset uses, by name.
pub fn used_types(graph: &Graph<'_>) -> Vec<Arc<ResourceTypeDef>> {
    let names: BTreeSet<&str> = graph
        .definitions
        .iter()
        .map(|definition| definition.name.as_str())
        .collect();
    names
        .into_iter()
        .filter_map(|name| graph.dataset.registry.get(name).cloned())
        .collect()
}

/// Lists the permissions that imply `permission` on a type, `permission`
/// first. With ordered levels these are it and every higher level.
pub fn implying_permissions(definition: &ResourceTypeDef, permission: usize) -> Vec<usize> {
    if definition.ordered_levels {
        (permission..definition.permissions.len()).collect()
    } else {
        vec![permission]
    }
}

/// A grant's subject in the peers' vocabulary.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum GrantSubject {
    User(usize),
    Team(usize),
}

/// One exported grant: a subject holds the named permissions (for ordered
/// types the single level granted) on a resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortableGrant {
    pub resource: usize,
    pub subject: GrantSubject,
    /// Permission indices as the grant names them, not expanded.
    pub permissions: Vec<usize>,
}

/// Collects the grants every peer receives: all but individual "no access".
pub fn portable_grants(graph: &Graph<'_>) -> Vec<PortableGrant> {
    let dataset = graph.dataset;
    let mut grants = Vec::with_capacity(dataset.grants.len());
    for (resource, positions) in graph.resource_grants.iter().enumerate() {
        let definition = &graph.definitions[resource];
        for position in positions {
            let grant = &dataset.grants[*position];
            if grant.no_access {
                continue;
            }
            let subject = match grant.subject {
                workteams_domain::Subject::User(id) => {
                    GrantSubject::User(graph.user_positions[&id])
                }
                workteams_domain::Subject::Team(id) => {
                    GrantSubject::Team(graph.team_positions[&id])
                }
            };
            let permissions = grant
                .permissions
                .iter()
                .filter_map(|name| definition.permission_index(name))
                .collect();
            grants.push(PortableGrant {
                resource,
                subject,
                permissions,
            });
        }
    }
    grants
}

/// Direct team memberships as (user, team) positions, expiry dropped.
pub fn portable_memberships(graph: &Graph<'_>) -> Vec<(usize, usize)> {
    graph
        .dataset
        .memberships
        .iter()
        .map(|membership| {
            (
                graph.user_positions[&membership.user_id],
                graph.team_positions[&membership.team_id],
            )
        })
        .collect()
}

/// Text ids the peers use: the entities' UUIDs.
pub struct Ids<'g, 'a> {
    graph: &'g Graph<'a>,
}

impl<'g, 'a> Ids<'g, 'a> {
    pub fn new(graph: &'g Graph<'a>) -> Self {
        Self { graph }
    }

    pub fn user(&self, position: usize) -> String {
        self.graph.dataset.users[position].id.to_string()
    }

    pub fn team(&self, position: usize) -> String {
        self.graph.dataset.teams[position].id.to_string()
    }

    pub fn resource(&self, position: usize) -> String {
        self.graph.dataset.resources[position].id.to_string()
    }

    pub fn subject(&self, subject: GrantSubject) -> String {
        match subject {
            GrantSubject::User(user) => self.user(user),
            GrantSubject::Team(team) => self.team(team),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn every_format_is_written() {
        let dataset = crate::dataset::generate(crate::dataset::Size::Tiny, 1, chrono::Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let directory = tempfile::tempdir().unwrap();
        write_all(&graph, directory.path()).unwrap();
        let written = std::fs::read_dir(directory.path()).unwrap().count();
        assert_eq!(written, 11);
    }

    #[test]
    fn identifier_replaces_dots() {
        assert_eq!(type_identifier("kdrive.folder"), "kdrive_folder");
    }

    #[test]
    fn ordered_levels_implied_by_higher() {
        let definition = workteams_domain::resource_type::builtin_resource_types()
            .into_iter()
            .find(|definition| definition.name == "kdrive.folder")
            .unwrap();
        assert_eq!(implying_permissions(&definition, 1), vec![1, 2]);
    }
}
