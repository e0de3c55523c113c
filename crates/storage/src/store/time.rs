//! Timestamps as the database stores them: microseconds since the Unix
//! epoch, the precision both SQLite and PostgreSQL keep exactly.

use chrono::{DateTime, Utc};

use crate::error::StoreError;

/// The current time, truncated to microseconds so that a value returned by a
/// write equals the value read back later.
pub(crate) fn now() -> DateTime<Utc> {
    truncate(Utc::now())
}

/// Drops sub-microsecond precision.
pub(crate) fn truncate(time: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(time.timestamp_micros()).unwrap_or(time)
}

pub(crate) fn to_micros(time: DateTime<Utc>) -> i64 {
    time.timestamp_micros()
}

pub(crate) fn from_micros(micros: i64) -> Result<DateTime<Utc>, StoreError> {
    DateTime::from_timestamp_micros(micros)
        .ok_or_else(|| StoreError::corrupt(format!("timestamp {micros} out of range")))
}

pub(crate) fn optional_from_micros(micros: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    micros.map(from_micros).transpose()
}
