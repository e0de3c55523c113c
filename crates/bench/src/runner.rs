//! The whole benchmark: generate, load every engine, measure, compare, and
//! assemble the report.

use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use workteams_storage::testing::TestDatabase;

use crate::agreement::{self, Agreement, Disagreement};
use crate::cases::{self, Pattern};
use crate::dataset::{self, Dataset, Size};
use crate::engine::{BatchEngine, CheckEngine, EngineInfo, PeerEngine, PeerFactory, RemoteEngine};
use crate::graph::{CheckCase, Graph, RuleSet, non_portable_rules};
use crate::import::{self, IdMap};
use crate::machine::{Machine, git_commit, load_average};
use crate::measure::{Budget, LatencyStats, TaskOperation, run_tasks_interleaved, run_threads};
use crate::ours::{LiveBytes, OurEngine};
use crate::report::{
    BatchRow, CaseSet, Counts, LatencyRow, PropagationRow, Report, SidecarLoad, SizeReport,
};
use crate::services::{self, AUTHZ_SERVICE_NAME, Launch};
use crate::sidecar::{self, EmptyRpcEngine, SidecarEngine};
use crate::{lists, propagation};

/// Budgets and sample sizes of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Checks sampled per access pattern.
    pub cases_per_pattern: usize,
    /// Time of one in-process latency measurement.
    pub in_process_time: Duration,
    /// Time of one gRPC latency measurement.
    pub grpc_time: Duration,
    /// Alternating rounds a gRPC measurement is split into, with the
    /// engine it is compared with (see [`run_tasks_interleaved`]).
    pub grpc_rounds: usize,
    /// In-flight calls that saturate the cores over gRPC.
    pub saturating_tasks: usize,
    /// Users and folders whose effective access is listed.
    pub list_targets: usize,
    /// Writes whose propagation is timed, per database.
    pub propagation_writes: usize,
    /// Checks sent to a batch engine.
    pub batch_engine_checks: usize,
    /// Checks per `BatchCheckAccess` call.
    pub batch_size: usize,
    /// Time a peer gets to answer the sampled checks for the agreement
    /// comparison; a slow peer is compared on the checks it answered by then.
    pub agreement_time: Duration,
}

impl Profile {
    /// Returns budgets that keep the whole run at the small size near a minute.
    pub fn quick() -> Self {
        Self {
            cases_per_pattern: 4_000,
            in_process_time: Duration::from_millis(250),
            grpc_time: Duration::from_millis(400),
            grpc_rounds: 4,
            saturating_tasks: 32,
            list_targets: 10,
            propagation_writes: 10,
            batch_engine_checks: 300,
            batch_size: 100,
            agreement_time: Duration::from_secs(3),
        }
    }

    /// Returns the budgets of a complete run.
    pub fn full() -> Self {
        Self {
            cases_per_pattern: 20_000,
            in_process_time: Duration::from_secs(2),
            grpc_time: Duration::from_secs(3),
            grpc_rounds: 6,
            saturating_tasks: 32,
            list_targets: 40,
            propagation_writes: 40,
            batch_engine_checks: 5_000,
            batch_size: 100,
            agreement_time: Duration::from_secs(60),
        }
    }

    /// Returns the smoke test's budgets: every step runs, briefly.
    pub fn smoke() -> Self {
        Self {
            cases_per_pattern: 300,
            in_process_time: Duration::from_millis(50),
            grpc_time: Duration::from_millis(100),
            grpc_rounds: 2,
            saturating_tasks: 4,
            list_targets: 3,
            propagation_writes: 2,
            batch_engine_checks: 50,
            batch_size: 50,
            agreement_time: Duration::from_secs(5),
        }
    }
}

/// The sizes, budgets, servers and outputs of a run.
pub struct RunConfig {
    pub sizes: Vec<Size>,
    pub seed: u64,
    pub profile: Profile,
    pub launch: Launch,
    /// A PostgreSQL server URL for the propagation measurement there.
    pub postgres_url: Option<String>,
    /// The largest directory imported into PostgreSQL.
    pub postgres_max_size: Size,
    pub live_bytes: Option<LiveBytes>,
    /// The folder for databases and peer inputs.
    pub work_dir: PathBuf,
    /// The command line, for the report.
    pub command: String,
    /// The repository, for the commit in the report.
    pub repository: PathBuf,
    /// Whether to start the directory and sidecar (and measure the gRPC
    /// engines and propagation); without them only in-process and batch
    /// engines run.
    pub services: bool,
    /// A file the report is written to after each size, so a run that
    /// stops early keeps what it measured.
    pub report_path: Option<PathBuf>,
    /// The largest size whose inputs are written to the work folder in
    /// every format ([`crate::writers::write_all`]); `None` writes none.
    pub write_inputs_up_to: Option<Size>,
}

/// Runs every size and returns the report.
pub fn run(config: &RunConfig, peers: &[Box<dyn PeerFactory>]) -> anyhow::Result<Report> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let mut report = Report {
        machine: Machine::describe(),
        date: Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
        commit: git_commit(&config.repository),
        command: config.command.clone(),
        sizes: Vec::new(),
        skipped: Vec::new(),
        engines: Vec::new(),
        seed: config.seed,
        load_average: (load_average(), None),
    };
    for size in &config.sizes {
        log(format!("size {}: generating", size.name()));
        let size_report = run_size(config, *size, peers, &runtime, &mut report.engines)?;
        report.sizes.push(size_report);
        report.load_average.1 = load_average();
        if let Some(path) = &config.report_path {
            std::fs::write(path, report.to_markdown())
                .with_context(|| format!("cannot write {}", path.display()))?;
            log(format!(
                "wrote {} with the sizes measured so far",
                path.display()
            ));
        }
    }
    Ok(report)
}

/// Progress on standard error; the report carries the results.
fn log(message: String) {
    eprintln!("[bench] {message}");
}

/// The samples of one size.
struct Samples {
    /// Hot cases first, then uniform ones.
    cases: Vec<CheckCase>,
    hot: std::ops::Range<usize>,
    uniform: std::ops::Range<usize>,
    rules: Vec<RuleSet>,
    ours: Vec<bool>,
}

impl Samples {
    fn range(&self, pattern: Pattern) -> std::ops::Range<usize> {
        match pattern {
            Pattern::Hot => self.hot.clone(),
            Pattern::Uniform => self.uniform.clone(),
        }
    }

    /// Lists the positions of the cases an engine lacking `unsupported` is
    /// compared on, alternating between the two patterns, so an engine that
    /// runs out of time is still compared on both.
    fn agreement_positions(&self, unsupported: RuleSet) -> Vec<usize> {
        let mut positions = Vec::with_capacity(self.cases.len());
        let (mut hot, mut uniform) = (self.hot.clone(), self.uniform.clone());
        loop {
            let (next_hot, next_uniform) = (hot.next(), uniform.next());
            if next_hot.is_none() && next_uniform.is_none() {
                break;
            }
            positions.extend(next_hot.into_iter().chain(next_uniform));
        }
        positions.retain(|position| !self.rules[*position].intersects(unsupported));
        positions
    }

    /// Spreads answers to the cases at `positions` over every case.
    fn spread(&self, positions: &[usize], answers: Vec<bool>) -> Vec<Option<bool>> {
        let mut spread = vec![None; self.cases.len()];
        for (position, answer) in positions.iter().zip(answers) {
            spread[*position] = Some(answer);
        }
        spread
    }

    /// Selects the cases of `pattern` that an engine lacking `unsupported` is
    /// compared on.
    fn eligible(&self, pattern: Pattern, unsupported: RuleSet) -> Vec<CheckCase> {
        self.range(pattern)
            .filter(|position| !self.rules[*position].intersects(unsupported))
            .map(|position| self.cases[position])
            .collect()
    }
}

fn run_size(
    config: &RunConfig,
    size: Size,
    peers: &[Box<dyn PeerFactory>],
    runtime: &tokio::runtime::Runtime,
    engines: &mut Vec<EngineInfo>,
) -> anyhow::Result<SizeReport> {
    let profile = &config.profile;
    let now = Utc::now();
    let dataset = dataset::generate(size, config.seed, now);
    let graph = Graph::new(&dataset)?;
    let counts = Counts {
        users: dataset.users.len(),
        teams: dataset.teams.len(),
        memberships: dataset.memberships.len(),
        resources: dataset.resources.len(),
        grants: dataset.grants.len(),
    };
    log(format!("size {}: {counts:?}", size.name()));

    if config
        .write_inputs_up_to
        .is_some_and(|largest| size <= largest)
    {
        let directory = config.work_dir.join(format!("inputs-{}", size.name()));
        crate::writers::write_all(&graph, &directory)
            .with_context(|| format!("cannot write the inputs to {}", directory.display()))?;
    }

    let hot = cases::sample(&graph, Pattern::Hot, profile.cases_per_pattern, config.seed);
    let uniform = cases::sample(
        &graph,
        Pattern::Uniform,
        profile.cases_per_pattern,
        config.seed,
    );
    let mut all_cases = hot;
    let hot_range = 0..all_cases.len();
    all_cases.extend(uniform);
    let uniform_range = hot_range.end..all_cases.len();
    let rules = agreement::classify(&graph, &all_cases, now);

    log(format!("size {}: loading the index", size.name()));
    let (ours, index_load) = OurEngine::load(&dataset, now, config.live_bytes);
    let ours_answers = answer_all(&ours, &graph, &all_cases)?;
    let samples = Samples {
        cases: all_cases,
        hot: hot_range,
        uniform: uniform_range,
        rules,
        ours: ours_answers,
    };
    let portable = non_portable_rules();
    let portable_share = samples
        .rules
        .iter()
        .filter(|touched| !touched.intersects(portable))
        .count() as f64
        / samples.cases.len().max(1) as f64;

    let mut report = SizeReport {
        size,
        counts,
        index_load,
        peer_loads: Vec::new(),
        in_process: Vec::new(),
        grpc: Vec::new(),
        lists: Vec::new(),
        batches: Vec::new(),
        propagation: Vec::new(),
        agreement: Vec::new(),
        sidecar: None,
        model_check: Some(model_check(&graph, &samples)),
        skipped: Vec::new(),
        sampled_checks: profile.cases_per_pattern,
        portable_share,
    };
    remember(engines, ours.info());

    let threads = [
        1,
        std::thread::available_parallelism().map_or(2, usize::from),
    ];
    let mut ours_latency: HashMap<(Pattern, RuleSet, usize), LatencyStats> = HashMap::new();
    for pattern in Pattern::ALL {
        for threads in dedup(&threads) {
            let cases = samples.eligible(pattern, RuleSet::EMPTY);
            let stats =
                measure_check_engine(&ours, &graph, &cases, threads, profile.in_process_time)?;
            ours_latency.insert((pattern, RuleSet::EMPTY, threads), stats);
            report.in_process.push(LatencyRow {
                engine: ours.info().name,
                pattern: pattern.name(),
                cases: CaseSet::All,
                stats,
                ours: None,
            });
        }
    }

    let list_targets = lists::Targets::sample(&graph, &samples.cases, profile.list_targets);
    let ours_lists = lists::OurLists::measure(&ours, &graph, &list_targets)?;
    report.lists.extend(ours_lists.rows(&ours.info().name));

    let mut remote_peers: Vec<(Box<dyn RemoteEngine>, String)> = Vec::new();
    for factory in peers {
        log(format!("size {}: loading {}", size.name(), factory.name()));
        let built = match factory.build(&graph, runtime.handle()) {
            Ok(Ok(built)) => built,
            Ok(Err(reason)) => {
                report.skipped.push((factory.name().to_owned(), reason));
                continue;
            }
            Err(error) => {
                report
                    .skipped
                    .push((factory.name().to_owned(), format!("failed: {error:#}")));
                continue;
            }
        };
        let (engine, load) = built;
        match engine {
            PeerEngine::Check(engine) => {
                let info = engine.info();
                remember(engines, info.clone());
                report.peer_loads.push((info.name.clone(), load));
                log(format!("size {}: measuring {}", size.name(), info.name));
                if let Err(error) = run_check_peer(
                    &*engine,
                    &ours,
                    &graph,
                    &samples,
                    &list_targets,
                    &ours_lists,
                    profile,
                    &threads,
                    &mut ours_latency,
                    &mut report,
                ) {
                    report.skipped.push((
                        info.name.clone(),
                        format!("failed while measuring: {error:#}"),
                    ));
                }
            }
            PeerEngine::Remote(engine) => {
                let info = engine.info();
                remember(engines, info.clone());
                report.peer_loads.push((info.name.clone(), load));
                remote_peers.push((engine, info.name));
            }
            PeerEngine::Batch(engine) => {
                let info = engine.info();
                remember(engines, info.clone());
                log(format!("size {}: running {}", size.name(), info.name));
                if let Err(error) = run_batch_peer(
                    &*engine,
                    &graph,
                    &samples,
                    &list_targets,
                    &ours_lists,
                    profile,
                    &mut report,
                ) {
                    report
                        .skipped
                        .push((info.name.clone(), format!("failed: {error:#}")));
                }
            }
        }
    }

    if !config.services {
        for (_, name) in &remote_peers {
            report
                .skipped
                .push((name.clone(), "the run started no servers".to_owned()));
        }
        return Ok(report);
    }
    log(format!("size {}: directory and sidecar", size.name()));
    runtime.block_on(run_services(
        config,
        &graph,
        &samples,
        &list_targets,
        &ours_lists,
        &remote_peers,
        engines,
        &mut report,
    ))?;

    if let Some(server_url) = &config.postgres_url {
        let postgres_size = size.min(config.postgres_max_size);
        log(format!(
            "size {}: propagation on PostgreSQL ({})",
            size.name(),
            postgres_size.name()
        ));
        let postgres_dataset = if postgres_size == size {
            None
        } else {
            Some(dataset::generate(postgres_size, config.seed, Utc::now()))
        };
        let postgres_data = postgres_dataset.as_ref().unwrap_or(&dataset);
        match runtime.block_on(postgres_propagation(config, server_url, postgres_data)) {
            Ok(row) => report.propagation.push(row),
            Err(error) => report.skipped.push((
                "propagation on PostgreSQL".to_owned(),
                format!("failed: {error:#}"),
            )),
        }
    } else {
        report.skipped.push((
            "propagation on PostgreSQL".to_owned(),
            "no PostgreSQL server URL was given".to_owned(),
        ));
    }
    Ok(report)
}

fn remember(engines: &mut Vec<EngineInfo>, info: EngineInfo) {
    if !engines.iter().any(|known| known.name == info.name) {
        engines.push(info);
    }
}

fn dedup(values: &[usize]) -> Vec<usize> {
    let set: BTreeSet<usize> = values.iter().copied().collect();
    set.into_iter().collect()
}

fn answer_all(
    engine: &dyn CheckEngine,
    graph: &Graph<'_>,
    cases: &[CheckCase],
) -> anyhow::Result<Vec<bool>> {
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let mut worker = engine.worker(graph, cases)?;
    (0..cases.len()).map(&mut worker).collect()
}

/// Answers cases in order until `time` runs out; the answers cover a prefix
/// of `cases`.
fn answer_within(
    engine: &dyn CheckEngine,
    graph: &Graph<'_>,
    cases: &[CheckCase],
    time: Duration,
) -> anyhow::Result<Vec<bool>> {
    if cases.is_empty() {
        return Ok(Vec::new());
    }
    let mut worker = engine.worker(graph, cases)?;
    let started = Instant::now();
    let mut answers = Vec::with_capacity(cases.len());
    for position in 0..cases.len() {
        if started.elapsed() >= time {
            break;
        }
        answers.push(worker(position)?);
    }
    Ok(answers)
}

/// Compares the harness's portable model with the index on portable checks.
fn model_check(graph: &Graph<'_>, samples: &Samples) -> Agreement {
    let theirs: Vec<Option<bool>> = samples
        .cases
        .iter()
        .map(|case| {
            Some(
                graph
                    .portable_permissions(case.user, case.resource)
                    .contains(case.permission),
            )
        })
        .collect();
    agreement::compare(
        graph,
        "harness portable model",
        &samples.cases,
        &samples.rules,
        non_portable_rules(),
        &samples.ours,
        &theirs,
    )
}

fn measure_check_engine(
    engine: &dyn CheckEngine,
    graph: &Graph<'_>,
    cases: &[CheckCase],
    threads: usize,
    time: Duration,
) -> anyhow::Result<LatencyStats> {
    anyhow::ensure!(!cases.is_empty(), "no checks to measure");
    let budget = Budget::new(u64::MAX, time);
    run_threads(threads, budget, |_| {
        let mut worker = engine.worker(graph, cases)?;
        Ok(move |position| worker(position).map(|_| ()))
    })
}

#[allow(clippy::too_many_arguments)]
fn run_check_peer(
    engine: &dyn CheckEngine,
    ours: &OurEngine,
    graph: &Graph<'_>,
    samples: &Samples,
    targets: &lists::Targets,
    ours_lists: &lists::OurLists,
    profile: &Profile,
    threads: &[usize],
    ours_latency: &mut HashMap<(Pattern, RuleSet, usize), LatencyStats>,
    report: &mut SizeReport,
) -> anyhow::Result<()> {
    let info = engine.info();
    let positions = samples.agreement_positions(info.unsupported);
    let eligible_cases: Vec<CheckCase> = positions
        .iter()
        .map(|position| samples.cases[*position])
        .collect();
    let answers = answer_within(engine, graph, &eligible_cases, profile.agreement_time)?;
    let theirs = samples.spread(&positions, answers);
    report.agreement.push(agreement::compare(
        graph,
        &info.name,
        &samples.cases,
        &samples.rules,
        info.unsupported,
        &samples.ours,
        &theirs,
    ));

    for pattern in Pattern::ALL {
        let cases = samples.eligible(pattern, info.unsupported);
        if cases.is_empty() {
            continue;
        }
        for threads in dedup(threads) {
            let stats =
                measure_check_engine(engine, graph, &cases, threads, profile.in_process_time)?;
            let key = (pattern, info.unsupported, threads);
            let ours_stats = match ours_latency.get(&key) {
                Some(stats) => *stats,
                None => {
                    let stats = measure_check_engine(
                        ours,
                        graph,
                        &cases,
                        threads,
                        profile.in_process_time,
                    )?;
                    ours_latency.insert(key, stats);
                    stats
                }
            };
            report.in_process.push(LatencyRow {
                engine: info.name.clone(),
                pattern: pattern.name(),
                cases: CaseSet::Portable,
                stats,
                ours: Some(ours_stats),
            });
        }
    }

    if let Some(rows) = lists::measure_peer(engine, graph, targets, ours_lists, info.unsupported)? {
        report.lists.extend(rows);
    }
    Ok(())
}

fn run_batch_peer(
    engine: &dyn BatchEngine,
    graph: &Graph<'_>,
    samples: &Samples,
    targets: &lists::Targets,
    ours_lists: &lists::OurLists,
    profile: &Profile,
    report: &mut SizeReport,
) -> anyhow::Result<()> {
    let info = engine.info();
    let mut positions = samples.agreement_positions(info.unsupported);
    positions.truncate(profile.batch_engine_checks);
    let cases: Vec<CheckCase> = positions
        .iter()
        .map(|position| samples.cases[*position])
        .collect();
    let expected: Vec<bool> = positions
        .iter()
        .map(|position| samples.ours[*position])
        .collect();
    let listings = ours_lists.expected_listings(graph, targets, info.unsupported);

    let outcome = engine.run(graph, &cases, &expected, &listings)?;
    report.batches.push(BatchRow {
        engine: info.name.clone(),
        checks: cases.len(),
        listings: listings.len(),
        elapsed: outcome.elapsed,
        load_elapsed: outcome.load_elapsed,
    });

    let disagreements: Vec<Disagreement> = outcome
        .check_failures
        .iter()
        .filter_map(|failed| {
            let position = *positions.get(*failed)?;
            Some(Disagreement::new(
                graph,
                samples.cases[position],
                samples.ours[position],
                !samples.ours[position],
                samples.rules[position],
            ))
        })
        .collect();

    // The batch engine ran the first portable checks only; exclusions are
    // counted over every sampled check, as for the other peers.
    let unanswered = vec![None; samples.cases.len()];
    let exclusions = agreement::compare(
        graph,
        &info.name,
        &samples.cases,
        &samples.rules,
        info.unsupported,
        &samples.ours,
        &unanswered,
    );
    let agreement = Agreement {
        engine: info.name.clone(),
        compared: cases.len(),
        excluded: exclusions.excluded,
        agreed: cases.len() - disagreements.len(),
        excluded_by_rule: exclusions.excluded_by_rule,
        disagreements,
    };
    report.agreement.push(agreement);

    for failed in &outcome.list_failures {
        if let Some(listing) = listings.get(*failed) {
            report.skipped.push((
                info.name.clone(),
                format!(
                    "list query {failed} (user {}, {} {}) answered differently from Work Teams",
                    graph.dataset.users[listing.user].login,
                    listing.resource_type,
                    listing.permission
                ),
            ));
        }
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run_services(
    config: &RunConfig,
    graph: &Graph<'_>,
    samples: &Samples,
    targets: &lists::Targets,
    ours_lists: &lists::OurLists,
    remote_peers: &[(Box<dyn RemoteEngine>, String)],
    engines: &mut Vec<EngineInfo>,
    report: &mut SizeReport,
) -> anyhow::Result<()> {
    let profile = &config.profile;
    let data_dir = config
        .work_dir
        .join(format!("directory-{}", graph.dataset.size.name()));
    if data_dir.exists() {
        std::fs::remove_dir_all(&data_dir)
            .with_context(|| format!("cannot clear {}", data_dir.display()))?;
    }
    std::fs::create_dir_all(&data_dir)?;
    let database_url = format!("sqlite://{}/directory.db?mode=rwc", data_dir.display());
    let directory = services::start_directory(&config.launch, &database_url, &data_dir).await?;
    services::wait_serving(
        &directory.url(),
        services::DIRECTORY_SERVICE_NAME,
        Duration::from_secs(60),
    )
    .await?;

    let baseline_rss = match config.launch {
        Launch::ChildProcess { .. } => {
            let empty = services::start_sidecar(&config.launch, &directory.url()).await?;
            services::wait_serving(&empty.url(), AUTHZ_SERVICE_NAME, Duration::from_secs(60))
                .await?;
            let rss = empty.pid().and_then(services::resident_bytes);
            empty.stop().await?;
            rss
        }
        Launch::InProcess => None,
    };

    log(format!(
        "importing {} entities",
        graph.dataset.entities().count()
    ));
    let imported = import::import(graph, &directory.url()).await?;
    import::wait_for_stand_in_expiries(&imported).await;

    let sidecar_server = services::start_sidecar(&config.launch, &directory.url()).await?;
    let snapshot_load = services::wait_serving(
        &sidecar_server.url(),
        AUTHZ_SERVICE_NAME,
        Duration::from_secs(1_800),
    )
    .await?;
    let loaded_rss = sidecar_server.pid().and_then(services::resident_bytes);
    let ids = Arc::new(imported.ids.clone());
    let channel = sidecar::channel(&sidecar_server.url()).await?;
    let mut client = sidecar::client(channel.clone());

    let answers =
        sidecar::batch_check(&mut client, graph, &ids, &samples.cases, sidecar::MAX_BATCH).await?;
    let theirs: Vec<Option<bool>> = answers.into_iter().map(Some).collect();
    let sidecar_engine = SidecarEngine {
        channel: channel.clone(),
        ids: Arc::clone(&ids),
    };
    let sidecar_info = sidecar_engine.info();
    remember(engines, sidecar_info.clone());
    report.agreement.push(agreement::compare(
        graph,
        &sidecar_info.name,
        &samples.cases,
        &samples.rules,
        RuleSet::EMPTY,
        &samples.ours,
        &theirs,
    ));

    let batch_cases: Vec<CheckCase> = samples.cases[samples.uniform.clone()].to_vec();
    let started = Instant::now();
    sidecar::batch_check(&mut client, graph, &ids, &batch_cases, profile.batch_size).await?;
    let batch_throughput = batch_cases.len() as f64 / started.elapsed().as_secs_f64().max(1e-9);

    report.sidecar = Some(SidecarLoad {
        import_elapsed: imported.elapsed,
        import_calls: imported.calls,
        snapshot_load,
        baseline_rss,
        loaded_rss,
        edges: graph.dataset.edge_count(),
        batch_throughput: Some((profile.batch_size, batch_throughput)),
    });

    let empty_engine = EmptyRpcEngine {
        channel: channel.clone(),
    };
    remember(engines, empty_engine.info());
    let concurrencies = dedup(&[1, profile.saturating_tasks]);
    for pattern in Pattern::ALL {
        let cases = samples.eligible(pattern, RuleSet::EMPTY);
        for concurrency in &concurrencies {
            let engines = [&sidecar_engine as &dyn RemoteEngine, &empty_engine];
            let stats =
                measure_side_by_side(&engines, graph, &cases, *concurrency, profile).await?;
            for (engine, stats) in engines.iter().zip(stats) {
                report.grpc.push(LatencyRow {
                    engine: engine.info().name,
                    pattern: pattern.name(),
                    cases: CaseSet::All,
                    stats,
                    ours: None,
                });
            }
        }
    }

    for (engine, name) in remote_peers {
        log(format!("measuring {name}"));
        if let Err(error) = run_remote_peer(
            &**engine,
            &sidecar_engine,
            graph,
            samples,
            &concurrencies,
            profile,
            report,
        )
        .await
        {
            report
                .skipped
                .push((name.clone(), format!("failed while measuring: {error:#}")));
        }
    }

    let sidecar_lists =
        lists::measure_sidecar(&mut client, graph, &ids, targets, ours_lists).await?;
    report.lists.extend(sidecar_lists);

    log("propagation on SQLite".to_owned());
    let (visible, write) = propagation::measure(
        graph,
        &ids,
        &directory.url(),
        &sidecar_server.url(),
        profile.propagation_writes,
        17,
    )
    .await?;
    report.propagation.push(PropagationRow {
        backend: "SQLite".to_owned(),
        size: graph.dataset.size,
        visible,
        write,
    });

    drop(client);
    sidecar_server.stop().await?;
    directory.stop().await?;
    Ok(())
}

/// Measures engines on the same checks in alternating rounds and returns
/// their statistics in the order given.
async fn measure_side_by_side(
    engines: &[&dyn RemoteEngine],
    graph: &Graph<'_>,
    cases: &[CheckCase],
    concurrency: usize,
    profile: &Profile,
) -> anyhow::Result<Vec<LatencyStats>> {
    let mut operations: Vec<TaskOperation> = Vec::with_capacity(engines.len());
    for engine in engines {
        let prepared = engine.prepare(graph, cases)?;
        operations.push(Arc::new(move |position| {
            let call = prepared.check(position);
            Box::pin(async move { call.await.map(|_| ()) })
        }));
    }
    run_tasks_interleaved(
        concurrency,
        profile.grpc_time,
        profile.grpc_rounds,
        &operations,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn run_remote_peer(
    engine: &dyn RemoteEngine,
    sidecar: &SidecarEngine,
    graph: &Graph<'_>,
    samples: &Samples,
    concurrencies: &[usize],
    profile: &Profile,
    report: &mut SizeReport,
) -> anyhow::Result<()> {
    let info = engine.info();
    let positions = samples.agreement_positions(info.unsupported);
    let eligible_cases: Vec<CheckCase> = positions
        .iter()
        .map(|position| samples.cases[*position])
        .collect();
    let mut answers = Vec::with_capacity(eligible_cases.len());
    if !eligible_cases.is_empty() {
        let prepared = engine.prepare(graph, &eligible_cases)?;
        let started = Instant::now();
        for position in 0..eligible_cases.len() {
            if started.elapsed() >= profile.agreement_time {
                break;
            }
            answers.push(prepared.check(position).await?);
        }
    }
    let theirs = samples.spread(&positions, answers);
    report.agreement.push(agreement::compare(
        graph,
        &info.name,
        &samples.cases,
        &samples.rules,
        info.unsupported,
        &samples.ours,
        &theirs,
    ));

    for pattern in Pattern::ALL {
        let cases = samples.eligible(pattern, info.unsupported);
        if cases.is_empty() {
            continue;
        }
        for concurrency in concurrencies {
            let engines = [engine, sidecar as &dyn RemoteEngine];
            let stats =
                measure_side_by_side(&engines, graph, &cases, *concurrency, profile).await?;
            report.grpc.push(LatencyRow {
                engine: info.name.clone(),
                pattern: pattern.name(),
                cases: CaseSet::Portable,
                stats: stats[0],
                ours: Some(stats[1]),
            });
        }
    }
    Ok(())
}

async fn postgres_propagation(
    config: &RunConfig,
    server_url: &str,
    dataset: &Dataset,
) -> anyhow::Result<PropagationRow> {
    let database = TestDatabase::postgres(server_url)
        .await
        .context("cannot create a PostgreSQL database")?;
    let result = async {
        let graph = Graph::new(dataset)?;
        let data_dir = config.work_dir.join("directory-postgres");
        std::fs::create_dir_all(&data_dir)?;
        let directory =
            services::start_directory(&config.launch, database.url(), &data_dir).await?;
        services::wait_serving(
            &directory.url(),
            services::DIRECTORY_SERVICE_NAME,
            Duration::from_secs(60),
        )
        .await?;
        let imported = import::import(&graph, &directory.url()).await?;
        let ids: IdMap = imported.ids;
        let sidecar_server = services::start_sidecar(&config.launch, &directory.url()).await?;
        services::wait_serving(
            &sidecar_server.url(),
            AUTHZ_SERVICE_NAME,
            Duration::from_secs(1_800),
        )
        .await?;
        let measured = propagation::measure(
            &graph,
            &ids,
            &directory.url(),
            &sidecar_server.url(),
            config.profile.propagation_writes,
            17,
        )
        .await;
        sidecar_server.stop().await?;
        directory.stop().await?;
        let (visible, write) = measured?;
        anyhow::Ok(PropagationRow {
            backend: "PostgreSQL".to_owned(),
            size: dataset.size,
            visible,
            write,
        })
    }
    .await;
    database.cleanup().await;
    result
}
