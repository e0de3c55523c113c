//! Errors of authentication: [`SetupError`] when the settings cannot be
//! used, and [`AuthError`] when a call's credentials are rejected.
//!
//! Neither error ever contains the token, the secret or a claim value sent
//! by the caller, so both can be logged and returned to clients.

/// A setting that cannot be used, with the reason. The directory exits with
/// status 64 on it before binding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {message}")]
pub struct SetupError {
    /// The setting's name as the directory's configuration file spells it,
    /// such as `auth_secret_file`.
    pub setting: &'static str,
    pub message: String,
}

impl SetupError {
    pub fn new(setting: &'static str, message: impl Into<String>) -> Self {
        Self {
            setting,
            message: message.into(),
        }
    }
}

/// Reason a call's credentials were rejected. Services return
/// UNAUTHENTICATED for every variant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("the call has no authorization metadata; send `authorization: Bearer <token>`")]
    MissingToken,

    #[error("the authorization metadata is not of the form `Bearer <token>`")]
    MalformedHeader,

    #[error("the bearer token is not a well-formed JWT: {0}")]
    MalformedToken(&'static str),

    #[error("the token's signing algorithm is not accepted; this server accepts {accepted}")]
    AlgorithmRejected { accepted: &'static str },

    #[error("no configured key matches the token's key id and algorithm")]
    UnknownKey,

    #[error("the token's signature is invalid")]
    BadSignature,

    #[error("the token has expired; request a new one")]
    Expired,

    #[error("the token is not valid yet (its nbf claim is in the future)")]
    NotYetValid,

    #[error("the token's issuer (iss) is not the configured issuer")]
    WrongIssuer,

    #[error("the token's audience (aud) does not include the configured audience")]
    WrongAudience,

    #[error("the token lacks the required claim {0}")]
    MissingClaim(&'static str),

    #[error("the token's subject is neither a user id nor a configured service account")]
    UnknownSubject,

    #[error("this service accepts only tokens of configured service accounts")]
    ServiceAccountRequired,
}

impl AuthError {
    /// Returns a stable upper-case code of the reason, for logs, metrics and
    /// the `ErrorInfo.reason` of the status.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MissingToken => "MISSING_TOKEN",
            Self::MalformedHeader => "MALFORMED_AUTHORIZATION",
            Self::MalformedToken(_) => "MALFORMED_TOKEN",
            Self::AlgorithmRejected { .. } => "ALGORITHM_REJECTED",
            Self::UnknownKey => "UNKNOWN_KEY",
            Self::BadSignature => "BAD_SIGNATURE",
            Self::Expired => "TOKEN_EXPIRED",
            Self::NotYetValid => "TOKEN_NOT_YET_VALID",
            Self::WrongIssuer => "WRONG_ISSUER",
            Self::WrongAudience => "WRONG_AUDIENCE",
            Self::MissingClaim(_) => "MISSING_CLAIM",
            Self::UnknownSubject => "UNKNOWN_SUBJECT",
            Self::ServiceAccountRequired => "SERVICE_ACCOUNT_REQUIRED",
        }
    }
}
