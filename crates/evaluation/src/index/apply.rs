//! Applying upserted entities and deletions to the index.
//!
//! Every entity gets a handle the first time anything names it, and a
//! `present` flag records whether the entity itself has arrived. Grants and
//! memberships are stored on their handles regardless, and evaluation
//! ignores those whose user, team or resource is not present.

use std::collections::HashSet;
use std::sync::Arc;

use foldhash::fast::FixedState;
use workteams_domain::{
    Entity, EntityKey, Grant, GrantKey, Member, Membership, Organization, OrganizationId, Resource,
    ResourceId, ResourceTypeDef, ResourceTypeDefault, Subject, Team, TeamId, User, UserId,
};

use super::slots::{
    GrantSlot, NO_ACCESS, OrganizationMembership, OrganizationSlot, ResolvedDefault, ResourceSlot,
    TEAM_SUBJECT, TeamMembership, TeamSlot, TypeTable, UserSlot, resolve_default,
};
use smallvec::SmallVec;

use super::store::{SmallList, expiry, folded, hash_of};
use super::{Index, LookupKind};

impl Index {
    pub(super) fn upsert(&mut self, entity: Entity) {
        match entity {
            Entity::Organization(organization) => self.upsert_organization(organization),
            Entity::User(user) => self.upsert_user(user),
            Entity::Member(member) => self.upsert_member(member),
            Entity::Team(team) => self.upsert_team(team),
            Entity::Membership(membership) => self.upsert_membership(membership),
            Entity::Resource(resource) => self.upsert_resource(resource),
            Entity::Grant(grant) => self.upsert_grant(grant),
            // An invitation gives no access; accepting it creates members
            // and memberships, which arrive as their own changes.
            Entity::Invitation(_) => {}
            Entity::ResourceType(definition) => self.upsert_resource_type(definition),
        }
    }

    pub(super) fn delete(&mut self, key: &EntityKey) {
        match key {
            EntityKey::Organization(id) => self.delete_organization(*id),
            EntityKey::User(id) => self.delete_user(*id),
            EntityKey::Member {
                organization_id,
                user_id,
            } => self.delete_member(*organization_id, *user_id),
            EntityKey::Team(id) => self.delete_team(*id),
            EntityKey::Membership { team_id, user_id } => {
                self.delete_membership(*team_id, *user_id)
            }
            EntityKey::Resource(id) => self.delete_resource(*id),
            EntityKey::Grant(key) => self.delete_grant(*key),
            EntityKey::Invitation(_) => {}
            EntityKey::ResourceType(name) => self.delete_resource_type(name),
        }
    }

    fn intern_organization(&mut self, id: OrganizationId) -> u32 {
        if let Some(handle) = self.organization_handle(id) {
            return handle;
        }
        let handle = self.organizations.push(OrganizationSlot::absent(id));
        let organizations = &self.organizations;
        self.organization_ids.insert(hash_of(id), handle, |stored| {
            hash_of(organizations.get(stored).id)
        });
        handle
    }

    fn intern_user(&mut self, id: UserId) -> u32 {
        if let Some(handle) = self.user_handle(id) {
            return handle;
        }
        let handle = self.users.push(UserSlot::absent(id));
        let users = &self.users;
        self.user_ids
            .insert(hash_of(id), handle, |stored| hash_of(users.get(stored).id));
        handle
    }

    fn intern_team(&mut self, id: TeamId) -> u32 {
        if let Some(handle) = self.team_handle(id) {
            return handle;
        }
        let handle = self.teams.push(TeamSlot::absent(id));
        let teams = &self.teams;
        self.team_ids
            .insert(hash_of(id), handle, |stored| hash_of(teams.get(stored).id));
        handle
    }

    fn intern_resource(&mut self, id: ResourceId) -> u32 {
        if let Some(handle) = self.resource_handle(id) {
            return handle;
        }
        let handle = self.resources.push(ResourceSlot::absent(id));
        let resources = &self.resources;
        self.resource_ids.insert(hash_of(id), handle, |stored| {
            hash_of(resources.get(stored).id)
        });
        handle
    }

    fn intern_type(&mut self, name: &str) -> u16 {
        match self.types.handle(name) {
            Some(handle) => handle,
            None => Arc::make_mut(&mut self.types).intern(name),
        }
    }

    fn intern_permission_names(&mut self, names: &[String]) -> u32 {
        match self.types.names_handle(names) {
            Some(handle) => handle,
            None => Arc::make_mut(&mut self.types).intern_names(names),
        }
    }

    fn upsert_organization(&mut self, organization: Organization) {
        let Organization {
            id,
            name,
            display_name: _,
            settings,
            create_time: _,
            update_time: _,
            version: _,
        } = organization;
        let handle = self.intern_organization(id);

        // A lookup entry is removed while the slot still contains the name it
        // was hashed from, and added once the slot contains the new one.
        let slot = self.organizations.get(handle);
        let was_present = slot.present;
        if was_present {
            self.organization_names
                .remove(organization_name_hash(&slot.name), handle);
        }

        let defaults: Arc<[ResourceTypeDefault]> = Arc::from(settings.resource_type_defaults);
        let resolved_defaults = self.resolve_defaults(&defaults);
        let slot = self.organizations.get_mut(handle);
        slot.present = true;
        slot.name = name.into_boxed_str();
        slot.defaults = defaults;
        slot.resolved_defaults = resolved_defaults;
        if !was_present {
            self.counts.organizations += 1;
        }

        let organizations = &self.organizations;
        self.organization_names.insert(
            organization_name_hash(&organizations.get(handle).name),
            handle,
            |stored| organization_name_hash(&organizations.get(stored).name),
        );
    }

    fn delete_organization(&mut self, id: OrganizationId) {
        let Some(handle) = self.organization_handle(id) else {
            return;
        };
        let slot = self.organizations.get(handle);
        if !slot.present {
            return;
        }
        self.organization_names
            .remove(organization_name_hash(&slot.name), handle);

        let slot = self.organizations.get_mut(handle);
        slot.present = false;
        slot.name = Box::from("");
        self.counts.organizations -= 1;
    }

    fn resolve_defaults(&self, defaults: &[ResourceTypeDefault]) -> SmallList<ResolvedDefault> {
        let resolved = defaults
            .iter()
            .filter_map(|default| {
                let handle = self.types.handle(&default.resource_type)?;
                let definition = self.types.definition(handle)?;
                resolve_default(definition, handle, default)
            })
            .collect();
        SmallList::from_vec(resolved)
    }

    fn upsert_user(&mut self, user: User) {
        let User {
            id,
            login,
            email,
            display_name: _,
            create_time: _,
            update_time: _,
            version: _,
        } = user;
        let handle = self.intern_user(id);

        let was_present = self.users.get(handle).present;
        if was_present {
            self.remove_user_lookups(handle);
        }

        self.users.get_mut(handle).present = true;
        self.logins.set(handle, &login);
        // A valid address is never empty, so empty stands for none.
        self.emails.set(handle, email.as_deref().unwrap_or(""));
        if !was_present {
            self.counts.users += 1;
        }

        let logins = &self.logins;
        self.user_logins
            .insert(login_hash(&login), handle, |stored| {
                login_hash(logins.get(stored))
            });
        if let Some(email) = &email {
            let emails = &self.emails;
            self.user_emails
                .insert(email_hash(email), handle, |stored| {
                    email_hash(emails.get(stored))
                });
        }
    }

    fn remove_user_lookups(&mut self, handle: u32) {
        self.user_logins
            .remove(login_hash(self.logins.get(handle)), handle);
        let email = self.emails.get(handle);
        if !email.is_empty() {
            self.user_emails.remove(email_hash(email), handle);
        }
    }

    fn delete_user(&mut self, id: UserId) {
        let Some(handle) = self.user_handle(id) else {
            return;
        };
        if !self.users.get(handle).present {
            return;
        }
        self.remove_user_lookups(handle);

        self.users.get_mut(handle).present = false;
        self.logins.set(handle, "");
        self.emails.set(handle, "");
        self.counts.users -= 1;
    }

    fn upsert_member(&mut self, member: Member) {
        let Member {
            organization_id,
            user_id,
            role,
            status,
            create_time: _,
            update_time: _,
            version: _,
        } = member;
        let organization = self.intern_organization(organization_id);
        let user = self.intern_user(user_id);
        let entry = OrganizationMembership {
            organization,
            role,
            status,
        };

        let mut is_new = true;
        let memberships = &mut self.users.get_mut(user).organizations;
        match memberships
            .iter_mut()
            .find(|stored| stored.organization == organization)
        {
            Some(stored) => {
                *stored = entry;
                is_new = false;
            }
            None => memberships.push(entry),
        }

        if is_new {
            self.organizations
                .get_mut(organization)
                .members
                .insert(user);
            self.counts.members += 1;
        }
    }

    fn delete_member(&mut self, organization_id: OrganizationId, user_id: UserId) {
        let (Some(organization), Some(user)) = (
            self.organization_handle(organization_id),
            self.user_handle(user_id),
        ) else {
            return;
        };
        if self.users.get(user).organization(organization).is_none() {
            return;
        }
        self.users
            .get_mut(user)
            .organizations
            .retain(|stored| stored.organization != organization);
        self.organizations
            .get_mut(organization)
            .members
            .remove(user);
        self.counts.members -= 1;
    }

    fn upsert_team(&mut self, team: Team) {
        let Team {
            id,
            organization_id,
            name: _,
            description: _,
            color: _,
            parent_team_id,
            leader_user_ids: _,
            organization_role,
            create_time: _,
            update_time: _,
            version: _,
        } = team;
        let handle = self.intern_team(id);
        let organization = self.intern_organization(organization_id);
        let parent = parent_team_id.map(|parent| self.intern_team(parent));

        let slot = self.teams.get(handle);
        let was_present = slot.present;
        let old_parent = slot.parent;
        if old_parent != parent {
            if let Some(old_parent) = old_parent {
                self.teams.get_mut(old_parent).children.remove(handle);
            }
            if let Some(parent) = parent {
                self.teams.get_mut(parent).children.insert(handle);
            }
        }

        let slot = self.teams.get_mut(handle);
        slot.present = true;
        slot.organization = organization;
        slot.organization_role = organization_role;
        slot.parent = parent;
        if !was_present {
            self.counts.teams += 1;
        }
        if !was_present || old_parent != parent {
            self.refresh_ancestors(handle);
        }
    }

    fn delete_team(&mut self, id: TeamId) {
        let Some(handle) = self.team_handle(id) else {
            return;
        };
        let slot = self.teams.get(handle);
        if !slot.present {
            return;
        }
        if let Some(parent) = slot.parent {
            self.teams.get_mut(parent).children.remove(handle);
        }

        let slot = self.teams.get_mut(handle);
        slot.present = false;
        slot.parent = None;
        self.counts.teams -= 1;
        self.refresh_ancestors(handle);
    }

    /// Recomputes the ancestor lists of `root` and every team below it.
    ///
    /// Each list is rebuilt by walking parent links rather than from the
    /// parent's list, so the result does not depend on the order of the
    /// walk. A cycle that exists only midway through a batch, such as a team
    /// moved under its child before the child moves away, ends the walk
    /// instead of looping.
    fn refresh_ancestors(&mut self, root: u32) {
        let mut pending = vec![root];
        let mut visited: HashSet<u32, FixedState> = HashSet::default();
        while let Some(team) = pending.pop() {
            if !visited.insert(team) {
                continue;
            }
            let chain = self.ancestor_chain(team);
            if self.teams.get(team).ancestors.as_slice() != chain.as_slice() {
                self.teams.get_mut(team).ancestors = SmallVec::from_vec(chain);
            }
            self.teams
                .get(team)
                .children
                .for_each(|child| pending.push(child));
        }
    }

    fn ancestor_chain(&self, team: u32) -> Vec<u32> {
        let mut chain = Vec::new();
        let slot = self.teams.get(team);
        if !slot.present {
            return chain;
        }
        let mut next = slot.parent;
        while let Some(parent) = next {
            let parent_slot = self.teams.get(parent);
            if parent == team || chain.contains(&parent) || !parent_slot.present {
                break;
            }
            chain.push(parent);
            next = parent_slot.parent;
        }
        chain
    }

    fn upsert_membership(&mut self, membership: Membership) {
        let Membership {
            team_id,
            user_id,
            organization_id: _,
            added_by: _,
            add_time: _,
            expire_time,
        } = membership;
        let team = self.intern_team(team_id);
        let user = self.intern_user(user_id);
        let entry = TeamMembership {
            team,
            expire: expiry(expire_time),
        };

        let mut is_new = true;
        let memberships = &mut self.users.get_mut(user).teams;
        match memberships.iter_mut().find(|stored| stored.team == team) {
            Some(stored) => {
                *stored = entry;
                is_new = false;
            }
            None => memberships.push(entry),
        }

        if is_new {
            self.teams.get_mut(team).members.insert(user);
            self.counts.memberships += 1;
        }
    }

    fn delete_membership(&mut self, team_id: TeamId, user_id: UserId) {
        let (Some(team), Some(user)) = (self.team_handle(team_id), self.user_handle(user_id))
        else {
            return;
        };
        if !self
            .users
            .get(user)
            .teams
            .iter()
            .any(|stored| stored.team == team)
        {
            return;
        }
        self.users
            .get_mut(user)
            .teams
            .retain(|stored| stored.team != team);
        self.teams.get_mut(team).members.remove(user);
        self.counts.memberships -= 1;
    }

    fn upsert_resource(&mut self, resource: Resource) {
        let Resource {
            id,
            organization_id,
            resource_type,
            external_id,
            display_name: _,
            parent_resource_id,
            inherits,
            create_time: _,
            update_time: _,
            version: _,
        } = resource;
        let handle = self.intern_resource(id);
        let organization = self.intern_organization(organization_id);
        let resource_type = self.intern_type(&resource_type);
        let parent = parent_resource_id.map(|parent| self.intern_resource(parent));

        let slot = self.resources.get(handle);
        let was_present = slot.present;
        let old_parent = slot.parent();
        let old_organization = slot.organization;
        let old_type = slot.resource_type;
        let key_changed = !was_present
            || old_organization != organization
            || old_type != resource_type
            || self.external_ids.get(handle) != external_id;
        let moved = !was_present || old_organization != organization || old_type != resource_type;

        if was_present && key_changed {
            let old_key = self.resource_key_hash(handle);
            self.resource_keys.remove(old_key, handle);
        }
        if moved {
            if was_present {
                self.organizations
                    .get_mut(old_organization)
                    .resources_of_type_mut(old_type)
                    .remove(handle);
            }
            self.organizations
                .get_mut(organization)
                .resources_of_type_mut(resource_type)
                .insert(handle);
        }
        if old_parent != parent {
            if let Some(old_parent) = old_parent {
                self.resource_children.remove(old_parent, handle);
            }
            if let Some(parent) = parent {
                self.resource_children.insert(parent, handle);
            }
        }

        let slot = self.resources.get_mut(handle);
        slot.present = true;
        slot.organization = organization;
        slot.resource_type = resource_type;
        slot.set_parent(parent);
        slot.inherits = inherits;
        self.external_ids.set(handle, &external_id);
        if !was_present {
            self.counts.resources += 1;
        }
        if key_changed {
            self.insert_resource_key(handle);
        }
    }

    fn insert_resource_key(&mut self, handle: u32) {
        let (types, resources, external_ids) = (&self.types, &self.resources, &self.external_ids);
        let hash_of_handle = |stored: u32| {
            let slot = resources.get(stored);
            resource_key_hash_of(
                types,
                slot.organization,
                slot.resource_type,
                external_ids.get(stored),
            )
        };
        self.resource_keys
            .insert(hash_of_handle(handle), handle, hash_of_handle);
    }

    /// Computes the lookup hash of a resource as it is stored now.
    fn resource_key_hash(&self, handle: u32) -> u64 {
        let slot = self.resources.get(handle);
        resource_key_hash_of(
            &self.types,
            slot.organization,
            slot.resource_type,
            self.external_ids.get(handle),
        )
    }

    fn delete_resource(&mut self, id: ResourceId) {
        let Some(handle) = self.resource_handle(id) else {
            return;
        };
        let slot = self.resources.get(handle);
        if !slot.present {
            return;
        }
        let (organization, resource_type, parent) =
            (slot.organization, slot.resource_type, slot.parent());

        self.resource_keys
            .remove(self.resource_key_hash(handle), handle);
        self.organizations
            .get_mut(organization)
            .resources_of_type_mut(resource_type)
            .remove(handle);
        if let Some(parent) = parent {
            self.resource_children.remove(parent, handle);
        }

        let slot = self.resources.get_mut(handle);
        slot.present = false;
        slot.set_parent(None);
        self.counts.resources -= 1;
    }

    fn subject_key(&mut self, subject: Subject) -> u32 {
        match subject {
            Subject::User(user) => self.intern_user(user),
            Subject::Team(team) => self.intern_team(team) | TEAM_SUBJECT,
        }
    }

    fn upsert_grant(&mut self, grant: Grant) {
        let Grant {
            resource_id,
            subject,
            organization_id: _,
            permissions,
            no_access,
            expire_time,
            granted_by: _,
            create_time: _,
            update_time: _,
        } = grant;
        let resource = self.intern_resource(resource_id);
        let subject_key = self.subject_key(subject);
        let mut names = self.intern_permission_names(&permissions);
        if no_access {
            names |= NO_ACCESS;
        }
        let grant = GrantSlot {
            expire: expiry(expire_time),
            subject: subject_key,
            names,
        };

        let grants = &mut self.resources.get_mut(resource).grants;
        let is_new = match grants.binary_search_by_key(&subject_key, |stored| stored.subject) {
            Ok(position) => {
                grants[position] = grant;
                false
            }
            Err(position) => {
                grants.insert(position, grant);
                true
            }
        };

        if is_new {
            self.subject_grants_mut(subject_key).insert(resource);
            self.counts.grants += 1;
        }
    }

    fn subject_grants_mut(&mut self, subject_key: u32) -> &mut super::store::HandleSet {
        if subject_key & TEAM_SUBJECT == 0 {
            &mut self.users.get_mut(subject_key).grants
        } else {
            &mut self.teams.get_mut(subject_key & !TEAM_SUBJECT).grants
        }
    }

    fn delete_grant(&mut self, key: GrantKey) {
        let GrantKey {
            resource_id,
            subject,
        } = key;
        let Some(resource) = self.resource_handle(resource_id) else {
            return;
        };
        let subject_key = match subject {
            Subject::User(user) => self.user_handle(user),
            Subject::Team(team) => self.team_handle(team).map(|team| team | TEAM_SUBJECT),
        };
        let Some(subject_key) = subject_key else {
            return;
        };
        let Ok(position) = self
            .resources
            .get(resource)
            .grants
            .binary_search_by_key(&subject_key, |stored| stored.subject)
        else {
            return;
        };

        self.resources.get_mut(resource).grants.remove(position);
        self.subject_grants_mut(subject_key).remove(resource);
        self.counts.grants -= 1;
    }

    fn upsert_resource_type(&mut self, definition: ResourceTypeDef) {
        let name = definition.name.clone();
        // The directory validates definitions before storing them; one that
        // fails here is treated as undefined, so its resources grant nothing.
        let definition = match self.registry.insert(definition) {
            Ok(()) => self.registry.get(&name).cloned(),
            Err(_) => {
                self.registry.remove(&name);
                None
            }
        };
        self.replace_type_definition(&name, definition);
    }

    fn delete_resource_type(&mut self, name: &str) {
        self.registry.remove(name);
        if self.types.handle(name).is_some() {
            self.replace_type_definition(name, None);
        }
    }

    /// Installs a type's new definition and updates what was derived from
    /// the old one: lookup keys (when case sensitivity changes) and
    /// organization defaults. Grants need nothing: the type table resolves
    /// them again.
    fn replace_type_definition(&mut self, name: &str, definition: Option<Arc<ResourceTypeDef>>) {
        let resource_type = self.intern_type(name);
        let old_case_insensitive = self.types.is_case_insensitive(resource_type);
        let new_case_insensitive = definition
            .as_ref()
            .is_some_and(|definition| definition.case_insensitive_external_ids);

        // Keys are removed under the old rule before any is added under the
        // new one, so a shard that grows meanwhile rehashes consistently.
        let mut resources = Vec::new();
        if old_case_insensitive != new_case_insensitive {
            for (_, organization) in self.organizations.iter() {
                if let Some(set) = organization.resources_of_type(resource_type) {
                    set.for_each(|resource| resources.push(resource));
                }
            }
            for resource in &resources {
                self.resource_keys
                    .remove(self.resource_key_hash(*resource), *resource);
            }
        }
        Arc::make_mut(&mut self.types).set_definition(resource_type, definition);
        for resource in resources {
            self.insert_resource_key(resource);
        }

        let organizations: Vec<u32> = self
            .organizations
            .iter()
            .filter(|(_, slot)| slot.present)
            .map(|(handle, _)| handle)
            .collect();
        for organization in organizations {
            let defaults = Arc::clone(&self.organizations.get(organization).defaults);
            let resolved = self.resolve_defaults(&defaults);
            self.organizations.get_mut(organization).resolved_defaults = resolved;
        }
    }
}

fn organization_name_hash(name: &str) -> u64 {
    hash_of((LookupKind::OrganizationName, folded(name).as_ref()))
}

fn login_hash(login: &str) -> u64 {
    hash_of((LookupKind::Login, folded(login).as_ref()))
}

fn email_hash(email: &str) -> u64 {
    hash_of((LookupKind::Email, folded(email).as_ref()))
}

/// Computes the lookup hash of a resource from its organization, type and
/// external id, folding the id when the type compares external ids ignoring
/// case.
pub(super) fn resource_key_hash_of(
    types: &TypeTable,
    organization: u32,
    resource_type: u16,
    external_id: &str,
) -> u64 {
    if types.is_case_insensitive(resource_type) {
        hash_of((organization, resource_type, folded(external_id).as_ref()))
    } else {
        hash_of((organization, resource_type, external_id))
    }
}
