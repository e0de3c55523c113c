//! Work Teams' sidecar over loopback gRPC: `CheckAccess`,
//! `BatchCheckAccess`, `ListEffectiveAccess`, and the gRPC health check as
//! the empty RPC that sets the floor for any call on the same server.

use std::sync::Arc;

use anyhow::Context as _;
use tonic::transport::Channel;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;
use workteams_proto::authz::v1 as proto;
use workteams_proto::authz::v1::authorization_service_client::AuthorizationServiceClient;

use crate::engine::{BoxFuture, EngineInfo, PreparedChecks, RemoteEngine, Transport};
use crate::graph::{CheckCase, Graph, RuleSet};
use crate::import::IdMap;

/// Largest batch `BatchCheckAccess` accepts.
pub const MAX_BATCH: usize = 10_000;

/// Opens a channel to a gRPC server on loopback.
pub async fn channel(url: &str) -> anyhow::Result<Channel> {
    tonic::transport::Endpoint::from_shared(url.to_owned())?
        .tcp_nodelay(true)
        .connect()
        .await
        .with_context(|| format!("cannot connect to {url}"))
}

pub fn client(channel: Channel) -> AuthorizationServiceClient<Channel> {
    AuthorizationServiceClient::new(channel)
        .max_decoding_message_size(256 << 20)
        .max_encoding_message_size(256 << 20)
}

/// Builds a check by the directory's ids, answered at the index's current
/// state.
pub fn check_request(graph: &Graph<'_>, ids: &IdMap, case: CheckCase) -> proto::CheckAccessRequest {
    proto::CheckAccessRequest {
        user: Some(proto::UserRef {
            kind: Some(proto::user_ref::Kind::Id(ids.users[case.user].clone())),
        }),
        resource: Some(proto::ResourceRef {
            kind: Some(proto::resource_ref::Kind::Id(
                ids.resources[case.resource].clone(),
            )),
        }),
        permission: graph.definitions[case.resource].permissions[case.permission].clone(),
        consistency: None,
    }
}

/// `CheckAccess`, one call per check.
pub struct SidecarEngine {
    pub channel: Channel,
    pub ids: Arc<IdMap>,
}

struct PreparedSidecarChecks {
    client: AuthorizationServiceClient<Channel>,
    requests: Vec<proto::CheckAccessRequest>,
}

impl PreparedChecks for PreparedSidecarChecks {
    fn check(&self, position: usize) -> BoxFuture<anyhow::Result<bool>> {
        let mut client = self.client.clone();
        let request = self.requests[position % self.requests.len()].clone();
        Box::pin(async move { Ok(client.check_access(request).await?.into_inner().allowed) })
    }
}

impl RemoteEngine for SidecarEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "Work Teams sidecar CheckAccess".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            transport: Transport::Grpc,
            model: "The `workteams-authz` sidecar following a `workteams-directory` on SQLite; one `CheckAccess` per check, users and resources by id.".to_owned(),
            unsupported: RuleSet::EMPTY,
            notes: Vec::new(),
        }
    }

    fn prepare(
        &self,
        graph: &Graph<'_>,
        cases: &[CheckCase],
    ) -> anyhow::Result<Arc<dyn PreparedChecks>> {
        anyhow::ensure!(!cases.is_empty(), "no checks to run");
        let requests = cases
            .iter()
            .map(|case| check_request(graph, &self.ids, *case))
            .collect();
        Ok(Arc::new(PreparedSidecarChecks {
            client: client(self.channel.clone()),
            requests,
        }))
    }
}

/// The gRPC health check on the sidecar's server: the cost of a call that
/// does no work.
pub struct EmptyRpcEngine {
    pub channel: Channel,
}

struct PreparedEmptyRpc {
    client: HealthClient<Channel>,
}

impl PreparedChecks for PreparedEmptyRpc {
    fn check(&self, _position: usize) -> BoxFuture<anyhow::Result<bool>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            client
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await?;
            Ok(true)
        })
    }
}

impl RemoteEngine for EmptyRpcEngine {
    fn info(&self) -> EngineInfo {
        EngineInfo {
            name: "Empty RPC (gRPC health check)".to_owned(),
            version: "tonic-health 0.14".to_owned(),
            transport: Transport::Grpc,
            model:
                "`grpc.health.v1.Health/Check` on the sidecar's server: same connection, no work."
                    .to_owned(),
            unsupported: RuleSet::EMPTY,
            notes: Vec::new(),
        }
    }

    fn prepare(
        &self,
        _graph: &Graph<'_>,
        _cases: &[CheckCase],
    ) -> anyhow::Result<Arc<dyn PreparedChecks>> {
        Ok(Arc::new(PreparedEmptyRpc {
            client: HealthClient::new(self.channel.clone()),
        }))
    }
}

/// Answers `cases` with `BatchCheckAccess` calls of `batch_size` checks.
pub async fn batch_check(
    client: &mut AuthorizationServiceClient<Channel>,
    graph: &Graph<'_>,
    ids: &IdMap,
    cases: &[CheckCase],
    batch_size: usize,
) -> anyhow::Result<Vec<bool>> {
    let mut answers = Vec::with_capacity(cases.len());
    for chunk in cases.chunks(batch_size.clamp(1, MAX_BATCH)) {
        let request = proto::BatchCheckAccessRequest {
            checks: chunk
                .iter()
                .map(|case| check_request(graph, ids, *case))
                .collect(),
            consistency: None,
        };
        let response = client.batch_check_access(request).await?.into_inner();
        anyhow::ensure!(
            response.results.len() == chunk.len(),
            "BatchCheckAccess returned {} results for {}",
            response.results.len(),
            chunk.len()
        );
        answers.extend(response.results.into_iter().map(|result| result.allowed));
    }
    Ok(answers)
}

/// Lists every resource of `resource_type` the user can use, through all
/// pages of `ListEffectiveAccess`, with the permissions held on each.
pub async fn list_user_access(
    client: &mut AuthorizationServiceClient<Channel>,
    user_id: &str,
    resource_type: &str,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListEffectiveAccessRequest {
            target: Some(proto::list_effective_access_request::Target::User(
                proto::UserRef {
                    kind: Some(proto::user_ref::Kind::Id(user_id.to_owned())),
                },
            )),
            organization: None,
            resource_type: resource_type.to_owned(),
            page_size: 1_000,
            page_token,
            consistency: None,
        };
        let response = client.list_effective_access(request).await?.into_inner();
        entries.extend(
            response
                .entries
                .into_iter()
                .map(|entry| (entry.resource_id, entry.permissions)),
        );
        if response.next_page_token.is_empty() {
            return Ok(entries);
        }
        page_token = response.next_page_token;
    }
}

/// Lists every user who can use the resource, through all pages of
/// `ListEffectiveAccess`, with the permissions each one has.
pub async fn list_resource_access(
    client: &mut AuthorizationServiceClient<Channel>,
    resource_id: &str,
) -> anyhow::Result<Vec<(String, Vec<String>)>> {
    let mut entries = Vec::new();
    let mut page_token = String::new();
    loop {
        let request = proto::ListEffectiveAccessRequest {
            target: Some(proto::list_effective_access_request::Target::Resource(
                proto::ResourceRef {
                    kind: Some(proto::resource_ref::Kind::Id(resource_id.to_owned())),
                },
            )),
            organization: None,
            resource_type: String::new(),
            page_size: 1_000,
            page_token,
            consistency: None,
        };
        let response = client.list_effective_access(request).await?.into_inner();
        entries.extend(
            response
                .entries
                .into_iter()
                .map(|entry| (entry.user_id, entry.permissions)),
        );
        if response.next_page_token.is_empty() {
            return Ok(entries);
        }
        page_token = response.next_page_token;
    }
}
