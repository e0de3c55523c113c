//! The per-entity records of the index and the shared tables they point
//! into (resource types and interned permission names).

use std::collections::HashMap;
use std::sync::Arc;

use smallvec::SmallVec;
use workteams_domain::{
    Combining, MemberRole, MemberStatus, OrganizationId, PermissionSet, ResourceId,
    ResourceTypeDef, ResourceTypeDefault, TeamId, UserId,
};

use super::store::{HandleSet, SmallList};

/// Marks a team in a grant's subject key; without it the key is a user.
pub(crate) const TEAM_SUBJECT: u32 = 1 << 31;
/// Marks an explicit "no access" in a grant's names key.
pub(crate) const NO_ACCESS: u32 = 1 << 31;

#[derive(Debug, Clone)]
pub(crate) struct OrganizationSlot {
    pub(crate) id: OrganizationId,
    pub(crate) present: bool,
    pub(crate) name: Box<str>,
    /// The settings as stored, kept to resolve again when a type changes.
    pub(crate) defaults: Arc<[ResourceTypeDefault]>,
    /// `defaults` resolved against the current type definitions, for
    /// cumulative types only.
    pub(crate) resolved_defaults: SmallList<ResolvedDefault>,
    /// Users with a member record (any role or status).
    pub(crate) members: HandleSet,
    /// Present resources of the organization, by type handle.
    pub(crate) resources_by_type: SmallVec<[(u16, HandleSet); 2]>,
}

impl OrganizationSlot {
    pub(crate) fn absent(id: OrganizationId) -> Self {
        Self {
            id,
            present: false,
            name: Box::from(""),
            defaults: Arc::from([]),
            resolved_defaults: SmallList::default(),
            members: HandleSet::default(),
            resources_by_type: SmallVec::new(),
        }
    }

    pub(crate) fn default_for(&self, resource_type: u16) -> Option<&ResolvedDefault> {
        self.resolved_defaults
            .as_slice()
            .iter()
            .find(|default| default.resource_type == resource_type)
    }

    pub(crate) fn resources_of_type(&self, resource_type: u16) -> Option<&HandleSet> {
        self.resources_by_type
            .iter()
            .find(|(stored, _)| *stored == resource_type)
            .map(|(_, set)| set)
    }

    pub(crate) fn resources_of_type_mut(&mut self, resource_type: u16) -> &mut HandleSet {
        let position = match self
            .resources_by_type
            .iter()
            .position(|(stored, _)| *stored == resource_type)
        {
            Some(position) => position,
            None => {
                self.resources_by_type
                    .push((resource_type, HandleSet::default()));
                self.resources_by_type.len() - 1
            }
        };
        &mut self.resources_by_type[position].1
    }
}

/// An organization default resolved to permission sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ResolvedDefault {
    pub(crate) resource_type: u16,
    /// Held by every internal member; empty for none.
    pub(crate) base_level: PermissionSet,
    /// Held by owners and administrators; empty for none.
    pub(crate) administrator_level: PermissionSet,
}

/// Returns the role with more rights: owner, then administrator, then
/// collaborator, then external.
pub(crate) fn higher_role(first: MemberRole, second: MemberRole) -> MemberRole {
    let rank = |role: MemberRole| match role {
        MemberRole::Owner => 3,
        MemberRole::Administrator => 2,
        MemberRole::Collaborator => 1,
        MemberRole::External => 0,
    };
    if rank(second) > rank(first) {
        second
    } else {
        first
    }
}

impl ResolvedDefault {
    pub(crate) fn for_role(&self, role: MemberRole) -> PermissionSet {
        let mut permissions = PermissionSet::EMPTY;
        if role.is_internal() {
            permissions = permissions.union(self.base_level);
        }
        if role.is_administrator() {
            permissions = permissions.union(self.administrator_level);
        }
        permissions
    }
}

#[derive(Debug, Clone)]
pub(crate) struct UserSlot {
    pub(crate) id: UserId,
    pub(crate) present: bool,
    /// Inline for up to two organizations, as most users have one.
    pub(crate) organizations: SmallVec<[OrganizationMembership; 2]>,
    /// Direct team memberships.
    pub(crate) teams: SmallVec<[TeamMembership; 2]>,
    /// Resources carrying a grant to this user.
    pub(crate) grants: HandleSet,
}

impl UserSlot {
    pub(crate) fn absent(id: UserId) -> Self {
        Self {
            id,
            present: false,
            organizations: SmallVec::new(),
            teams: SmallVec::new(),
            grants: HandleSet::default(),
        }
    }

    pub(crate) fn organization(&self, organization: u32) -> Option<&OrganizationMembership> {
        self.organizations
            .iter()
            .find(|membership| membership.organization == organization)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrganizationMembership {
    pub(crate) organization: u32,
    pub(crate) role: MemberRole,
    pub(crate) status: MemberStatus,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TeamMembership {
    pub(crate) team: u32,
    /// Nanoseconds since the epoch; [`NEVER`](super::store::NEVER) for none.
    pub(crate) expire: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct TeamSlot {
    pub(crate) id: TeamId,
    pub(crate) present: bool,
    pub(crate) organization: u32,
    /// The organization role the team gives its members and the members of
    /// its descendant teams.
    pub(crate) organization_role: Option<MemberRole>,
    pub(crate) parent: Option<u32>,
    /// Present ancestors, parent first; the chain stops at the first absent
    /// team.
    pub(crate) ancestors: SmallVec<[u32; 4]>,
    pub(crate) children: HandleSet,
    /// Users with a direct membership.
    pub(crate) members: HandleSet,
    /// Resources carrying a grant to this team.
    pub(crate) grants: HandleSet,
}

impl TeamSlot {
    pub(crate) fn absent(id: TeamId) -> Self {
        Self {
            id,
            present: false,
            organization: 0,
            organization_role: None,
            parent: None,
            ancestors: SmallVec::new(),
            children: HandleSet::default(),
            members: HandleSet::default(),
            grants: HandleSet::default(),
        }
    }
}

/// A resource. Its external id lives in the index's string arena and its
/// children in the index's child map, which keeps this record small: a
/// deployment has more resources than anything else.
#[derive(Debug, Clone)]
pub(crate) struct ResourceSlot {
    pub(crate) id: ResourceId,
    /// Sorted by subject key, so the user grants come before team grants.
    pub(crate) grants: SmallVec<[GrantSlot; 1]>,
    pub(crate) organization: u32,
    /// The parent's handle, or [`NO_PARENT`].
    parent: u32,
    pub(crate) resource_type: u16,
    pub(crate) present: bool,
    pub(crate) inherits: bool,
}

/// The `parent` of a resource without one.
const NO_PARENT: u32 = u32::MAX;

impl ResourceSlot {
    pub(crate) fn absent(id: ResourceId) -> Self {
        Self {
            id,
            grants: SmallVec::new(),
            organization: 0,
            parent: NO_PARENT,
            resource_type: 0,
            present: false,
            inherits: false,
        }
    }

    pub(crate) fn parent(&self) -> Option<u32> {
        (self.parent != NO_PARENT).then_some(self.parent)
    }

    pub(crate) fn set_parent(&mut self, parent: Option<u32>) {
        self.parent = parent.unwrap_or(NO_PARENT);
    }

    /// Returns the grant to `subject`, if any.
    pub(crate) fn grant(&self, subject: u32) -> Option<&GrantSlot> {
        self.grants
            .binary_search_by_key(&subject, |grant| grant.subject)
            .ok()
            .map(|position| &self.grants[position])
    }

    /// Returns the team grants, sorted by team handle.
    pub(crate) fn team_grants(&self) -> &[GrantSlot] {
        let start = self
            .grants
            .partition_point(|grant| grant.subject < TEAM_SUBJECT);
        &self.grants[start..]
    }

    /// Returns the grants to users, sorted by user handle.
    pub(crate) fn user_grants(&self) -> &[GrantSlot] {
        let end = self
            .grants
            .partition_point(|grant| grant.subject < TEAM_SUBJECT);
        &self.grants[..end]
    }
}

/// One grant on a resource. Its permissions are not stored: they come from
/// the [`TypeTable`], which resolves each distinct list of names once per
/// type, so a redefined type needs no pass over its grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct GrantSlot {
    pub(crate) expire: i64,
    /// A user handle, or a team handle with [`TEAM_SUBJECT`] set.
    pub(crate) subject: u32,
    /// Interned permission names, with [`NO_ACCESS`] set for "no access".
    pub(crate) names: u32,
}

impl GrantSlot {
    pub(crate) fn is_active_at(&self, now: i64) -> bool {
        now < self.expire
    }

    pub(crate) fn no_access(&self) -> bool {
        self.names & NO_ACCESS != 0
    }

    pub(crate) fn team(&self) -> Option<u32> {
        (self.subject & TEAM_SUBJECT != 0).then_some(self.subject & !TEAM_SUBJECT)
    }
}

/// Resource type names seen so far with their current definitions, and
/// the distinct permission-name lists of grants resolved against each type.
///
/// A type name keeps its handle when its definition is removed, so resources
/// of an undefined type simply grant nothing.
#[derive(Debug, Clone, Default)]
pub(crate) struct TypeTable {
    entries: Vec<TypeEntry>,
    by_name: HashMap<Box<str>, u16>,
    names: Vec<Arc<[String]>>,
    names_by_list: HashMap<Arc<[String]>, u32>,
}

#[derive(Debug, Clone)]
struct TypeEntry {
    name: Box<str>,
    definition: Option<Arc<ResourceTypeDef>>,
    /// Permissions each interned name list grants on this type, by names
    /// handle.
    resolved: Vec<PermissionSet>,
}

impl TypeTable {
    pub(crate) fn handle(&self, name: &str) -> Option<u16> {
        self.by_name.get(name).copied()
    }

    /// Returns the handle of `name`, adding the name if it is new.
    ///
    /// NOTE: more than 65,535 distinct type names would wrap; a deployment
    /// defines a few dozen.
    pub(crate) fn intern(&mut self, name: &str) -> u16 {
        if let Some(handle) = self.handle(name) {
            return handle;
        }
        let handle = self.entries.len() as u16;
        self.entries.push(TypeEntry {
            name: Box::from(name),
            definition: None,
            resolved: vec![PermissionSet::EMPTY; self.names.len()],
        });
        self.by_name.insert(Box::from(name), handle);
        handle
    }

    pub(crate) fn name(&self, handle: u16) -> &str {
        &self.entries[usize::from(handle)].name
    }

    pub(crate) fn definition(&self, handle: u16) -> Option<&Arc<ResourceTypeDef>> {
        self.entries[usize::from(handle)].definition.as_ref()
    }

    pub(crate) fn set_definition(&mut self, handle: u16, definition: Option<Arc<ResourceTypeDef>>) {
        let entry = &mut self.entries[usize::from(handle)];
        entry.resolved = self
            .names
            .iter()
            .map(|names| resolve_permissions(definition.as_deref(), names))
            .collect();
        entry.definition = definition;
    }

    pub(crate) fn is_case_insensitive(&self, handle: u16) -> bool {
        self.definition(handle)
            .is_some_and(|definition| definition.case_insensitive_external_ids)
    }

    pub(crate) fn names_handle(&self, names: &[String]) -> Option<u32> {
        self.names_by_list.get(names).copied()
    }

    /// Returns the handle of a grant's permission-name list, adding the list
    /// if it is new.
    pub(crate) fn intern_names(&mut self, names: &[String]) -> u32 {
        if let Some(handle) = self.names_handle(names) {
            return handle;
        }
        let handle = self.names.len() as u32;
        let list: Arc<[String]> = Arc::from(names);
        for entry in &mut self.entries {
            entry
                .resolved
                .push(resolve_permissions(entry.definition.as_deref(), &list));
        }
        self.names.push(Arc::clone(&list));
        self.names_by_list.insert(list, handle);
        handle
    }

    /// Returns the permissions `grant` gives on a resource of type
    /// `resource_type`.
    pub(crate) fn permissions(&self, resource_type: u16, grant: &GrantSlot) -> PermissionSet {
        if grant.no_access() {
            return PermissionSet::EMPTY;
        }
        self.entries[usize::from(resource_type)]
            .resolved
            .get(grant.names as usize)
            .copied()
            .unwrap_or(PermissionSet::EMPTY)
    }
}

/// Resolves permission names with a type definition; names the type does
/// not define are dropped, so a stale grant can only give less.
pub(crate) fn resolve_permissions(
    definition: Option<&ResourceTypeDef>,
    names: &[String],
) -> PermissionSet {
    let Some(definition) = definition else {
        return PermissionSet::EMPTY;
    };
    names
        .iter()
        .filter_map(|name| definition.permission_index(name))
        .fold(PermissionSet::EMPTY, |set, index| {
            set.union(definition.expand(index))
        })
}

/// Resolves an organization's defaults for the cumulative types among them.
pub(crate) fn resolve_default(
    definition: &ResourceTypeDef,
    resource_type: u16,
    default: &ResourceTypeDefault,
) -> Option<ResolvedDefault> {
    if definition.combining != Combining::Cumulative {
        return None;
    }
    let base_level = default
        .base_level
        .as_ref()
        .and_then(|level| definition.permission_index(level))
        .map_or(PermissionSet::EMPTY, |index| definition.expand(index));
    let administrator_level = if default.administrators_get_highest_level {
        definition.highest_level()
    } else {
        PermissionSet::EMPTY
    };
    Some(ResolvedDefault {
        resource_type,
        base_level,
        administrator_level,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Resources and grants are the most numerous records; these sizes decide
    // most of the index's memory.
    #[test]
    fn resource_slot_stays_small() {
        assert!(size_of::<ResourceSlot>() <= 56);
    }

    #[test]
    fn grant_slot_stays_small() {
        assert_eq!(size_of::<GrantSlot>(), 16);
    }
}
