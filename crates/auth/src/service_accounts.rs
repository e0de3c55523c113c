//! The service-accounts file: named non-human callers and their scopes.
//!
//! ```yaml
//! service_accounts:
//!   - name: manager-web
//!     scopes: [read]
//!   - name: mail-provisioner
//!     scopes: ["organization:0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a7b:admin"]
//! ```

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use workteams_domain::{OrganizationId, Scope, ServiceAccount, UserId};

use crate::error::SetupError;

const SETTING: &str = "auth_service_accounts_file";
/// Longest accepted account name, in bytes.
const MAX_NAME_BYTES: usize = 64;

/// The configured service accounts, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServiceAccounts {
    by_name: HashMap<String, Vec<Scope>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountsFile {
    service_accounts: Vec<AccountEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountEntry {
    name: String,
    scopes: Vec<String>,
}

impl ServiceAccounts {
    /// Reads and checks a service-accounts file.
    pub fn load(path: &Path) -> Result<Self, SetupError> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            SetupError::new(SETTING, format!("cannot read {}: {error}", path.display()))
        })?;
        Self::parse(&text)
            .map_err(|message| SetupError::new(SETTING, format!("{}: {message}", path.display())))
    }

    /// Parses the YAML text of a service-accounts file.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: AccountsFile = serde_yaml::from_str(text).map_err(|error| {
            format!("expected a service_accounts list of names and scopes: {error}")
        })?;

        let mut by_name = HashMap::new();
        for (index, entry) in file.service_accounts.into_iter().enumerate() {
            check_account_name(&entry.name)
                .map_err(|reason| format!("entry {index}: name {:?} {reason}", entry.name))?;
            let scopes = entry
                .scopes
                .iter()
                .map(|scope| parse_scope(scope))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|reason| format!("entry {index} ({}): {reason}", entry.name))?;
            if by_name.insert(entry.name.clone(), scopes).is_some() {
                return Err(format!("entry {index}: the name {:?} appears twice", entry.name));
            }
        }
        Ok(Self { by_name })
    }

    /// Returns the account with this name, if one is configured.
    pub fn get(&self, name: &str) -> Option<ServiceAccount> {
        self.by_name.get(name).map(|scopes| ServiceAccount {
            name: name.to_owned(),
            scopes: scopes.clone(),
        })
    }

    pub fn len(&self) -> usize {
        self.by_name.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// Parses a scope: `read`, `admin`, `organization:<id>:read` or
/// `organization:<id>:admin`, with the organization id in canonical form.
pub fn parse_scope(text: &str) -> Result<Scope, String> {
    match text {
        "read" => return Ok(Scope::ReadAll),
        "admin" => return Ok(Scope::AdminAll),
        _ => {}
    }

    let invalid = || {
        format!(
            "scope {text:?} is not one of read, admin, organization:<id>:read or organization:<id>:admin"
        )
    };
    let rest = text.strip_prefix("organization:").ok_or_else(invalid)?;
    let (id, level) = rest.rsplit_once(':').ok_or_else(invalid)?;
    let organization = OrganizationId::parse("scope", id)
        .map_err(|error| format!("scope {text:?}: {}", error.reason))?;
    match level {
        "read" => Ok(Scope::ReadOrganization(organization)),
        "admin" => Ok(Scope::AdminOrganization(organization)),
        _ => Err(invalid()),
    }
}

/// Accepts lowercase ASCII letters, digits, `.`, `_` and `-`, starting with
/// a letter, so a name can never be read as a user id.
fn check_account_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > MAX_NAME_BYTES {
        return Err("must be 1 to 64 bytes long");
    }
    if !name.starts_with(|c: char| c.is_ascii_lowercase()) {
        return Err("must start with a lowercase letter");
    }
    if !name
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || b"._-".contains(&byte))
    {
        return Err("may contain only lowercase letters, digits, '.', '_' and '-'");
    }
    if UserId::parse("name", name).is_ok() {
        return Err("must not be a user id");
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    const ORGANIZATION: &str = "0190c3a4-5b6e-7f80-9a1b-2c3d4e5f6a7b";

    #[test]
    fn scopes_parse() {
        let organization = OrganizationId::parse("id", ORGANIZATION).unwrap();
        assert_eq!(parse_scope("read"), Ok(Scope::ReadAll));
        assert_eq!(parse_scope("admin"), Ok(Scope::AdminAll));
        assert_eq!(
            parse_scope(&format!("organization:{ORGANIZATION}:read")),
            Ok(Scope::ReadOrganization(organization))
        );
        assert_eq!(
            parse_scope(&format!("organization:{ORGANIZATION}:admin")),
            Ok(Scope::AdminOrganization(organization))
        );
    }

    #[test]
    fn bad_scopes_rejected() {
        for text in [
            "",
            "write",
            "Admin",
            "organization:read",
            "organization::admin",
            "organization:0190C3A4-5B6E-7F80-9A1B-2C3D4E5F6A7B:admin",
            &format!("organization:{ORGANIZATION}:write"),
            &format!("team:{ORGANIZATION}:read"),
        ] {
            assert!(parse_scope(text).is_err(), "{text:?} was accepted");
        }
    }

    #[test]
    fn file_parses() {
        let accounts = ServiceAccounts::parse(&format!(
            "service_accounts:\n  - name: manager-web\n    scopes: [read]\n  - name: provisioner\n    scopes: [\"organization:{ORGANIZATION}:admin\"]\n"
        ))
        .unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts.get("manager-web").unwrap().scopes, vec![Scope::ReadAll]);
        assert_eq!(accounts.get("nobody"), None);
    }

    #[test]
    fn duplicate_name_rejected() {
        let error = ServiceAccounts::parse(
            "service_accounts:\n  - name: a\n    scopes: [read]\n  - name: a\n    scopes: [admin]\n",
        )
        .unwrap_err();
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn bad_names_rejected() {
        for name in ["", "Manager", "1bot", "user:x", "a b", ORGANIZATION] {
            let text = format!("service_accounts:\n  - name: {name:?}\n    scopes: [read]\n");
            assert!(ServiceAccounts::parse(&text).is_err(), "{name:?} was accepted");
        }
    }

    #[test]
    fn unknown_key_rejected() {
        let error =
            ServiceAccounts::parse("service_accounts:\n  - name: a\n    scope: [read]\n").unwrap_err();
        assert!(error.contains("scope"), "{error}");
    }
}
