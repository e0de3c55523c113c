//! Organizations.

use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use workteams_domain::command::{NewOrganization, OrganizationLookup, OrganizationUpdate};
use workteams_domain::{
    Combining, Entity, Member, MemberRole, MemberStatus, Organization, OrganizationId, OrganizationSettings,
    ResourceTypeRegistry, ValidationError,
};

use super::write::begin_write;
use super::{Store, lookup, rows};
use crate::schema::tables::organizations;
use crate::{Page, PageRequest, RequestContext, StoreError, Written};

const LIST_KIND: &str = "organizations";

impl Store {
    /// Creates an organization, with its first owner when one is given.
    ///
    /// Errors: `Validation` (also on
    /// `settings.resource_type_defaults[i].*` for a type that is unknown or
    /// not cumulative with ordered levels); `AlreadyExists` on `name`
    /// (ignoring case); `NotFound` on `owner_user_id`.
    pub async fn create_organization(
        &self,
        context: &RequestContext,
        command: NewOrganization,
    ) -> Result<Written<Organization>, StoreError> {
        command.validate()?;
        check_settings(&self.registry(), &command.settings, "settings")?;
        let NewOrganization {
            name,
            display_name,
            settings,
            owner_user_id,
        } = command;

        let mut tx = begin_write!(self, context, "create_organization");
        let now = tx.now();

        check_name_free(tx.db(), &name, None).await?;
        if let Some(owner) = owner_user_id {
            lookup::user(tx.db(), owner, "owner_user_id").await?;
        }

        let organization = Organization {
            id: OrganizationId::generate(),
            display_name: if display_name.is_empty() { name.clone() } else { display_name },
            name,
            settings,
            create_time: now,
            update_time: now,
            version: 1,
        };
        organizations::Entity::insert(rows::organization_row(&organization)?)
            .exec_without_returning(tx.db())
            .await?;
        tx.created(Entity::Organization(organization.clone()));

        if let Some(owner) = owner_user_id {
            let member = Member {
                organization_id: organization.id,
                user_id: owner,
                role: MemberRole::Owner,
                status: MemberStatus::Active,
                create_time: now,
                update_time: now,
                version: 1,
            };
            crate::schema::tables::members::Entity::insert(rows::member_row(&member))
                .exec_without_returning(tx.db())
                .await?;
            tx.created(Entity::Member(member));
        }

        tx.commit(self, organization).await
    }

    /// Errors: `NotFound` on `id` or `name`.
    pub async fn get_organization(&self, lookup: &OrganizationLookup) -> Result<Organization, StoreError> {
        match lookup {
            OrganizationLookup::Id(id) => lookup::organization(self.db(), *id, "id").await,
            OrganizationLookup::Name(name) => {
                let row = organizations::Entity::find()
                    .filter(organizations::Column::NameKey.eq(workteams_domain::text::fold(name)))
                    .one(self.db())
                    .await?
                    .ok_or_else(|| StoreError::not_found("organization", "name", name))?;
                rows::organization(row)
            }
        }
    }

    /// Changes the display name and/or settings.
    ///
    /// Errors: `Validation` (settings as in create); `NotFound` on `id`;
    /// `Aborted` on an etag mismatch.
    pub async fn update_organization(
        &self,
        context: &RequestContext,
        command: OrganizationUpdate,
    ) -> Result<Written<Organization>, StoreError> {
        command.validate()?;
        if let Some(settings) = &command.settings {
            check_settings(&self.registry(), settings, "settings")?;
        }
        let OrganizationUpdate {
            id,
            display_name,
            settings,
            etag,
        } = command;

        let mut tx = begin_write!(self, context, "update_organization");

        let current = lookup::organization(tx.db(), id, "id").await?;
        lookup::check_etag(etag, current.version, "organization")?;

        let mut updated = current.clone();
        if let Some(display_name) = display_name {
            updated.display_name = if display_name.is_empty() { updated.name.clone() } else { display_name };
        }
        if let Some(settings) = settings {
            updated.settings = settings;
        }
        if updated == current {
            return tx.commit(self, current).await;
        }

        updated.version += 1;
        updated.update_time = tx.now();
        rows::organization_row(&updated)?.update(tx.db()).await?;
        tx.updated(&Entity::Organization(current), Entity::Organization(updated.clone()));
        tx.commit(self, updated).await
    }

    /// Lists organizations by id.
    pub async fn list_organizations(&self, page: &PageRequest) -> Result<Page<Organization>, StoreError> {
        let position = self.pages().position(page, LIST_KIND, "")?;

        let mut query = organizations::Entity::find().order_by_asc(organizations::Column::Id);
        if let Some(after) = position.after.as_ref().and_then(|key| key.first()) {
            query = query.filter(organizations::Column::Id.gt(after.clone()));
        }
        let found = query.limit(position.size as u64 + 1).all(self.db()).await?;
        let items = found.into_iter().map(rows::organization).collect::<Result<Vec<_>, _>>()?;

        Ok(self
            .pages()
            .page(LIST_KIND, "", position.size, items, |organization| vec![organization.id.to_string()]))
    }
}

/// Fails with `AlreadyExists` on `name` when another organization has the
/// name, ignoring case.
async fn check_name_free(
    db: &impl sea_orm::ConnectionTrait,
    name: &str,
    except: Option<OrganizationId>,
) -> Result<(), StoreError> {
    let existing = organizations::Entity::find()
        .filter(organizations::Column::NameKey.eq(workteams_domain::text::fold(name)))
        .one(db)
        .await?;
    match existing {
        Some(row) if Some(row.id.as_str()) != except.map(|id| id.to_string()).as_deref() => {
            Err(StoreError::AlreadyExists {
                what: "organization",
                field: "name".to_owned(),
                value: name.to_owned(),
            })
        }
        _ => Ok(()),
    }
}

/// Checks each default against the types in force: the type must exist and
/// be cumulative with ordered levels, and the base level must be one of its
/// levels.
fn check_settings(
    registry: &ResourceTypeRegistry,
    settings: &OrganizationSettings,
    field: &str,
) -> Result<(), ValidationError> {
    for (index, default) in settings.resource_type_defaults.iter().enumerate() {
        let entry = format!("{field}.resource_type_defaults[{index}]");
        let definition = registry.require(&format!("{entry}.resource_type"), &default.resource_type)?;
        if !definition.ordered_levels || definition.combining != Combining::Cumulative {
            return Err(ValidationError::new(
                format!("{entry}.resource_type"),
                &default.resource_type,
                "defaults apply only to cumulative resource types with ordered levels",
            ));
        }
        if let Some(level) = &default.base_level
            && definition.permission_index(level).is_none()
        {
            return Err(ValidationError::new(
                format!("{entry}.base_level"),
                level,
                format!(
                    "{} has no level {level:?}; valid: {}",
                    definition.name,
                    definition.permissions.join(", ")
                ),
            ));
        }
    }
    Ok(())
}
