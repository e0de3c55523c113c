//! The Cerbos 0.55 policy decision point, started from the binary of the
//! npm package `@cerbos/cerbos-linux-x64` on 127.0.0.1 and called over
//! gRPC with the generated client of the `cerbos` crate.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::cerbos::genpb::cerbos::effect::v1::Effect;
use ::cerbos::genpb::cerbos::engine::v1::{Principal, Resource};
use ::cerbos::genpb::cerbos::request::v1::CheckResourcesRequest;
use ::cerbos::genpb::cerbos::request::v1::check_resources_request::ResourceEntry;
use ::cerbos::genpb::cerbos::svc::v1::cerbos_service_client::CerbosServiceClient;
use ::cerbos::genpb::google::protobuf::{ListValue, Value, value};
use anyhow::Context as _;
use tonic::transport::Channel;
use workteams_bench::engine::{
    BoxFuture, EngineInfo, LoadReport, PeerEngine, PeerFactory, PreparedChecks, RemoteEngine,
    Transport,
};
use workteams_bench::graph::{CheckCase, Graph, non_portable_rules};
use workteams_bench::services::wait_serving;
use workteams_bench::writers::cerbos::{self, CerbosCheck, CerbosRequests, TEAMS_ATTRIBUTE};

pub struct CerbosFactory {
    pub executable: PathBuf,
    pub work_dir: PathBuf,
}

/// A running PDP; stopped (by its process id) when dropped.
struct Server {
    child: Child,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub struct CerbosEngine {
    _server: Server,
    channel: Channel,
}

/// Finds a free loopback port by binding port 0 and releasing it.
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl PeerFactory for CerbosFactory {
    fn name(&self) -> &str {
        "Cerbos"
    }

    fn build(
        &self,
        graph: &Graph<'_>,
        runtime: &tokio::runtime::Handle,
    ) -> anyhow::Result<Result<(PeerEngine, LoadReport), String>> {
        if !self.executable.exists() {
            return Ok(Err(format!(
                "{} is missing; run bench/install-peers.sh cerbos",
                self.executable.display()
            )));
        }
        let policies_dir = self.work_dir.join("policies");
        if policies_dir.exists() {
            std::fs::remove_dir_all(&policies_dir)?;
        }
        std::fs::create_dir_all(&policies_dir)?;
        for (name, policy) in cerbos::policies(graph) {
            std::fs::write(policies_dir.join(name), policy)?;
        }
        let (http_port, grpc_port, debug_port) = (free_port()?, free_port()?, free_port()?);
        let config = format!(
            "server:\n  httpListenAddr: \"127.0.0.1:{http_port}\"\n  grpcListenAddr: \"127.0.0.1:{grpc_port}\"\n\
             storage:\n  driver: disk\n  disk:\n    directory: \"{}\"\n    watchForChanges: false\n\
             telemetry:\n  disabled: true\naudit:\n  enabled: false\n",
            policies_dir.display()
        );
        let config_path = self.work_dir.join("cerbos.yaml");
        std::fs::write(&config_path, config)?;

        let started = Instant::now();
        let child = Command::new(&self.executable)
            .arg("server")
            .arg(format!("--config={}", config_path.display()))
            .arg(format!("--debug-listen-addr=127.0.0.1:{debug_port}"))
            .arg("--log-level=warn")
            .env("CERBOS_NO_TELEMETRY", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("cannot start {}", self.executable.display()))?;
        let server = Server { child };
        let url = format!("http://127.0.0.1:{grpc_port}");
        let channel = runtime.block_on(async {
            wait_serving(&url, "", Duration::from_secs(60)).await?;
            let channel = tonic::transport::Endpoint::from_shared(url.clone())?
                .tcp_nodelay(true)
                .connect()
                .await?;
            anyhow::Ok(channel)
        })?;
        let elapsed = started.elapsed();
        let engine = CerbosEngine {
            _server: server,
            channel,
        };
        Ok(Ok((
            PeerEngine::Remote(Box::new(engine)),
            LoadReport {
                elapsed,
                bytes: None,
            },
        )))
    }
}

fn string_list(values: &[String]) -> Value {
    let values = values
        .iter()
        .map(|text| Value {
            kind: Some(value::Kind::StringValue(text.clone())),
        })
        .collect();
    Value {
        kind: Some(value::Kind::ListValue(ListValue { values })),
    }
}

fn request(check: CerbosCheck, request_id: usize) -> CheckResourcesRequest {
    let principal_attributes: HashMap<String, Value> =
        [(TEAMS_ATTRIBUTE.to_owned(), string_list(&check.teams))]
            .into_iter()
            .collect();
    let resource_attributes: HashMap<String, Value> = check
        .grantees
        .iter()
        .map(|(name, grantees)| (name.clone(), string_list(grantees)))
        .collect();
    CheckResourcesRequest {
        request_id: request_id.to_string(),
        include_meta: false,
        principal: Some(Principal {
            id: check.principal_id,
            policy_version: "default".to_owned(),
            roles: vec!["user".to_owned()],
            attr: principal_attributes,
            scope: String::new(),
        }),
        resources: vec![ResourceEntry {
            actions: vec![check.action],
            resource: Some(Resource {
                kind: check.resource_kind,
                policy_version: "default".to_owned(),
                id: check.resource_id,
                attr: resource_attributes,
                scope: String::new(),
            }),
        }],
        aux_data: None,
    }
}

struct PreparedCerbosChecks {
    client: CerbosServiceClient<Channel>,
    requests: Vec<(CheckResourcesRequest, String)>,
}

impl PreparedChecks for PreparedCerbosChecks {
    fn check(&self, position: usize) -> BoxFuture<anyhow::Result<bool>> {
        let mut client = self.client.clone();
        let (request, action) = self.requests[position % self.requests.len()].clone();
        Box::pin(async move {
            let response = client.check_resources(request).await?.into_inner();
            let result = response
                .results
                .first()
                .context("Cerbos returned no result")?;
            let effect = result
                .actions
                .get(&action)
                .copied()
                .context("Cerbos returned no effect for the action")?;
            Ok(effect == Effect::Allow as i32)
        })
    }
}

impl RemoteEngine for CerbosEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "Cerbos".to_owned(),
            version: "0.55.0".to_owned(),
            transport: Transport::Grpc,
            model: "Stateless PDP: each `CheckResources` request carries the user's teams with their ancestor teams as \
                    a principal attribute and, as resource attributes, the grantees of every grant on the resource's \
                    inheritance path, one list per permission; one resource policy per type applies the ordered levels \
                    and the union (`P.id in R.attr.granted_view || hasIntersection(P.attr.teams, R.attr.granted_view) \
                    || …`). The caller resolves nesting and inheritance when it builds the request; that work is done \
                    before the timed calls."
                .to_owned(),
            unsupported: non_portable_rules(),
            notes: vec![
                "Cerbos's CEL conditions could compare expiry attributes with `now()`, if the caller sent them; not modeled."
                    .to_owned(),
            ],
        }
    }

    fn prepare(
        &self,
        graph: &Graph<'_>,
        cases: &[CheckCase],
    ) -> anyhow::Result<Arc<dyn PreparedChecks>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let builder = CerbosRequests::new(graph);
        let requests = cases
            .iter()
            .enumerate()
            .map(|(position, case)| {
                let check = builder.request(*case);
                let action = check.action.clone();
                (request(check, position), action)
            })
            .collect();
        let client = CerbosServiceClient::new(self.channel.clone());
        Ok(Arc::new(PreparedCerbosChecks { client, requests }))
    }
}
