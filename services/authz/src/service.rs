//! The `workteams.authz.v1.AuthorizationService` handlers: validate the
//! request, pick the index version its consistency requirement selects,
//! decide with [`crate::access`], and stamp the response with the revision it
//! was read at.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::time::Instant;
use tonic::metadata::MetadataMap;
use tonic::{Request, Response, Status};
use workteams_domain::{ConsistencyToken, ResourceId, UserId};
use workteams_evaluation::{Index, PageRequest};
use workteams_proto::authz::v1 as proto;
use workteams_proto::authz::v1::authorization_service_server::AuthorizationService;
use workteams_proto::directory::v1 as directory;

use crate::access::{self, Decision};
use crate::authentication::DirectoryClient;
use crate::consistency::{OtherEpoch, Requirement, WaitBudget, parse_grpc_timeout, wait_for_revision};
use crate::error::AuthzError;
use crate::metrics::{SidecarMetrics, UNKNOWN_RESOURCE_TYPE};
use crate::page_token::{PageToken, query_fingerprint};
use crate::request::{
    BatchCheckRequest, CheckQuery, CheckRequest, ListRequest, ListTarget, OrganizationSelector, ResourceSelector,
    UserSelector,
};
use crate::response::{access_entry, check_response, deny_reason, proto_duration};
use crate::state::{PublishedIndex, SharedIndex};

/// Settings of the request handlers.
#[derive(Debug, Clone, Copy)]
pub struct HandlerSettings {
    /// How long a request without a deadline waits for a revision.
    pub consistency_wait: Duration,
    pub max_staleness: Option<Duration>,
}

/// The gRPC service over the shared index.
#[derive(Debug, Clone)]
pub struct AuthorizationHandler {
    shared: Arc<SharedIndex>,
    directory: DirectoryClient,
    settings: HandlerSettings,
    metrics: SidecarMetrics,
}

/// The index version that serves one request.
struct View {
    index: Arc<PublishedIndex>,
    staleness: Option<Duration>,
}

impl View {
    fn token(&self) -> String {
        self.index.token().encode()
    }

    fn staleness(&self) -> Option<prost_types::Duration> {
        self.staleness.map(proto_duration)
    }
}

impl AuthorizationHandler {
    pub fn new(
        shared: Arc<SharedIndex>,
        directory: DirectoryClient,
        settings: HandlerSettings,
        metrics: SidecarMetrics,
    ) -> Self {
        Self {
            shared,
            directory,
            settings,
            metrics,
        }
    }

    /// Decides one check at the current index version, as `CheckAccess`
    /// does with minimize_latency, and counts it like the gRPC checks.
    pub(crate) async fn check_current(&self, query: &CheckQuery) -> Result<Decision, AuthzError> {
        let view = self.view(&Requirement::MinimizeLatency, None, &MetadataMap::new()).await?;
        let decision = access::check(&view.index.index, query, Utc::now())?;
        self.record(&view.index.index, &decision, view.index.revision().0, false);
        Ok(decision)
    }

    /// Picks the index version for a request: the current one, or the first
    /// one that reaches what the request (and its page token) requires.
    async fn view(
        &self,
        requirement: &Requirement,
        page_minimum: Option<ConsistencyToken>,
        metadata: &MetadataMap,
    ) -> Result<View, AuthzError> {
        let budget = WaitBudget::new(Instant::now(), request_timeout(metadata), self.settings.consistency_wait);

        match requirement {
            Requirement::MinimizeLatency => {}
            Requirement::AtLeastAsFresh(token) => {
                let other_epoch = OtherEpoch::Reject {
                    field: "consistency.at_least_as_fresh",
                };
                wait_for_revision(self.shared.subscribe(), *token, budget, other_epoch).await?;
            }
            Requirement::FullyConsistent => {
                let head = self.directory_head(budget).await?;
                wait_for_revision(self.shared.subscribe(), head, budget, OtherEpoch::Wait).await?;
            }
        }
        if let Some(minimum) = page_minimum {
            let other_epoch = OtherEpoch::Reject { field: "page_token" };
            wait_for_revision(self.shared.subscribe(), minimum, budget, other_epoch).await?;
        }

        let index = self.shared.load().ok_or(AuthzError::NotReady)?;
        let staleness = self.shared.staleness(std::time::Instant::now());

        // A fully consistent request has just proven the index current.
        if let (Some(max_staleness), false) = (self.settings.max_staleness, *requirement == Requirement::FullyConsistent) {
            let staleness = staleness.unwrap_or(Duration::MAX);
            if staleness > max_staleness {
                return Err(AuthzError::TooStale {
                    staleness,
                    max_staleness,
                });
            }
        }
        Ok(View { index, staleness })
    }

    /// Reads the directory's current head within the request's budget.
    async fn directory_head(&self, budget: WaitBudget) -> Result<ConsistencyToken, AuthzError> {
        let mut request = Request::new(directory::GetRevisionRequest {});
        request.set_timeout(budget.deadline.saturating_duration_since(Instant::now()));

        // The `grpc-timeout` header bounds only the directory's own work. The
        // local deadline also covers a connection that never responds.
        let mut directory = self.directory.clone();
        let response = tokio::time::timeout_at(budget.deadline, directory.get_revision(request))
            .await
            .map_err(|_| AuthzError::DirectoryUnavailable("the directory did not respond before the deadline".to_owned()))?
            .map_err(|status| AuthzError::DirectoryUnavailable(format!("{:?}: {}", status.code(), status.message())))?
            .into_inner();
        let directory::GetRevisionResponse {
            consistency_token,
            revision: _,
        } = response;
        ConsistencyToken::decode("consistency_token", &consistency_token)
            .map_err(|error| AuthzError::DirectoryUnavailable(format!("the directory returned an invalid token: {error}")))
    }

    /// Decides every check of a batch at one index version, in order.
    fn decide_batch(
        &self,
        index: &PublishedIndex,
        queries: &[CheckQuery],
        now: chrono::DateTime<Utc>,
        token: &str,
        staleness: Option<prost_types::Duration>,
    ) -> Result<(Vec<proto::CheckAccessResponse>, usize), AuthzError> {
        let revision = index.revision().0;
        let mut results = Vec::with_capacity(queries.len());
        let mut denied = 0_usize;
        for (position, query) in queries.iter().enumerate() {
            let decision =
                access::check(&index.index, query, now).map_err(|error| error.within(&format!("checks[{position}]")))?;
            self.record(&index.index, &decision, revision, true);
            if !decision.allowed() {
                if denied == 0 {
                    tracing::info!(
                        checks.position = position,
                        user.id = decision.user_id.map(|id| id.to_string()).unwrap_or_default(),
                        resource.id = decision.resource_id.map(|id| id.to_string()).unwrap_or_default(),
                        permission = %decision.permission,
                        deny.reason = decision.denial.map(deny_reason).unwrap_or_default().as_str_name(),
                        index.revision = revision,
                        "access denied (first denial of a batch)",
                    );
                }
                denied += 1;
            }
            results.push(proto::CheckAccessResponse {
                consistency_token: token.to_owned(),
                revision,
                staleness,
                ..check_response(&decision)
            });
        }
        Ok((results, denied))
    }

    /// Counts a decision and logs it: a denial at `info` (or at `debug`
    /// inside a batch, which logs one summary instead), every decision with
    /// its evaluation at `debug`.
    fn record(&self, index: &Index, decision: &Decision, revision: i64, in_batch: bool) {
        let resource_type = decision
            .resource_id
            .and_then(|id| index.resource(id))
            .filter(|resource| resource.definition.is_some())
            .map_or(UNKNOWN_RESOURCE_TYPE, |resource| resource.resource_type);
        self.metrics.record_decision(resource_type, decision.allowed());
        if let (Some(denial), false) = (decision.denial, in_batch) {
            tracing::info!(
                user.id = decision.user_id.map(|id| id.to_string()).unwrap_or_default(),
                resource.id = decision.resource_id.map(|id| id.to_string()).unwrap_or_default(),
                permission = %decision.permission,
                deny.reason = deny_reason(denial).as_str_name(),
                index.revision = revision,
                "access denied",
            );
        }
        tracing::debug!(
            user.id = decision.user_id.map(|id| id.to_string()).unwrap_or_default(),
            resource.id = decision.resource_id.map(|id| id.to_string()).unwrap_or_default(),
            permission = %decision.permission,
            allowed = decision.allowed(),
            evaluation = ?decision.evaluation,
            index.revision = revision,
            "access decision",
        );
    }
}

#[tonic::async_trait]
impl AuthorizationService for AuthorizationHandler {
    async fn check_access(
        &self,
        request: Request<proto::CheckAccessRequest>,
    ) -> Result<Response<proto::CheckAccessResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let request = CheckRequest::try_from(message).map_err(AuthzError::from)?;

        let view = self.view(&request.consistency, None, &metadata).await?;
        let decision = access::check(&view.index.index, &request.query, Utc::now())?;
        self.record(&view.index.index, &decision, view.index.revision().0, false);

        Ok(Response::new(proto::CheckAccessResponse {
            consistency_token: view.token(),
            revision: view.index.revision().0,
            staleness: view.staleness(),
            ..check_response(&decision)
        }))
    }

    async fn batch_check_access(
        &self,
        request: Request<proto::BatchCheckAccessRequest>,
    ) -> Result<Response<proto::BatchCheckAccessResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let request = BatchCheckRequest::try_from(message).map_err(AuthzError::from)?;

        let view = self.view(&request.consistency, None, &metadata).await?;
        let token = view.token();
        let revision = view.index.revision().0;
        let staleness = view.staleness();

        // One instant for the whole batch, so expiries cut the same way for
        // every check. Up to 10,000 evaluations are CPU-bound work, so they
        // run off the threads that serve other requests.
        let now = Utc::now();
        let handler = self.clone();
        let index = Arc::clone(&view.index);
        let batch_token = token.clone();
        let (results, denied) = tokio::task::spawn_blocking(move || {
            handler.decide_batch(&index, &request.queries, now, &batch_token, staleness)
        })
        .await
        .map_err(|error| AuthzError::Internal(format!("the batch evaluation failed: {error}")))??;

        if denied > 0 {
            tracing::info!(
                checks.total = results.len(),
                checks.denied = denied,
                index.revision = revision,
                "batch access check finished with denials",
            );
        }

        Ok(Response::new(proto::BatchCheckAccessResponse {
            results,
            consistency_token: token,
            revision,
        }))
    }

    async fn list_effective_access(
        &self,
        request: Request<proto::ListEffectiveAccessRequest>,
    ) -> Result<Response<proto::ListEffectiveAccessResponse>, Status> {
        let (metadata, _, message) = request.into_parts();
        let request = ListRequest::try_from(message).map_err(AuthzError::from)?;

        let fingerprint = list_fingerprint(&request.target);
        let page_token = request
            .page_token
            .as_deref()
            .map(|text| PageToken::decode("page_token", text, fingerprint))
            .transpose()
            .map_err(AuthzError::from)?;
        let page_minimum = page_token.map(|token| ConsistencyToken::new(token.epoch, token.revision));

        let view = self.view(&request.consistency, page_minimum, &metadata).await?;
        let index = &view.index.index;
        let now = Utc::now();
        let after = page_token.map(|token| token.last_id);
        let page_size = request.page_size;
        let (page, position_of): (_, fn(&workteams_evaluation::AccessEntry) -> uuid::Uuid) = match &request.target {
            ListTarget::User {
                user,
                organization,
                resource_type,
            } => (
                access::list_user_access(
                    index,
                    user,
                    organization.as_ref(),
                    resource_type.as_deref(),
                    now,
                    PageRequest {
                        after: after.map(ResourceId::from_uuid),
                        size: page_size,
                    },
                )?,
                |entry| *entry.resource_id.as_uuid(),
            ),
            ListTarget::Resource(resource) => (
                access::list_resource_access(
                    index,
                    resource,
                    now,
                    PageRequest {
                        after: after.map(UserId::from_uuid),
                        size: page_size,
                    },
                )?,
                |entry| *entry.user_id.as_uuid(),
            ),
        };

        // Pages follow the listed id, so the next one continues after the
        // last id of this one.
        let more = page.more;
        let page = page.entries;
        let next_page_token = match page.last() {
            Some(last) if more => PageToken {
                query_fingerprint: fingerprint,
                epoch: view.index.epoch,
                revision: view.index.revision(),
                last_id: position_of(last),
            }
            .encode(),
            _ => String::new(),
        };

        Ok(Response::new(proto::ListEffectiveAccessResponse {
            entries: page.iter().map(|entry| access_entry(index, entry)).collect(),
            next_page_token,
            consistency_token: view.token(),
            revision: view.index.revision().0,
        }))
    }

    async fn get_index_status(
        &self,
        _request: Request<proto::GetIndexStatusRequest>,
    ) -> Result<Response<proto::GetIndexStatusResponse>, Status> {
        let connected = self.shared.is_connected();
        let staleness = self.shared.staleness(std::time::Instant::now()).map(proto_duration);
        let Some(published) = self.shared.load() else {
            return Ok(Response::new(proto::GetIndexStatusResponse {
                ready: false,
                connected,
                ..Default::default()
            }));
        };

        let stats = published.index.stats();
        let count = |value: usize| i64::try_from(value).unwrap_or(i64::MAX);
        Ok(Response::new(proto::GetIndexStatusResponse {
            ready: true,
            consistency_token: published.token().encode(),
            revision: published.revision().0,
            staleness,
            connected,
            organizations: count(stats.organizations),
            users: count(stats.users),
            teams: count(stats.teams),
            memberships: count(stats.memberships),
            resources: count(stats.resources),
            grants: count(stats.grants),
        }))
    }
}

/// Reads the request's deadline from its `grpc-timeout` header, if it sent one.
fn request_timeout(metadata: &MetadataMap) -> Option<Duration> {
    metadata
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(parse_grpc_timeout)
}

/// Identifies a listing by its target and filters as the request names them.
fn list_fingerprint(target: &ListTarget) -> u64 {
    let mut parts: Vec<String> = Vec::new();
    match target {
        ListTarget::User {
            user,
            organization,
            resource_type,
        } => {
            parts.push("user".to_owned());
            parts.extend(user_parts(user));
            match organization {
                Some(organization) => parts.extend(organization_parts(organization)),
                None => parts.push("any-organization".to_owned()),
            }
            parts.push(resource_type.clone().unwrap_or_default());
        }
        ListTarget::Resource(resource) => {
            parts.push("resource".to_owned());
            match resource {
                ResourceSelector::Id(id) => parts.extend(["id".to_owned(), id.to_string()]),
                ResourceSelector::Key {
                    organization,
                    resource_type,
                    external_id,
                } => {
                    parts.push("key".to_owned());
                    parts.extend(organization_parts(organization));
                    parts.extend([resource_type.clone(), external_id.clone()]);
                }
            }
        }
    }
    query_fingerprint(parts.iter().map(String::as_str))
}

fn user_parts(user: &UserSelector) -> [String; 2] {
    match user {
        UserSelector::Id(id) => ["id".to_owned(), id.to_string()],
        UserSelector::Login(login) => ["login".to_owned(), login.to_lowercase()],
        UserSelector::Email(email) => ["email".to_owned(), email.to_lowercase()],
    }
}

fn organization_parts(organization: &OrganizationSelector) -> [String; 2] {
    match organization {
        OrganizationSelector::Id(id) => ["organization-id".to_owned(), id.to_string()],
        OrganizationSelector::Name(name) => ["organization-name".to_owned(), name.to_lowercase()],
    }
}
