//! The follower: keeps the published index in step with the directory.
//!
//! It loads a snapshot into a fresh index, then follows the change stream
//! from the snapshot's revision. Each stream message is applied to a clone of
//! the current index and published whole. When the stream breaks, the last
//! index keeps serving while the follower reconnects with capped, jittered
//! exponential backoff and resumes from the last applied revision. It takes a
//! new snapshot when the directory's change log no longer reaches back that
//! far, when the directory was replaced by another installation, or when a
//! message does not convert (a change is never skipped).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use tokio::sync::watch;
use tokio::time::Instant;
use tonic::{Code, Status};
use tonic_health::server::HealthReporter;
use tonic_types::StatusExt;
use tracing::Instrument as _;
use workteams_domain::{
    ConsistencyToken, OrganizationId, ResourceId, ResourceTypeRegistry, Revision, TeamId, ValidationError,
};
use workteams_evaluation::Index;
use workteams_proto::authz::v1::authorization_service_server::AuthorizationServiceServer;
use workteams_proto::directory::v1 as proto;
use workteams_telemetry::inject_current_context;

use crate::authentication::DirectoryClient;
use crate::convert::{change_batch_from_proto, entity_from_proto};
use crate::metrics::SidecarMetrics;
use crate::service::AuthorizationHandler;
use crate::state::{PublishedIndex, SharedIndex};

/// The `ErrorInfo` reason the directory gives when a Watch starts before the
/// oldest revision its change log still holds.
pub const CHANGE_LOG_TRUNCATED: &str = "CHANGE_LOG_TRUNCATED";

/// Largest message the follower accepts from the directory, in bytes.
pub const MAX_DIRECTORY_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// Settings of the follower, taken from the sidecar's configuration.
#[derive(Debug, Clone)]
pub struct FollowerSettings {
    pub organization: Option<OrganizationId>,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Reconnect when the stream stays silent, heartbeats included, this long.
    pub idle_timeout: Duration,
}

/// Follows the directory until the task is dropped or aborted.
pub struct Follower {
    client: DirectoryClient,
    shared: Arc<SharedIndex>,
    health: HealthReporter,
    settings: FollowerSettings,
    /// Whether the next session must start from a snapshot.
    needs_snapshot: bool,
    /// The index the follower last published.
    current: Option<Arc<PublishedIndex>>,
    metrics: SidecarMetrics,
    /// Turns true when the sidecar shuts down; health then stays NOT_SERVING.
    stopping: watch::Receiver<bool>,
}

/// The reason a session with the directory ended.
#[derive(Debug, thiserror::Error)]
enum SessionEnd {
    /// The connection or a call failed; resume from the last revision.
    #[error("the directory is unreachable or failed: {0}")]
    Disconnected(Status),
    /// The stream ended without an error, as when the directory stops.
    #[error("the directory closed the change stream")]
    StreamClosed,
    #[error("the directory sent nothing for {}s, not even a heartbeat", .0.as_secs())]
    Idle(Duration),
    /// Resuming is impossible or unsafe; take a new snapshot.
    #[error("{0}")]
    Resynchronize(String),
}

impl Follower {
    pub fn new(
        directory: DirectoryClient,
        shared: Arc<SharedIndex>,
        health: HealthReporter,
        settings: FollowerSettings,
        metrics: SidecarMetrics,
        stopping: watch::Receiver<bool>,
    ) -> Self {
        let client = directory.max_decoding_message_size(MAX_DIRECTORY_MESSAGE_BYTES);
        Self {
            client,
            shared,
            health,
            settings,
            needs_snapshot: true,
            current: None,
            metrics,
            stopping,
        }
    }

    /// Runs sessions with the directory until the task is aborted, backing
    /// off between them. Health turns SERVING once the first snapshot is in.
    pub async fn run(mut self) {
        let mut failed_attempts: u32 = 0;
        // Whether a resynchronization already skipped the backoff since the
        // index last advanced. A second one in a row backs off, so a
        // directory that keeps sending what does not convert is not hammered.
        let mut resynchronized_at_once = false;
        loop {
            let progress_before = self.current.as_ref().map(|current| (current.epoch, current.revision()));
            let end = self.session().await;
            self.shared.set_connected(false);

            match &end {
                SessionEnd::Resynchronize(reason) => {
                    tracing::warn!(
                        index.revision = self.current_revision().0,
                        error = %reason,
                        "resynchronizing from a new snapshot",
                    );
                    self.needs_snapshot = true;
                }
                SessionEnd::Disconnected(_) | SessionEnd::StreamClosed | SessionEnd::Idle(_) => {
                    tracing::warn!(
                        index.revision = self.current_revision().0,
                        error = %end,
                        "lost the directory's change stream; serving the last index while reconnecting",
                    );
                }
            }

            let progress_after = self.current.as_ref().map(|current| (current.epoch, current.revision()));
            let made_progress = progress_after.is_some() && progress_after != progress_before;
            if made_progress {
                failed_attempts = 0;
                resynchronized_at_once = false;
            }

            // The directory responded, so a snapshot can be taken right away.
            if matches!(end, SessionEnd::Resynchronize(_)) && !resynchronized_at_once {
                resynchronized_at_once = true;
                continue;
            }

            failed_attempts = failed_attempts.saturating_add(1);
            let delay = backoff_delay(
                failed_attempts,
                self.settings.min_backoff,
                self.settings.max_backoff,
                &mut rand::rng(),
            );
            tracing::info!(
                attempt = failed_attempts,
                delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
                "reconnecting to the directory",
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// Runs one connection's worth of work: a snapshot if needed, then the
    /// change stream until it ends.
    async fn session(&mut self) -> SessionEnd {
        let snapshot_needed = self.needs_snapshot || self.current.is_none();
        let snapshot_loaded = if snapshot_needed {
            let span = tracing::info_span!("directory.export_snapshot", otel.kind = "client");
            self.load_snapshot().instrument(span).await
        } else {
            Ok(())
        };
        match snapshot_loaded {
            Ok(()) => {
                let span = tracing::info_span!("directory.watch", otel.kind = "client");
                self.follow_changes().instrument(span).await
            }
            Err(end) => end,
        }
    }

    async fn load_snapshot(&mut self) -> Result<(), SessionEnd> {
        let started = Instant::now();
        self.metrics.snapshot_started();
        let mut request = tonic::Request::new(proto::ExportSnapshotRequest {
            organization_id: self.organization_filter_text(),
        });
        inject_current_context(request.metadata_mut());
        let mut stream = self
            .client
            .export_snapshot(request)
            .await
            .map_err(SessionEnd::Disconnected)?
            .into_inner();

        let mut assembler = SnapshotAssembler::default();
        loop {
            let message = tokio::time::timeout(self.settings.idle_timeout, stream.message())
                .await
                .map_err(|_| SessionEnd::Idle(self.settings.idle_timeout))?
                .map_err(SessionEnd::Disconnected)?;
            let Some(message) = message else {
                return Err(SessionEnd::Disconnected(Status::unavailable(
                    "the snapshot stream ended before its last message",
                )));
            };
            if assembler.push(message).map_err(|error| SessionEnd::Resynchronize(error.to_string()))? {
                break;
            }
        }

        let snapshot = assembler
            .finish()
            .map_err(|error| SessionEnd::Resynchronize(format!("the snapshot does not convert: {error}")))?;
        let entity_count = snapshot.entities.len();
        let token = snapshot.token;

        // Building a large index is CPU-bound; keep it off the request threads.
        let index = tokio::task::spawn_blocking(move || {
            let mut index = Index::new(ResourceTypeRegistry::default());
            for entity in snapshot.entities {
                index.apply_entity(entity);
            }
            index.set_revision(snapshot.token.revision);
            index
        })
        .await
        .map_err(|error| SessionEnd::Resynchronize(format!("building the index failed: {error}")))?;

        let published = Arc::new(PublishedIndex {
            index,
            epoch: token.epoch,
        });
        let replaced = self.current.as_ref().filter(|previous| previous.epoch != token.epoch);
        if let Some(previous) = replaced {
            tracing::warn!(
                previous.epoch = %previous.epoch,
                epoch = %token.epoch,
                "the directory is another installation than before; replacing the whole index",
            );
        }
        self.shared.publish(Arc::clone(&published));
        self.shared.set_head_revision(token.revision);
        self.shared.mark_fresh(std::time::Instant::now());
        self.current = Some(published);
        self.needs_snapshot = false;
        self.metrics.snapshot_loaded(started.elapsed());

        if !*self.stopping.borrow() {
            self.health.set_serving::<AuthorizationServiceServer<AuthorizationHandler>>().await;
            self.health.set_service_status("", tonic_health::ServingStatus::Serving).await;
        }

        tracing::info!(
            index.revision = token.revision.0,
            entities = entity_count,
            elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "loaded a directory snapshot",
        );
        Ok(())
    }

    async fn follow_changes(&mut self) -> SessionEnd {
        let Some(current) = self.current.clone() else {
            return SessionEnd::Resynchronize("no index to resume from".to_owned());
        };
        let mut request = tonic::Request::new(proto::WatchRequest {
            from_consistency_token: current.token().encode(),
            organization_id: self.organization_filter_text(),
        });
        inject_current_context(request.metadata_mut());
        let mut stream = match self.client.watch(request).await {
            Ok(response) => response.into_inner(),
            Err(status) => return classify_watch_error(status),
        };
        self.shared.set_connected(true);
        tracing::info!(index.revision = current.revision().0, "following the directory's change stream");

        loop {
            let message = match tokio::time::timeout(self.settings.idle_timeout, stream.message()).await {
                Err(_) => return SessionEnd::Idle(self.settings.idle_timeout),
                Ok(Err(status)) => return classify_watch_error(status),
                Ok(Ok(None)) => return SessionEnd::StreamClosed,
                Ok(Ok(Some(message))) => message,
            };
            if let Err(end) = self.apply_watch_response(message).await {
                return end;
            }
        }
    }

    /// Applies one stream message and publishes the resulting index version.
    /// Applying a large batch is CPU-bound, so it runs off the request threads.
    async fn apply_watch_response(&mut self, message: proto::WatchResponse) -> Result<(), SessionEnd> {
        let Some(current) = self.current.clone() else {
            return Err(SessionEnd::Resynchronize("no index to apply changes to".to_owned()));
        };

        let step = tokio::task::spawn_blocking(move || next_version(&current, message))
            .await
            .map_err(|error| SessionEnd::Resynchronize(format!("applying a change batch failed: {error}")))?
            .map_err(SessionEnd::Resynchronize)?;

        if let Some(index) = step.index {
            let published = Arc::new(index);
            self.shared.publish(Arc::clone(&published));
            self.current = Some(published);
        }
        self.shared.set_head_revision(step.head);
        if step.caught_up {
            self.shared.mark_fresh(std::time::Instant::now());
        }
        Ok(())
    }

    fn current_revision(&self) -> Revision {
        self.current.as_ref().map_or(Revision::ZERO, |current| current.revision())
    }

    fn organization_filter_text(&self) -> String {
        self.settings
            .organization
            .map(|organization| organization.to_string())
            .unwrap_or_default()
    }
}

/// Sorts a failed Watch into "reconnect and resume" or "take a snapshot".
/// Besides a truncated change log (FAILED_PRECONDITION), the directory
/// rejects a token of another installation with INVALID_ARGUMENT and a token
/// ahead of its head (a database restored from an older backup) with
/// OUT_OF_RANGE; resuming from that token can never succeed.
fn classify_watch_error(status: Status) -> SessionEnd {
    let truncated = status
        .get_details_error_info()
        .is_some_and(|info| info.reason == CHANGE_LOG_TRUNCATED);
    let token_unusable = matches!(
        status.code(),
        Code::FailedPrecondition | Code::OutOfRange | Code::InvalidArgument
    );
    if truncated || token_unusable {
        SessionEnd::Resynchronize(format!(
            "the directory cannot resume the change stream ({:?}: {})",
            status.code(),
            status.message()
        ))
    } else {
        SessionEnd::Disconnected(status)
    }
}

/// Computes the delay before reconnection attempt `attempt` (1 for the
/// first). The minimum doubles per attempt up to the maximum, and the delay
/// is drawn uniformly from the upper half of that, so that many sidecars do
/// not reconnect in step.
pub fn backoff_delay(attempt: u32, min: Duration, max: Duration, random: &mut impl Rng) -> Duration {
    let doublings = attempt.saturating_sub(1).min(31);
    let ceiling = min.saturating_mul(1_u32 << doublings).min(max);
    let floor = ceiling / 2;
    let spread = ceiling.saturating_sub(floor);
    floor + spread.mul_f64(random.random::<f64>())
}

/// The effect of one change-stream message on the index.
#[derive(Debug)]
pub struct StreamStep {
    /// The version to publish; `None` when the message changes nothing.
    pub index: Option<PublishedIndex>,
    /// The directory position the message reports.
    pub head: Revision,
    /// Whether the index contains everything up to `head` afterwards.
    pub caught_up: bool,
}

/// Applies every batch of one stream message to a clone of `current`, so the
/// whole message becomes visible at once. An error is the reason to take a
/// new snapshot: a head of another installation, or a batch that does not
/// convert, which is logged with its revision and never skipped.
pub fn next_version(current: &PublishedIndex, message: proto::WatchResponse) -> Result<StreamStep, String> {
    let proto::WatchResponse {
        batches,
        head_consistency_token,
    } = message;

    let head = ConsistencyToken::decode("head_consistency_token", &head_consistency_token)
        .map_err(|error| format!("the change stream sent an invalid head: {error}"))?;
    if head.epoch != current.epoch {
        return Err(format!(
            "the directory's epoch changed from {} to {}",
            current.epoch, head.epoch
        ));
    }

    let mut applied = current.revision();
    let mut converted = Vec::with_capacity(batches.len());
    for (position, batch) in batches.into_iter().enumerate() {
        let revision = batch.revision;
        let received = change_batch_from_proto(batch, current.epoch).map_err(|error| {
            tracing::error!(
                batch.revision = revision,
                index.revision = applied.0,
                error = %error.within(&format!("batches[{position}]")),
                "a change batch from the directory does not convert",
            );
            format!("the change batch at revision {revision} does not convert")
        })?;
        if received.batch.revision <= applied {
            tracing::debug!(
                batch.revision = received.batch.revision.0,
                index.revision = applied.0,
                "skipping a batch the index already contains",
            );
            continue;
        }
        applied = received.batch.revision;
        converted.push(received.batch);
    }

    let index = if converted.is_empty() {
        // A heartbeat's head is a position up to which the directory has
        // delivered everything this stream carries (with an organization
        // filter, other organizations' batches are left out), so the index
        // has reached it.
        (head.revision > applied).then(|| {
            let mut index = current.index.clone();
            index.set_revision(head.revision);
            applied = head.revision;
            PublishedIndex {
                index,
                epoch: current.epoch,
            }
        })
    } else {
        let mut index = current.index.clone();
        for batch in &converted {
            index.apply_batch(batch);
        }
        tracing::debug!(
            index.revision = applied.0,
            batches = converted.len(),
            changes = converted.iter().map(|batch| batch.changes.len()).sum::<usize>(),
            "applied change batches",
        );
        Some(PublishedIndex {
            index,
            epoch: current.epoch,
        })
    };

    Ok(StreamStep {
        index,
        head: head.revision,
        caught_up: head.revision <= applied,
    })
}

/// A snapshot read completely, with every entity converted.
#[derive(Debug)]
pub struct Snapshot {
    pub token: ConsistencyToken,
    pub entities: Vec<workteams_domain::Entity>,
}

/// Collects the messages of one snapshot stream and converts them once the
/// last one arrived, because a membership's organization comes from its team
/// and a grant's from its resource, which may arrive later in the stream.
#[derive(Debug, Default)]
pub struct SnapshotAssembler {
    token: Option<ConsistencyToken>,
    entities: Vec<proto::Entity>,
    messages: usize,
    finished: bool,
}

impl SnapshotAssembler {
    /// Adds one stream message; returns whether it was the last one.
    pub fn push(&mut self, message: proto::ExportSnapshotResponse) -> Result<bool, ValidationError> {
        let proto::ExportSnapshotResponse {
            consistency_token,
            revision,
            entities,
            last,
        } = message;
        let field = |name: &str| format!("messages[{}].{name}", self.messages);

        if self.finished {
            return Err(ValidationError::new(field("last"), "", "the snapshot continued after its last message"));
        }
        let token = ConsistencyToken::decode(&field("consistency_token"), &consistency_token)?;
        if token.revision != Revision(revision) {
            return Err(ValidationError::new(
                field("revision"),
                revision.to_string(),
                format!("differs from the revision {} of the message's token", token.revision),
            ));
        }
        if let Some(first) = self.token.filter(|first| *first != token) {
            return Err(ValidationError::new(
                field("consistency_token"),
                &consistency_token,
                format!("differs from the snapshot's first token {first}"),
            ));
        }

        self.token = Some(token);
        self.entities.extend(entities);
        self.messages += 1;
        self.finished = last;
        Ok(last)
    }

    /// Converts every collected entity.
    pub fn finish(self) -> Result<Snapshot, ValidationError> {
        use proto::entity::Kind;

        let Some(token) = self.token.filter(|_| self.finished) else {
            return Err(ValidationError::new("last", "", "the snapshot has no last message"));
        };

        let mut team_organizations: HashMap<TeamId, OrganizationId> = HashMap::new();
        let mut resource_organizations: HashMap<ResourceId, OrganizationId> = HashMap::new();
        for (position, entity) in self.entities.iter().enumerate() {
            let field = |name: &str| format!("entities[{position}].{name}");
            match &entity.kind {
                Some(Kind::Team(team)) => {
                    team_organizations.insert(
                        TeamId::parse(&field("team.id"), &team.id)?,
                        OrganizationId::parse(&field("team.organization_id"), &team.organization_id)?,
                    );
                }
                Some(Kind::Resource(resource)) => {
                    resource_organizations.insert(
                        ResourceId::parse(&field("resource.id"), &resource.id)?,
                        OrganizationId::parse(&field("resource.organization_id"), &resource.organization_id)?,
                    );
                }
                _ => {}
            }
        }

        let entities = self
            .entities
            .into_iter()
            .enumerate()
            .map(|(position, entity)| {
                let field = format!("entities[{position}]");
                let organization = match &entity.kind {
                    Some(Kind::Membership(membership)) => TeamId::parse("membership.team_id", &membership.team_id)
                        .ok()
                        .and_then(|team| team_organizations.get(&team).copied()),
                    Some(Kind::Grant(grant)) => ResourceId::parse("grant.resource_id", &grant.resource_id)
                        .ok()
                        .and_then(|resource| resource_organizations.get(&resource).copied()),
                    _ => None,
                };
                entity_from_proto(entity, organization).map_err(|error| error.within(&field))
            })
            .collect::<Result<Vec<_>, _>>()?;

        Ok(Snapshot { token, entities })
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use uuid::Uuid;
    use workteams_domain::{Entity, UserId};

    use super::*;

    fn timestamp() -> Option<prost_types::Timestamp> {
        Some(prost_types::Timestamp {
            seconds: 1_750_000_000,
            nanos: 0,
        })
    }

    fn user_entity(login: &str) -> proto::Entity {
        proto::Entity {
            kind: Some(proto::entity::Kind::User(proto::User {
                id: UserId::generate().to_string(),
                login: login.to_owned(),
                email: String::new(),
                display_name: login.to_owned(),
                create_time: timestamp(),
                update_time: timestamp(),
                etag: "\"1\"".to_owned(),
            })),
        }
    }

    fn user_batch(epoch: Uuid, revision: i64, login: &str) -> proto::ChangeBatch {
        proto::ChangeBatch {
            revision,
            consistency_token: ConsistencyToken::new(epoch, Revision(revision)).encode(),
            changes: vec![proto::Change {
                organization_id: String::new(),
                kind: Some(proto::change::Kind::Upserted(user_entity(login))),
            }],
            actor: String::new(),
            request_id: String::new(),
            traceparent: String::new(),
            commit_time: timestamp(),
        }
    }

    fn published(epoch: Uuid, revision: i64) -> PublishedIndex {
        let mut index = Index::new(ResourceTypeRegistry::default());
        index.set_revision(Revision(revision));
        PublishedIndex { index, epoch }
    }

    fn response(epoch: Uuid, head: i64, batches: Vec<proto::ChangeBatch>) -> proto::WatchResponse {
        proto::WatchResponse {
            batches,
            head_consistency_token: ConsistencyToken::new(epoch, Revision(head)).encode(),
        }
    }

    #[test]
    fn backoff_stays_within_bounds() {
        let mut random = StdRng::seed_from_u64(7);
        let min = Duration::from_millis(100);
        let max = Duration::from_secs(10);
        for attempt in 1..=40 {
            let delay = backoff_delay(attempt, min, max, &mut random);
            let ceiling = min.saturating_mul(1 << (attempt - 1).min(31)).min(max);
            assert!(delay <= ceiling, "attempt {attempt}: {delay:?} above {ceiling:?}");
            assert!(delay >= ceiling / 2, "attempt {attempt}: {delay:?} below half of {ceiling:?}");
        }
    }

    #[test]
    fn backoff_reaches_cap() {
        let mut random = StdRng::seed_from_u64(7);
        let delay = backoff_delay(30, Duration::from_millis(100), Duration::from_secs(2), &mut random);
        assert!(delay >= Duration::from_secs(1));
    }

    #[test]
    fn batches_apply_in_one_version() {
        let epoch = Uuid::now_v7();
        let current = published(epoch, 3);
        let message = response(epoch, 5, vec![user_batch(epoch, 4, "ada"), user_batch(epoch, 5, "grace")]);

        let step = next_version(&current, message).unwrap();

        let next = step.index.unwrap();
        assert_eq!(next.revision(), Revision(5));
        assert!(next.index.user_by_login("ada").is_some());
        assert!(next.index.user_by_login("grace").is_some());
        assert!(step.caught_up);
    }

    #[test]
    fn applied_batch_is_skipped() {
        let epoch = Uuid::now_v7();
        let current = published(epoch, 4);
        let message = response(epoch, 4, vec![user_batch(epoch, 4, "ada")]);

        let step = next_version(&current, message).unwrap();

        assert!(step.index.is_none());
        assert!(step.caught_up);
    }

    #[test]
    fn heartbeat_advances_revision() {
        let epoch = Uuid::now_v7();
        let current = published(epoch, 4);

        let step = next_version(&current, response(epoch, 9, Vec::new())).unwrap();

        assert_eq!(step.index.unwrap().revision(), Revision(9));
        assert!(step.caught_up);
    }

    #[test]
    fn split_message_is_not_caught_up() {
        let epoch = Uuid::now_v7();
        let current = published(epoch, 3);

        let step = next_version(&current, response(epoch, 6, vec![user_batch(epoch, 4, "ada")])).unwrap();

        assert_eq!(step.index.unwrap().revision(), Revision(4));
        assert!(!step.caught_up);
    }

    #[test]
    fn unconvertible_batch_forces_snapshot() {
        let epoch = Uuid::now_v7();
        let current = published(epoch, 3);
        let mut broken = user_batch(epoch, 4, "ada");
        broken.changes[0].kind = None;

        let error = next_version(&current, response(epoch, 4, vec![broken])).unwrap_err();

        assert!(error.contains("revision 4"), "{error}");
    }

    #[test]
    fn other_epoch_forces_snapshot() {
        let current = published(Uuid::now_v7(), 3);
        let other = Uuid::now_v7();
        let error = next_version(&current, response(other, 4, Vec::new())).unwrap_err();
        assert!(error.contains("epoch"), "{error}");
    }

    fn snapshot_message(token: ConsistencyToken, entities: Vec<proto::Entity>, last: bool) -> proto::ExportSnapshotResponse {
        proto::ExportSnapshotResponse {
            consistency_token: token.encode(),
            revision: token.revision.0,
            entities,
            last,
        }
    }

    #[test]
    fn snapshot_membership_gets_team_organization() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(12));
        let organization = OrganizationId::generate();
        let team = TeamId::generate();
        let membership = proto::Entity {
            kind: Some(proto::entity::Kind::Membership(proto::TeamMembership {
                team_id: team.to_string(),
                user_id: UserId::generate().to_string(),
                add_time: timestamp(),
                ..Default::default()
            })),
        };
        let team_entity = proto::Entity {
            kind: Some(proto::entity::Kind::Team(proto::Team {
                id: team.to_string(),
                organization_id: organization.to_string(),
                name: "docs".to_owned(),
                create_time: timestamp(),
                update_time: timestamp(),
                etag: "\"1\"".to_owned(),
                ..Default::default()
            })),
        };
        let mut assembler = SnapshotAssembler::default();

        assert!(!assembler.push(snapshot_message(token, vec![membership], false)).unwrap());
        assert!(assembler.push(snapshot_message(token, vec![team_entity], true)).unwrap());
        let snapshot = assembler.finish().unwrap();

        assert_eq!(snapshot.token, token);
        let Entity::Membership(membership) = &snapshot.entities[0] else {
            panic!("expected a membership first, got {:?}", snapshot.entities[0]);
        };
        assert_eq!(membership.organization_id, organization);
    }

    #[test]
    fn snapshot_tokens_must_agree() {
        let epoch = Uuid::now_v7();
        let mut assembler = SnapshotAssembler::default();
        assembler
            .push(snapshot_message(ConsistencyToken::new(epoch, Revision(3)), Vec::new(), false))
            .unwrap();
        let error = assembler
            .push(snapshot_message(ConsistencyToken::new(epoch, Revision(4)), Vec::new(), true))
            .unwrap_err();
        assert_eq!(error.field, "messages[1].consistency_token");
    }

    #[test]
    fn snapshot_without_last_is_incomplete() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(3));
        let mut assembler = SnapshotAssembler::default();
        assembler.push(snapshot_message(token, vec![user_entity("ada")], false)).unwrap();
        assert!(assembler.finish().is_err());
    }

    #[test]
    fn unconvertible_snapshot_entity_is_named() {
        let token = ConsistencyToken::new(Uuid::now_v7(), Revision(3));
        let mut broken = user_entity("ada");
        if let Some(proto::entity::Kind::User(user)) = &mut broken.kind {
            user.id = "ADA".to_owned();
        }
        let mut assembler = SnapshotAssembler::default();
        assembler
            .push(snapshot_message(token, vec![user_entity("grace"), broken], true))
            .unwrap();
        let error = assembler.finish().unwrap_err();
        assert_eq!(error.field, "entities[1].user.id");
    }
}
