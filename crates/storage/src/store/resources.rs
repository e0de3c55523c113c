//! Resources.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{BatchCreateResources, Etag, NewResource, ResourceLookup, ResourceParent, ResourceUpdate};
use workteams_domain::text::fold;
use workteams_domain::{Entity, OrganizationId, Resource, ResourceId, ResourceTypeDef, ResourceTypeRegistry};

use super::write::{WriteTransaction, begin_write};
use super::{Store, lookup, rows};
use crate::schema::tables::{grants, resources};
use crate::{Page, PageRequest, RequestContext, ResourceFilter, StoreError, Written};

const LIST_KIND: &str = "resources";

impl Store {
    /// Errors: `Validation` (`resource.resource_type` unknown...);
    /// `NotFound` on `organization_id` or `resource.parent_resource_id` /
    /// `resource.parent_external_id`; `AlreadyExists` on
    /// `resource.external_id`; `FailedPrecondition` on the parent field
    /// (type not nestable, parent of another type or organization).
    pub async fn create_resource(
        &self,
        context: &RequestContext,
        organization_id: OrganizationId,
        resource: NewResource,
    ) -> Result<Written<Resource>, StoreError> {
        resource.validate("resource")?;
        let registry = self.registry();
        registry.require("resource.resource_type", &resource.resource_type)?;

        let mut tx = begin_write!(self, context, "create_resource");

        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        let created = insert_resource(&mut tx, &registry, organization_id, resource, "resource").await?;

        tx.commit(self, created).await
    }

    /// Creates resources in order, all or nothing; a parent may be named by
    /// the external id of a resource earlier in the batch.
    ///
    /// Errors: as `create_resource`, on `resources[i].*`.
    pub async fn batch_create_resources(
        &self,
        context: &RequestContext,
        command: BatchCreateResources,
    ) -> Result<Written<Vec<Resource>>, StoreError> {
        command.validate()?;
        let registry = self.registry();
        for (index, resource) in command.resources.iter().enumerate() {
            registry.require(&format!("resources[{index}].resource_type"), &resource.resource_type)?;
        }
        let BatchCreateResources {
            organization_id,
            resources: new_resources,
        } = command;

        let mut tx = begin_write!(self, context, "batch_create_resources");

        lookup::require_organization(tx.db(), organization_id, "organization_id").await?;
        let mut created = Vec::with_capacity(new_resources.len());
        for (index, resource) in new_resources.into_iter().enumerate() {
            let prefix = format!("resources[{index}]");
            created.push(insert_resource(&mut tx, &registry, organization_id, resource, &prefix).await?);
        }

        tx.commit(self, created).await
    }

    /// Errors: `NotFound` on `id` or `key.external_id`; `Validation` on
    /// `key.resource_type` for an unknown type.
    pub async fn get_resource(&self, lookup: &ResourceLookup) -> Result<Resource, StoreError> {
        match lookup {
            ResourceLookup::Id(id) => lookup::resource(self.db(), *id, "id").await,
            ResourceLookup::Key {
                organization_id,
                resource_type,
                external_id,
            } => {
                let registry = self.registry();
                let definition = registry.require("key.resource_type", resource_type)?;
                let key = external_id_key(definition, external_id);
                lookup::resource_by_key(self.db(), *organization_id, resource_type, &key)
                    .await?
                    .ok_or_else(|| StoreError::not_found("resource", "key.external_id", external_id))
            }
        }
    }

    /// Errors: `Validation`; `NotFound` on `id` or `parent_resource_id`;
    /// `AlreadyExists` on `external_id`; `FailedPrecondition` on
    /// `parent_resource_id` (type not nestable, other type or organization,
    /// cycle); `Aborted`.
    pub async fn update_resource(
        &self,
        context: &RequestContext,
        command: ResourceUpdate,
    ) -> Result<Written<Resource>, StoreError> {
        command.validate()?;
        let ResourceUpdate {
            id,
            display_name,
            external_id,
            parent_resource_id,
            inherits,
            etag,
        } = command;
        let registry = self.registry();

        let mut tx = begin_write!(self, context, "update_resource");

        let current = lookup::resource(tx.db(), id, "id").await?;
        lookup::check_etag(etag, current.version, "resource")?;
        let definition = definition_of(&registry, &current)?;

        let mut updated = current.clone();
        if let Some(display_name) = display_name {
            updated.display_name = display_name;
        }
        if let Some(external_id) = external_id {
            let key = external_id_key(&definition, &external_id);
            let existing = lookup::resource_by_key(tx.db(), current.organization_id, &current.resource_type, &key).await?;
            if existing.is_some_and(|other| other.id != id) {
                return Err(already_exists("external_id", &external_id));
            }
            updated.external_id = external_id;
        }
        if let Some(parent) = parent_resource_id {
            if let Some(parent_id) = parent {
                let parent = lookup::resource(tx.db(), parent_id, "parent_resource_id").await?;
                check_parent(&definition, &current.resource_type, current.organization_id, &parent, "parent_resource_id")?;
                if lookup::resource_is_within(tx.db(), parent_id, id).await? {
                    return Err(StoreError::precondition(
                        "parent_resource_id",
                        format!("resource {parent_id} is the resource itself or one of its descendants; the move would make a cycle"),
                    ));
                }
            }
            updated.parent_resource_id = parent;
        }
        if let Some(inherits) = inherits {
            updated.inherits = inherits;
        }
        if updated == current {
            return tx.commit(self, current).await;
        }

        updated.version += 1;
        updated.update_time = tx.now();
        rows::resource_row(&updated, external_id_key(&definition, &updated.external_id))
            .update(tx.db())
            .await?;
        tx.updated(&Entity::Resource(current), Entity::Resource(updated.clone()));
        tx.commit(self, updated).await
    }

    /// Deletes a resource with its grants.
    ///
    /// Errors: `NotFound` on `id`; `FailedPrecondition` on `id` while it has
    /// children; `Aborted`.
    pub async fn delete_resource(
        &self,
        context: &RequestContext,
        id: ResourceId,
        etag: Option<Etag>,
    ) -> Result<Written<()>, StoreError> {
        let mut tx = begin_write!(self, context, "delete_resource");

        let resource = lookup::resource(tx.db(), id, "id").await?;
        lookup::check_etag(etag, resource.version, "resource")?;
        let children = resources::Entity::find()
            .filter(resources::Column::ParentResourceId.eq(id.to_string()))
            .count(tx.db())
            .await?;
        if children > 0 {
            return Err(StoreError::precondition(
                "id",
                format!("the resource has {children} child resources; delete or move them first"),
            ));
        }

        let resource_grants = grants::Entity::find()
            .filter(grants::Column::ResourceId.eq(id.to_string()))
            .order_by_asc(grants::Column::SubjectKind)
            .order_by_asc(grants::Column::SubjectId)
            .all(tx.db())
            .await?;
        for row in resource_grants {
            let grant = rows::grant(row)?;
            super::grants::delete_grant(&mut tx, &grant).await?;
        }

        resources::Entity::delete_by_id(id.to_string()).exec(tx.db()).await?;
        tx.removed(&Entity::Resource(resource));

        tx.commit(self, ()).await
    }

    /// Lists an organization's resources by id.
    ///
    /// Errors: `NotFound` on `organization_id` or `parent_resource_id`;
    /// `Validation` on `resource_type` for an unknown type.
    pub async fn list_resources(
        &self,
        filter: &ResourceFilter,
        page: &PageRequest,
    ) -> Result<Page<Resource>, StoreError> {
        let ResourceFilter {
            organization_id,
            resource_type,
            parent_resource_id,
        } = filter;
        let filter_text = format!(
            "{organization_id}|{}|{}",
            resource_type.as_deref().unwrap_or_default(),
            parent_resource_id.map(|id| id.to_string()).unwrap_or_default()
        );
        let position = self.pages().position(page, LIST_KIND, &filter_text)?;
        lookup::require_organization(self.db(), *organization_id, "organization_id").await?;

        let mut select = resources::Entity::find()
            .filter(resources::Column::OrganizationId.eq(organization_id.to_string()))
            .order_by_asc(resources::Column::Id);
        if let Some(resource_type) = resource_type {
            self.registry().require("resource_type", resource_type)?;
            select = select.filter(resources::Column::ResourceType.eq(resource_type.as_str()));
        }
        if let Some(parent_id) = parent_resource_id {
            lookup::resource(self.db(), *parent_id, "parent_resource_id").await?;
            select = select.filter(resources::Column::ParentResourceId.eq(parent_id.to_string()));
        }
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            select = select.filter(resources::Column::Id.gt(after.clone()));
        }
        let found = select.limit(position.size as u64 + 1).all(self.db()).await?;
        let items = found.into_iter().map(rows::resource).collect::<Result<Vec<_>, _>>()?;

        Ok(self
            .pages()
            .page(LIST_KIND, &filter_text, position.size, items, |resource| vec![resource.id.to_string()]))
    }
}

/// The unique-key form of an external id: folded for types that compare
/// ignoring case, verbatim otherwise.
fn external_id_key(definition: &ResourceTypeDef, external_id: &str) -> String {
    if definition.case_insensitive_external_ids {
        fold(external_id)
    } else {
        external_id.to_owned()
    }
}

fn definition_of(registry: &ResourceTypeRegistry, resource: &Resource) -> Result<ResourceTypeDef, StoreError> {
    registry
        .get(&resource.resource_type)
        .map(|definition| definition.as_ref().clone())
        .ok_or_else(|| StoreError::corrupt(format!("resource {} has unknown type {}", resource.id, resource.resource_type)))
}

fn already_exists(field: &str, external_id: &str) -> StoreError {
    StoreError::AlreadyExists {
        what: "resource",
        field: field.to_owned(),
        value: external_id.to_owned(),
    }
}

/// A parent must be allowed by the type, of the same type and organization.
fn check_parent(
    definition: &ResourceTypeDef,
    resource_type: &str,
    organization_id: OrganizationId,
    parent: &Resource,
    field: &str,
) -> Result<(), StoreError> {
    if !definition.nestable {
        return Err(StoreError::precondition(
            field,
            format!("resources of type {resource_type} cannot have a parent"),
        ));
    }
    if parent.resource_type != resource_type {
        return Err(StoreError::precondition(
            field,
            format!("the parent is a {} resource; a parent must have the same type", parent.resource_type),
        ));
    }
    if parent.organization_id != organization_id {
        return Err(StoreError::precondition(field, "the parent belongs to another organization"));
    }
    Ok(())
}

/// Checks and inserts one new resource; `prefix` names its message in the
/// request (`resource` or `resources[i]`).
async fn insert_resource(
    tx: &mut WriteTransaction,
    registry: &ResourceTypeRegistry,
    organization_id: OrganizationId,
    new_resource: NewResource,
    prefix: &str,
) -> Result<Resource, StoreError> {
    let NewResource {
        resource_type,
        external_id,
        display_name,
        parent,
        inherits,
    } = new_resource;
    let definition = registry.require(&format!("{prefix}.resource_type"), &resource_type)?.as_ref().clone();

    let key = external_id_key(&definition, &external_id);
    if lookup::resource_by_key(tx.db(), organization_id, &resource_type, &key).await?.is_some() {
        return Err(already_exists(&format!("{prefix}.external_id"), &external_id));
    }

    let parent_resource_id = match parent {
        None => None,
        Some(ResourceParent::Id(parent_id)) => {
            let field = format!("{prefix}.parent_resource_id");
            let parent = lookup::resource(tx.db(), parent_id, &field).await?;
            check_parent(&definition, &resource_type, organization_id, &parent, &field)?;
            Some(parent.id)
        }
        Some(ResourceParent::ExternalId(parent_external_id)) => {
            let field = format!("{prefix}.parent_external_id");
            let parent_key = external_id_key(&definition, &parent_external_id);
            let parent = lookup::resource_by_key(tx.db(), organization_id, &resource_type, &parent_key)
                .await?
                .ok_or_else(|| StoreError::not_found("resource", field.clone(), &parent_external_id))?;
            check_parent(&definition, &resource_type, organization_id, &parent, &field)?;
            Some(parent.id)
        }
    };

    let now = tx.now();
    let resource = Resource {
        id: ResourceId::generate(),
        organization_id,
        resource_type,
        display_name: if display_name.is_empty() { external_id.clone() } else { display_name },
        external_id,
        parent_resource_id,
        inherits,
        create_time: now,
        update_time: now,
        version: 1,
    };
    resources::Entity::insert(rows::resource_row(&resource, key))
        .exec_without_returning(tx.db())
        .await?;
    tx.created(Entity::Resource(resource.clone()));
    Ok(resource)
}
