//! Limits and checks for names, descriptions, logins, e-mail addresses and
//! external ids, and the folded keys used to compare them ignoring case.

use crate::error::ValidationError;

/// Maximum length, in characters, of organization, team and display names.
pub const MAX_NAME_CHARS: usize = 100;
/// Maximum length, in characters, of a team description.
pub const MAX_DESCRIPTION_CHARS: usize = 2_000;
/// Maximum length, in characters, of a login.
pub const MAX_LOGIN_CHARS: usize = 100;
/// Maximum length, in characters, of an e-mail address (RFC 5321 path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Maximum length, in characters, of a resource's external id.
pub const MAX_EXTERNAL_ID_CHARS: usize = 512;
/// Maximum length, in characters, of a permission or resource type name.
pub const MAX_IDENTIFIER_CHARS: usize = 64;
/// Maximum length, in characters, of an idempotency key.
pub const MAX_IDEMPOTENCY_KEY_CHARS: usize = 128;

/// Returns the key under which `text` is compared ignoring case.
pub fn fold(text: &str) -> String {
    text.to_lowercase()
}

/// Checks a required single-line name: not empty, not longer than
/// `max_chars`, no control characters, no leading or trailing whitespace.
pub fn check_name(field: &str, text: &str, max_chars: usize) -> Result<(), ValidationError> {
    if text.is_empty() {
        return Err(ValidationError::new(field, text, "must not be empty"));
    }
    check_optional_text(field, text, max_chars)?;
    if text.trim() != text {
        return Err(ValidationError::new(
            field,
            text,
            "must not start or end with whitespace",
        ));
    }
    Ok(())
}

/// Checks an optional single-line text: empty is allowed.
pub fn check_optional_text(field: &str, text: &str, max_chars: usize) -> Result<(), ValidationError> {
    let length = text.chars().count();
    if length > max_chars {
        return Err(ValidationError::new(
            field,
            text,
            format!("is {length} characters long; the maximum is {max_chars}"),
        ));
    }
    if let Some(control) = text.chars().find(|c| c.is_control()) {
        return Err(ValidationError::new(
            field,
            text,
            format!("contains the control character U+{:04X}", u32::from(control)),
        ));
    }
    Ok(())
}

/// Checks a multi-line description: newlines and tabs are allowed, other
/// control characters are not.
pub fn check_description(field: &str, text: &str) -> Result<(), ValidationError> {
    let length = text.chars().count();
    if length > MAX_DESCRIPTION_CHARS {
        return Err(ValidationError::new(
            field,
            text,
            format!("is {length} characters long; the maximum is {MAX_DESCRIPTION_CHARS}"),
        ));
    }
    if let Some(control) = text
        .chars()
        .find(|c| c.is_control() && !matches!(c, '\n' | '\t' | '\r'))
    {
        return Err(ValidationError::new(
            field,
            text,
            format!("contains the control character U+{:04X}", u32::from(control)),
        ));
    }
    Ok(())
}

/// Checks a login: 1 to 100 characters of letters, digits, '-', '_' and '.',
/// starting with a letter or digit (GitHub logins and most account names fit).
pub fn check_login(field: &str, login: &str) -> Result<(), ValidationError> {
    check_name(field, login, MAX_LOGIN_CHARS)?;
    let valid_chars = login
        .chars()
        .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'));
    let valid_start = login.chars().next().is_some_and(char::is_alphanumeric);
    if !valid_chars || !valid_start {
        return Err(ValidationError::new(
            field,
            login,
            "a login contains only letters, digits, '-', '_' and '.', and starts with a letter or digit",
        ));
    }
    Ok(())
}

/// Checks an e-mail address: one '@' between a non-empty local part and a
/// domain with at least one dot, no whitespace or control characters.
pub fn check_email(field: &str, email: &str) -> Result<(), ValidationError> {
    check_name(field, email, MAX_EMAIL_CHARS)?;
    let invalid = || {
        ValidationError::new(
            field,
            email,
            "not an e-mail address; expected a form such as name@example.com",
        )
    };
    let (local, domain) = email.split_once('@').ok_or_else(invalid)?;
    let domain_labels_valid = domain.split('.').all(|label| {
        !label.is_empty()
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label.chars().all(|c| c.is_alphanumeric() || c == '-')
    });
    let valid = !local.is_empty()
        && local.len() <= 64
        && !local.starts_with('.')
        && !local.ends_with('.')
        && !local.contains("..")
        && !local.chars().any(|c| c.is_whitespace() || matches!(c, '@' | '<' | '>' | '(' | ')' | ',' | ';' | ':' | '"' | '[' | ']' | '\\'))
        && domain.contains('.')
        && domain_labels_valid;
    if valid { Ok(()) } else { Err(invalid()) }
}

/// Checks a color: empty, or a CSS hex color `#rgb` or `#rrggbb`.
pub fn check_color(field: &str, color: &str) -> Result<(), ValidationError> {
    if color.is_empty() {
        return Ok(());
    }
    let digits = color.strip_prefix('#').unwrap_or("");
    let valid = matches!(digits.len(), 3 | 6) && digits.chars().all(|c| c.is_ascii_hexdigit());
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            color,
            "not a color; expected a hex color such as #1a73e8",
        ))
    }
}

/// Checks an identifier such as a permission or resource type name:
/// lowercase ASCII letters, digits, '_' and '.', starting with a letter.
pub fn check_identifier(field: &str, identifier: &str) -> Result<(), ValidationError> {
    check_name(field, identifier, MAX_IDENTIFIER_CHARS)?;
    let valid = identifier.starts_with(|c: char| c.is_ascii_lowercase())
        && identifier
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.'));
    if valid {
        Ok(())
    } else {
        Err(ValidationError::new(
            field,
            identifier,
            "contains only lowercase letters, digits, '_' and '.', and starts with a letter",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_reject_empty_long_and_control() {
        assert!(check_name("name", "", 10).is_err());
        assert!(check_name("name", "abcdefghijk", 10).is_err());
        assert!(check_name("name", "a\u{7}b", 10).is_err());
        assert!(check_name("name", " padded", 10).is_err());
        assert!(check_name("name", "sig/docs", 10).is_ok());
    }

    #[test]
    fn email_accepts_addresses_only() {
        assert!(check_email("email", "Ada.Lovelace@example.com").is_ok());
        for bad in ["", "ada", "ada@", "@example.com", "ada@example", "a b@example.com", "ada@@example.com", "ada@exa mple.com", "ada@-example.com"] {
            assert!(check_email("email", bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn login_rules() {
        assert!(check_login("login", "Ada-L_1.x").is_ok());
        assert!(check_login("login", "-ada").is_err());
        assert!(check_login("login", "ada lovelace").is_err());
    }

    #[test]
    fn color_rules() {
        assert!(check_color("color", "").is_ok());
        assert!(check_color("color", "#1A73e8").is_ok());
        assert!(check_color("color", "#abc").is_ok());
        assert!(check_color("color", "1a73e8").is_err());
        assert!(check_color("color", "#12345g").is_err());
    }

    #[test]
    fn fold_ignores_case() {
        assert_eq!(fold("Sig-Docs"), fold("SIG-DOCS"));
    }
}
