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
