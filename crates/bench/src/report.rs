//! The results of a run and their Markdown rendering (`BENCHMARKS.md`).

use std::fmt::Write as _;
use std::time::Duration;

use crate::agreement::Agreement;
use crate::dataset::Size;
use crate::engine::{EngineInfo, LoadReport};
use crate::graph::{PORTABLE_RULES, Rule, RuleSet};
use crate::machine::Machine;
use crate::measure::LatencyStats;
use crate::ours::IndexLoad;

/// Everything one run measured.
#[derive(Debug, Clone)]
pub struct Report {
    pub machine: Machine,
    pub date: String,
    pub commit: String,
    /// The command that produced the report.
    pub command: String,
    pub sizes: Vec<SizeReport>,
    /// Peers skipped for the whole run, with the reason.
    pub skipped: Vec<(String, String)>,
    /// Engines described once for the rules table.
    pub engines: Vec<EngineInfo>,
    /// The generator's seed.
    pub seed: u64,
    /// Load averages (1, 5, 15 minutes) when the run started and ended.
    pub load_average: (Option<String>, Option<String>),
}

/// Counts of a generated directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub users: usize,
    pub teams: usize,
    pub memberships: usize,
    pub resources: usize,
    pub grants: usize,
}

/// The set of cases a latency row ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseSet {
    All,
    /// Only checks that touch no rule outside the portable set.
    Portable,
}

impl CaseSet {
    pub const fn name(self) -> &'static str {
        match self {
            Self::All => "all",
            Self::Portable => "portable",
        }
    }
}

/// One latency measurement, with Work Teams' figure on the same checks
/// when the row is a peer's.
#[derive(Debug, Clone)]
pub struct LatencyRow {
    pub engine: String,
    pub pattern: &'static str,
    pub cases: CaseSet,
    pub stats: LatencyStats,
    pub ours: Option<LatencyStats>,
}

/// One list query measured over several targets.
#[derive(Debug, Clone)]
pub struct ListRow {
    pub engine: String,
    pub query: String,
    /// "user" or "resource".
    pub target: &'static str,
    pub stats: LatencyStats,
    pub ours: Option<LatencyStats>,
    /// Mean number of items a query returned.
    pub mean_items: f64,
    pub compared_items: usize,
    pub excluded_items: usize,
    /// Items present on one side only, with what they touch.
    pub differences: Vec<String>,
    /// Queries the engine stopped at its own time limit; their latency is
    /// counted as the time they ran, so the percentiles are lower bounds.
    pub timed_out: usize,
    pub time_limit: Option<Duration>,
}

impl ListRow {
    /// Checks whether a latency of this row reached the engine's time limit,
    /// in which case the true figure is higher.
    fn reached_limit(&self, latency: Duration) -> bool {
        self.timed_out > 0 && self.time_limit.is_some_and(|limit| latency >= limit)
    }

    /// Formats a latency of this row, as "> limit" where it reached the limit.
    fn latency(&self, latency: Duration) -> String {
        match self.time_limit {
            Some(limit) if self.reached_limit(latency) => format!("> {}", seconds(limit)),
            _ => micros(latency),
        }
    }
}

/// One batch engine run.
#[derive(Debug, Clone)]
pub struct BatchRow {
    pub engine: String,
    pub checks: usize,
    pub listings: usize,
    pub elapsed: Duration,
    pub load_elapsed: Duration,
}

impl BatchRow {
    /// Checks per second, start-up and loading subtracted.
    pub fn throughput(&self) -> f64 {
        let seconds = self.elapsed.saturating_sub(self.load_elapsed).as_secs_f64();
        if seconds > 0.0 {
            self.checks as f64 / seconds
        } else {
            0.0
        }
    }
}

/// Write-to-visible times on one database.
#[derive(Debug, Clone)]
pub struct PropagationRow {
    pub backend: String,
    /// The size of the directory the writes went to.
    pub size: Size,
    /// From sending the write to the sidecar's first answer that shows it.
    pub visible: LatencyStats,
    /// The write call alone.
    pub write: LatencyStats,
}

/// The sidecar's loading figures.
#[derive(Debug, Clone, Default)]
pub struct SidecarLoad {
    pub import_elapsed: Duration,
    pub import_calls: usize,
    pub snapshot_load: Duration,
    pub baseline_rss: Option<u64>,
    pub loaded_rss: Option<u64>,
    pub edges: usize,
    /// Checks per second through `BatchCheckAccess`, with the batch size.
    pub batch_throughput: Option<(usize, f64)>,
}

impl SidecarLoad {
    pub fn bytes_per_edge(&self) -> Option<f64> {
        let (baseline, loaded) = (self.baseline_rss?, self.loaded_rss?);
        Some(loaded.saturating_sub(baseline) as f64 / self.edges.max(1) as f64)
    }
}

/// Results at one directory size.
#[derive(Debug, Clone)]
pub struct SizeReport {
    pub size: Size,
    pub counts: Counts,
    pub index_load: IndexLoad,
    pub peer_loads: Vec<(String, LoadReport)>,
    pub in_process: Vec<LatencyRow>,
    pub grpc: Vec<LatencyRow>,
    pub lists: Vec<ListRow>,
    pub batches: Vec<BatchRow>,
    pub propagation: Vec<PropagationRow>,
    pub agreement: Vec<Agreement>,
    pub sidecar: Option<SidecarLoad>,
    /// Checks the harness's portable model answered differently from the
    /// index although they touch only portable rules: a harness or index bug.
    pub model_check: Option<Agreement>,
    pub skipped: Vec<(String, String)>,
    pub sampled_checks: usize,
    pub portable_share: f64,
}

pub fn micros(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 100.0 {
        format!("{micros:.0} µs")
    } else if micros >= 10.0 {
        format!("{micros:.1} µs")
    } else {
        format!("{micros:.2} µs")
    }
}

fn millis(duration: Duration) -> String {
    let millis = duration.as_secs_f64() * 1e3;
    if millis >= 100.0 {
        format!("{millis:.0} ms")
    } else {
        format!("{millis:.2} ms")
    }
}

fn per_second(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M/s", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k/s", value / 1e3)
    } else {
        format!("{value:.0} /s")
    }
}

fn bytes(value: u64) -> String {
    let value = value as f64;
    if value >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.2} GiB", value / (1024.0 * 1024.0 * 1024.0))
    } else if value >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", value / (1024.0 * 1024.0))
    } else {
        format!("{:.1} KiB", value / 1024.0)
    }
}

fn ratio(numerator: f64, denominator: f64) -> String {
    if denominator <= 0.0 || numerator <= 0.0 {
        return "–".to_owned();
    }
    format!("{:.2}×", numerator / denominator)
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// An aim of the project and whether a measurement met it.
struct Aim {
    text: &'static str,
    size: Size,
    result: String,
    met: Option<bool>,
}

impl Report {
    /// Renders the report as Markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by the benchmark harness (`{}`) on {} at commit `{}`, generator seed {}. Every figure below comes \
             from that one run; nothing is copied from elsewhere. Latencies are per call, measured by the caller with a \
             monotonic clock; throughput is completed calls per second of wall time over the same run.\n",
            self.command, self.date, self.commit, self.seed
        );

        let _ = writeln!(out, "## Machine\n");
        let _ = writeln!(out, "| CPU | cores | memory | kernel | compiler |");
        let _ = writeln!(out, "|---|---|---|---|---|");
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} |\n",
            self.machine.cpu_model,
            self.machine.cores,
            bytes(self.machine.memory_bytes),
            self.machine.kernel,
            self.machine.rustc
        );
        let _ = writeln!(
            out,
            "Every server, client and engine shares these cores: the load generator competes with the server it measures, \
             as a sidecar's caller would on the same host. Load average (1, 5, 15 minutes) at the start of the run: {}; \
             at the end: {}. A load above zero at the start means other work shared the machine, which shows most in the \
             p99 and p99.9 columns.\n",
            self.load_average.0.as_deref().unwrap_or("unknown"),
            self.load_average.1.as_deref().unwrap_or("unknown")
        );
        let busy_threshold = 0.5 * self.machine.cores as f64;
        if let Some(load) = self.starting_load().filter(|load| *load >= busy_threshold) {
            let _ = writeln!(
                out,
                "**This run was noisy.** A one-minute load of {load:.2} on {} cores when the run started means other \
                 processes competed for the CPU. Treat the p99 and p99.9 columns, the rows at more than one thread or \
                 caller, and small ratios (below about 2×) as rough, and rerun on an idle machine before relying on them.\n",
                self.machine.cores
            );
        }

        self.write_reproduce(&mut out);
        self.write_aims(&mut out);
        self.write_rules(&mut out);
        for size in &self.sizes {
            size.write(&mut out);
        }
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "## Peers skipped in this run\n");
            for (peer, reason) in &self.skipped {
                let _ = writeln!(out, "- {peer}: {reason}");
            }
            out.push('\n');
        }
        out
    }

    /// Returns the one-minute load average when the run started, before the
    /// benchmark itself added to it.
    fn starting_load(&self) -> Option<f64> {
        self.load_average
            .0
            .as_deref()?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    }

    fn write_reproduce(&self, out: &mut String) {
        let _ = writeln!(out, "## How to reproduce\n");
        let _ = writeln!(out, "```sh");
        let _ = writeln!(
            out,
            "bench/install-peers.sh      # once: Cerbos, SpiceDB (embedded library), OpenFGA CLI into bench/peers/"
        );
        let _ = writeln!(
            out,
            "bench/run.sh --small          # or --quick (about a minute), --medium, --large; sizes combine"
        );
        let _ = writeln!(out, "```\n");
        let _ = writeln!(
            out,
            "`bench/run.sh` builds the `bench/` workspace in release mode and runs it; the report replaces this file. \
             PostgreSQL figures need a server on 127.0.0.1:5432 (user postgres, trust authentication); without it they \
             are skipped. A peer that is not installed is skipped with a note below. The peer-independent part of the \
             harness is the `workteams-bench` crate (`crates/bench`), whose smoke test runs at the tiniest size in \
             `cargo test`.\n"
        );
    }

    fn write_aims(&self, out: &mut String) {
        let mut aims: Vec<Aim> = Vec::new();
        for size in &self.sizes {
            for row in size
                .in_process
                .iter()
                .filter(|row| row.engine.starts_with("Cedar") && row.stats.concurrency == 1)
            {
                if let Some(ours) = row.ours {
                    let speedup = row.stats.mean.as_secs_f64() / ours.mean.as_secs_f64().max(1e-12);
                    aims.push(Aim {
                        text: "in process, our check ≥ 10× faster than Cedar's (mean latency, concurrency 1)",
                        size: size.size,
                        result: format!("{speedup:.1}× on the {} pattern", row.pattern),
                        met: Some(speedup >= 10.0),
                    });
                }
            }
            let empty = |pattern: &str, concurrency: usize| {
                size.grpc.iter().find(|row| {
                    row.engine.starts_with("Empty RPC")
                        && row.pattern == pattern
                        && row.stats.concurrency == concurrency
                })
            };
            for row in size
                .grpc
                .iter()
                .filter(|row| row.engine.ends_with("CheckAccess"))
            {
                if let Some(floor) = empty(row.pattern, row.stats.concurrency) {
                    let factor =
                        row.stats.p99.as_secs_f64() / floor.stats.p99.as_secs_f64().max(1e-12);
                    aims.push(Aim {
                        text: "over gRPC, CheckAccess p99 ≤ 1.5× the empty RPC's p99",
                        size: size.size,
                        result: format!(
                            "{factor:.2}× ({} pattern, concurrency {})",
                            row.pattern, row.stats.concurrency
                        ),
                        met: Some(factor <= 1.5),
                    });
                }
            }
            for cerbos in size
                .grpc
                .iter()
                .filter(|row| row.engine.starts_with("Cerbos"))
            {
                if let Some(ours) = cerbos.ours {
                    let cerbos_throughput = cerbos.stats.throughput().max(1e-12);
                    let factor = ours.throughput() / cerbos_throughput;
                    let mut result = format!(
                        "{factor:.2}× ({} pattern, concurrency {})",
                        cerbos.pattern, cerbos.stats.concurrency
                    );
                    // A check is never faster than the empty RPC on the same
                    // connection, so the empty RPC's ratio is the maximum here.
                    if let Some(floor) = empty(cerbos.pattern, cerbos.stats.concurrency) {
                        let ceiling = floor.stats.throughput() / cerbos_throughput;
                        let _ = write!(result, "; the empty RPC itself reaches {ceiling:.2}×");
                    }
                    aims.push(Aim {
                        text: "over gRPC, CheckAccess throughput ≥ 5× Cerbos's (same checks)",
                        size: size.size,
                        result,
                        met: Some(factor >= 5.0),
                    });
                }
            }
            for row in size
                .lists
                .iter()
                .filter(|row| row.engine.starts_with("SpiceDB"))
            {
                if let Some(ours) = row.ours {
                    let factor = row.stats.p50.as_secs_f64() / ours.p50.as_secs_f64().max(1e-12);
                    // A p50 at SpiceDB's limit is a lower bound, and so is the factor.
                    let bound = if row.reached_limit(row.stats.p50) {
                        "more than "
                    } else {
                        ""
                    };
                    aims.push(Aim {
                        text: "list calls ≥ 10× faster than SpiceDB's lookups (p50, in process)",
                        size: size.size,
                        result: format!("{bound}{factor:.1}× for {} ({})", row.query, row.target),
                        met: Some(factor >= 10.0),
                    });
                }
            }
            let unexplained: usize = size
                .agreement
                .iter()
                .map(|agreement| agreement.disagreements.len())
                .sum();
            aims.push(Aim {
                text: "zero unexplained disagreements",
                size: size.size,
                result: format!("{unexplained} disagreements"),
                met: Some(unexplained == 0),
            });
        }

        let _ = writeln!(out, "## Results against the aims\n");
        let _ = writeln!(out, "| aim | size | result | met |");
        let _ = writeln!(out, "|---|---|---|---|");
        for aim in aims {
            let met = match aim.met {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "–",
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {met} |",
                aim.text,
                aim.size.name(),
                aim.result
            );
        }
        out.push('\n');
    }

    fn write_rules(&self, out: &mut String) {
        let _ = writeln!(out, "## Rules each engine expresses\n");
        let _ = writeln!(
            out,
            "Every peer gets the same portable view of the directory: team memberships, team nesting, grants with their \
             levels (a higher level implies the lower ones), folder inheritance through an inheriting folder's parent \
             (an inheritance break is a folder without that link) and the union of grants. The rules outside that view \
             are not modeled for the peers. For each sampled check the harness works out which rules could decide it; \
             a check that touches a rule an engine does not express is left out of that engine's comparison (counted \
             as excluded in the agreement tables) and out of its latency rows, which run on the *portable* checks, with \
             Work Teams measured on the same checks beside them.\n"
        );
        let portable = RuleSet::of(&PORTABLE_RULES);
        let _ = write!(out, "| engine | transport |");
        for rule in Rule::ALL {
            let _ = write!(out, " {} |", rule.description());
        }
        out.push('\n');
        let _ = write!(out, "|---|---|");
        for _ in Rule::ALL {
            out.push_str("---|");
        }
        out.push('\n');
        for engine in &self.engines {
            let _ = write!(
                out,
                "| {} {} | {} |",
                engine.name,
                engine.version,
                engine.transport.name()
            );
            // The empty RPC checks nothing, so it expresses no rule at all.
            let checks_nothing = engine.name.starts_with("Empty RPC");
            for rule in Rule::ALL {
                let cell = if checks_nothing {
                    "–"
                } else if engine.unsupported.contains(rule) {
                    "no"
                } else {
                    "yes"
                };
                let _ = write!(out, " {cell} |");
            }
            out.push('\n');
        }
        let _ = writeln!(
            out,
            "\nThe portable rules are: {}.\n",
            portable
                .iter()
                .map(Rule::description)
                .collect::<Vec<_>>()
                .join(", ")
        );
        for engine in &self.engines {
            let _ = writeln!(out, "- **{}**: {}", engine.name, engine.model);
            for note in &engine.notes {
                let _ = writeln!(out, "  - {note}");
            }
        }
        out.push('\n');
    }
}

impl SizeReport {
    fn write(&self, out: &mut String) {
        let counts = self.counts;
        let _ = writeln!(out, "## {} directory\n", capitalize(self.size.name()));
        let _ = writeln!(
            out,
            "{} users, {} teams, {} team memberships, {} resources, {} grants, generated by `workteams_bench::dataset` \
             (one organization; skewed team sizes; nested teams; folder trees up to 8 levels with inheritance breaks, \
             individual overrides and no-access; mailboxes with cumulative grants; channel and repository defaults; \
             expiring memberships and grants). {} checks sampled per access pattern; {:.0} % of them touch only \
             portable rules.\n",
            counts.users,
            counts.teams,
            counts.memberships,
            counts.resources,
            counts.grants,
            self.sampled_checks,
            self.portable_share * 100.0
        );

        self.write_loading(out);
        self.write_latency(out, "Checks in process", &self.in_process, false);
        self.write_latency(out, "Checks over loopback gRPC", &self.grpc, true);
        if let Some((batch_size, throughput)) = self
            .sidecar
            .as_ref()
            .and_then(|sidecar| sidecar.batch_throughput)
        {
            let _ = writeln!(
                out,
                "`BatchCheckAccess` with {batch_size} checks per call, one caller: {} checks.\n",
                per_second(throughput)
            );
        }
        self.write_lists(out);
        self.write_batches(out);
        self.write_propagation(out);
        self.write_agreement(out);
        if !self.skipped.is_empty() {
            let _ = writeln!(out, "### Skipped at this size\n");
            for (what, reason) in &self.skipped {
                let _ = writeln!(out, "- {what}: {reason}");
            }
            out.push('\n');
        }
    }

    fn write_loading(&self, out: &mut String) {
        let _ = writeln!(out, "### Loading and memory\n");
        let _ = writeln!(out, "| what | time | memory |");
        let _ = writeln!(out, "|---|---|---|");
        let load = self.index_load;
        let memory = match (load.bytes, load.bytes_per_membership, load.bytes_per_grant) {
            (Some(total), Some(membership), Some(grant)) => {
                format!(
                    "{} heap; {membership:.0} B per membership, {grant:.0} B per grant",
                    bytes(total)
                )
            }
            _ => "not measured".to_owned(),
        };
        let _ = writeln!(
            out,
            "| Work Teams index, every entity applied in process | {} | {memory} |",
            millis(load.elapsed)
        );
        if let Some(sidecar) = &self.sidecar {
            let _ = writeln!(
                out,
                "| directory import over gRPC (SQLite, {} calls) | {} | |",
                sidecar.import_calls,
                seconds(sidecar.import_elapsed)
            );
            let rss = match (sidecar.loaded_rss, sidecar.bytes_per_edge()) {
                (Some(loaded), Some(per_edge)) => format!(
                    "{} resident; {per_edge:.0} B per membership or grant above an empty sidecar",
                    bytes(loaded)
                ),
                _ => "not measured (sidecar in the harness's process)".to_owned(),
            };
            let _ = writeln!(
                out,
                "| sidecar start to SERVING (snapshot streamed and loaded) | {} | {rss} |",
                millis(sidecar.snapshot_load)
            );
        }
        for (peer, load) in &self.peer_loads {
            let memory = load.bytes.map_or_else(|| "not measured".to_owned(), bytes);
            let _ = writeln!(out, "| {peer} load | {} | {memory} |", millis(load.elapsed));
        }
        out.push('\n');
    }

    fn write_latency(&self, out: &mut String, title: &str, rows: &[LatencyRow], grpc: bool) {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(out, "### {title}\n");
        if grpc {
            let _ = writeln!(
                out,
                "| engine | pattern | concurrency | checks | p50 | p99 | p99.9 | throughput | p99 ÷ empty RPC p99 | our throughput ÷ theirs |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        } else {
            let _ = writeln!(
                out,
                "| engine | pattern | threads | checks | p50 | p99 | p99.9 | mean | throughput | ours on the same checks: mean, throughput | their mean ÷ ours |"
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|");
        }
        for row in rows {
            let stats = row.stats;
            if grpc {
                let floor = rows.iter().find(|other| {
                    other.engine.starts_with("Empty RPC")
                        && other.pattern == row.pattern
                        && other.stats.concurrency == stats.concurrency
                });
                let versus_floor = floor.map_or_else(
                    || "–".to_owned(),
                    |floor| ratio(stats.p99.as_secs_f64(), floor.stats.p99.as_secs_f64()),
                );
                let ours_versus = row.ours.map_or_else(
                    || "–".to_owned(),
                    |ours| ratio(ours.throughput(), stats.throughput()),
                );
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {versus_floor} | {ours_versus} |",
                    row.engine,
                    row.pattern,
                    stats.concurrency,
                    row.cases.name(),
                    micros(stats.p50),
                    micros(stats.p99),
                    micros(stats.p999),
                    per_second(stats.throughput()),
                );
            } else {
                let (ours_cell, ratio_cell) = match row.ours {
                    Some(ours) => (
                        format!("{}, {}", micros(ours.mean), per_second(ours.throughput())),
                        ratio(stats.mean.as_secs_f64(), ours.mean.as_secs_f64()),
                    ),
                    None => ("–".to_owned(), "–".to_owned()),
                };
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {ours_cell} | {ratio_cell} |",
                    row.engine,
                    row.pattern,
                    stats.concurrency,
                    row.cases.name(),
                    micros(stats.p50),
                    micros(stats.p99),
                    micros(stats.p999),
                    micros(stats.mean),
                    per_second(stats.throughput()),
                );
            }
        }
        out.push('\n');
        if grpc {
            let _ = writeln!(
                out,
                "Each row was measured in alternating rounds together with the row it is compared with: Work Teams' \
                 `CheckAccess` with the empty RPC, and each peer with Work Teams' `CheckAccess` on the same portable \
                 checks (the ours column). A disturbance on the machine therefore falls on both sides of a ratio.\n"
            );
        } else {
            let _ = writeln!(
                out,
                "Each timed call also pays for reading the clock twice (an estimated 20–40 ns in total, not measured by this \
                 run), which weighs on sub-microsecond checks. The mean and throughput columns include it for every \
                 engine alike.\n"
            );
        }
    }

    fn write_lists(&self, out: &mut String) {
        if self.lists.is_empty() {
            return;
        }
        let _ = writeln!(out, "### Listing effective access\n");
        let _ = writeln!(
            out,
            "For sampled users: every kDrive folder the user can view. For sampled folders: every user who can view it. \
             Each query returns the whole answer (all pages).\n"
        );
        let _ = writeln!(
            out,
            "| engine | query | target | queries | stopped at the engine's limit | mean items | p50 | p99 | ours p50 | their p50 ÷ ours | items compared | excluded | differences |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for row in &self.lists {
            let (ours, versus) = match row.ours {
                Some(ours) => {
                    let versus = ratio(row.stats.p50.as_secs_f64(), ours.p50.as_secs_f64());
                    let versus = if row.reached_limit(row.stats.p50) {
                        format!("> {versus}")
                    } else {
                        versus
                    };
                    (micros(ours.p50), versus)
                }
                None => ("–".to_owned(), "–".to_owned()),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {:.1} | {} | {} | {ours} | {versus} | {} | {} | {} |",
                row.engine,
                row.query,
                row.target,
                row.stats.operations,
                row.timed_out,
                row.mean_items,
                row.latency(row.stats.p50),
                row.latency(row.stats.p99),
                row.compared_items,
                row.excluded_items,
                row.differences.len()
            );
        }
        out.push('\n');
        if self.lists.iter().any(|row| row.timed_out > 0) {
            let _ = writeln!(
                out,
                "A query an engine stopped at its own time limit counts in the percentiles with the time it ran, so a \
                 figure shown as \"> limit\" and the ratio beside it are lower bounds. Such a query has no answer, so \
                 its items are not compared; the mean counts answered queries only.\n"
            );
        }
        for row in self.lists.iter().filter(|row| !row.differences.is_empty()) {
            let _ = writeln!(
                out,
                "Differences of {} {} ({}):\n",
                row.engine, row.query, row.target
            );
            for difference in row.differences.iter().take(20) {
                let _ = writeln!(out, "- {difference}");
            }
            out.push('\n');
        }
    }

    fn write_batches(&self, out: &mut String) {
        if self.batches.is_empty() {
            return;
        }
        let _ = writeln!(out, "### Batch engines\n");
        let _ = writeln!(
            out,
            "| engine | checks | list queries | whole run | start-up and loading alone | checks per second (loading subtracted) |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        for row in &self.batches {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                row.engine,
                row.checks,
                row.listings,
                seconds(row.elapsed),
                seconds(row.load_elapsed),
                per_second(row.throughput())
            );
        }
        out.push('\n');
    }

    fn write_propagation(&self, out: &mut String) {
        if self.propagation.is_empty() {
            return;
        }
        let _ = writeln!(out, "### Write-to-visible propagation\n");
        let _ = writeln!(
            out,
            "A grant is set (then revoked) through the directory's `GrantAccess` (`RevokeAccess`); the clock runs from \
             sending the write until the sidecar's `CheckAccess` (answering from its index as it is) first shows it.\n"
        );
        let _ = writeln!(
            out,
            "| database | directory size | writes | p50 | p99 | p99.9 | write call alone p50 |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|");
        for row in &self.propagation {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.backend,
                row.size.name(),
                row.visible.operations,
                millis(row.visible.p50),
                millis(row.visible.p99),
                millis(row.visible.p999),
                millis(row.write.p50)
            );
        }
        out.push('\n');
    }

    fn write_agreement(&self, out: &mut String) {
        let _ = writeln!(out, "### Agreement with Work Teams' answers\n");
        let _ = writeln!(
            out,
            "| engine | checks compared | agreed | excluded | excluded because of | disagreements |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|");
        let mut rows: Vec<&Agreement> = self.agreement.iter().collect();
        if let Some(model) = &self.model_check {
            rows.push(model);
        }
        for agreement in &rows {
            let reasons = agreement
                .excluded_by_rule
                .iter()
                .map(|(rule, count)| format!("{} ({count})", rule.description()))
                .collect::<Vec<_>>()
                .join("; ");
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} |",
                agreement.engine,
                agreement.compared,
                agreement.agreed,
                agreement.excluded,
                if reasons.is_empty() {
                    "–".to_owned()
                } else {
                    reasons
                },
                agreement.disagreements.len()
            );
        }
        out.push('\n');
        let _ = writeln!(
            out,
            "A check can touch several rules, so the per-rule counts add up to more than the excluded total. The \
             harness's own portable model (the union of grants along the inheritance path, computed from the dataset \
             without any engine) is checked against the index the same way: a difference there would be a bug in the \
             harness's rule classification or in the index.\n"
        );
        for agreement in rows
            .iter()
            .filter(|agreement| !agreement.disagreements.is_empty())
        {
            let _ = writeln!(
                out,
                "Disagreements of {} (first 20 of {}):\n",
                agreement.engine,
                agreement.disagreements.len()
            );
            let _ = writeln!(
                out,
                "| user | resource | permission | Work Teams | {} | rules touched |",
                agreement.engine
            );
            let _ = writeln!(out, "|---|---|---|---|---|---|");
            for disagreement in agreement.disagreements.iter().take(20) {
                let _ = writeln!(
                    out,
                    "| {} (`{}`) | {} `{}` (`{}`) | {} | {} | {} | {} |",
                    disagreement.user_login,
                    disagreement.user_id,
                    disagreement.resource_type,
                    disagreement.resource_external_id,
                    disagreement.resource_id,
                    disagreement.permission,
                    allow_word(disagreement.ours),
                    allow_word(disagreement.theirs),
                    disagreement
                        .rules
                        .iter()
                        .map(|rule| rule.description())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            out.push('\n');
        }
    }
}

fn allow_word(allowed: bool) -> &'static str {
    if allowed { "allow" } else { "deny" }
}

fn capitalize(text: &str) -> String {
    let mut characters = text.chars();
    characters.next().map_or_else(String::new, |first| {
        first.to_uppercase().chain(characters).collect()
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn micros_keeps_three_digits() {
        assert_eq!(micros(Duration::from_nanos(1_234)), "1.23 µs");
        assert_eq!(micros(Duration::from_micros(250)), "250 µs");
    }

    fn report_with_load(load: &str) -> Report {
        Report {
            machine: Machine {
                cpu_model: "test CPU".to_owned(),
                cores: 2,
                memory_bytes: 1 << 30,
                kernel: "Linux".to_owned(),
                rustc: "rustc".to_owned(),
            },
            date: "2026-01-01 00:00 UTC".to_owned(),
            commit: "0123456789ab".to_owned(),
            command: "bench/run.sh --tiny".to_owned(),
            sizes: Vec::new(),
            skipped: Vec::new(),
            engines: Vec::new(),
            seed: 1,
            load_average: (Some(load.to_owned()), Some("9.00 9.00 9.00".to_owned())),
        }
    }

    #[test]
    fn busy_start_marks_run_noisy() {
        let markdown = report_with_load("1.50 0.80 0.40").to_markdown();
        assert!(markdown.contains("**This run was noisy.**"));
        assert!(markdown.contains("A one-minute load of 1.50 on 2 cores"));
    }

    #[test]
    fn idle_start_is_not_noisy() {
        let markdown = report_with_load("0.20 0.10 0.05").to_markdown();
        assert!(!markdown.contains("This run was noisy"));
    }

    #[test]
    fn empty_rpc_expresses_no_rule() {
        let mut report = report_with_load("0.00 0.00 0.00");
        report.engines.push(EngineInfo {
            name: "Empty RPC (gRPC health check)".to_owned(),
            version: "tonic-health 0.14".to_owned(),
            transport: crate::engine::Transport::Grpc,
            model: "Health check.".to_owned(),
            unsupported: RuleSet::EMPTY,
            notes: Vec::new(),
        });
        let markdown = report.to_markdown();
        let row = markdown
            .lines()
            .find(|line| line.starts_with("| Empty RPC"))
            .unwrap();
        assert!(!row.contains("yes"), "{row}");
        assert_eq!(row.matches(" – |").count(), Rule::ALL.len(), "{row}");
    }

    fn grpc_row(engine: &str, calls: u64, ours: Option<LatencyStats>) -> LatencyRow {
        LatencyRow {
            engine: engine.to_owned(),
            pattern: "hot",
            cases: CaseSet::All,
            stats: LatencyStats::from_latencies(
                vec![100_000; calls as usize],
                1,
                Duration::from_secs(1),
            ),
            ours,
        }
    }

    #[test]
    fn cerbos_aim_shows_empty_rpc_ceiling() {
        let ours = LatencyStats::from_latencies(vec![100_000; 3_000], 1, Duration::from_secs(1));
        let mut report = report_with_load("0.00 0.00 0.00");
        report.sizes.push(SizeReport {
            size: Size::Small,
            grpc: vec![
                grpc_row("Empty RPC (gRPC health check)", 4_000, None),
                grpc_row("Cerbos", 1_000, Some(ours)),
            ],
            ..empty_size()
        });
        let markdown = report.to_markdown();
        assert!(
            markdown
                .contains("3.00× (hot pattern, concurrency 1); the empty RPC itself reaches 4.00×"),
            "{markdown}"
        );
    }

    fn empty_size() -> SizeReport {
        SizeReport {
            size: Size::Medium,
            counts: Counts::default(),
            index_load: IndexLoad::default(),
            peer_loads: Vec::new(),
            in_process: Vec::new(),
            grpc: Vec::new(),
            lists: Vec::new(),
            batches: Vec::new(),
            propagation: Vec::new(),
            agreement: Vec::new(),
            sidecar: None,
            model_check: None,
            skipped: Vec::new(),
            sampled_checks: 0,
            portable_share: 0.0,
        }
    }

    fn size_with_lists(lists: Vec<ListRow>) -> SizeReport {
        SizeReport {
            lists,
            ..empty_size()
        }
    }

    fn lookup_row(latencies_ms: &[u64], timed_out: usize) -> ListRow {
        let ours = LatencyStats::from_latencies(vec![1_000_000; 4], 1, Duration::from_secs(1));
        ListRow {
            engine: "SpiceDB".to_owned(),
            query: "LookupResources".to_owned(),
            target: "user",
            stats: LatencyStats::from_latencies(
                latencies_ms.iter().map(|ms| ms * 1_000_000).collect(),
                1,
                Duration::from_secs(120),
            ),
            ours: Some(ours),
            mean_items: 10.0,
            compared_items: 20,
            excluded_items: 0,
            differences: Vec::new(),
            timed_out,
            time_limit: (timed_out > 0).then_some(Duration::from_secs(30)),
        }
    }

    #[test]
    fn timed_out_lookup_shows_lower_bound() {
        let mut report = report_with_load("0.00 0.00 0.00");
        report.sizes.push(size_with_lists(vec![lookup_row(
            &[30_001, 30_002, 30_003, 900],
            3,
        )]));

        let markdown = report.to_markdown();

        let row = markdown
            .lines()
            .find(|line| line.starts_with("| SpiceDB | LookupResources"))
            .unwrap();
        assert!(row.contains("| 4 | 3 |"), "{row}");
        assert!(row.contains("| > 30.00 s | > 30.00 s |"), "{row}");
        assert!(row.contains("| > 30001.00× |"), "{row}");
        assert!(markdown.contains("are lower bounds"), "{markdown}");
        assert!(
            markdown.contains("| more than 30001.0× for LookupResources (user) | yes |"),
            "{markdown}"
        );
    }

    #[test]
    fn lookup_within_limit_shows_measurement() {
        let mut report = report_with_load("0.00 0.00 0.00");
        report
            .sizes
            .push(size_with_lists(vec![lookup_row(&[5, 5, 5, 5], 0)]));

        let markdown = report.to_markdown();

        let row = markdown
            .lines()
            .find(|line| line.starts_with("| SpiceDB | LookupResources"))
            .unwrap();
        assert!(row.contains("| 4 | 0 |"), "{row}");
        assert!(row.contains("| 5000 µs | 5000 µs |"), "{row}");
        assert!(!markdown.contains("lower bounds"));
        assert!(markdown.contains("| 5.0× for LookupResources (user) | **no** |"));
    }

    #[test]
    fn ratio_of_nothing_is_a_dash() {
        assert_eq!(ratio(1.0, 0.0), "–");
        assert_eq!(ratio(3.0, 1.5), "2.00×");
    }
}
