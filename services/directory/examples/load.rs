//! Measures write and read latency of the directory over gRPC on loopback.
//!
//! Starts the server in-process on 127.0.0.1 port 0 with a SQLite database
//! in a temporary directory (or the PostgreSQL database named by
//! `--database-url`), then runs a bounded number of calls from several
//! concurrent clients and prints throughput and latency percentiles.
//!
//! ```text
//! cargo run -p workteams-directory --example load -- --writes 2000 --reads 5000 --clients 8
//! ```

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use clap::Parser;
use tonic::transport::{Channel, Endpoint};
use workteams_directory::{Authentication, DirectoryConfig, serve};
use workteams_proto::directory::v1 as proto;
use workteams_proto::directory::v1::directory_service_client::DirectoryServiceClient;

#[derive(Debug, Parser)]
struct LoadArgs {
    /// Total CreateTeam calls, spread over the clients.
    #[arg(long, default_value_t = 2_000)]
    writes: usize,
    /// Total GetTeam calls, spread over the clients.
    #[arg(long, default_value_t = 5_000)]
    reads: usize,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Database URL of an empty database; default: SQLite in a temporary
    /// directory.
    #[arg(long)]
    database_url: Option<String>,
}

#[tokio::main]
async fn main() {
    let args = LoadArgs::parse();
    let data_dir = tempfile::tempdir().unwrap();
    let mut config = DirectoryConfig::with_data_dir(data_dir.path().to_path_buf());
    // The load run measures the store and the API without token checks or
    // the per-caller limit, which would cap its one client.
    config.authentication = Authentication::InsecureNoAuth;
    config.rate_limit = None;
    if let Some(url) = &args.database_url {
        config.database_url = url.clone();
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(config, listener, async {
        let _ = stopped.await;
    }));

    let endpoint = Endpoint::from_shared(format!("http://{address}"))
        .unwrap()
        .tcp_nodelay(true);
    let mut setup = DirectoryServiceClient::new(endpoint.connect().await.unwrap());
    let organization_id = setup
        .create_organization(proto::CreateOrganizationRequest {
            name: format!("load-{}", uuid::Uuid::now_v7().simple()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap()
        .id;

    let mut clients = Vec::new();
    for _ in 0..args.clients {
        clients.push(DirectoryServiceClient::new(
            endpoint.connect().await.unwrap(),
        ));
    }

    let (write_latencies, write_elapsed, team_ids) =
        run_writes(&clients, &organization_id, args.writes).await;
    report("CreateTeam", &write_latencies, write_elapsed);

    let (read_latencies, read_elapsed) = run_reads(&clients, &team_ids, args.reads).await;
    report("GetTeam", &read_latencies, read_elapsed);

    drop(clients);
    drop(setup);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

async fn run_writes(
    clients: &[DirectoryServiceClient<Channel>],
    organization_id: &str,
    writes: usize,
) -> (Vec<Duration>, Duration, Vec<String>) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client_index, client) in clients.iter().enumerate() {
        let mut client = client.clone();
        let organization_id = organization_id.to_owned();
        let count = share(writes, clients.len(), client_index);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            let mut team_ids = Vec::with_capacity(count);
            for write_index in 0..count {
                let call_started = Instant::now();
                let team = client
                    .create_team(proto::CreateTeamRequest {
                        organization_id: organization_id.clone(),
                        name: format!("team {client_index}-{write_index}"),
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .team
                    .unwrap();
                latencies.push(call_started.elapsed());
                team_ids.push(team.id);
            }
            (latencies, team_ids)
        }));
    }

    let mut latencies = Vec::new();
    let mut team_ids = Vec::new();
    for task in tasks {
        let (task_latencies, task_team_ids) = task.await.unwrap();
        latencies.extend(task_latencies);
        team_ids.extend(task_team_ids);
    }
    (latencies, started.elapsed(), team_ids)
}

async fn run_reads(
    clients: &[DirectoryServiceClient<Channel>],
    team_ids: &[String],
    reads: usize,
) -> (Vec<Duration>, Duration) {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for (client_index, client) in clients.iter().enumerate() {
        let mut client = client.clone();
        let team_ids = team_ids.to_vec();
        let count = share(reads, clients.len(), client_index);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for read_index in 0..count {
                let id = team_ids[(client_index + read_index * 7) % team_ids.len()].clone();
                let call_started = Instant::now();
                client.get_team(proto::GetTeamRequest { id }).await.unwrap();
                latencies.push(call_started.elapsed());
            }
            latencies
        }));
    }

    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await.unwrap());
    }
    (latencies, started.elapsed())
}

/// Returns the number of calls client `index` makes out of `total`.
fn share(total: usize, clients: usize, index: usize) -> usize {
    total / clients + usize::from(index < total % clients)
}

fn report(name: &str, latencies: &[Duration], elapsed: Duration) {
    let mut sorted = latencies.to_vec();
    sorted.sort_unstable();
    let percentile = |p: f64| {
        let position = ((sorted.len() as f64 - 1.0) * p).round() as usize;
        sorted[position].as_secs_f64() * 1_000.0
    };
    println!(
        "{name}: {} calls in {:.2} s = {:.0} calls/s; latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        sorted.len(),
        elapsed.as_secs_f64(),
        sorted.len() as f64 / elapsed.as_secs_f64(),
        percentile(0.50),
        percentile(0.99),
        percentile(1.0),
    );
}
