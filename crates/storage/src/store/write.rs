//! The write transaction every mutation goes through.
//!
//! A write transaction first locks the change-head row. On SQLite it also
//! takes an in-process mutex and starts with `BEGIN IMMEDIATE`. It then
//! checks the idempotency record and does its work while recording each
//! changed entity's state before and after. Only if something changed does
//! it bump the head revision and append the change rows and audit events.
//! Because every writer holds the head lock until it commits, revisions are
//! gapless and become visible in order: no transaction can commit revision
//! `n` after a reader has seen `n + 1`.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ConnectionTrait, DatabaseTransaction, EntityTrait, SqliteTransactionMode, Statement,
    TransactionOptions, TransactionTrait,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::sync::OwnedMutexGuard;
use workteams_domain::command::check_idempotency_key;
use workteams_domain::{Change, Entity, Revision};

use super::audit::AuditRecorder;
use super::{Backend, CHANGES_CHANNEL, Store, time};
use crate::context::StoredResult;
use crate::error::StoreError;
use crate::schema::tables::{change_batches, changes, idempotency_records};
use crate::{IdempotencyKey, RequestContext, Written};

/// Rows per INSERT statement when appending changes, well under SQLite's
/// bound-parameter limit.
const CHANGE_ROWS_PER_INSERT: usize = 500;

/// A write transaction that has taken the head lock.
pub(crate) struct WriteTransaction {
    txn: DatabaseTransaction,
    /// Held until commit or rollback on SQLite.
    _sqlite_writer: Option<OwnedMutexGuard<()>>,
    operation: &'static str,
    context: RequestContext,
    head: Revision,
    changes: Vec<Change>,
    audit: AuditRecorder,
    now: DateTime<Utc>,
}

/// The start of a write: either a replay of an earlier identical request or
/// a transaction to do the work in.
pub(crate) enum Begun<T> {
    Replayed(Written<T>),
    Started(Box<WriteTransaction>),
}

/// Starts a write transaction, returning early with the first result when
/// the request repeats an idempotent one.
macro_rules! begin_write {
    ($store:expr, $context:expr, $operation:expr) => {
        match $store.begin_write($context, $operation).await? {
            $crate::store::Begun::Replayed(written) => return Ok(written),
            $crate::store::Begun::Started(transaction) => *transaction,
        }
    };
}
pub(crate) use begin_write;

impl Store {
    /// Starts a write transaction for `operation` (the method name, part of
    /// the idempotency record).
    pub(crate) async fn begin_write<T: DeserializeOwned>(
        &self,
        context: &RequestContext,
        operation: &'static str,
    ) -> Result<Begun<T>, StoreError> {
        if let Some(idempotency) = &context.idempotency {
            check_idempotency_key("idempotency_key", &idempotency.key)?;
        }

        let sqlite_writer = match &self.inner.sqlite_writer {
            Some(mutex) => Some(Arc::clone(mutex).lock_owned().await),
            None => None,
        };
        let options = TransactionOptions {
            sqlite_transaction_mode: (self.inner.backend == Backend::Sqlite).then_some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        };
        let txn = self.inner.db.begin_with_options(options).await?;

        let head = lock_head(&txn).await?;

        if let Some(idempotency) = &context.idempotency
            && let Some(replay) = self.find_replay(&txn, operation, idempotency).await?
        {
            txn.rollback().await?;
            return Ok(Begun::Replayed(replay));
        }

        Ok(Begun::Started(Box::new(WriteTransaction {
            txn,
            _sqlite_writer: sqlite_writer,
            operation,
            context: context.clone(),
            head,
            changes: Vec::new(),
            audit: AuditRecorder::default(),
            now: time::now(),
        })))
    }

    async fn find_replay<T: DeserializeOwned>(
        &self,
        txn: &DatabaseTransaction,
        operation: &'static str,
        idempotency: &IdempotencyKey,
    ) -> Result<Option<Written<T>>, StoreError> {
        let Some(record) = idempotency_records::Entity::find_by_id(idempotency.key.clone()).one(txn).await? else {
            return Ok(None);
        };

        let retention = chrono::Duration::from_std(self.inner.config.idempotency_retention)
            .unwrap_or(chrono::Duration::MAX);
        let expired = time::from_micros(record.create_time_us)?
            .checked_add_signed(retention)
            .is_some_and(|expiry| expiry <= time::now());
        if expired {
            return Ok(None);
        }

        if record.operation != operation || record.fingerprint != fingerprint_text(operation, idempotency) {
            return Err(StoreError::IdempotencyKeyReused {
                key: idempotency.key.clone(),
            });
        }
        let stored: StoredResult<T> = serde_json::from_str(&record.result)?;
        Ok(Some(Written {
            value: stored.value,
            token: self.token(Revision(stored.revision)),
        }))
    }
}

impl WriteTransaction {
    /// The transaction to read and write in.
    pub fn db(&self) -> &DatabaseTransaction {
        &self.txn
    }

    /// The time of this write, the same for every row it touches.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Records a new entity.
    pub fn created(&mut self, entity: Entity) {
        self.audit.record(None, Some(&entity));
        self.changes.push(Change::Upserted(entity));
    }

    /// Records a changed entity with its state before the change.
    pub fn updated(&mut self, before: &Entity, after: Entity) {
        self.audit.record(Some(before), Some(&after));
        self.changes.push(Change::Upserted(after));
    }

    /// Records a removed entity with its last state.
    pub fn removed(&mut self, before: &Entity) {
        self.audit.record(Some(before), None);
        self.changes.push(Change::Deleted {
            key: before.key(),
            organization_id: before.organization_id(),
        });
    }

    /// Appends the changes under the next revision (if there are any),
    /// stores the idempotency record, commits and wakes local watchers.
    pub async fn commit<T: Serialize>(self, store: &Store, value: T) -> Result<Written<T>, StoreError> {
        let revision = if self.changes.is_empty() {
            self.head
        } else {
            self.head.next()
        };

        if !self.changes.is_empty() {
            self.append_changes(store, revision).await?;
        }

        if let Some(idempotency) = &self.context.idempotency {
            let stored = StoredResult {
                value: &value,
                revision: revision.0,
            };
            let record = idempotency_records::ActiveModel {
                idempotency_key: Set(idempotency.key.clone()),
                operation: Set(self.operation.to_owned()),
                fingerprint: Set(fingerprint_text(self.operation, idempotency)),
                result: Set(serde_json::to_string(&stored)?),
                create_time_us: Set(time::to_micros(self.now)),
            };
            // An expired record with the same key is replaced.
            idempotency_records::Entity::insert(record)
                .on_conflict(
                    OnConflict::column(idempotency_records::Column::IdempotencyKey)
                        .update_columns([
                            idempotency_records::Column::Operation,
                            idempotency_records::Column::Fingerprint,
                            idempotency_records::Column::Result,
                            idempotency_records::Column::CreateTimeUs,
                        ])
                        .to_owned(),
                )
                .exec(&self.txn)
                .await?;
        }

        self.txn.commit().await?;
        store.observe_head(revision);

        Ok(Written {
            value,
            token: store.token(revision),
        })
    }

    async fn append_changes(&self, store: &Store, revision: Revision) -> Result<(), StoreError> {
        let backend = self.txn.get_database_backend();
        self.txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                "UPDATE change_head SET revision = $1 WHERE id = 1",
                [revision.0.into()],
            ))
            .await?;

        let batch = change_batches::ActiveModel {
            revision: Set(revision.0),
            actor: Set(self.context.actor.clone()),
            request_id: Set(self.context.request_id.clone()),
            traceparent: Set(self.context.traceparent.clone()),
            commit_time_us: Set(time::to_micros(self.now)),
        };
        change_batches::Entity::insert(batch).exec_without_returning(&self.txn).await?;

        let mut rows = Vec::with_capacity(self.changes.len());
        for (position, change) in self.changes.iter().enumerate() {
            rows.push(changes::ActiveModel {
                revision: Set(revision.0),
                position: Set(i32::try_from(position).map_err(StoreError::corrupt)?),
                organization_id: Set(change.organization_id().map(|id| id.to_string())),
                payload: Set(serde_json::to_string(change)?),
            });
        }
        for chunk in rows.chunks(CHANGE_ROWS_PER_INSERT) {
            changes::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(&self.txn)
                .await?;
        }

        self.audit
            .append(&self.txn, revision, &self.context, self.operation, self.now)
            .await?;

        if store.backend() == Backend::Postgres {
            // Delivered to listeners when the transaction commits.
            self.txn
                .execute_raw(Statement::from_sql_and_values(
                    backend,
                    "SELECT pg_notify($1, $2)",
                    [CHANGES_CHANNEL.into(), revision.0.to_string().into()],
                ))
                .await?;
        }
        Ok(())
    }
}

/// Takes the head lock (the row lock on PostgreSQL; on SQLite the write lock
/// is already held through `BEGIN IMMEDIATE`) and returns the head revision.
async fn lock_head(txn: &DatabaseTransaction) -> Result<Revision, StoreError> {
    let row = txn
        .query_one_raw(Statement::from_string(
            txn.get_database_backend(),
            "UPDATE change_head SET revision = revision WHERE id = 1 RETURNING revision",
        ))
        .await?
        .ok_or_else(|| StoreError::corrupt("the change head row is missing"))?;
    Ok(Revision(row.try_get("", "revision")?))
}

/// The stored fingerprint: a hash of the operation and the caller's
/// fingerprint, so the same key on another method is also a mismatch.
fn fingerprint_text(operation: &str, idempotency: &IdempotencyKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(operation.as_bytes());
    hasher.update([0]);
    hasher.update(&idempotency.fingerprint);
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}
