//! Reading, watching and purging the change log.

use std::collections::BTreeMap;
use std::pin::Pin;
use std::time::Duration;

use futures::Stream;
use sea_orm::sea_query::Condition;
use sea_orm::{
    AccessMode, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, IsolationLevel, QueryFilter, QueryOrder,
    QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::watch;
use workteams_domain::{Change, ChangeBatch, ConsistencyToken, OrganizationId, Revision};

use super::{Backend, CHANGES_CHANNEL, Store, time};
use crate::RequestContext;
use crate::StoreError;
use crate::schema::tables::{change_batches, changes};

/// Batches a watch stream reads per query.
const WATCH_BATCH_LIMIT: usize = 500;
/// Upper bound on `changes_after`'s limit.
const MAX_BATCHES_PER_READ: usize = 10_000;
/// Wait before reconnecting a failed PostgreSQL listener.
const LISTENER_RETRY_DELAY: Duration = Duration::from_secs(1);

/// A live stream of committed batches; see [`Store::watch`].
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<Vec<ChangeBatch>, StoreError>> + Send>>;

/// Retention limits of the change log. A batch is deleted only when every
/// set limit allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RetentionPolicy {
    /// Keep batches committed less than this long ago.
    pub keep_for: Option<Duration>,
    /// Keep at least this many of the latest revisions.
    pub keep_revisions: Option<i64>,
}

/// The result of a change-log purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PurgeOutcome {
    pub deleted_batches: u64,
    /// Changes after this revision are still available.
    pub oldest_available: Revision,
}

impl Store {
    /// Returns up to `limit` batches committed after `from`, in commit order.
    /// With an organization, only batches with changes of that organization
    /// or of no organization, holding only those changes.
    ///
    /// Errors: `TokenFromOtherInstallation`; `TokenAhead`;
    /// `ChangeLogTruncated` when changes after `from` were purged.
    pub async fn changes_after(
        &self,
        from: ConsistencyToken,
        organization_id: Option<OrganizationId>,
        limit: usize,
    ) -> Result<Vec<ChangeBatch>, StoreError> {
        let (batches, _) = self.read_changes(from, organization_id, limit).await?;
        Ok(batches)
    }

    /// Streams the batches committed after `from`, then every later batch
    /// as it commits, in commit order, without gaps or repeats. An item is
    /// never empty. Errors as [`Store::changes_after`] end the stream.
    ///
    /// The stream wakes on local commits, on PostgreSQL notifications from
    /// other replicas, and at the latest after the configured poll interval.
    pub fn watch(&self, from: ConsistencyToken, organization_id: Option<OrganizationId>) -> ChangeStream {
        let store = self.clone();
        let mut head = self.subscribe_head();
        let poll_interval = self.config().watch_poll_interval;

        Box::pin(async_stream::stream! {
            let mut position = from;
            loop {
                // Marks the current head as seen before reading, so a commit
                // that lands after the read wakes the wait below.
                head.borrow_and_update();

                match store.read_changes(position, organization_id, WATCH_BATCH_LIMIT).await {
                    Err(error) => {
                        yield Err(error);
                        return;
                    }
                    Ok((batches, read_through)) => {
                        position = store.token(read_through);
                        if !batches.is_empty() {
                            let caught_up = batches.len() < WATCH_BATCH_LIMIT;
                            yield Ok(batches);
                            if !caught_up {
                                continue;
                            }
                        }
                    }
                }

                if *head.borrow() > position.revision {
                    continue;
                }
                tokio::select! {
                    changed = head.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    () = tokio::time::sleep(poll_interval) => {}
                }
            }
        })
    }

    /// Deletes old change-log batches and records the oldest retained
    /// revision; clients behind it get `ChangeLogTruncated`. With no limit
    /// set, nothing is deleted.
    pub async fn purge_change_log(&self, policy: RetentionPolicy) -> Result<PurgeOutcome, StoreError> {
        let tx = match self.begin_write::<()>(&RequestContext::system(), "purge_change_log").await? {
            super::Begun::Started(transaction) => *transaction,
            super::Begun::Replayed(_) => return Err(StoreError::corrupt("a purge cannot be replayed")),
        };
        let backend = tx.db().get_database_backend();

        let (head, purged_through) = read_head_and_purged(tx.db()).await?;
        let mut cutoffs = Vec::new();
        if let Some(keep_revisions) = policy.keep_revisions {
            cutoffs.push(head.0.saturating_sub(keep_revisions.max(0)));
        }
        if let Some(keep_for) = policy.keep_for {
            let keep_for = chrono::Duration::from_std(keep_for).unwrap_or(chrono::Duration::MAX);
            let oldest_kept_time = time::now()
                .checked_sub_signed(keep_for)
                .map_or(i64::MIN, time::to_micros);
            let row = tx
                .db()
                .query_one_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT MAX(revision) AS revision FROM change_batches WHERE commit_time_us < $1",
                    [oldest_kept_time.into()],
                ))
                .await?;
            let older: Option<i64> = match row {
                Some(row) => row.try_get("", "revision")?,
                None => None,
            };
            cutoffs.push(older.unwrap_or(0));
        }
        let cutoff = cutoffs.into_iter().min().unwrap_or(0);

        if cutoff <= purged_through.0 {
            tx.commit(self, ()).await?;
            return Ok(PurgeOutcome {
                deleted_batches: 0,
                oldest_available: purged_through,
            });
        }

        tx.db()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM changes WHERE revision <= $1",
                [cutoff.into()],
            ))
            .await?;
        let deleted = tx
            .db()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "DELETE FROM change_batches WHERE revision <= $1",
                [cutoff.into()],
            ))
            .await?
            .rows_affected();
        tx.db()
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE change_head SET purged_through = $1 WHERE id = 1",
                [cutoff.into()],
            ))
            .await?;
        tx.commit(self, ()).await?;

        tracing::info!(deleted_batches = deleted, oldest_available = cutoff, "change log purged");
        Ok(PurgeOutcome {
            deleted_batches: deleted,
            oldest_available: Revision(cutoff),
        })
    }

    /// Starts a read-only transaction over one consistent state. It is
    /// REPEATABLE READ on PostgreSQL and a WAL read transaction on SQLite,
    /// whose snapshot starts at the first read.
    pub(crate) async fn begin_read(&self) -> Result<DatabaseTransaction, StoreError> {
        let txn = match self.backend() {
            Backend::Postgres => {
                self.db()
                    .begin_with_config(Some(IsolationLevel::RepeatableRead), Some(AccessMode::ReadOnly))
                    .await?
            }
            Backend::Sqlite => self.db().begin().await?,
        };
        Ok(txn)
    }

    /// Reads up to `limit` batches after `from`; also returns the revision
    /// the read covers (the last batch's when the limit was reached,
    /// otherwise the head), from which the next read continues.
    async fn read_changes(
        &self,
        from: ConsistencyToken,
        organization_id: Option<OrganizationId>,
        limit: usize,
    ) -> Result<(Vec<ChangeBatch>, Revision), StoreError> {
        if from.epoch != self.epoch() {
            return Err(StoreError::TokenFromOtherInstallation);
        }
        let limit = limit.clamp(1, MAX_BATCHES_PER_READ);

        let txn = self.begin_read().await?;
        let (head, purged_through) = read_head_and_purged(&txn).await?;
        self.observe_head(head);
        if from.revision > head {
            return Err(StoreError::TokenAhead {
                requested: from.revision,
                head,
            });
        }
        if from.revision < purged_through {
            return Err(StoreError::ChangeLogTruncated {
                oldest_available: purged_through,
            });
        }
        if from.revision == head {
            return Ok((Vec::new(), head));
        }

        let organization_filter = organization_id.map(|id| {
            Condition::any()
                .add(changes::Column::OrganizationId.eq(id.to_string()))
                .add(changes::Column::OrganizationId.is_null())
        });

        // The revisions to read: every revision is a batch, but with an
        // organization filter only those with matching changes count.
        let (first, last, complete) = match &organization_filter {
            None => {
                let last = head.0.min(from.revision.0.saturating_add(limit as i64));
                (from.revision.0 + 1, last, last == head.0)
            }
            Some(filter) => {
                let revisions: Vec<i64> = changes::Entity::find()
                    .select_only()
                    .column(changes::Column::Revision)
                    .distinct()
                    .filter(changes::Column::Revision.gt(from.revision.0))
                    .filter(filter.clone())
                    .order_by_asc(changes::Column::Revision)
                    .limit(limit as u64)
                    .into_tuple()
                    .all(&txn)
                    .await?;
                match (revisions.first(), revisions.last()) {
                    (Some(first), Some(last)) => (*first, *last, revisions.len() < limit),
                    _ => return Ok((Vec::new(), head)),
                }
            }
        };

        let batch_rows = change_batches::Entity::find()
            .filter(change_batches::Column::Revision.between(first, last))
            .order_by_asc(change_batches::Column::Revision)
            .all(&txn)
            .await?;
        let mut change_query = changes::Entity::find()
            .filter(changes::Column::Revision.between(first, last))
            .order_by_asc(changes::Column::Revision)
            .order_by_asc(changes::Column::Position);
        if let Some(filter) = organization_filter {
            change_query = change_query.filter(filter);
        }
        let change_rows = change_query.all(&txn).await?;
        txn.commit().await?;

        let mut grouped: BTreeMap<i64, Vec<Change>> = BTreeMap::new();
        for row in change_rows {
            grouped.entry(row.revision).or_default().push(serde_json::from_str(&row.payload)?);
        }
        let mut batches = Vec::with_capacity(grouped.len());
        for batch in batch_rows {
            let Some(batch_changes) = grouped.remove(&batch.revision) else {
                continue;
            };
            batches.push(ChangeBatch {
                revision: Revision(batch.revision),
                changes: batch_changes,
                actor: batch.actor,
                request_id: batch.request_id,
                traceparent: batch.traceparent,
                commit_time: time::from_micros(batch.commit_time_us)?,
            });
        }

        let read_through = if complete { head } else { Revision(last) };
        Ok((batches, read_through))
    }
}

async fn read_head_and_purged(db: &impl ConnectionTrait) -> Result<(Revision, Revision), StoreError> {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT revision, purged_through FROM change_head WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| StoreError::corrupt("the change head row is missing"))?;
    Ok((
        Revision(row.try_get("", "revision")?),
        Revision(row.try_get("", "purged_through")?),
    ))
}

/// Advances a head channel to `revision` when it is newer.
pub(crate) fn advance_head(head: &watch::Sender<Revision>, revision: Revision) {
    head.send_if_modified(|current| {
        if revision > *current {
            *current = revision;
            true
        } else {
            false
        }
    });
}

/// Listens for other replicas' commit notifications and advances the local
/// head, reconnecting after failures. Watchers also poll, so a lost
/// notification only delays them.
pub(crate) fn spawn_listener(pool: sea_orm::sqlx::PgPool, head: watch::Sender<Revision>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Err(error) = listen(&pool, &head).await {
                tracing::warn!(%error, "change notification listener failed; reconnecting");
            }
            tokio::time::sleep(LISTENER_RETRY_DELAY).await;
        }
    })
}

async fn listen(pool: &sea_orm::sqlx::PgPool, head: &watch::Sender<Revision>) -> Result<(), sea_orm::sqlx::Error> {
    let mut listener = sea_orm::sqlx::postgres::PgListener::connect_with(pool).await?;
    listener.listen(CHANGES_CHANNEL).await?;
    loop {
        let notification = listener.recv().await?;
        match notification.payload().parse::<i64>() {
            Ok(revision) => advance_head(head, Revision(revision)),
            Err(_) => tracing::warn!(payload = notification.payload(), "ignoring malformed change notification"),
        }
    }
}
