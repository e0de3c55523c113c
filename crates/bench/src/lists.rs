//! Listing effective access: the kDrive folders a user can view, and the
//! users who can view a folder, timed per query and compared item by item.

use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use workteams_domain::{ResourceId, UserId};
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;

use crate::dataset::FOLDER_TYPE;
use crate::engine::{CheckEngine, ExpectedListing, QueryTimedOut};
use crate::graph::{CheckCase, Graph, RuleSet};
use crate::import::IdMap;
use crate::measure::LatencyStats;
use crate::ours::OurEngine;
use crate::report::ListRow;
use crate::sidecar;

/// The permission listed: the lowest folder level, held by anyone with any
/// access to a folder.
pub const LISTED_PERMISSION: &str = "view";
const LISTED_PERMISSION_INDEX: usize = 0;

/// Users and folders whose access is listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Targets {
    pub users: Vec<usize>,
    pub folders: Vec<usize>,
}

impl Targets {
    /// Picks the first distinct users and folders of the sampled checks.
    pub fn sample(graph: &Graph<'_>, cases: &[CheckCase], count: usize) -> Self {
        let mut users = Vec::new();
        let mut folders = Vec::new();
        for case in cases {
            if users.len() < count
                && !users.contains(&case.user)
                && !graph.user_memberships[case.user].is_empty()
            {
                users.push(case.user);
            }
            let is_folder = graph.definitions[case.resource].name == FOLDER_TYPE;
            if folders.len() < count && is_folder && !folders.contains(&case.resource) {
                folders.push(case.resource);
            }
        }
        Self { users, folders }
    }
}

/// Work Teams' lists for the targets, with their timings.
#[derive(Debug, Clone)]
pub struct OurLists {
    /// Folders each target user can view.
    pub user_folders: Vec<BTreeSet<usize>>,
    /// Users who can view each target folder.
    pub folder_users: Vec<BTreeSet<usize>>,
    pub user_stats: LatencyStats,
    pub folder_stats: LatencyStats,
}

fn positions_of_resources(graph: &Graph<'_>, ids: &[String]) -> anyhow::Result<BTreeSet<usize>> {
    ids.iter()
        .map(|id| {
            let id = ResourceId::parse("resource_id", id)?;
            graph
                .resource_positions
                .get(&id)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("unknown resource {id}"))
        })
        .collect()
}

fn positions_of_users(graph: &Graph<'_>, ids: &[String]) -> anyhow::Result<BTreeSet<usize>> {
    ids.iter()
        .map(|id| {
            let id = UserId::parse("user_id", id)?;
            graph
                .user_positions
                .get(&id)
                .copied()
                .ok_or_else(|| anyhow::anyhow!("unknown user {id}"))
        })
        .collect()
}

/// Computes the mean number of items over the lists given.
fn mean_items<'a>(lists: impl IntoIterator<Item = &'a BTreeSet<usize>>) -> f64 {
    let (count, total) = lists
        .into_iter()
        .fold((0_usize, 0_usize), |(count, total), list| {
            (count + 1, total + list.len())
        });
    total as f64 / count.max(1) as f64
}

/// Longest time one engine spends on the list queries of one kind; an
/// engine that takes longer answers fewer targets.
const LIST_TIME: Duration = Duration::from_secs(60);

/// The list queries of one kind, timed.
struct TimedQueries<T> {
    /// One entry per target queried, `None` where the engine stopped the
    /// query at its own time limit.
    results: Vec<Option<T>>,
    /// Latencies of every query run, those stopped at the limit included,
    /// so the percentiles are lower bounds when some were stopped.
    stats: LatencyStats,
    timed_out: usize,
    limit: Option<Duration>,
}

/// Runs a list query per target, timing each, until [`LIST_TIME`] has
/// passed; the results cover a prefix of `targets`.
fn timed<T>(
    targets: &[usize],
    mut query: impl FnMut(usize) -> anyhow::Result<T>,
) -> anyhow::Result<TimedQueries<T>> {
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(targets.len());
    let mut results = Vec::with_capacity(targets.len());
    let mut timed_out = 0;
    let mut limit = None;
    for target in targets {
        if started.elapsed() >= LIST_TIME {
            break;
        }

        let before = Instant::now();
        match query(*target) {
            Ok(result) => results.push(Some(result)),
            Err(error) => match error.downcast_ref::<QueryTimedOut>() {
                Some(stopped) => {
                    timed_out += 1;
                    limit = Some(stopped.limit);
                    results.push(None);
                }
                None => return Err(error),
            },
        }
        latencies.push(before.elapsed().as_nanos() as u64);
    }
    Ok(TimedQueries {
        results,
        stats: LatencyStats::from_latencies(latencies, 1, started.elapsed()),
        timed_out,
        limit,
    })
}

/// Converts the ids each query returned to positions, keeping `None` for
/// the queries stopped at a time limit.
fn answered_positions(
    results: &[Option<Vec<String>>],
    positions_of: impl Fn(&[String]) -> anyhow::Result<BTreeSet<usize>>,
) -> anyhow::Result<Vec<Option<BTreeSet<usize>>>> {
    results
        .iter()
        .map(|result| result.as_deref().map(&positions_of).transpose())
        .collect()
}

impl OurLists {
    pub fn measure(ours: &OurEngine, graph: &Graph<'_>, targets: &Targets) -> anyhow::Result<Self> {
        let ids = graph.dataset;
        let user_lists = timed(&targets.users, |user| {
            ours.list_resources(
                &ids.users[user].id.to_string(),
                FOLDER_TYPE,
                LISTED_PERMISSION,
            )
            .unwrap_or_else(|| Ok(Vec::new()))
        })?;
        let folder_lists = timed(&targets.folders, |folder| {
            ours.list_users(
                &ids.resources[folder].id.to_string(),
                FOLDER_TYPE,
                LISTED_PERMISSION,
            )
            .unwrap_or_else(|| Ok(Vec::new()))
        })?;
        Ok(Self {
            user_folders: user_lists
                .results
                .iter()
                .flatten()
                .map(|list| positions_of_resources(graph, list))
                .collect::<anyhow::Result<_>>()?,
            folder_users: folder_lists
                .results
                .iter()
                .flatten()
                .map(|list| positions_of_users(graph, list))
                .collect::<anyhow::Result<_>>()?,
            user_stats: user_lists.stats,
            folder_stats: folder_lists.stats,
        })
    }

    pub fn rows(&self, engine: &str) -> Vec<ListRow> {
        vec![
            ListRow {
                engine: engine.to_owned(),
                query: "list_user_access".to_owned(),
                target: "user",
                stats: self.user_stats,
                ours: None,
                mean_items: mean_items(&self.user_folders),
                compared_items: 0,
                excluded_items: 0,
                differences: Vec::new(),
                timed_out: 0,
                time_limit: None,
            },
            ListRow {
                engine: engine.to_owned(),
                query: "list_resource_access".to_owned(),
                target: "resource",
                stats: self.folder_stats,
                ours: None,
                mean_items: mean_items(&self.folder_users),
                compared_items: 0,
                excluded_items: 0,
                differences: Vec::new(),
                timed_out: 0,
                time_limit: None,
            },
        ]
    }

    /// What an engine lacking `unsupported` rules should list for each target
    /// user: Work Teams' answer on folders whose check touches only rules the
    /// engine has, and the portable model's answer on the others.
    pub fn expected_listings(
        &self,
        graph: &Graph<'_>,
        targets: &Targets,
        unsupported: RuleSet,
    ) -> Vec<ExpectedListing> {
        let now = graph.dataset.generated_at;
        targets
            .users
            .iter()
            .zip(&self.user_folders)
            .map(|(user, ours)| {
                let resources = (0..graph.dataset.resources.len())
                    .filter(|resource| graph.definitions[*resource].name == FOLDER_TYPE)
                    .filter(|resource| {
                        let case = CheckCase {
                            user: *user,
                            resource: *resource,
                            permission: LISTED_PERMISSION_INDEX,
                        };
                        if graph.rules_touched(case, now).intersects(unsupported) {
                            graph
                                .portable_permissions(*user, *resource)
                                .contains(LISTED_PERMISSION_INDEX)
                        } else {
                            ours.contains(resource)
                        }
                    })
                    .collect();
                ExpectedListing {
                    user: *user,
                    resource_type: FOLDER_TYPE.to_owned(),
                    permission: LISTED_PERMISSION.to_owned(),
                    resources,
                }
            })
            .collect()
    }
}

/// Compares one listing; returns (items compared, items excluded, differences).
fn compare_listing(
    graph: &Graph<'_>,
    ours: &BTreeSet<usize>,
    theirs: &BTreeSet<usize>,
    unsupported: RuleSet,
    case_of: impl Fn(usize) -> CheckCase,
) -> (usize, usize, Vec<String>) {
    let now = graph.dataset.generated_at;
    let mut compared = 0;
    let mut excluded = 0;
    let mut differences = Vec::new();
    for item in ours.union(theirs) {
        let case = case_of(*item);
        let touched = graph.rules_touched(case, now);
        if touched.intersects(unsupported) {
            excluded += 1;
            continue;
        }
        compared += 1;
        if ours.contains(item) != theirs.contains(item) {
            let user = &graph.dataset.users[case.user];
            let resource = &graph.dataset.resources[case.resource];
            differences.push(format!(
                "user {} (`{}`), folder `{}` (`{}`): Work Teams {}, the engine {}; rules touched: {}",
                user.login,
                user.id,
                resource.external_id,
                resource.id,
                if ours.contains(item) { "lists it" } else { "does not list it" },
                if theirs.contains(item) { "lists it" } else { "does not" },
                touched.iter().map(|rule| rule.description()).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    (compared, excluded, differences)
}

/// Times an in-process peer's list queries and compares them with ours;
/// `None` when the engine has none.
pub fn measure_peer(
    engine: &dyn CheckEngine,
    graph: &Graph<'_>,
    targets: &Targets,
    ours: &OurLists,
    unsupported: RuleSet,
) -> anyhow::Result<Option<Vec<ListRow>>> {
    let Some((user_query, resource_query)) = engine.list_query_names() else {
        return Ok(None);
    };
    let dataset = graph.dataset;
    let user_lists = timed(&targets.users, |user| {
        engine
            .list_resources(
                &dataset.users[user].id.to_string(),
                FOLDER_TYPE,
                LISTED_PERMISSION,
            )
            .unwrap_or_else(|| Ok(Vec::new()))
    })?;
    let folder_lists = timed(&targets.folders, |folder| {
        engine
            .list_users(
                &dataset.resources[folder].id.to_string(),
                FOLDER_TYPE,
                LISTED_PERMISSION,
            )
            .unwrap_or_else(|| Ok(Vec::new()))
    })?;
    let user_sets = answered_positions(&user_lists.results, |ids| {
        positions_of_resources(graph, ids)
    })?;
    let folder_sets =
        answered_positions(&folder_lists.results, |ids| positions_of_users(graph, ids))?;

    let name = engine.info().name;
    let mut user_row = ListRow {
        engine: name.clone(),
        query: user_query.to_owned(),
        target: "user",
        stats: user_lists.stats,
        ours: Some(ours.user_stats),
        mean_items: mean_items(user_sets.iter().flatten()),
        compared_items: 0,
        excluded_items: 0,
        differences: Vec::new(),
        timed_out: user_lists.timed_out,
        time_limit: user_lists.limit,
    };
    for ((user, theirs), mine) in targets.users.iter().zip(&user_sets).zip(&ours.user_folders) {
        // A query stopped at the engine's limit returned no list to compare.
        let Some(theirs) = theirs else { continue };
        let (compared, excluded, differences) =
            compare_listing(graph, mine, theirs, unsupported, |resource| CheckCase {
                user: *user,
                resource,
                permission: LISTED_PERMISSION_INDEX,
            });
        user_row.compared_items += compared;
        user_row.excluded_items += excluded;
        user_row.differences.extend(differences);
    }

    let mut folder_row = ListRow {
        engine: name,
        query: resource_query.to_owned(),
        target: "resource",
        stats: folder_lists.stats,
        ours: Some(ours.folder_stats),
        mean_items: mean_items(folder_sets.iter().flatten()),
        compared_items: 0,
        excluded_items: 0,
        differences: Vec::new(),
        timed_out: folder_lists.timed_out,
        time_limit: folder_lists.limit,
    };
    for ((folder, theirs), mine) in targets
        .folders
        .iter()
        .zip(&folder_sets)
        .zip(&ours.folder_users)
    {
        let Some(theirs) = theirs else { continue };
        let (compared, excluded, differences) =
            compare_listing(graph, mine, theirs, unsupported, |user| CheckCase {
                user,
                resource: *folder,
                permission: LISTED_PERMISSION_INDEX,
            });
        folder_row.compared_items += compared;
        folder_row.excluded_items += excluded;
        folder_row.differences.extend(differences);
    }
    Ok(Some(vec![user_row, folder_row]))
}

/// Times the sidecar's `ListEffectiveAccess` for the targets and compares
/// the result with the in-process index.
pub async fn measure_sidecar(
    client: &mut AuthorizationServiceClient<Channel>,
    graph: &Graph<'_>,
    ids: &IdMap,
    targets: &Targets,
    ours: &OurLists,
) -> anyhow::Result<Vec<ListRow>> {
    let user_positions: HashMap<&str, usize> = ids
        .users
        .iter()
        .enumerate()
        .map(|(position, id)| (id.as_str(), position))
        .collect();
    let resource_positions: HashMap<&str, usize> = ids
        .resources
        .iter()
        .enumerate()
        .map(|(position, id)| (id.as_str(), position))
        .collect();
    let holds_view = |permissions: &[String]| {
        permissions
            .iter()
            .any(|permission| permission == LISTED_PERMISSION)
    };

    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut user_sets = Vec::new();
    for user in &targets.users {
        let before = Instant::now();
        let entries = sidecar::list_user_access(client, &ids.users[*user], FOLDER_TYPE).await?;
        latencies.push(before.elapsed().as_nanos() as u64);
        let set: BTreeSet<usize> = entries
            .iter()
            .filter(|(_, permissions)| holds_view(permissions))
            .filter_map(|(id, _)| resource_positions.get(id.as_str()).copied())
            .collect();
        user_sets.push(set);
    }
    let user_stats = LatencyStats::from_latencies(latencies, 1, started.elapsed());

    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut folder_sets = Vec::new();
    for folder in &targets.folders {
        let before = Instant::now();
        let entries = sidecar::list_resource_access(client, &ids.resources[*folder]).await?;
        latencies.push(before.elapsed().as_nanos() as u64);
        let set: BTreeSet<usize> = entries
            .iter()
            .filter(|(_, permissions)| holds_view(permissions))
            .filter_map(|(id, _)| user_positions.get(id.as_str()).copied())
            .collect();
        folder_sets.push(set);
    }
    let folder_stats = LatencyStats::from_latencies(latencies, 1, started.elapsed());

    let name = "Work Teams sidecar ListEffectiveAccess".to_owned();
    let mut user_row = ListRow {
        engine: name.clone(),
        query: "ListEffectiveAccess (user, type filter)".to_owned(),
        target: "user",
        stats: user_stats,
        ours: Some(ours.user_stats),
        mean_items: mean_items(&user_sets),
        compared_items: 0,
        excluded_items: 0,
        differences: Vec::new(),
        timed_out: 0,
        time_limit: None,
    };
    for ((user, theirs), mine) in targets.users.iter().zip(&user_sets).zip(&ours.user_folders) {
        let (compared, _, differences) =
            compare_listing(graph, mine, theirs, RuleSet::EMPTY, |resource| CheckCase {
                user: *user,
                resource,
                permission: LISTED_PERMISSION_INDEX,
            });
        user_row.compared_items += compared;
        user_row.differences.extend(differences);
    }
    let mut folder_row = ListRow {
        engine: name,
        query: "ListEffectiveAccess (resource)".to_owned(),
        target: "resource",
        stats: folder_stats,
        ours: Some(ours.folder_stats),
        mean_items: mean_items(&folder_sets),
        compared_items: 0,
        excluded_items: 0,
        differences: Vec::new(),
        timed_out: 0,
        time_limit: None,
    };
    for ((folder, theirs), mine) in targets
        .folders
        .iter()
        .zip(&folder_sets)
        .zip(&ours.folder_users)
    {
        let (compared, _, differences) =
            compare_listing(graph, mine, theirs, RuleSet::EMPTY, |user| CheckCase {
                user,
                resource: *folder,
                permission: LISTED_PERMISSION_INDEX,
            });
        folder_row.compared_items += compared;
        folder_row.differences.extend(differences);
    }
    Ok(vec![user_row, folder_row])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn timed_records_timed_out_query() {
        let limit = Duration::from_secs(30);

        let queries = timed(&[1, 2, 3], |target| {
            if target == 2 {
                Err(QueryTimedOut { limit }.into())
            } else {
                Ok(target * 10)
            }
        })
        .unwrap();

        assert_eq!(queries.results, vec![Some(10), None, Some(30)]);
        assert_eq!(queries.timed_out, 1);
        assert_eq!(queries.limit, Some(limit));
        assert_eq!(queries.stats.operations, 3);
    }

    #[test]
    fn timed_passes_other_errors() {
        let outcome = timed(&[1, 2], |target| {
            if target == 2 {
                Err(anyhow::anyhow!("connection refused"))
            } else {
                Ok(target)
            }
        });

        let error = outcome.err().expect("the error is passed on");
        assert!(error.to_string().contains("connection refused"));
    }

    #[test]
    fn mean_skips_unanswered_queries() {
        let lists = [
            Some(BTreeSet::from([1, 2])),
            None,
            Some(BTreeSet::from([3, 4, 5, 6])),
        ];

        assert!((mean_items(lists.iter().flatten()) - 3.0).abs() < 1e-9);
    }
}
