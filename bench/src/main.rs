//! Runs the Work Teams benchmark with its peers and writes `BENCHMARKS.md`.
//!
//! Usage: `workteams-peers-bench [--quick] [--small] [--medium] [--large]
//! [--peers LIST] [--postgres URL | --no-postgres] [--in-process-only] [--output FILE]
//! [--work-dir DIR] [--peers-dir DIR] [--seed N]`. `bench/run.sh` builds and
//! calls it with the repository's paths.

mod allocator;
mod casbin_peer;
mod cedar_peer;
mod cerbos_peer;
mod openfga_peer;
mod rego_peer;
mod spicedb_peer;

use std::path::PathBuf;
use std::process::ExitCode;

use workteams_bench::dataset::Size;
use workteams_bench::engine::PeerFactory;
use workteams_bench::runner::{Profile, RunConfig, run};
use workteams_bench::services::{Launch, run_child_if_requested};

#[global_allocator]
static ALLOCATOR: allocator::CountingAllocator = allocator::CountingAllocator;

const USAGE: &str = "usage: workteams-peers-bench [--quick] [--small] [--medium] [--large] [--peers cedar,regorus,casbin,spicedb,openfga,cerbos] [--postgres URL | --no-postgres] [--in-process-only] [--output FILE] [--work-dir DIR] [--peers-dir DIR] [--seed N]";

/// Every peer, by the name `--peers` takes.
const ALL_PEERS: [&str; 6] = ["cedar", "regorus", "casbin", "spicedb", "openfga", "cerbos"];

struct Arguments {
    sizes: Vec<Size>,
    quick: bool,
    peers: Vec<String>,
    postgres_url: Option<String>,
    output: PathBuf,
    work_dir: PathBuf,
    peers_dir: PathBuf,
    seed: u64,
    services: bool,
    command: String,
}

fn parse_arguments() -> Result<Arguments, String> {
    let raw: Vec<String> = std::env::args().skip(1).collect();
    let mut arguments = Arguments {
        sizes: Vec::new(),
        quick: false,
        peers: ALL_PEERS.iter().map(|peer| (*peer).to_owned()).collect(),
        postgres_url: Some("postgres://postgres@127.0.0.1:5432/postgres".to_owned()),
        output: PathBuf::from("BENCHMARKS.md"),
        work_dir: PathBuf::from("bench/work"),
        peers_dir: PathBuf::from("bench/peers"),
        seed: 2026,
        services: true,
        command: format!("bench/run.sh {}", raw.join(" ")).trim().to_owned(),
    };
    let mut position = 0;
    let value = |position: &mut usize, flag: &str| -> Result<String, String> {
        *position += 1;
        raw.get(*position)
            .cloned()
            .ok_or_else(|| format!("{flag} needs a value; {USAGE}"))
    };
    while position < raw.len() {
        match raw[position].as_str() {
            "--quick" => arguments.quick = true,
            "--tiny" => arguments.sizes.push(Size::Tiny),
            "--small" => arguments.sizes.push(Size::Small),
            "--medium" => arguments.sizes.push(Size::Medium),
            "--large" => arguments.sizes.push(Size::Large),
            "--peers" => {
                let list = value(&mut position, "--peers")?;
                let peers: Vec<String> = list
                    .split(',')
                    .filter(|peer| !peer.is_empty())
                    .map(str::to_owned)
                    .collect();
                if let Some(unknown) = peers
                    .iter()
                    .find(|peer| !ALL_PEERS.contains(&peer.as_str()))
                {
                    return Err(format!(
                        "unknown peer {unknown}; known: {}",
                        ALL_PEERS.join(", ")
                    ));
                }
                arguments.peers = peers;
            }
            "--postgres" => arguments.postgres_url = Some(value(&mut position, "--postgres")?),
            "--no-postgres" => arguments.postgres_url = None,
            "--in-process-only" => arguments.services = false,
            "--output" => arguments.output = PathBuf::from(value(&mut position, "--output")?),
            "--work-dir" => arguments.work_dir = PathBuf::from(value(&mut position, "--work-dir")?),
            "--peers-dir" => {
                arguments.peers_dir = PathBuf::from(value(&mut position, "--peers-dir")?)
            }
            "--seed" => {
                let seed = value(&mut position, "--seed")?;
                arguments.seed = seed
                    .parse()
                    .map_err(|_| format!("--seed takes a number, not {seed}"))?;
            }
            "--help" | "-h" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}; {USAGE}")),
        }
        position += 1;
    }
    if arguments.sizes.is_empty() {
        arguments.sizes.push(Size::Small);
    }
    arguments.sizes.sort();
    arguments.sizes.dedup();
    Ok(arguments)
}

fn peer_factories(arguments: &Arguments) -> Vec<Box<dyn PeerFactory>> {
    let work_dir = arguments.work_dir.join("peers");
    let mut factories: Vec<Box<dyn PeerFactory>> = Vec::new();
    for peer in &arguments.peers {
        match peer.as_str() {
            "cedar" => factories.push(Box::new(cedar_peer::CedarFactory)),
            "regorus" => factories.push(Box::new(rego_peer::RegoFactory)),
            "casbin" => factories.push(Box::new(casbin_peer::CasbinFactory)),
            "spicedb" => factories.push(Box::new(spicedb_peer::SpiceDbFactory {
                library: arguments.peers_dir.join("spicedb/libspicedb.so"),
            })),
            "openfga" => factories.push(Box::new(openfga_peer::OpenFgaFactory {
                executable: arguments.peers_dir.join("openfga/fga"),
                work_dir: work_dir.join("openfga"),
            })),
            "cerbos" => factories.push(Box::new(cerbos_peer::CerbosFactory {
                executable: arguments.peers_dir.join("cerbos/cerbos"),
                work_dir: work_dir.join("cerbos"),
            })),
            _ => {}
        }
    }
    factories
}

fn main() -> ExitCode {
    if let Some(result) = run_child_if_requested() {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("server failed: {error:#}");
                ExitCode::FAILURE
            }
        };
    }

    let arguments = match parse_arguments() {
        Ok(arguments) => arguments,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(64);
        }
    };
    // The servers are this executable started again. /proc/self/exe names
    // the running file even after a rebuild replaced or removed it.
    let executable = PathBuf::from("/proc/self/exe");
    let config = RunConfig {
        sizes: arguments.sizes.clone(),
        seed: arguments.seed,
        profile: if arguments.quick {
            Profile::quick()
        } else {
            Profile::full()
        },
        launch: Launch::ChildProcess { executable },
        postgres_url: arguments.postgres_url.clone(),
        postgres_max_size: Size::Medium,
        live_bytes: Some(allocator::live_bytes),
        work_dir: arguments.work_dir.clone(),
        command: arguments.command.clone(),
        repository: PathBuf::from("."),
        services: arguments.services,
        report_path: Some(arguments.output.clone()),
        write_inputs_up_to: Some(Size::Small),
    };
    let factories = peer_factories(&arguments);

    let report = match run(&config, &factories) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("benchmark failed: {error:#}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("[bench] done: {} sizes in {}", report.sizes.len(), arguments.output.display());
    ExitCode::SUCCESS
}
