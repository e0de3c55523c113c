//! The server-streaming RPCs: Watch (the change log, live, with heartbeats)
//! and ExportSnapshot (every entity at one revision, in chunks).

use std::pin::Pin;

use futures::{Stream, StreamExt};
use prost::Message;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tonic::Status;
use workteams_domain::{ConsistencyToken, OrganizationId};
use workteams_proto::directory::v1 as proto;
use workteams_storage::{Snapshot, Store, StoreError};

use crate::context::CallContext;
use crate::convert::IntoProto;
use crate::convert::entities::change_batch_to_proto;
use crate::error::ApiError;
use crate::service::StreamSettings;

/// Entities the store reads per snapshot chunk; a chunk becomes one message
/// unless it exceeds the message size budget.
pub const SNAPSHOT_CHUNK_ENTITIES: usize = 500;

/// Bytes kept free in each streamed message for the fields around the
/// repeated entities or batches and for the protobuf framing.
const MESSAGE_OVERHEAD_BYTES: usize = 4 * 1024;

pub type WatchStream = Pin<Box<dyn Stream<Item = Result<proto::WatchResponse, Status>> + Send>>;
pub type SnapshotStream =
    Pin<Box<dyn Stream<Item = Result<proto::ExportSnapshotResponse, Status>> + Send>>;

/// Checks that the change log still contains everything after `from`, so a
/// truncated or foreign token fails the call itself instead of its first
/// stream message.
pub async fn check_watch_start(
    store: &Store,
    from: ConsistencyToken,
    organization_id: Option<OrganizationId>,
) -> Result<(), StoreError> {
    store
        .changes_after(from, organization_id, 1)
        .await
        .map(drop)
}

/// Streams every batch committed after `from` in commit order, with a
/// heartbeat after each `heartbeat_interval` without batches. The stream
/// ends when the client goes away (tonic drops it), on the first store
/// error, or with UNAVAILABLE when the server shuts down.
pub fn watch(
    store: Store,
    from: ConsistencyToken,
    organization_id: Option<OrganizationId>,
    settings: StreamSettings,
    mut shutdown: watch::Receiver<bool>,
    call: CallContext,
) -> WatchStream {
    let epoch = store.epoch();
    let budget = message_budget(settings.max_message_size);
    let heartbeat_interval = settings.heartbeat_interval;

    let stream = async_stream::stream! {
        let _closed = StreamEndLog { call: call.clone(), what: "watch" };
        let mut changes = store.watch(from, organization_id);
        let mut delivered = from;
        let mut idle = tokio::time::interval_at(Instant::now() + heartbeat_interval, heartbeat_interval);
        idle.set_missed_tick_behavior(MissedTickBehavior::Delay);

        loop {
            tokio::select! {
                biased;

                () = wait_for_shutdown(&mut shutdown) => {
                    yield Err(ApiError::ShuttingDown.into_status(&call.request_id));
                    break;
                }

                item = changes.next() => {
                    let batches = match item {
                        Some(Ok(batches)) => batches,
                        Some(Err(error)) => {
                            yield Err(stream_error(&call, error));
                            break;
                        }
                        None => break,
                    };
                    if let Some(last) = batches.last() {
                        delivered = ConsistencyToken::new(epoch, last.revision);
                    }
                    let batches: Vec<proto::ChangeBatch> = batches
                        .into_iter()
                        .map(|batch| change_batch_to_proto(batch, epoch))
                        .collect();
                    // Each message's head is its own last batch, so a
                    // follower that resumes from it skips nothing that a
                    // later message of the same group carries.
                    for group in split_by_size(batches, budget) {
                        let head = group.last().map(|batch| batch.consistency_token.clone()).unwrap_or_default();
                        yield Ok(proto::WatchResponse {
                            batches: group,
                            head_consistency_token: head,
                        });
                    }
                    idle.reset();
                }

                _ = idle.tick() => {
                    match heartbeat_position(&store, delivered, organization_id).await {
                        Ok(position) => {
                            delivered = position;
                            yield Ok(proto::WatchResponse {
                                batches: Vec::new(),
                                head_consistency_token: position.encode(),
                            });
                        }
                        Err(error) => {
                            yield Err(stream_error(&call, error));
                            break;
                        }
                    }
                }
            }
        }
    };
    Box::pin(stream)
}

/// Completes once the server begins to shut down (or is gone).
async fn wait_for_shutdown(shutdown: &mut watch::Receiver<bool>) {
    // The guard that `wait_for` returns is not `Send`, so it is dropped here
    // rather than held in the stream's state.
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// Returns the position a heartbeat reports: the head when the stream has
/// delivered every batch up to it, otherwise the last delivered revision.
///
/// A follower may resume from a heartbeat's token, so the token must never
/// pass a batch that is still on its way. The head is read first. If no
/// batch for this stream exists after `delivered` when the log is read
/// next, every batch up to that head has been delivered, because revisions
/// commit in order.
async fn heartbeat_position(
    store: &Store,
    delivered: ConsistencyToken,
    organization_id: Option<OrganizationId>,
) -> Result<ConsistencyToken, StoreError> {
    let head = store.current_token().await?;
    if head.revision <= delivered.revision {
        return Ok(delivered);
    }
    let pending = store.changes_after(delivered, organization_id, 1).await?;
    Ok(if pending.is_empty() { head } else { delivered })
}

/// Streams a snapshot's entities in messages that all carry its token; the
/// last message has `last` set, even when the snapshot is empty.
pub fn snapshot(snapshot: Snapshot, settings: StreamSettings, call: CallContext) -> SnapshotStream {
    let Snapshot { token, mut chunks } = snapshot;
    let budget = message_budget(settings.max_message_size);
    let encoded_token = token.encode();
    let message = move |entities: Vec<proto::Entity>, last: bool| proto::ExportSnapshotResponse {
        consistency_token: encoded_token.clone(),
        revision: token.revision.0,
        entities,
        last,
    };

    let stream = async_stream::stream! {
        let _closed = StreamEndLog { call: call.clone(), what: "snapshot" };
        // One message is held back until the next one exists, so the last
        // message can carry `last = true`.
        let mut pending: Option<Vec<proto::Entity>> = None;

        while let Some(chunk) = chunks.next().await {
            let entities = match chunk {
                Ok(entities) => entities,
                Err(error) => {
                    yield Err(stream_error(&call, error));
                    return;
                }
            };
            for group in split_by_size(entities.into_proto(), budget) {
                if let Some(previous) = pending.replace(group) {
                    yield Ok(message(previous, false));
                }
            }
        }
        yield Ok(message(pending.unwrap_or_default(), true));
    };
    Box::pin(stream)
}

/// Returns the encoded size that the repeated part of one message may take.
fn message_budget(max_message_size: usize) -> usize {
    max_message_size
        .saturating_sub(MESSAGE_OVERHEAD_BYTES)
        .max(1)
}

/// Groups items, in order, so each group's encoded size stays within
/// `budget`. An item larger than the budget travels alone.
fn split_by_size<T: Message>(items: Vec<T>, budget: usize) -> Vec<Vec<T>> {
    let mut groups = Vec::new();
    let mut group = Vec::new();
    let mut group_size = 0;

    for item in items {
        // Tag and length prefix of a repeated message field: at most 1 + 5
        // bytes for lengths below 4 GiB.
        let size = item.encoded_len() + 6;
        if !group.is_empty() && group_size + size > budget {
            groups.push(std::mem::take(&mut group));
            group_size = 0;
        }
        group_size += size;
        group.push(item);
    }
    if !group.is_empty() {
        groups.push(group);
    }
    groups
}

fn stream_error(call: &CallContext, error: StoreError) -> Status {
    let error = ApiError::from(error);
    let field = error.field().map(str::to_owned);
    let status = error.into_status(&call.request_id);
    call.span.in_scope(|| {
        tracing::info!(code = ?status.code(), field, "stream failed");
    });
    status
}

/// Logs when a stream ends for any reason, including the client leaving.
struct StreamEndLog {
    call: CallContext,
    what: &'static str,
}

impl Drop for StreamEndLog {
    fn drop(&mut self) {
        let what = self.what;
        self.call
            .span
            .in_scope(|| tracing::debug!(stream = what, "stream closed"));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn entity(name: &str) -> proto::Entity {
        proto::Entity {
            kind: Some(proto::entity::Kind::ResourceType(proto::ResourceType {
                name: name.to_owned(),
                ..Default::default()
            })),
        }
    }

    #[test]
    fn split_keeps_order_and_budget() {
        let items: Vec<proto::Entity> = (0..100)
            .map(|index| entity(&format!("type{index:03}")))
            .collect();
        let item_size = items[0].encoded_len() + 6;
        let groups = split_by_size(items.clone(), item_size * 10);
        assert_eq!(groups.len(), 10);
        assert_eq!(groups.concat(), items);
    }

    #[test]
    fn oversized_item_travels_alone() {
        let big = entity(&"x".repeat(1_000));
        let groups = split_by_size(vec![entity("a"), big, entity("b")], 100);
        assert_eq!(groups.len(), 3);
    }

    #[test]
    fn split_of_nothing_is_empty() {
        let groups = split_by_size(Vec::<proto::Entity>::new(), 100);
        assert!(groups.is_empty());
    }

    #[test]
    fn budget_never_zero() {
        assert_eq!(message_budget(10), 1);
    }
}
