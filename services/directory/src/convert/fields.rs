//! Checks and conversions of single request fields: ids, timestamps, enums,
//! subjects, update masks and list lengths. Every error names
//! the field path it was given.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use prost_types::{FieldMask, Timestamp};
use workteams_domain::{
    InvitationId, InvitationState, MemberRole, MemberStatus, OrganizationId, ResourceId, Subject,
    TeamId, UserId, ValidationError,
};
use workteams_proto::directory::v1 as proto;

/// A typed id that parses its canonical text, naming the field on error.
pub trait ParseId: Sized {
    fn parse_field(field: &str, text: &str) -> Result<Self, ValidationError>;
}

macro_rules! parse_id {
    ($($id:ty),*) => {
        $(impl ParseId for $id {
            fn parse_field(field: &str, text: &str) -> Result<Self, ValidationError> {
                <$id>::parse(field, text)
            }
        })*
    };
}

parse_id!(OrganizationId, UserId, TeamId, ResourceId, InvitationId);

/// Parses a required id.
pub fn required_id<T: ParseId>(field: &str, text: &str) -> Result<T, ValidationError> {
    T::parse_field(field, text)
}

/// Parses an optional id: empty text means none.
pub fn optional_id<T: ParseId>(field: &str, text: &str) -> Result<Option<T>, ValidationError> {
    if text.is_empty() {
        Ok(None)
    } else {
        T::parse_field(field, text).map(Some)
    }
}

/// Parses a list of ids, naming the position of a bad one (`user_ids[3]`).
pub fn id_list<T: ParseId>(field: &str, texts: &[String]) -> Result<Vec<T>, ValidationError> {
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| T::parse_field(&format!("{field}[{index}]"), text))
        .collect()
}

pub fn timestamp_to_proto(time: DateTime<Utc>) -> Timestamp {
    Timestamp {
        seconds: time.timestamp(),
        // After the `min` the value fits an i32, so the fallback never runs.
        // Leap seconds (1,000,000,000 and up) fold into the last nanosecond.
        nanos: i32::try_from(time.timestamp_subsec_nanos().min(999_999_999)).unwrap_or(999_999_999),
    }
}

/// Parses an optional timestamp; a present one must be a valid instant.
pub fn optional_timestamp(
    field: &str,
    timestamp: Option<Timestamp>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    let Some(timestamp) = timestamp else {
        return Ok(None);
    };
    let Timestamp { seconds, nanos } = timestamp;
    let invalid = || {
        ValidationError::new(
            field,
            format!("{seconds}s {nanos}ns"),
            "not a valid timestamp; seconds must be within years 1 to 9999 and nanos within 0 to 999,999,999",
        )
    };
    let nanos = u32::try_from(nanos).map_err(|_| invalid())?;
    if nanos > 999_999_999 {
        return Err(invalid());
    }
    DateTime::<Utc>::from_timestamp(seconds, nanos)
        .filter(|time| (1..=9999).contains(&chrono::Datelike::year(time)))
        .map(Some)
        .ok_or_else(invalid)
}

/// Parses an optional expiry, which must lie after `now`.
pub fn optional_future_time(
    field: &str,
    timestamp: Option<Timestamp>,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ValidationError> {
    let time = optional_timestamp(field, timestamp)?;
    if let Some(time) = time
        && time <= now
    {
        return Err(ValidationError::new(
            field,
            time.to_rfc3339(),
            "must be in the future; leave it unset for no expiry",
        ));
    }
    Ok(time)
}

/// Parses a member role that the request must set.
pub fn required_role(field: &str, value: i32) -> Result<MemberRole, ValidationError> {
    match proto::MemberRole::try_from(value) {
        Ok(proto::MemberRole::Owner) => Ok(MemberRole::Owner),
        Ok(proto::MemberRole::Administrator) => Ok(MemberRole::Administrator),
        Ok(proto::MemberRole::Collaborator) => Ok(MemberRole::Collaborator),
        Ok(proto::MemberRole::External) => Ok(MemberRole::External),
        Ok(proto::MemberRole::Unspecified) => Err(ValidationError::new(
            field,
            "MEMBER_ROLE_UNSPECIFIED",
            "a role is required: owner, administrator, collaborator or external",
        )),
        Err(_) => Err(ValidationError::new(
            field,
            value.to_string(),
            "not a member role: owner, administrator, collaborator or external",
        )),
    }
}

/// Parses a member role that may be left unspecified, meaning none.
pub fn optional_role(field: &str, value: i32) -> Result<Option<MemberRole>, ValidationError> {
    if value == proto::MemberRole::Unspecified as i32 {
        return Ok(None);
    }
    required_role(field, value).map(Some)
}

/// Parses a member status; unspecified means `default`.
pub fn status_or(
    field: &str,
    value: i32,
    default: MemberStatus,
) -> Result<MemberStatus, ValidationError> {
    match proto::MemberStatus::try_from(value) {
        Ok(proto::MemberStatus::Unspecified) => Ok(default),
        Ok(proto::MemberStatus::Active) => Ok(MemberStatus::Active),
        Ok(proto::MemberStatus::Suspended) => Ok(MemberStatus::Suspended),
        Err(_) => Err(ValidationError::new(
            field,
            value.to_string(),
            "not a member status: active or suspended",
        )),
    }
}

/// Parses a member status that the request must set.
pub fn required_status(field: &str, value: i32) -> Result<MemberStatus, ValidationError> {
    if value == i32::from(proto::MemberStatus::Unspecified) {
        return Err(ValidationError::new(
            field,
            "MEMBER_STATUS_UNSPECIFIED",
            "a status is required: active or suspended",
        ));
    }
    status_or(field, value, MemberStatus::Active)
}

/// Parses an optional invitation state filter; unspecified means any.
pub fn optional_invitation_state(
    field: &str,
    value: i32,
) -> Result<Option<InvitationState>, ValidationError> {
    match proto::InvitationState::try_from(value) {
        Ok(proto::InvitationState::Unspecified) => Ok(None),
        Ok(proto::InvitationState::Pending) => Ok(Some(InvitationState::Pending)),
        Ok(proto::InvitationState::Accepted) => Ok(Some(InvitationState::Accepted)),
        Ok(proto::InvitationState::Revoked) => Ok(Some(InvitationState::Revoked)),
        Ok(proto::InvitationState::Expired) => Ok(Some(InvitationState::Expired)),
        Err(_) => Err(ValidationError::new(
            field,
            value.to_string(),
            "not an invitation state: pending, accepted, revoked or expired",
        )),
    }
}

/// Parses a subject that the request must set.
pub fn required_subject(
    field: &str,
    subject: Option<proto::Subject>,
) -> Result<Subject, ValidationError> {
    let missing =
        || ValidationError::new(field, "", "a subject is required: set team_id or user_id");
    let proto::Subject { kind } = subject.ok_or_else(missing)?;
    match kind.ok_or_else(missing)? {
        proto::subject::Kind::TeamId(text) => {
            required_id(&format!("{field}.team_id"), &text).map(Subject::Team)
        }
        proto::subject::Kind::UserId(text) => {
            required_id(&format!("{field}.user_id"), &text).map(Subject::User)
        }
    }
}

/// Parses an optional subject filter.
pub fn optional_subject(
    field: &str,
    subject: Option<proto::Subject>,
) -> Result<Option<Subject>, ValidationError> {
    match subject {
        None | Some(proto::Subject { kind: None }) => Ok(None),
        Some(subject) => required_subject(field, Some(subject)).map(Some),
    }
}

/// Checks the length of a list against its limit before anything is written.
pub fn check_list_length(field: &str, length: usize, max: usize) -> Result<(), ValidationError> {
    if length > max {
        return Err(ValidationError::new(
            field,
            format!("{length} items"),
            format!("at most {max} items per request; split the request"),
        ));
    }
    Ok(())
}

/// Resolves an update mask against the paths a request supports.
///
/// An empty or missing mask is rejected: with proto3 defaults, "update every
/// field" would silently clear fields the client did not mean to touch. The
/// single path `*` selects every supported path (AIP-134 full replacement).
pub fn update_mask(
    field: &str,
    mask: Option<FieldMask>,
    supported: &[&'static str],
) -> Result<BTreeSet<&'static str>, ValidationError> {
    let paths = mask.map(|FieldMask { paths }| paths).unwrap_or_default();
    if paths.is_empty() {
        return Err(ValidationError::new(
            field,
            "",
            format!(
                "list the fields to update, from: {}; or \"*\" for all of them",
                supported.join(", ")
            ),
        ));
    }
    if paths.len() == 1 && paths[0] == "*" {
        return Ok(supported.iter().copied().collect());
    }

    let mut selected = BTreeSet::new();
    for (index, path) in paths.iter().enumerate() {
        let known = supported
            .iter()
            .find(|candidate| **candidate == path.as_str())
            .ok_or_else(|| {
                ValidationError::new(
                    format!("{field}.paths[{index}]"),
                    path,
                    format!(
                        "not an updatable field; use one of: {}",
                        supported.join(", ")
                    ),
                )
            })?;
        selected.insert(*known);
    }
    Ok(selected)
}

/// Optional text such as an e-mail address: empty means none.
pub fn optional_text(text: String) -> Option<String> {
    if text.is_empty() { None } else { Some(text) }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn mask_unknown_path_named() {
        let mask = FieldMask {
            paths: vec!["name".to_owned(), "colour".to_owned()],
        };
        let error = update_mask("update_mask", Some(mask), &["name", "color"]).unwrap_err();
        assert_eq!(error.field, "update_mask.paths[1]");
        assert_eq!(error.value, "colour");
    }

    #[test]
    fn mask_empty_rejected() {
        let error = update_mask("update_mask", None, &["name"]).unwrap_err();
        assert_eq!(error.field, "update_mask");
    }

    #[test]
    fn mask_star_selects_all() {
        let mask = FieldMask {
            paths: vec!["*".to_owned()],
        };
        let selected = update_mask("update_mask", Some(mask), &["name", "color"]).unwrap();
        assert_eq!(selected.len(), 2);
    }

    #[test]
    fn id_list_names_position() {
        let texts = vec![UserId::generate().to_string(), "nope".to_owned()];
        let error = id_list::<UserId>("user_ids", &texts).unwrap_err();
        assert_eq!(error.field, "user_ids[1]");
    }

    #[test]
    fn subject_user_id_named() {
        let subject = proto::Subject {
            kind: Some(proto::subject::Kind::UserId("X".to_owned())),
        };
        let error = required_subject("subject", Some(subject)).unwrap_err();
        assert_eq!(error.field, "subject.user_id");
    }

    #[test]
    fn timestamp_nanos_out_of_range_rejected() {
        let timestamp = Timestamp {
            seconds: 0,
            nanos: 1_000_000_000,
        };
        assert!(optional_timestamp("expire_time", Some(timestamp)).is_err());
    }

    #[test]
    fn timestamp_round_trips() {
        let now = Utc::now();
        let parsed = optional_timestamp("t", Some(timestamp_to_proto(now))).unwrap();
        assert_eq!(parsed, Some(now));
    }

    #[test]
    fn unknown_role_rejected() {
        assert!(required_role("role", 42).is_err());
        assert!(required_role("role", 0).is_err());
    }
}
