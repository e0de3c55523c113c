//! Development credentials: a random HS256 secret, a service-accounts file
//! with one owner account of scope `admin`, and a token for that account,
//! all kept in the data directory so local commands find them.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rand::RngCore;

use crate::error::SetupError;
use crate::keys::read_secret_bytes;
use crate::mint::{TokenClaims, mint_hs256, unix_now};
use crate::settings::{AuthSettings, DEFAULT_LEEWAY, KeySource};

/// Issuer of development tokens.
pub const DEV_ISSUER: &str = "workteams-dev";
/// Audience of development tokens.
pub const DEV_AUDIENCE: &str = "workteams";
/// Service account that the development owner token names.
pub const DEV_OWNER_ACCOUNT: &str = "workteams-owner";
/// Lifetime of a development owner token.
const OWNER_TOKEN_LIFETIME: Duration = Duration::from_secs(365 * 24 * 60 * 60);
/// A token expiring sooner than this is replaced by `ensure`.
const RENEW_BEFORE: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// Random bytes of a development secret, written as hexadecimal text.
const SECRET_BYTES: usize = 32;

/// The files of the development credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DevCredentials {
    /// HS256 secret, mode 0600.
    pub secret_file: PathBuf,
    /// Owner token of [`DEV_OWNER_ACCOUNT`], mode 0600.
    pub token_file: PathBuf,
    /// Service-accounts file naming the owner account.
    pub service_accounts_file: PathBuf,
}

impl DevCredentials {
    /// Returns the paths under `data_dir` without creating anything.
    pub fn paths(data_dir: &Path) -> Self {
        let folder = data_dir.join("auth");
        Self {
            secret_file: folder.join("dev-secret"),
            token_file: folder.join("owner-token"),
            service_accounts_file: folder.join("service-accounts.yaml"),
        }
    }

    /// Creates the credentials under `data_dir/auth` where they are
    /// missing, and returns their paths. An existing secret is kept; the
    /// owner token is minted again when it is missing, does not fit the
    /// secret, or expires within a week.
    pub fn ensure(data_dir: &Path) -> Result<Self, SetupError> {
        let credentials = Self::paths(data_dir);
        let folder = credentials
            .secret_file
            .parent()
            .map_or_else(|| data_dir.to_path_buf(), Path::to_path_buf);
        create_private_dir(&folder)?;

        if !credentials.secret_file.exists() {
            let mut secret = [0_u8; SECRET_BYTES];
            rand::rng().fill_bytes(&mut secret);
            let text: String = secret.iter().map(|byte| format!("{byte:02x}")).collect();
            write_private(&credentials.secret_file, &format!("{text}\n"))?;
        }
        let secret = read_secret_bytes(&credentials.secret_file)?;

        let accounts = format!(
            "# Created by `workteams up` for local development.\nservice_accounts:\n  - name: {DEV_OWNER_ACCOUNT}\n    scopes: [admin]\n"
        );
        if !credentials.service_accounts_file.exists() {
            write_private(&credentials.service_accounts_file, &accounts)?;
        }

        if !credentials.token_is_current(&secret) {
            let claims = TokenClaims::new(
                DEV_OWNER_ACCOUNT,
                DEV_ISSUER,
                DEV_AUDIENCE,
                OWNER_TOKEN_LIFETIME,
            );
            let token = mint_hs256(&secret, &claims).map_err(|error| {
                SetupError::new("auth_secret_file", format!("cannot sign the owner token: {error}"))
            })?;
            write_private(&credentials.token_file, &format!("{token}\n"))?;
        }
        Ok(credentials)
    }

    /// Returns the settings that verify development tokens.
    pub fn settings(&self) -> AuthSettings {
        AuthSettings {
            keys: KeySource::SharedSecretFile(self.secret_file.clone()),
            issuer: DEV_ISSUER.to_owned(),
            audience: DEV_AUDIENCE.to_owned(),
            leeway: DEFAULT_LEEWAY,
            service_accounts_file: Some(self.service_accounts_file.clone()),
        }
    }

    /// Checks that the stored owner token verifies with `secret` and does
    /// not expire soon.
    fn token_is_current(&self, secret: &[u8]) -> bool {
        let Ok(token) = std::fs::read_to_string(&self.token_file) else {
            return false;
        };
        let Ok(key) = jsonwebtoken::DecodingKey::from_secret(secret) else {
            return false;
        };
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
        validation.set_issuer(&[DEV_ISSUER]);
        validation.set_audience(&[DEV_AUDIENCE]);
        validation.leeway = 0;

        #[derive(serde::Deserialize)]
        struct Expiry {
            exp: u64,
        }
        match jsonwebtoken::decode::<Expiry>(token.trim(), &key, &validation) {
            Ok(data) => data.claims.exp > unix_now().saturating_add(RENEW_BEFORE.as_secs()),
            Err(_) => false,
        }
    }
}

fn create_private_dir(folder: &Path) -> Result<(), SetupError> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(folder).map_err(|error| {
        SetupError::new(
            "data_dir",
            format!("cannot create {}: {error}", folder.display()),
        )
    })
}

/// Writes `text` to a new file readable only by its owner, replacing the
/// file through a rename so no reader sees it half written.
fn write_private(path: &Path, text: &str) -> Result<(), SetupError> {
    let failed = |error: std::io::Error| {
        SetupError::new("data_dir", format!("cannot write {}: {error}", path.display()))
    };
    let temporary = path.with_extension(format!("tmp-{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary).map_err(failed)?;
    file.write_all(text.as_bytes()).map_err(failed)?;
    file.sync_all().map_err(failed)?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(failed)
}
