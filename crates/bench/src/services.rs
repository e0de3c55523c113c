//! Starting the directory and the authorization sidecar on loopback, in
//! this process or as child processes of the benchmark binary.
//!
//! A child process is the benchmark executable itself, started with a
//! hidden first argument ([`run_child_if_requested`]). It binds 127.0.0.1
//! port 0, prints `listening <address>` on standard output, and serves until
//! its standard input closes, so it never outlives the benchmark.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use workteams_directory::{Authentication, DirectoryConfig};

const SERVE_DIRECTORY_ARGUMENT: &str = "__serve-directory";
const SERVE_AUTHZ_ARGUMENT: &str = "__serve-authz";
const LISTENING_PREFIX: &str = "listening ";

/// The gRPC service name the sidecar reports SERVING for once its first
/// snapshot is loaded.
pub const AUTHZ_SERVICE_NAME: &str = "workteams.authz.v1.AuthorizationService";
pub const DIRECTORY_SERVICE_NAME: &str = "workteams.directory.v1.DirectoryService";

/// The place servers run in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Launch {
    /// Tasks on the caller's runtime.
    InProcess,
    /// Child processes of this executable, which must call
    /// [`run_child_if_requested`] first thing in `main`.
    ChildProcess { executable: PathBuf },
}

enum Stop {
    Task {
        shutdown: oneshot::Sender<()>,
        task: JoinHandle<anyhow::Result<()>>,
    },
    Child(tokio::process::Child),
}

/// A server started by the harness.
pub struct RunningServer {
    pub address: SocketAddr,
    stop: Stop,
}

impl RunningServer {
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Returns the child's process id, when the server runs in a child
    /// process.
    pub fn pid(&self) -> Option<u32> {
        match &self.stop {
            Stop::Child(child) => child.id(),
            Stop::Task { .. } => None,
        }
    }

    /// Stops the server and waits for it to end.
    pub async fn stop(self) -> anyhow::Result<()> {
        match self.stop {
            Stop::Task { shutdown, task } => {
                let _ = shutdown.send(());
                task.await.context("the server task panicked")?
            }
            Stop::Child(mut child) => {
                // Closing standard input asks the child to shut down.
                drop(child.stdin.take());
                match tokio::time::timeout(Duration::from_secs(10), child.wait()).await {
                    Ok(status) => {
                        status?;
                    }
                    Err(_) => {
                        child.kill().await?;
                    }
                }
                Ok(())
            }
        }
    }
}

/// Starts a directory on 127.0.0.1 with its database at `database_url`.
pub async fn start_directory(
    launch: &Launch,
    database_url: &str,
    data_dir: &Path,
) -> anyhow::Result<RunningServer> {
    match launch {
        Launch::InProcess => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let config = directory_config(database_url, data_dir);
            let (shutdown, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                workteams_directory::serve(config, listener, async {
                    let _ = stopped.await;
                })
                .await
                .map_err(anyhow::Error::from)
            });
            Ok(RunningServer {
                address,
                stop: Stop::Task { shutdown, task },
            })
        }
        Launch::ChildProcess { executable } => {
            let arguments = [
                SERVE_DIRECTORY_ARGUMENT.to_owned(),
                database_url.to_owned(),
                data_dir.display().to_string(),
            ];
            spawn_child(executable, &arguments).await
        }
    }
}

/// Starts a sidecar on 127.0.0.1 following the directory at `directory_url`.
pub async fn start_sidecar(launch: &Launch, directory_url: &str) -> anyhow::Result<RunningServer> {
    match launch {
        Launch::InProcess => {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let address = listener.local_addr()?;
            let config = authz_config(directory_url);
            let (shutdown, stopped) = oneshot::channel::<()>();
            let task = tokio::spawn(async move {
                workteams_authz::serve(config, listener, async {
                    let _ = stopped.await;
                })
                .await
                .map_err(anyhow::Error::from)
            });
            Ok(RunningServer {
                address,
                stop: Stop::Task { shutdown, task },
            })
        }
        Launch::ChildProcess { executable } => {
            spawn_child(
                executable,
                &[SERVE_AUTHZ_ARGUMENT.to_owned(), directory_url.to_owned()],
            )
            .await
        }
    }
}

fn directory_config(database_url: &str, data_dir: &Path) -> DirectoryConfig {
    // The benchmark measures access checks, not token verification, and
    // its one client would otherwise hit the per-caller limit.
    DirectoryConfig {
        database_url: database_url.to_owned(),
        authentication: Authentication::InsecureNoAuth,
        rate_limit: None,
        ..DirectoryConfig::with_data_dir(data_dir.to_path_buf())
    }
}

fn authz_config(directory_url: &str) -> workteams_authz::AuthzConfig {
    workteams_authz::AuthzConfig {
        directory_address: directory_url.to_owned(),
        ..workteams_authz::AuthzConfig::default()
    }
}

async fn spawn_child(executable: &Path, arguments: &[String]) -> anyhow::Result<RunningServer> {
    let mut child = tokio::process::Command::new(executable)
        .args(arguments)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {}", executable.display()))?;
    let stdout = child
        .stdout
        .take()
        .context("the child has no standard output")?;
    let mut lines = BufReader::new(stdout).lines();
    let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .context("the child did not report its address within 60 s")??
        .context("the child exited before it listened")?;
    let address = line
        .strip_prefix(LISTENING_PREFIX)
        .with_context(|| format!("unexpected first line from the child: {line}"))?
        .parse()?;
    Ok(RunningServer {
        address,
        stop: Stop::Child(child),
    })
}

/// Serves a directory or a sidecar when this process was started as a
/// child by [`start_directory`] or [`start_sidecar`]; returns `None` for a
/// normal start. Call it first thing in `main`.
pub fn run_child_if_requested() -> Option<anyhow::Result<()>> {
    let arguments: Vec<String> = std::env::args().skip(1).collect();
    let role = arguments.first()?.clone();
    if role != SERVE_DIRECTORY_ARGUMENT && role != SERVE_AUTHZ_ARGUMENT {
        return None;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => return Some(Err(error.into())),
    };
    Some(runtime.block_on(serve_child(role, arguments)))
}

async fn serve_child(role: String, arguments: Vec<String>) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{LISTENING_PREFIX}{}", listener.local_addr()?);
    let stdin_closed = async {
        let mut buffer = [0_u8; 64];
        let mut stdin = tokio::io::stdin();
        while matches!(stdin.read(&mut buffer).await, Ok(read) if read > 0) {}
    };
    if role == SERVE_DIRECTORY_ARGUMENT {
        let (Some(database_url), Some(data_dir)) = (arguments.get(1), arguments.get(2)) else {
            anyhow::bail!("usage: {SERVE_DIRECTORY_ARGUMENT} DATABASE_URL DATA_DIR");
        };
        let config = directory_config(database_url, Path::new(data_dir));
        workteams_directory::serve(config, listener, stdin_closed).await?;
    } else {
        let Some(directory_url) = arguments.get(1) else {
            anyhow::bail!("usage: {SERVE_AUTHZ_ARGUMENT} DIRECTORY_URL");
        };
        workteams_authz::serve(authz_config(directory_url), listener, stdin_closed).await?;
    }
    Ok(())
}

/// Waits until the server at `url` reports `service` SERVING, polling every
/// few milliseconds; returns how long that took.
pub async fn wait_serving(url: &str, service: &str, timeout: Duration) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?.connect_lazy();
    let mut client = HealthClient::new(channel);
    loop {
        let request = HealthCheckRequest {
            service: service.to_owned(),
        };
        if let Ok(response) = client.check(request).await
            && response.into_inner().status == ServingStatus::Serving as i32
        {
            return Ok(started.elapsed());
        }
        anyhow::ensure!(
            started.elapsed() < timeout,
            "{service} at {url} was not serving within {timeout:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Reads the resident set size of a process, in bytes, from /proc.
pub fn resident_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kilobytes: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kilobytes * 1024)
}
