//! Grants.

use std::collections::{HashMap, HashSet};

use sea_orm::sea_query::{Condition, OnConflict};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{BatchSetGrants, GrantChange, GrantSpec};
use workteams_domain::{
    Entity, Grant, GrantKey, OrganizationId, Resource, ResourceId, ResourceTypeRegistry, Subject, TeamId,
    UserId,
};

use super::time::truncate;
use super::write::{WriteTransaction, begin_write};
use super::{Store, lookup, rows};
use crate::schema::tables::{grants, resources, teams};
use crate::{GrantBatchOutcome, GrantFilter, Page, PageRequest, RequestContext, StoreError, Written};

const LIST_KIND: &str = "grants";

/// Grant rows per upsert statement (10 columns each), under SQLite's
/// bound-parameter limit.
const GRANT_ROWS_PER_UPSERT: usize = 200;

impl Store {
    /// Gives a subject access to a resource, replacing its earlier grant
    /// there.
    ///
    /// Errors: `Validation` on `permissions[i]` (not a permission of the
    /// type) or `no_access` (team subject); `NotFound` on `resource_id` or
    /// `subject.team_id` / `subject.user_id`; `FailedPrecondition` on the
    /// subject field (team of another organization, user not a member).
    pub async fn grant_access(&self, context: &RequestContext, command: GrantSpec) -> Result<Written<Grant>, StoreError> {
        command.validate("")?;
        let registry = self.registry();

        let mut tx = begin_write!(self, context, "grant_access");

        let applied = apply_grant_changes(&mut tx, &registry, vec![GrantChange::Set(command)], |_| String::new(), None).await?;
        let grant = applied
            .set
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::corrupt("a grant change produced no grant"))?;

        tx.commit(self, grant).await
    }

    /// Removes a subject's grant on a resource; returns whether there was
    /// one.
    ///
    /// Errors: `NotFound` on `resource_id`.
    pub async fn revoke_access(
        &self,
        context: &RequestContext,
        resource_id: ResourceId,
        subject: Subject,
    ) -> Result<Written<bool>, StoreError> {
        let registry = self.registry();

        let mut tx = begin_write!(self, context, "revoke_access");

        let change = GrantChange::Revoke { resource_id, subject };
        let applied = apply_grant_changes(&mut tx, &registry, vec![change], |_| String::new(), None).await?;

        tx.commit(self, applied.revoked_count > 0).await
    }

    /// Sets and revokes up to 10,000 grants of one organization, all or
    /// nothing.
    ///
    /// Errors: as `grant_access`, on `changes[i].*`; `NotFound` on
    /// `organization_id`; `FailedPrecondition` on `changes[i].resource_id`
    /// for a resource of another organization.
    pub async fn batch_set_grants(
        &self,
        context: &RequestContext,
        command: BatchSetGrants,
    ) -> Result<Written<GrantBatchOutcome>, StoreError> {
        command.validate()?;
        let BatchSetGrants {
            organization_id,
            changes,
        } = command;
        let registry = self.registry();

        let mut tx = begin_write!(self, context, "batch_set_grants");

        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        let applied = apply_grant_changes(
            &mut tx,
            &registry,
            changes,
            |index| format!("changes[{index}]"),
            Some(organization_id),
        )
        .await?;

        let outcome = GrantBatchOutcome {
            set_count: applied.changed_count,
            revoked_count: applied.revoked_count,
        };
        tx.commit(self, outcome).await
    }

    /// Lists an organization's grants by (resource id, subject).
    ///
    /// Errors: `NotFound` on `organization_id`.
    pub async fn list_grants(&self, filter: &GrantFilter, page: &PageRequest) -> Result<Page<Grant>, StoreError> {
        let GrantFilter {
            organization_id,
            resource_id,
            subject,
        } = *filter;
        let subject_columns = subject.map(rows::subject_columns);
        let filter_text = format!(
            "{organization_id}|{}|{}",
            resource_id.map(|id| id.to_string()).unwrap_or_default(),
            subject_columns
                .as_ref()
                .map(|(kind, id)| format!("{kind}:{id}"))
                .unwrap_or_default()
        );
        let position = self.pages().position(page, LIST_KIND, &filter_text)?;
        lookup::require_organization(self.db(), organization_id, "organization_id").await?;

        let mut select = grants::Entity::find()
            .filter(grants::Column::OrganizationId.eq(organization_id.to_string()))
            .order_by_asc(grants::Column::ResourceId)
            .order_by_asc(grants::Column::SubjectKind)
            .order_by_asc(grants::Column::SubjectId);
        if let Some(resource_id) = resource_id {
            select = select.filter(grants::Column::ResourceId.eq(resource_id.to_string()));
        }
        if let Some((kind, id)) = subject_columns {
            select = select
                .filter(grants::Column::SubjectKind.eq(kind))
                .filter(grants::Column::SubjectId.eq(id));
        }
        if let Some(after) = &position.after {
            select = select.filter(after_grant_key(after)?);
        }
        let found = select.limit(position.size as u64 + 1).all(self.db()).await?;
        let items = found.into_iter().map(rows::grant).collect::<Result<Vec<_>, _>>()?;

        Ok(self.pages().page(LIST_KIND, &filter_text, position.size, items, |grant| {
            let (kind, id) = rows::subject_columns(grant.subject);
            vec![grant.resource_id.to_string(), kind.to_owned(), id]
        }))
    }
}

/// What a list of grant changes did.
pub(crate) struct AppliedGrants {
    /// The grant after each `Set` change, in order, changed or not.
    pub set: Vec<Grant>,
    /// How many `Set` changes created or changed a grant.
    pub changed_count: usize,
    pub revoked_count: usize,
}

/// Validates and applies grant changes: every change is checked before
/// anything is written. `prefix_of(i)` is the field path of change `i`
/// (empty for a single-grant request). With `required_organization`, every
/// resource must belong to it.
pub(crate) async fn apply_grant_changes(
    tx: &mut WriteTransaction,
    registry: &ResourceTypeRegistry,
    changes: Vec<GrantChange>,
    prefix_of: impl Fn(usize) -> String,
    required_organization: Option<OrganizationId>,
) -> Result<AppliedGrants, StoreError> {
    let mut checker = SubjectChecker::default();
    let resources = load_resources(tx, changes.iter().map(GrantChange::resource_id)).await?;
    let mut existing = load_existing_grants(tx, resources.keys().copied()).await?;
    let now = tx.now();

    let mut applied = AppliedGrants {
        set: Vec::new(),
        changed_count: 0,
        revoked_count: 0,
    };
    let mut upserts = Vec::new();
    let mut deletions = Vec::new();

    for (index, change) in changes.into_iter().enumerate() {
        let prefix = prefix_of(index);
        let resource = resources
            .get(&change.resource_id())
            .ok_or_else(|| StoreError::not_found("resource", join(&prefix, "resource_id"), change.resource_id()))?;
        if let Some(organization_id) = required_organization
            && resource.organization_id != organization_id
        {
            return Err(StoreError::precondition(
                join(&prefix, "resource_id"),
                format!("resource {} belongs to another organization", resource.id),
            ));
        }
        let key = GrantKey {
            resource_id: resource.id,
            subject: change.subject(),
        };

        match change {
            GrantChange::Revoke { .. } => {
                if let Some(grant) = existing.remove(&key) {
                    deletions.push(grant);
                }
            }
            GrantChange::Set(spec) => {
                spec.validate(&prefix)?;
                let GrantSpec {
                    resource_id,
                    subject,
                    permissions,
                    no_access,
                    expire_time,
                    granted_by,
                } = spec;

                let definition = registry.get(&resource.resource_type).ok_or_else(|| {
                    StoreError::corrupt(format!("resource {resource_id} has unknown type {}", resource.resource_type))
                })?;
                let permissions = if no_access {
                    Vec::new()
                } else {
                    let set = definition.parse_grant_permissions(&join(&prefix, "permissions"), &permissions)?;
                    definition.grant_names(set)
                };
                checker.check(tx, subject, resource.organization_id, &prefix).await?;

                let current = existing.get(&key);
                let grant = Grant {
                    resource_id,
                    subject,
                    organization_id: resource.organization_id,
                    permissions,
                    no_access,
                    expire_time: expire_time.map(truncate),
                    granted_by,
                    create_time: current.map_or(now, |grant| grant.create_time),
                    update_time: now,
                };
                let unchanged = current.is_some_and(|current| {
                    current.permissions == grant.permissions
                        && current.no_access == grant.no_access
                        && current.expire_time == grant.expire_time
                        && current.granted_by == grant.granted_by
                });
                if unchanged {
                    applied.set.push(current.cloned().unwrap_or(grant));
                } else {
                    let before = existing.insert(key, grant.clone());
                    upserts.push((before, grant.clone()));
                    applied.set.push(grant);
                }
            }
        }
    }

    applied.changed_count = upserts.len();
    applied.revoked_count = deletions.len();
    upsert_grants(tx, upserts).await?;
    for grant in &deletions {
        delete_grant(tx, grant).await?;
    }
    Ok(applied)
}

/// Writes new and changed grants, each with its earlier state (`None` for a
/// new grant).
async fn upsert_grants(tx: &mut WriteTransaction, upserts: Vec<(Option<Grant>, Grant)>) -> Result<(), StoreError> {
    for chunk in upserts.chunks(GRANT_ROWS_PER_UPSERT) {
        let rows = chunk.iter().map(|(_, grant)| rows::grant_row(grant)).collect::<Result<Vec<_>, _>>()?;
        grants::Entity::insert_many(rows)
            .on_conflict(
                OnConflict::columns([
                    grants::Column::ResourceId,
                    grants::Column::SubjectKind,
                    grants::Column::SubjectId,
                ])
                .update_columns([
                    grants::Column::Permissions,
                    grants::Column::NoAccess,
                    grants::Column::ExpireTimeUs,
                    grants::Column::GrantedBy,
                    grants::Column::UpdateTimeUs,
                ])
                .to_owned(),
            )
            .exec_without_returning(tx.db())
            .await?;
    }
    for (before, grant) in upserts {
        match before {
            Some(before) => tx.updated(&Entity::Grant(before), Entity::Grant(grant)),
            None => tx.created(Entity::Grant(grant)),
        }
    }
    Ok(())
}

/// Deletes a grant and records the deletion.
pub(crate) async fn delete_grant(tx: &mut WriteTransaction, grant: &Grant) -> Result<(), StoreError> {
    let (kind, id) = rows::subject_columns(grant.subject);
    grants::Entity::delete_by_id((grant.resource_id.to_string(), kind.to_owned(), id))
        .exec(tx.db())
        .await?;
    tx.removed(&Entity::Grant(grant.clone()));
    Ok(())
}

async fn load_resources(
    tx: &WriteTransaction,
    ids: impl Iterator<Item = ResourceId>,
) -> Result<HashMap<ResourceId, Resource>, StoreError> {
    let ids: Vec<String> = ids.collect::<HashSet<_>>().iter().map(ToString::to_string).collect();
    let mut found = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(lookup::IN_LIST_CHUNK) {
        let rows = resources::Entity::find()
            .filter(resources::Column::Id.is_in(chunk.iter().cloned()))
            .all(tx.db())
            .await?;
        for row in rows {
            let resource = rows::resource(row)?;
            found.insert(resource.id, resource);
        }
    }
    Ok(found)
}

async fn load_existing_grants(
    tx: &WriteTransaction,
    resource_ids: impl Iterator<Item = ResourceId>,
) -> Result<HashMap<GrantKey, Grant>, StoreError> {
    let ids: Vec<String> = resource_ids.map(|id| id.to_string()).collect();
    let mut found = HashMap::new();
    for chunk in ids.chunks(lookup::IN_LIST_CHUNK) {
        let rows = grants::Entity::find()
            .filter(grants::Column::ResourceId.is_in(chunk.iter().cloned()))
            .all(tx.db())
            .await?;
        for row in rows {
            let grant = rows::grant(row)?;
            found.insert(grant.key(), grant);
        }
    }
    Ok(found)
}

/// Checks grant subjects, remembering what it has already checked.
#[derive(Default)]
struct SubjectChecker {
    team_organizations: HashMap<TeamId, OrganizationId>,
    members: HashSet<(OrganizationId, UserId)>,
}

impl SubjectChecker {
    /// A team must exist in the resource's organization; a user must be a
    /// member of it.
    async fn check(
        &mut self,
        tx: &WriteTransaction,
        subject: Subject,
        organization_id: OrganizationId,
        prefix: &str,
    ) -> Result<(), StoreError> {
        match subject {
            Subject::Team(team_id) => {
                let field = join(prefix, "subject.team_id");
                let team_organization = match self.team_organizations.get(&team_id) {
                    Some(organization) => *organization,
                    None => {
                        let row = teams::Entity::find_by_id(team_id.to_string())
                            .one(tx.db())
                            .await?
                            .ok_or_else(|| StoreError::not_found("team", field.clone(), team_id))?;
                        let organization: OrganizationId = rows::parse_id(&row.organization_id)?;
                        self.team_organizations.insert(team_id, organization);
                        organization
                    }
                };
                if team_organization != organization_id {
                    return Err(StoreError::precondition(
                        field,
                        format!("team {team_id} belongs to another organization than the resource"),
                    ));
                }
            }
            Subject::User(user_id) => {
                if self.members.contains(&(organization_id, user_id)) {
                    return Ok(());
                }
                let field = join(prefix, "subject.user_id");
                if lookup::member(tx.db(), organization_id, user_id).await?.is_none() {
                    lookup::user(tx.db(), user_id, &field).await?;
                    return Err(StoreError::precondition(
                        field,
                        format!("user {user_id} is not a member of the resource's organization"),
                    ));
                }
                self.members.insert((organization_id, user_id));
            }
        }
        Ok(())
    }
}

/// Grants strictly after the key (resource id, subject kind, subject id).
fn after_grant_key(after: &[String]) -> Result<Condition, StoreError> {
    let [resource_id, kind, id] = after else {
        return Err(workteams_domain::ValidationError::new(
            "page_token",
            "",
            "not a page token of this list; pass next_page_token exactly as returned",
        )
        .into());
    };
    Ok(Condition::any()
        .add(grants::Column::ResourceId.gt(resource_id.clone()))
        .add(
            Condition::all()
                .add(ColumnTrait::eq(&grants::Column::ResourceId, resource_id.clone()))
                .add(super::memberships::after_pair(
                    &[kind.clone(), id.clone()],
                    grants::Column::SubjectKind,
                    grants::Column::SubjectId,
                )?),
        ))
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}
