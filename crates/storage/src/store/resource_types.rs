//! The resource types in force.

use std::collections::BTreeMap;

use sea_orm::{ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use workteams_domain::{ConsistencyToken, Entity, ResourceTypeDef, ResourceTypeRegistry};

use super::{Begun, Store};
use crate::schema::tables::{resource_types, resources};
use crate::{RequestContext, StoreError};

impl Store {
    /// The resource types in force, by name.
    pub fn list_resource_types(&self) -> Vec<ResourceTypeDef> {
        self.registry().iter().map(|definition| definition.as_ref().clone()).collect()
    }

    /// The registry of the types in force (cheap to clone).
    pub fn resource_types(&self) -> ResourceTypeRegistry {
        self.registry()
    }

    /// Stores the types of `registry` as the types in force, recording a
    /// change for each type that was added, changed or removed. Run at
    /// start-up.
    ///
    /// Errors: `FailedPrecondition` on `resource_types` when a removed type
    /// still has resources.
    pub async fn sync_resource_types(
        &self,
        context: &RequestContext,
        registry: &ResourceTypeRegistry,
    ) -> Result<ConsistencyToken, StoreError> {
        let mut tx = match self.begin_write::<()>(context, "sync_resource_types").await? {
            Begun::Replayed(written) => return Ok(written.token),
            Begun::Started(transaction) => *transaction,
        };

        let stored: BTreeMap<String, ResourceTypeDef> = resource_types::Entity::find()
            .all(tx.db())
            .await?
            .into_iter()
            .map(|row| Ok((row.name, serde_json::from_str(&row.definition)?)))
            .collect::<Result<_, StoreError>>()?;

        for definition in registry.iter() {
            let row = resource_types::ActiveModel {
                name: Set(definition.name.clone()),
                definition: Set(serde_json::to_string(definition.as_ref())?),
            };
            let stored_definition = Entity::ResourceType(definition.as_ref().clone());
            match stored.get(&definition.name) {
                Some(current) if current == definition.as_ref() => continue,
                Some(current) => {
                    // NOTE: existing grants are not checked against a changed
                    // definition; a removed permission stays in their names.
                    row.update(tx.db()).await?;
                    tx.updated(&Entity::ResourceType(current.clone()), stored_definition);
                }
                None => {
                    resource_types::Entity::insert(row).exec_without_returning(tx.db()).await?;
                    tx.created(stored_definition);
                }
            }
            tracing::info!(resource_type = %definition.name, "resource type stored");
        }

        for (name, definition) in stored.iter().filter(|(name, _)| registry.get(name).is_none()) {
            let in_use = resources::Entity::find()
                .filter(resources::Column::ResourceType.eq(name.as_str()))
                .count(tx.db())
                .await?;
            if in_use > 0 {
                return Err(StoreError::precondition(
                    "resource_types",
                    format!(
                        "resource type {name:?} is no longer configured but {in_use} resources still use it; \
                         keep the type or delete its resources first"
                    ),
                ));
            }
            resource_types::Entity::delete_by_id(name.clone()).exec(tx.db()).await?;
            tracing::info!(resource_type = %name, "resource type removed");
            tx.removed(&Entity::ResourceType(definition.clone()));
        }

        let written = tx.commit(self, ()).await?;
        self.replace_registry(registry.clone());
        Ok(written.token)
    }
}
