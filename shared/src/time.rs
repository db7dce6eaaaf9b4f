//! Timestamps of the contract are RFC 3339 strings; inside, milliseconds since
//! the Unix epoch (UTC), which SQLite sorts and compares as plain integers.

use chrono::{DateTime, SecondsFormat, Utc};

/// Milliseconds since the epoch of an RFC 3339 timestamp, if it is one.
pub fn parse_rfc3339_ms(s: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(s).ok().map(|t| t.timestamp_millis())
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-21T19:30:00.000Z`.
pub fn format_rfc3339_ms(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_offsets() {
        let ms = parse_rfc3339_ms("2026-11-21T19:30:00.123Z").unwrap();
        assert_eq!(format_rfc3339_ms(ms), "2026-11-21T19:30:00.123Z");
        assert_eq!(parse_rfc3339_ms("2026-11-21T20:30:00.123+01:00"), Some(ms));
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("2026-11-21"), None);
    }
}
