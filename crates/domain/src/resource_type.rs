//! Resource types: their permissions, how grants on them combine, and the
//! built-in types of the suite.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::ValidationError;
use crate::text::check_identifier;

/// Maximum number of permissions a resource type may define, so a
/// permission set fits in one machine word.
pub const MAX_PERMISSIONS: usize = 64;

/// How the grants that reach a user on one resource combine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Combining {
    /// The user's individual grant nearest to the resource decides alone,
    /// even an explicit "no access"; team grants apply only when the user has
    /// no individual grant on the path.
    IndividualPrecedence,
    /// The union of the individual grant and every team grant.
    Cumulative,
}

/// A set of permissions of one resource type, as bits in the order of the
/// type's permission list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PermissionSet(pub u64);

impl PermissionSet {
    pub const EMPTY: Self = Self(0);

    pub const fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub const fn contains(self, index: usize) -> bool {
        index < 64 && self.0 & (1 << index) != 0
    }

    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub const fn single(index: usize) -> Self {
        Self(1 << index)
    }

    /// Every permission up to and including `index`: a level with the lower
    /// levels it implies.
    pub const fn up_to(index: usize) -> Self {
        if index >= 63 {
            Self(u64::MAX)
        } else {
            Self((1 << (index + 1)) - 1)
        }
    }

    /// The highest permission index in the set.
    pub const fn highest(self) -> Option<usize> {
        if self.0 == 0 {
            None
        } else {
            Some(63 - self.0.leading_zeros() as usize)
        }
    }

    pub fn indices(self) -> impl Iterator<Item = usize> {
        (0..64).filter(move |index| self.contains(*index))
    }
}

/// The definition of one resource type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceTypeDef {
    /// For example `kdrive.folder`.
    pub name: String,
    /// Permission names; for ordered levels, lowest first.
    pub permissions: Vec<String>,
    /// Whether a permission implies every permission before it.
    #[serde(default)]
    pub ordered_levels: bool,
    pub combining: Combining,
    /// Whether grants reach descendant resources unless inheritance is broken.
    #[serde(default)]
    pub grants_propagate: bool,
    /// Whether external ids compare ignoring case.
    #[serde(default)]
    pub case_insensitive_external_ids: bool,
    /// Whether resources of this type may have a parent resource.
    #[serde(default)]
    pub nestable: bool,
}

impl ResourceTypeDef {
    /// Checks the definition's own consistency.
    pub fn validate(&self) -> Result<(), ValidationError> {
        check_identifier("resource_type.name", &self.name)?;
        if self.permissions.is_empty() {
            return Err(ValidationError::new(
                "resource_type.permissions",
                &self.name,
                "a resource type needs at least one permission",
            ));
        }
        if self.permissions.len() > MAX_PERMISSIONS {
            return Err(ValidationError::new(
                "resource_type.permissions",
                &self.name,
                format!("a resource type has at most {MAX_PERMISSIONS} permissions"),
            ));
        }
        for (index, permission) in self.permissions.iter().enumerate() {
            check_identifier(&format!("resource_type.permissions[{index}]"), permission)?;
            if self.permissions[..index].contains(permission) {
                return Err(ValidationError::new(
                    format!("resource_type.permissions[{index}]"),
                    permission,
                    "permission names must be unique within a type",
                ));
            }
        }
        if self.grants_propagate && !self.nestable {
            return Err(ValidationError::new(
                "resource_type.grants_propagate",
                &self.name,
                "grants can only propagate on a nestable type",
            ));
        }
        Ok(())
    }

    pub fn permission_index(&self, permission: &str) -> Option<usize> {
        self.permissions.iter().position(|name| name == permission)
    }

    /// Resolves the permission names of a grant into a set. A type with
    /// ordered levels takes exactly one level, which implies the lower ones.
    pub fn parse_grant_permissions(
        &self,
        field: &str,
        names: &[String],
    ) -> Result<PermissionSet, ValidationError> {
        if self.ordered_levels && names.len() > 1 {
            return Err(ValidationError::new(
                field,
                names.join(","),
                format!(
                    "{} has ordered levels; grant exactly one of {}",
                    self.name,
                    self.permissions.join(", ")
                ),
            ));
        }
        let mut set = PermissionSet::EMPTY;
        for (position, name) in names.iter().enumerate() {
            let index = self.permission_index(name).ok_or_else(|| {
                ValidationError::new(
                    format!("{field}[{position}]"),
                    name,
                    format!(
                        "{} has no permission {name:?}; valid: {}",
                        self.name,
                        self.permissions.join(", ")
                    ),
                )
            })?;
            set = set.union(self.expand(index));
        }
        Ok(set)
    }

    /// The set a single permission grants: with ordered levels, the level
    /// and every level below it.
    pub fn expand(&self, index: usize) -> PermissionSet {
        if self.ordered_levels {
            PermissionSet::up_to(index)
        } else {
            PermissionSet::single(index)
        }
    }

    /// Names of the permissions in a set, lowest first.
    pub fn permission_names(&self, set: PermissionSet) -> Vec<&str> {
        set.indices()
            .filter_map(|index| self.permissions.get(index).map(String::as_str))
            .collect()
    }

    /// The highest level in a set, for types with ordered levels.
    pub fn level_name(&self, set: PermissionSet) -> Option<&str> {
        if !self.ordered_levels {
            return None;
        }
        set.highest()
            .and_then(|index| self.permissions.get(index))
            .map(String::as_str)
    }

    /// The names a grant stores: the highest level for ordered types,
    /// otherwise every permission.
    pub fn grant_names(&self, set: PermissionSet) -> Vec<String> {
        if self.ordered_levels {
            self.level_name(set).map(str::to_owned).into_iter().collect()
        } else {
            self.permission_names(set).into_iter().map(str::to_owned).collect()
        }
    }

    pub fn highest_level(&self) -> PermissionSet {
        PermissionSet::up_to(self.permissions.len().saturating_sub(1))
    }
}

/// The resource types built into every deployment.
pub fn builtin_resource_types() -> Vec<ResourceTypeDef> {
    let names = |list: &[&str]| list.iter().map(|name| (*name).to_owned()).collect::<Vec<_>>();
    let product = |name: &str| ResourceTypeDef {
        name: name.to_owned(),
        permissions: names(&["technical", "statistics", "ticket_control", "sales_control"]),
        ordered_levels: false,
        combining: Combining::Cumulative,
        grants_propagate: false,
        case_insensitive_external_ids: false,
        nestable: false,
    };
    vec![
        ResourceTypeDef {
            name: "kdrive.folder".to_owned(),
            permissions: names(&["view", "modify", "manage"]),
            ordered_levels: true,
            combining: Combining::IndividualPrecedence,
            grants_propagate: true,
            case_insensitive_external_ids: false,
            nestable: true,
        },
        ResourceTypeDef {
            name: "mail.mailbox".to_owned(),
            permissions: names(&[
                "read",
                "send",
                "manage_rules",
                "manage_forwarding",
                "manage_aliases",
                "manage_signatures",
                "restore",
                "manage_devices",
            ]),
            ordered_levels: false,
            combining: Combining::Cumulative,
            grants_propagate: false,
            case_insensitive_external_ids: true,
            nestable: false,
        },
        ResourceTypeDef {
            name: "kchat.channel".to_owned(),
            permissions: names(&["member", "admin"]),
            ordered_levels: true,
            combining: Combining::Cumulative,
            grants_propagate: false,
            case_insensitive_external_ids: false,
            nestable: false,
        },
        product("web.hosting"),
        product("streaming.channel"),
        product("ticketing.event"),
        ResourceTypeDef {
            name: "git.repository".to_owned(),
            permissions: names(&["read", "triage", "write", "maintain", "admin"]),
            ordered_levels: true,
            combining: Combining::Cumulative,
            grants_propagate: false,
            case_insensitive_external_ids: true,
            nestable: false,
        },
    ]
}

/// The resource types in force, by name. Cheap to clone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceTypeRegistry {
    types: BTreeMap<String, Arc<ResourceTypeDef>>,
}

impl ResourceTypeRegistry {
    /// The built-in types plus `extra` ones from a deployment's
    /// configuration. An extra type may not redefine a built-in one.
    pub fn with_builtins(extra: Vec<ResourceTypeDef>) -> Result<Self, ValidationError> {
        let mut registry = Self::default();
        for definition in builtin_resource_types() {
            registry.insert(definition)?;
        }
        for definition in extra {
            if registry.get(&definition.name).is_some() {
                return Err(ValidationError::new(
                    "resource_type.name",
                    &definition.name,
                    "already defined (built-in types cannot be redefined)",
                ));
            }
            registry.insert(definition)?;
        }
        Ok(registry)
    }

    /// Adds or replaces a definition after validating it.
    pub fn insert(&mut self, definition: ResourceTypeDef) -> Result<(), ValidationError> {
        definition.validate()?;
        self.types.insert(definition.name.clone(), Arc::new(definition));
        Ok(())
    }

    pub fn remove(&mut self, name: &str) {
        self.types.remove(name);
    }

    pub fn get(&self, name: &str) -> Option<&Arc<ResourceTypeDef>> {
        self.types.get(name)
    }

    /// Looks a type up, naming `field` in the error when it is unknown.
    pub fn require(&self, field: &str, name: &str) -> Result<&Arc<ResourceTypeDef>, ValidationError> {
        self.get(name).ok_or_else(|| {
            ValidationError::new(
                field,
                name,
                format!(
                    "unknown resource type; known types: {}",
                    self.types.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ResourceTypeDef>> {
        self.types.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry() -> ResourceTypeRegistry {
        ResourceTypeRegistry::with_builtins(Vec::new()).unwrap()
    }

    #[test]
    fn builtins_are_valid() {
        let registry = registry();
        assert_eq!(registry.iter().count(), 7);
    }

    #[test]
    fn level_implies_lower_levels() {
        let registry = registry();
        let folder = registry.get("kdrive.folder").unwrap();
        let set = folder
            .parse_grant_permissions("permissions", &["modify".to_owned()])
            .unwrap();
        assert_eq!(folder.permission_names(set), vec!["view", "modify"]);
        assert_eq!(folder.level_name(set), Some("modify"));
    }

    #[test]
    fn ordered_type_takes_one_level() {
        let registry = registry();
        let folder = registry.get("kdrive.folder").unwrap();
        let names = ["view".to_owned(), "manage".to_owned()];
        assert!(folder.parse_grant_permissions("permissions", &names).is_err());
    }

    #[test]
    fn unknown_permission_is_named() {
        let registry = registry();
        let mailbox = registry.get("mail.mailbox").unwrap();
        let error = mailbox
            .parse_grant_permissions("permissions", &["read".to_owned(), "fly".to_owned()])
            .unwrap_err();
        assert_eq!(error.field, "permissions[1]");
        assert_eq!(error.value, "fly");
    }

    #[test]
    fn builtin_cannot_be_redefined() {
        let mut redefined = builtin_resource_types().remove(0);
        redefined.permissions.push("own".to_owned());
        assert!(ResourceTypeRegistry::with_builtins(vec![redefined]).is_err());
    }

    #[test]
    fn permission_set_highest() {
        assert_eq!(PermissionSet::EMPTY.highest(), None);
        assert_eq!(PermissionSet::up_to(2).highest(), Some(2));
        assert_eq!(PermissionSet::up_to(63), PermissionSet(u64::MAX));
    }
}
