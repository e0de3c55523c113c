//! Validation errors that name the offending field and value.

/// An input value that breaks a rule of the domain.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {field} {value:?}: {reason}")]
pub struct ValidationError {
    /// The request field, in protobuf field-path form (`members[3].user_id`).
    pub field: String,
    /// The rejected value, shortened for display.
    pub value: String,
    /// What is wrong and what to do instead.
    pub reason: String,
}

impl ValidationError {
    pub fn new(field: impl Into<String>, value: impl AsRef<str>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: shorten(value.as_ref()),
            reason: reason.into(),
        }
    }

    /// Builds the error for an opaque token such as a page or consistency
    /// token: the value is described by its length only, so the token text
    /// never reaches an error message or a log line.
    pub fn opaque(field: impl Into<String>, value: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            value: format!("<{} characters, not shown>", value.chars().count()),
            reason: reason.into(),
        }
    }

    /// Prefixes the field path, for errors raised inside a nested message.
    pub fn within(mut self, parent: &str) -> Self {
        self.field = if self.field.is_empty() {
            parent.to_owned()
        } else {
            format!("{parent}.{}", self.field)
        };
        self
    }
}

/// Keeps error messages readable when a client sends a huge value.
fn shorten(value: &str) -> String {
    const MAX_CHARS: usize = 80;
    if value.chars().count() <= MAX_CHARS {
        return value.to_owned();
    }
    let mut shortened: String = value.chars().take(MAX_CHARS).collect();
    shortened.push('…');
    shortened
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opaque_value_is_not_shown() {
        let error = ValidationError::opaque("page_token", "c2VjcmV0LXRva2Vu", "not a page token");
        assert_eq!(error.value, "<16 characters, not shown>");
        assert!(!error.to_string().contains("c2VjcmV0LXRva2Vu"));
    }

    #[test]
    fn long_value_is_shortened() {
        let error = ValidationError::new("name", "x".repeat(500), "too long");
        assert_eq!(error.value.chars().count(), 81);
    }
}
