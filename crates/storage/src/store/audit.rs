//! Recording audit events inside write transactions, and listing and
//! purging them.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Condition;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};
use workteams_domain::{Entity, EntityKey, OrganizationId, Revision, ValidationError};

use super::{Store, lookup, rows, time};
use crate::audit::{AuditEvent, AuditFilter, AuditOrder, EntityKind, audit_entity_id};
use crate::schema::tables::audit_events;
use crate::{Page, PageRequest, RequestContext, StoreError};

const LIST_KIND: &str = "audit_events";

/// Audit rows per INSERT statement (13 columns each), under SQLite's
/// bound-parameter limit.
const AUDIT_ROWS_PER_INSERT: usize = 200;

/// The changed entities of one write transaction, one entry per entity.
#[derive(Default)]
pub(crate) struct AuditRecorder {
    entries: Vec<AuditEntry>,
    index_by_key: HashMap<EntityKey, usize>,
}

struct AuditEntry {
    key: EntityKey,
    organization_id: Option<OrganizationId>,
    before: Option<Entity>,
    after: Option<Entity>,
}

impl AuditRecorder {
    /// Records one change; a later change of the same entity keeps the
    /// first state before and replaces the state after.
    pub fn record(&mut self, before: Option<&Entity>, after: Option<&Entity>) {
        let Some(current) = after.or(before) else {
            return;
        };
        let key = current.key();
        let organization_id = current.organization_id();

        if let Some(&index) = self.index_by_key.get(&key) {
            let entry = &mut self.entries[index];
            entry.after = after.cloned();
            entry.organization_id = organization_id.or(entry.organization_id);
            return;
        }

        self.index_by_key.insert(key.clone(), self.entries.len());
        self.entries.push(AuditEntry {
            key,
            organization_id,
            before: before.cloned(),
            after: after.cloned(),
        });
    }

    /// Inserts the events of a write committed as `revision`. Entries whose
    /// state ended where it started (created and removed in one write) are
    /// left out.
    pub async fn append(
        &self,
        txn: &DatabaseTransaction,
        revision: Revision,
        context: &RequestContext,
        operation: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let request_organization = self.single_organization();

        let mut rows = Vec::with_capacity(self.entries.len());
        for entry in self.entries.iter().filter(|entry| entry.before != entry.after) {
            let kind = EntityKind::of_key(&entry.key);
            let organization_id = match (entry.organization_id, kind) {
                (None, EntityKind::User) => request_organization,
                (organization_id, _) => organization_id,
            };
            rows.push(audit_events::ActiveModel {
                revision: Set(revision.0),
                position: Set(i32::try_from(rows.len()).map_err(StoreError::corrupt)?),
                organization_id: Set(organization_id.map(|id| id.to_string())),
                actor: Set(context.actor.clone()),
                request_id: Set(context.request_id.clone()),
                traceparent: Set(context.traceparent.clone()),
                method: Set(context.method.clone()),
                operation: Set(operation.to_owned()),
                entity_kind: Set(kind.as_str().to_owned()),
                entity_id: Set(audit_entity_id(&entry.key)),
                before_state: Set(entry.before.as_ref().map(serde_json::to_string).transpose()?),
                after_state: Set(entry.after.as_ref().map(serde_json::to_string).transpose()?),
                event_time_us: Set(time::to_micros(now)),
            });
        }

        for chunk in rows.chunks(AUDIT_ROWS_PER_INSERT) {
            audit_events::Entity::insert_many(chunk.to_vec())
                .exec_without_returning(txn)
                .await?;
        }
        Ok(())
    }

    /// Returns the organization shared by every entry that has one, or
    /// `None` when they differ or none has one.
    fn single_organization(&self) -> Option<OrganizationId> {
        let organizations: BTreeSet<OrganizationId> =
            self.entries.iter().filter_map(|entry| entry.organization_id).collect();
        let mut organizations = organizations.into_iter();
        match (organizations.next(), organizations.next()) {
            (Some(only), None) => Some(only),
            _ => None,
        }
    }
}

impl Store {
    /// Lists an organization's audit events by (revision, position), newest
    /// or oldest first.
    ///
    /// Errors: `Validation` on `end_time` when it is not after
    /// `start_time`, and on `page_size` or `page_token`; `NotFound` on
    /// `organization_id`.
    pub async fn list_audit_events(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEvent>, StoreError> {
        let AuditFilter {
            organization_id,
            actor,
            entity_kind,
            entity_id,
            start_time,
            end_time,
            method,
            order,
        } = filter;
        if let (Some(start), Some(end)) = (start_time, end_time)
            && end <= start
        {
            return Err(ValidationError::new(
                "end_time",
                end.to_rfc3339(),
                format!("must be after start_time {}", start.to_rfc3339()),
            )
            .into());
        }
        let filter_text = format!(
            "{organization_id}|{actor:?}|{}|{entity_id:?}|{:?}|{:?}|{method:?}|{order:?}",
            entity_kind.map(EntityKind::as_str).unwrap_or_default(),
            start_time.map(time::to_micros),
            end_time.map(time::to_micros),
        );
        let position = self.pages().position(page, LIST_KIND, &filter_text)?;
        lookup::require_organization(self.db(), *organization_id, "organization_id").await?;

        let mut select = audit_events::Entity::find()
            .filter(audit_events::Column::OrganizationId.eq(organization_id.to_string()));
        if let Some(actor) = actor {
            select = select.filter(audit_events::Column::Actor.eq(actor.as_str()));
        }
        if let Some(kind) = entity_kind {
            select = select.filter(audit_events::Column::EntityKind.eq(kind.as_str()));
        }
        if let Some(entity_id) = entity_id {
            select = select.filter(audit_events::Column::EntityId.eq(entity_id.as_str()));
        }
        if let Some(start) = start_time {
            select = select.filter(audit_events::Column::EventTimeUs.gte(time::to_micros(*start)));
        }
        if let Some(end) = end_time {
            select = select.filter(audit_events::Column::EventTimeUs.lt(time::to_micros(*end)));
        }
        if let Some(method) = method {
            select = select.filter(audit_events::Column::Method.eq(method.as_str()));
        }
        if let Some(after) = &position.after {
            select = select.filter(after_event(after, *order)?);
        }
        select = match order {
            AuditOrder::NewestFirst => select
                .order_by_desc(audit_events::Column::Revision)
                .order_by_desc(audit_events::Column::Position),
            AuditOrder::OldestFirst => select
                .order_by_asc(audit_events::Column::Revision)
                .order_by_asc(audit_events::Column::Position),
        };
        let found = select.limit(position.size as u64 + 1).all(self.db()).await?;
        let items = found.into_iter().map(audit_event).collect::<Result<Vec<_>, _>>()?;

        Ok(self.pages().page(LIST_KIND, &filter_text, position.size, items, |event| {
            vec![event.revision.0.to_string(), event.position.to_string()]
        }))
    }

    /// Deletes audit events older than `keep_for` and returns how many it
    /// deleted. Audit events outlive the change log: purging the log leaves
    /// them in place.
    pub async fn purge_audit_events(&self, keep_for: Duration) -> Result<u64, StoreError> {
        let keep_for = chrono::Duration::from_std(keep_for).unwrap_or(chrono::Duration::MAX);
        let cutoff = time::now().checked_sub_signed(keep_for).map_or(i64::MIN, time::to_micros);

        let result = self
            .db()
            .execute_raw(Statement::from_sql_and_values(
                self.db().get_database_backend(),
                "DELETE FROM audit_events WHERE event_time_us < $1",
                [cutoff.into()],
            ))
            .await?;

        tracing::info!(deleted_events = result.rows_affected(), "audit events purged");
        Ok(result.rows_affected())
    }
}

/// Events strictly after the page key (revision, position) in `order`.
fn after_event(after: &[String], order: AuditOrder) -> Result<Condition, StoreError> {
    let invalid = || {
        StoreError::from(ValidationError::new(
            "page_token",
            "",
            "not a page token of this list; pass next_page_token exactly as returned",
        ))
    };
    let [revision, position] = after else {
        return Err(invalid());
    };
    let revision: i64 = revision.parse().map_err(|_| invalid())?;
    let position: i32 = position.parse().map_err(|_| invalid())?;

    let condition = match order {
        AuditOrder::NewestFirst => Condition::any()
            .add(audit_events::Column::Revision.lt(revision))
            .add(
                Condition::all()
                    .add(ColumnTrait::eq(&audit_events::Column::Revision, revision))
                    .add(audit_events::Column::Position.lt(position)),
            ),
        AuditOrder::OldestFirst => Condition::any()
            .add(audit_events::Column::Revision.gt(revision))
            .add(
                Condition::all()
                    .add(ColumnTrait::eq(&audit_events::Column::Revision, revision))
                    .add(audit_events::Column::Position.gt(position)),
            ),
    };
    Ok(condition)
}

fn audit_event(row: audit_events::Model) -> Result<AuditEvent, StoreError> {
    let entity_kind = EntityKind::from_name(&row.entity_kind)
        .ok_or_else(|| StoreError::corrupt(format!("unknown audited entity kind {:?}", row.entity_kind)))?;
    let before: Option<Entity> = row.before_state.as_deref().map(serde_json::from_str).transpose()?;
    let after: Option<Entity> = row.after_state.as_deref().map(serde_json::from_str).transpose()?;
    let entity_key = after
        .as_ref()
        .or(before.as_ref())
        .map(Entity::key)
        .ok_or_else(|| StoreError::corrupt(format!("audit event {}/{} has no state", row.revision, row.position)))?;

    Ok(AuditEvent {
        revision: Revision(row.revision),
        position: row.position,
        organization_id: rows::parse_optional_id(row.organization_id.as_deref())?,
        actor: row.actor,
        request_id: row.request_id,
        traceparent: row.traceparent,
        method: row.method,
        operation: row.operation,
        time: time::from_micros(row.event_time_us)?,
        entity_kind,
        entity_key,
        before,
        after,
    })
}
