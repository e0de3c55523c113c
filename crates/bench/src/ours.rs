//! Work Teams' evaluation index as an in-process engine.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use workteams_domain::{Entity, Revision};
use workteams_evaluation::{AccessFilter, Index};

use crate::dataset::Dataset;
use crate::engine::{CheckEngine, CheckWorker, EngineInfo, Transport};
use crate::graph::{CheckCase, Graph, RuleSet};

/// Counts the bytes live on the heap, when the benchmark binary installs a
/// counting allocator.
pub type LiveBytes = fn() -> u64;

/// The index loaded with a dataset, answering at a fixed instant.
pub struct OurEngine {
    pub index: Index,
    pub now: DateTime<Utc>,
}

/// The cost of loading the index, and what it holds per edge.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct IndexLoad {
    pub elapsed: Duration,
    /// Heap bytes of the loaded index.
    pub bytes: Option<u64>,
    /// Heap bytes per team membership and per grant, from indexes loaded
    /// without grants and without memberships.
    pub bytes_per_membership: Option<f64>,
    pub bytes_per_grant: Option<f64>,
}

/// Loads every entity of the dataset into a new index.
pub fn load_index(dataset: &Dataset, entities: impl Iterator<Item = Entity>) -> Index {
    let mut index = Index::new(dataset.registry.clone());
    for entity in entities {
        index.apply_entity(entity);
    }
    index.set_revision(Revision(1));
    index
}

impl OurEngine {
    /// Loads the dataset, timing it and, with `live_bytes`, measuring the
    /// index's heap use per membership and per grant.
    pub fn load(
        dataset: &Dataset,
        now: DateTime<Utc>,
        live_bytes: Option<LiveBytes>,
    ) -> (Self, IndexLoad) {
        let before = live_bytes.map(|live| live());
        let started = Instant::now();
        let index = load_index(dataset, dataset.entities());
        let elapsed = started.elapsed();
        let bytes = live_bytes
            .zip(before)
            .map(|(live, before)| live().saturating_sub(before));

        let mut load = IndexLoad {
            elapsed,
            bytes,
            ..IndexLoad::default()
        };
        if let Some(live) = live_bytes {
            let without_edges = measure_bytes(live, || {
                load_index(
                    dataset,
                    dataset.entities().filter(|entity| {
                        !matches!(entity, Entity::Membership(_) | Entity::Grant(_))
                    }),
                )
            });
            let without_grants = measure_bytes(live, || {
                load_index(
                    dataset,
                    dataset
                        .entities()
                        .filter(|entity| !matches!(entity, Entity::Grant(_))),
                )
            });
            if let Some(total) = bytes {
                let memberships = dataset.memberships.len().max(1) as f64;
                let grants = dataset.grants.len().max(1) as f64;
                load.bytes_per_membership =
                    Some(without_grants.saturating_sub(without_edges) as f64 / memberships);
                load.bytes_per_grant = Some(total.saturating_sub(without_grants) as f64 / grants);
            }
        }
        (Self { index, now }, load)
    }

    fn id_of_user(graph: &Graph<'_>, user: usize) -> workteams_domain::UserId {
        graph.dataset.users[user].id
    }
}

fn measure_bytes(live: LiveBytes, build: impl FnOnce() -> Index) -> u64 {
    let before = live();
    let index = build();
    let bytes = live().saturating_sub(before);
    drop(index);
    bytes
}

impl CheckEngine for OurEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "Work Teams index".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            transport: Transport::InProcess,
            model: "`workteams_evaluation::Index` loaded with every entity; `Index::check` per request.".to_owned(),
            unsupported: RuleSet::EMPTY,
            notes: Vec::new(),
        }
    }

    fn worker(&self, graph: &Graph<'_>, cases: &[CheckCase]) -> anyhow::Result<CheckWorker<'_>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let requests: Vec<_> = cases
            .iter()
            .map(|case| {
                (
                    Self::id_of_user(graph, case.user),
                    graph.dataset.resources[case.resource].id,
                    case.permission,
                )
            })
            .collect();
        let now = self.now;
        Ok(Box::new(move |position| {
            let (user, resource, permission) = requests[position % requests.len()];
            Ok(self.index.check(user, resource, permission, now))
        }))
    }

    fn list_resources(
        &self,
        user_id: &str,
        resource_type: &str,
        permission: &str,
    ) -> Option<anyhow::Result<Vec<String>>> {
        Some(self.list_resources_holding(user_id, resource_type, permission))
    }

    fn list_users(
        &self,
        resource_id: &str,
        _resource_type: &str,
        permission: &str,
    ) -> Option<anyhow::Result<Vec<String>>> {
        Some(self.list_users_holding(resource_id, permission))
    }

    fn list_query_names(&self) -> Option<(&'static str, &'static str)> {
        Some(("Index::list_user_access", "Index::list_resource_access"))
    }
}

impl OurEngine {
    fn list_resources_holding(
        &self,
        user_id: &str,
        resource_type: &str,
        permission: &str,
    ) -> anyhow::Result<Vec<String>> {
        let user = workteams_domain::UserId::parse("user_id", user_id)?;
        let definition = self
            .index
            .resource_type(resource_type)
            .ok_or_else(|| anyhow::anyhow!("unknown resource type {resource_type}"))?;
        let permission = definition
            .permission_index(permission)
            .ok_or_else(|| anyhow::anyhow!("{resource_type} has no permission {permission}"))?;
        let filter = AccessFilter {
            organization: None,
            resource_type: Some(resource_type.to_owned()),
        };
        Ok(self
            .index
            .list_user_access(user, &filter, self.now)
            .into_iter()
            .filter(|entry| entry.evaluation.allows(permission))
            .map(|entry| entry.resource_id.to_string())
            .collect())
    }

    fn list_users_holding(
        &self,
        resource_id: &str,
        permission: &str,
    ) -> anyhow::Result<Vec<String>> {
        let resource = workteams_domain::ResourceId::parse("resource_id", resource_id)?;
        let definition = self
            .index
            .resource(resource)
            .and_then(|view| view.definition.cloned())
            .ok_or_else(|| anyhow::anyhow!("unknown resource {resource_id}"))?;
        let permission = definition
            .permission_index(permission)
            .ok_or_else(|| anyhow::anyhow!("{} has no permission {permission}", definition.name))?;
        Ok(self
            .index
            .list_resource_access(resource, self.now)
            .into_iter()
            .filter(|entry| entry.evaluation.allows(permission))
            .map(|entry| entry.user_id.to_string())
            .collect())
    }
}
