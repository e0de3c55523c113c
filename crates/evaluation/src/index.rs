//! The in-memory index the authorization sidecar evaluates against.
//!
//! Entities get dense numeric handles on first sight, and their data sits in
//! chunked vectors and sharded hash tables whose parts are shared between
//! clones and copied only when written. A writer therefore clones the
//! published index, applies a change batch (copying the few parts it
//! touches), and publishes the result, while readers keep using the old one.

mod apply;
mod evaluate;
mod list;
mod slots;
mod store;

use std::sync::Arc;

use chrono::{DateTime, Utc};
use workteams_domain::{
    Change, ChangeBatch, Entity, EntityKey, OrganizationId, PermissionSet, ResourceId,
    ResourceTypeDef, ResourceTypeRegistry, Revision, TeamId, UserId,
};

use self::slots::{OrganizationSlot, ResourceSlot, TeamSlot, TypeTable, UserSlot};
use self::store::{ChildMap, ChunkedVec, HashIndex, StringArena, folded, hash_of};

use crate::access::{
    AccessEntry, AccessFilter, AccessPage, Evaluation, IndexStats, MemberView, OrganizationView,
    PageRequest, ResourceView, UserView,
};

/// The access index: every entity that matters for access, at one revision.
///
/// Cloning is cheap (storage is shared copy-on-write), so a writer clones,
/// applies a batch and publishes the clone. All reads take `&self`.
#[derive(Debug, Clone)]
pub struct Index {
    revision: Revision,
    registry: ResourceTypeRegistry,
    types: Arc<TypeTable>,
    organizations: ChunkedVec<OrganizationSlot>,
    users: ChunkedVec<UserSlot>,
    teams: ChunkedVec<TeamSlot>,
    resources: ChunkedVec<ResourceSlot>,
    /// Logins of users, by user handle.
    logins: StringArena,
    /// E-mail addresses of users, by user handle; empty for none.
    emails: StringArena,
    /// External ids of resources, by resource handle.
    external_ids: StringArena,
    /// Children of resources, by parent handle.
    resource_children: ChildMap,
    organization_ids: HashIndex,
    user_ids: HashIndex,
    team_ids: HashIndex,
    resource_ids: HashIndex,
    /// Folded organization names.
    organization_names: HashIndex,
    /// Folded logins.
    user_logins: HashIndex,
    /// Folded e-mail addresses.
    user_emails: HashIndex,
    /// (organization, type, external id folded for case-insensitive types).
    resource_keys: HashIndex,
    counts: IndexStats,
}

/// Tags that keep the hashes of different string lookups apart.
#[derive(Hash)]
enum LookupKind {
    OrganizationName,
    Login,
    Email,
}

impl Index {
    /// Creates an empty index at revision 0 with the resource types in `types`.
    pub fn new(types: ResourceTypeRegistry) -> Self {
        let mut table = TypeTable::default();
        for definition in types.iter() {
            let handle = table.intern(&definition.name);
            table.set_definition(handle, Some(Arc::clone(definition)));
        }
        Self {
            revision: Revision::ZERO,
            registry: types,
            types: Arc::new(table),
            organizations: ChunkedVec::default(),
            users: ChunkedVec::default(),
            teams: ChunkedVec::default(),
            resources: ChunkedVec::default(),
            logins: StringArena::default(),
            emails: StringArena::default(),
            external_ids: StringArena::default(),
            resource_children: ChildMap::default(),
            organization_ids: HashIndex::default(),
            user_ids: HashIndex::default(),
            team_ids: HashIndex::default(),
            resource_ids: HashIndex::default(),
            organization_names: HashIndex::default(),
            user_logins: HashIndex::default(),
            user_emails: HashIndex::default(),
            resource_keys: HashIndex::default(),
            // `stats` counts resource types from the registry.
            counts: IndexStats::default(),
        }
    }

    /// Returns the revision of the last applied batch, or the one set after
    /// loading a snapshot.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    pub fn set_revision(&mut self, revision: Revision) {
        self.revision = revision;
    }

    /// Inserts or replaces one entity, as when loading a snapshot. Entities
    /// may arrive in any order: a grant or membership that names a missing
    /// resource, team or user is kept and starts counting when that entity
    /// arrives.
    pub fn apply_entity(&mut self, entity: Entity) {
        self.upsert(entity);
    }

    /// Removes one entity. Removing an entity that is not there does nothing.
    pub fn remove_entity(&mut self, key: &EntityKey) {
        self.delete(key);
    }

    /// Applies one change.
    pub fn apply_change(&mut self, change: &Change) {
        match change {
            Change::Upserted(entity) => self.upsert(entity.clone()),
            Change::Deleted { key, .. } => self.delete(key),
        }
    }

    /// Applies the changes of one committed transaction in order and moves
    /// the index to the batch's revision.
    pub fn apply_batch(&mut self, batch: &ChangeBatch) {
        for change in &batch.changes {
            self.apply_change(change);
        }
        self.revision = batch.revision;
    }

    /// Returns the definition of a resource type, if it is defined.
    pub fn resource_type(&self, name: &str) -> Option<&Arc<ResourceTypeDef>> {
        self.registry.get(name)
    }

    /// Returns the resource types in force.
    pub fn resource_types(&self) -> &ResourceTypeRegistry {
        &self.registry
    }

    pub fn organization(&self, id: OrganizationId) -> Option<OrganizationView<'_>> {
        let slot = self.organizations.get(self.organization_handle(id)?);
        slot.present.then_some(OrganizationView {
            id: slot.id,
            name: &slot.name,
        })
    }

    /// Finds an organization by name, ignoring case.
    pub fn organization_by_name(&self, name: &str) -> Option<OrganizationId> {
        let name = folded(name);
        let hash = hash_of((LookupKind::OrganizationName, name.as_ref()));
        self.organization_names
            .find(hash, |handle| {
                let slot = self.organizations.get(handle);
                slot.present && folded(&slot.name) == name
            })
            .map(|handle| self.organizations.get(handle).id)
    }

    pub fn user(&self, id: UserId) -> Option<UserView<'_>> {
        let handle = self.user_handle(id)?;
        let slot = self.users.get(handle);
        let email = self.emails.get(handle);
        slot.present.then_some(UserView {
            id: slot.id,
            login: self.logins.get(handle),
            email: (!email.is_empty()).then_some(email),
        })
    }

    /// Finds a user by login, ignoring case.
    pub fn user_by_login(&self, login: &str) -> Option<UserId> {
        let login = folded(login);
        let hash = hash_of((LookupKind::Login, login.as_ref()));
        self.user_logins
            .find(hash, |handle| {
                self.users.get(handle).present && folded(self.logins.get(handle)) == login
            })
            .map(|handle| self.users.get(handle).id)
    }

    /// Finds a user by e-mail address, ignoring case.
    pub fn user_by_email(&self, email: &str) -> Option<UserId> {
        let email = folded(email);
        let hash = hash_of((LookupKind::Email, email.as_ref()));
        self.user_emails
            .find(hash, |handle| {
                self.users.get(handle).present && folded(self.emails.get(handle)) == email
            })
            .map(|handle| self.users.get(handle).id)
    }

    /// Returns a user's membership of an organization.
    pub fn member(&self, organization: OrganizationId, user: UserId) -> Option<MemberView> {
        let organization_handle = self.organization_handle(organization)?;
        let membership = self
            .users
            .get(self.user_handle(user)?)
            .organization(organization_handle)?;
        Some(MemberView {
            organization_id: organization,
            user_id: user,
            role: membership.role,
            status: membership.status,
        })
    }

    pub fn resource(&self, id: ResourceId) -> Option<ResourceView<'_>> {
        let handle = self.resource_handle(id)?;
        let slot = self.resources.get(handle);
        if !slot.present {
            return None;
        }
        Some(ResourceView {
            id: slot.id,
            organization_id: self.organizations.get(slot.organization).id,
            resource_type: self.types.name(slot.resource_type),
            definition: self.types.definition(slot.resource_type),
            external_id: self.external_ids.get(handle),
            parent_resource_id: slot.parent().map(|parent| self.resources.get(parent).id),
            inherits: slot.inherits,
        })
    }

    /// Finds a resource by its external id, ignoring case for types whose
    /// external ids are case-insensitive.
    pub fn resource_by_key(
        &self,
        organization: OrganizationId,
        resource_type: &str,
        external_id: &str,
    ) -> Option<ResourceId> {
        let organization = self.organization_handle(organization)?;
        let resource_type = self.types.handle(resource_type)?;
        let case_insensitive = self.types.is_case_insensitive(resource_type);
        let hash =
            apply::resource_key_hash_of(&self.types, organization, resource_type, external_id);
        let external_id = if case_insensitive {
            folded(external_id)
        } else {
            external_id.into()
        };
        self.resource_keys
            .find(hash, |handle| {
                let slot = self.resources.get(handle);
                slot.present
                    && slot.organization == organization
                    && slot.resource_type == resource_type
                    && if case_insensitive {
                        folded(self.external_ids.get(handle)) == external_id
                    } else {
                        self.external_ids.get(handle) == external_id
                    }
            })
            .map(|handle| self.resources.get(handle).id)
    }

    /// Evaluates what `user` may do on `resource` at `now`, with the reasons.
    pub fn evaluate(&self, user: UserId, resource: ResourceId, now: DateTime<Utc>) -> Evaluation {
        self.evaluate_handles(self.user_handle(user), self.resource_handle(resource), now)
    }

    /// Computes the permissions `user` holds on `resource` at `now`, without
    /// reasons and without allocating.
    pub fn effective_permissions(
        &self,
        user: UserId,
        resource: ResourceId,
        now: DateTime<Utc>,
    ) -> PermissionSet {
        let (Some(user), Some(resource)) = (self.user_handle(user), self.resource_handle(resource))
        else {
            return PermissionSet::EMPTY;
        };
        self.permissions_of(user, resource, store::instant(now), PermissionSet(u64::MAX))
    }

    /// Checks whether `user` holds the permission with index `permission_index` (in
    /// the resource type's permission list) on `resource` at `now`. The hot
    /// path: it allocates nothing (unless the user is in more than 32 teams)
    /// and stops as soon as the answer is known.
    pub fn check(
        &self,
        user: UserId,
        resource: ResourceId,
        permission_index: usize,
        now: DateTime<Utc>,
    ) -> bool {
        if permission_index >= 64 {
            return false;
        }
        let (Some(user), Some(resource)) = (self.user_handle(user), self.resource_handle(resource))
        else {
            return false;
        };
        let wanted = PermissionSet::single(permission_index);
        self.permissions_of(user, resource, store::instant(now), wanted)
            .contains(permission_index)
    }

    /// Lists every resource on which `user` holds at least one permission at
    /// `now`, each once, sorted by resource id, with what
    /// [`evaluate`](Self::evaluate) returns for it.
    pub fn list_user_access(
        &self,
        user: UserId,
        filter: &AccessFilter,
        now: DateTime<Utc>,
    ) -> Vec<AccessEntry> {
        self.list_user_access_page(user, filter, now, PageRequest::ALL)
            .entries
    }

    /// Lists one page of [`list_user_access`](Self::list_user_access). A page
    /// evaluates only the candidates it needs, so paging through a long
    /// listing does not evaluate it again for every page.
    pub fn list_user_access_page(
        &self,
        user: UserId,
        filter: &AccessFilter,
        now: DateTime<Utc>,
        page: PageRequest<ResourceId>,
    ) -> AccessPage {
        match self.user_handle(user) {
            Some(user) => self.list_for_user(user, filter, now, page),
            None => AccessPage::default(),
        }
    }

    /// Lists every user who holds at least one permission on `resource` at `now`,
    /// each once, sorted by user id, with what [`evaluate`](Self::evaluate)
    /// returns for them.
    pub fn list_resource_access(
        &self,
        resource: ResourceId,
        now: DateTime<Utc>,
    ) -> Vec<AccessEntry> {
        self.list_resource_access_page(resource, now, PageRequest::ALL)
            .entries
    }

    /// Lists one page of [`list_resource_access`](Self::list_resource_access).
    pub fn list_resource_access_page(
        &self,
        resource: ResourceId,
        now: DateTime<Utc>,
        page: PageRequest<UserId>,
    ) -> AccessPage {
        match self.resource_handle(resource) {
            Some(resource) => self.list_for_resource(resource, now, page),
            None => AccessPage::default(),
        }
    }

    /// Counts the entities present.
    pub fn stats(&self) -> IndexStats {
        IndexStats {
            resource_types: self.registry.iter().count(),
            ..self.counts
        }
    }

    fn organization_handle(&self, id: OrganizationId) -> Option<u32> {
        self.organization_ids.find(hash_of(id), |handle| {
            self.organizations.get(handle).id == id
        })
    }

    fn user_handle(&self, id: UserId) -> Option<u32> {
        self.user_ids
            .find(hash_of(id), |handle| self.users.get(handle).id == id)
    }

    fn team_handle(&self, id: TeamId) -> Option<u32> {
        self.team_ids
            .find(hash_of(id), |handle| self.teams.get(handle).id == id)
    }

    fn resource_handle(&self, id: ResourceId) -> Option<u32> {
        self.resource_ids
            .find(hash_of(id), |handle| self.resources.get(handle).id == id)
    }
}
