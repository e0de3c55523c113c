//! Sampling of the checks every engine answers.
//!
//! Two access patterns: a cache-friendly one where a few hot users touch a
//! few hot resources, and a uniformly random one over the whole directory.
//! Purely random pairs in a large directory are nearly all denials, so half
//! of each pattern's pairs follow a grant edge (a granted resource or one of
//! its descendants, and a user the grant is to or a member of the granted
//! team), which keeps allowed and denied answers both frequent.

use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use workteams_domain::Subject;

use crate::graph::{CheckCase, Graph};

/// Hot users and hot resources in the cache-friendly pattern.
const HOT_USERS: usize = 16;
const HOT_RESOURCES: usize = 64;

/// The access pattern of a benchmark's checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Pattern {
    /// A few hot users and resources, repeated.
    Hot,
    /// Users and resources drawn uniformly from the whole directory.
    Uniform,
}

impl Pattern {
    pub const ALL: [Pattern; 2] = [Pattern::Hot, Pattern::Uniform];

    pub const fn name(self) -> &'static str {
        match self {
            Self::Hot => "hot",
            Self::Uniform => "uniform",
        }
    }
}

/// Samples `count` checks of `pattern`.
pub fn sample(graph: &Graph<'_>, pattern: Pattern, count: usize, seed: u64) -> Vec<CheckCase> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ pattern as u64);
    match pattern {
        Pattern::Uniform => (0..count)
            .map(|_| {
                if rng.random_bool(0.5) {
                    edge_case(graph, &mut rng)
                } else {
                    let user = rng.random_range(0..graph.dataset.users.len());
                    let resource = rng.random_range(0..graph.dataset.resources.len());
                    with_permission(graph, &mut rng, user, resource)
                }
            })
            .collect(),
        Pattern::Hot => {
            let mut hot_pairs: Vec<(usize, usize)> = Vec::new();
            while hot_pairs.len() < HOT_USERS.max(HOT_RESOURCES) {
                let case = edge_case(graph, &mut rng);
                hot_pairs.push((case.user, case.resource));
            }
            let hot_users: Vec<usize> = hot_pairs
                .iter()
                .take(HOT_USERS)
                .map(|pair| pair.0)
                .collect();
            let hot_resources: Vec<usize> = hot_pairs
                .iter()
                .take(HOT_RESOURCES)
                .map(|pair| pair.1)
                .collect();
            (0..count)
                .map(|_| {
                    let (user, resource) = if rng.random_bool(0.5) {
                        hot_pairs[rng.random_range(0..hot_pairs.len())]
                    } else {
                        let user = hot_users.choose(&mut rng).copied().unwrap_or(0);
                        let resource = hot_resources.choose(&mut rng).copied().unwrap_or(0);
                        (user, resource)
                    };
                    with_permission(graph, &mut rng, user, resource)
                })
                .collect()
        }
    }
}

/// Draws a check that follows a random grant: its resource or a descendant
/// that inherits it, and its user or a member of its team.
fn edge_case(graph: &Graph<'_>, rng: &mut ChaCha8Rng) -> CheckCase {
    let dataset = graph.dataset;
    if dataset.grants.is_empty() {
        return with_permission(graph, rng, 0, 0);
    }
    let grant = &dataset.grants[rng.random_range(0..dataset.grants.len())];
    let mut resource = graph.resource_positions[&grant.resource_id];
    for _ in 0..rng.random_range(0..4) {
        let children: Vec<usize> = graph.resource_children[resource]
            .iter()
            .copied()
            .filter(|child| graph.inheriting_parent(*child) == Some(resource))
            .collect();
        match children.choose(rng) {
            Some(child) => resource = *child,
            None => break,
        }
    }
    let user = match grant.subject {
        Subject::User(id) => graph.user_positions[&id],
        Subject::Team(id) => {
            let team = graph.team_positions[&id];
            let mut teams = vec![team];
            teams.extend(graph.team_children[team].iter().copied());
            let chosen = teams.choose(rng).copied().unwrap_or(team);
            match graph.team_memberships[chosen].choose(rng) {
                Some(membership) => graph.user_positions[&dataset.memberships[*membership].user_id],
                None => rng.random_range(0..dataset.users.len()),
            }
        }
    };
    with_permission(graph, rng, user, resource)
}

fn with_permission(
    graph: &Graph<'_>,
    rng: &mut ChaCha8Rng,
    user: usize,
    resource: usize,
) -> CheckCase {
    let permissions = graph
        .definitions
        .get(resource)
        .map_or(1, |definition| definition.permissions.len());
    CheckCase {
        user,
        resource,
        permission: rng.random_range(0..permissions.max(1)),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::dataset::{Size, generate};

    #[test]
    fn hot_pattern_repeats_few_users() {
        let dataset = generate(Size::Small, 1, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let cases = sample(&graph, Pattern::Hot, 2_000, 9);
        let users: std::collections::HashSet<_> = cases.iter().map(|case| case.user).collect();
        assert!(users.len() <= HOT_USERS.max(HOT_RESOURCES));
    }

    #[test]
    fn uniform_pattern_mixes_answers() {
        let dataset = generate(Size::Small, 1, Utc::now());
        let graph = Graph::new(&dataset).unwrap();
        let cases = sample(&graph, Pattern::Uniform, 2_000, 9);
        let allowed = cases
            .iter()
            .filter(|case| {
                graph
                    .portable_permissions(case.user, case.resource)
                    .contains(case.permission)
            })
            .count();
        assert!(allowed > 100, "{allowed} allowed");
        assert!(allowed < 1_900, "{allowed} allowed");
    }
}
