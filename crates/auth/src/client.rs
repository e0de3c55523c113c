//! The client side: a tonic interceptor that sends a bearer token.

use std::path::Path;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::authenticator::AUTHORIZATION_METADATA;

/// Adds `authorization: Bearer <token>` to every call of a client built with
/// `with_interceptor`. Its `Debug` output hides the token.
#[derive(Clone)]
pub struct BearerToken {
    value: MetadataValue<Ascii>,
}

/// A token that cannot be sent as metadata.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the token file {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("the token file {path} is empty")]
    Empty { path: String },
    #[error("the token is not printable ASCII, so it is not a JWT")]
    NotAscii,
}

impl BearerToken {
    /// Wraps a bare JWT.
    pub fn new(token: &str) -> Result<Self, TokenFileError> {
        let mut value = MetadataValue::try_from(format!("Bearer {}", token.trim()))
            .map_err(|_| TokenFileError::NotAscii)?;
        value.set_sensitive(true);
        Ok(Self { value })
    }

    /// Reads a token file; surrounding whitespace is ignored.
    pub fn from_file(path: &Path) -> Result<Self, TokenFileError> {
        let text = std::fs::read_to_string(path).map_err(|error| TokenFileError::Read {
            path: path.display().to_string(),
            reason: error.to_string(),
        })?;
        if text.trim().is_empty() {
            return Err(TokenFileError::Empty {
                path: path.display().to_string(),
            });
        }
        Self::new(&text)
    }

    /// Returns the metadata value, `Bearer <token>`.
    pub fn metadata_value(&self) -> &MetadataValue<Ascii> {
        &self.value
    }

    /// Sets the token on one request.
    pub fn apply<T>(&self, request: &mut Request<T>) {
        request
            .metadata_mut()
            .insert(AUTHORIZATION_METADATA, self.value.clone());
    }
}

impl std::fmt::Debug for BearerToken {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str("BearerToken(..)")
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        self.apply(&mut request);
        Ok(request)
    }
}
