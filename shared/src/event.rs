//! One event of the contract: its validation and the normalised form the edge
//! stores. A bad event is rejected on its own; it never spoils its batch.

use crate::limits::{
    MAX_EVENT_AGE_MS, MAX_EVENT_NAME_CHARS, MAX_ID_CHARS, MAX_TRAIT_KEY_CHARS, MAX_TRAIT_VALUE_BYTES, MAX_TRAITS,
};
use crate::time::parse_rfc3339_ms;
use serde_json::{Map, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    Track,
    Identify,
    Page,
}

impl EventType {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "track" => Some(Self::Track),
            "identify" => Some(Self::Identify),
            "page" => Some(Self::Page),
            _ => None,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Track => "track",
            Self::Identify => "identify",
            Self::Page => "page",
        }
    }
}

/// A validated event, ready to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Canonical lower-case hyphenated UUID: the idempotency key of the event.
    pub id: String,
    pub event_type: EventType,
    /// The event name; for `identify` and `page` it is the type itself unless one is given.
    pub name: String,
    pub anonymous_id: Option<String>,
    pub user_id: Option<String>,
    /// When it happened, corrected for the sender's clock skew.
    pub occurred_at_ms: i64,
    /// The event object as sent, with `id` canonicalised; kept for replay.
    pub payload: Map<String, Value>,
}

/// Why one event of a batch was refused. `code` is stable, `message` explains.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRejection {
    pub code: &'static str,
    pub message: String,
}

impl EventRejection {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

/// Validates one event object. `clock_offset_ms` is what to add to the sender's
/// clock to get ours (from `sent_at`); `received_at_ms` is our clock now.
pub fn validate_event(value: &Value, clock_offset_ms: i64, received_at_ms: i64) -> Result<Event, EventRejection> {
    let obj = value
        .as_object()
        .ok_or_else(|| EventRejection::new("invalid_event", "an event must be a JSON object"))?;

    let id = obj
        .get("id")
        .and_then(Value::as_str)
        .and_then(|s| uuid::Uuid::try_parse(s).ok())
        .filter(|u| !u.is_nil())
        .ok_or_else(|| EventRejection::new("invalid_id", "`id` must be a UUID (the SDK sends v7)"))?
        .hyphenated()
        .to_string();

    let event_type = obj
        .get("type")
        .and_then(Value::as_str)
        .and_then(EventType::parse)
        .ok_or_else(|| EventRejection::new("invalid_type", "`type` must be one of track, identify, page"))?;

    let name = match obj.get("event") {
        Some(Value::String(s)) if is_valid_name(s) => s.clone(),
        None | Some(Value::Null) if event_type != EventType::Track => event_type.as_str().to_owned(),
        None | Some(Value::Null) => {
            return Err(EventRejection::new(
                "missing_event",
                "a track event needs an `event` name",
            ));
        }
        Some(_) => {
            return Err(EventRejection::new(
                "invalid_event_name",
                format!("`event` must be 1 to {MAX_EVENT_NAME_CHARS} printable characters"),
            ));
        }
    };

    if name == crate::engine::config::REFERRAL_CONFIRMED {
        // The engine emits it when a quest completes; a client saying so would
        // be awarding itself the referrer's points.
        return Err(EventRejection::new(
            "reserved_event",
            format!("`{name}` is emitted by refloop itself and cannot be sent"),
        ));
    }

    let anonymous_id = optional_id(obj, "anonymous_id")?;
    let user_id = optional_id(obj, "user_id")?;
    if anonymous_id.is_none() && user_id.is_none() {
        return Err(EventRejection::new(
            "missing_identity",
            "an event needs an `anonymous_id` or a `user_id`",
        ));
    }
    if event_type == EventType::Identify && user_id.is_none() {
        return Err(EventRejection::new("missing_user_id", "identify needs a `user_id`"));
    }

    for field in ["properties", "traits", "attribution"] {
        match obj.get(field) {
            None | Some(Value::Null) | Some(Value::Object(_)) => {}
            Some(_) => {
                return Err(EventRejection::new(
                    "invalid_field",
                    format!("`{field}` must be an object"),
                ));
            }
        }
    }

    if let Some(Value::Object(traits)) = obj.get("traits") {
        check_traits(traits)?;
    }

    let occurred_at_ms = match obj.get("timestamp") {
        None | Some(Value::Null) => received_at_ms,
        Some(Value::String(s)) => {
            let sent = parse_rfc3339_ms(s)
                .ok_or_else(|| EventRejection::new("invalid_timestamp", "`timestamp` must be RFC 3339"))?;
            // A clock that runs ahead must not put events in our future, nor
            // one that runs behind (or lies) months into the past.
            sent.saturating_add(clock_offset_ms)
                .min(received_at_ms)
                .max(received_at_ms - MAX_EVENT_AGE_MS)
        }
        Some(_) => {
            return Err(EventRejection::new("invalid_timestamp", "`timestamp` must be RFC 3339"));
        }
    };

    let mut payload = obj.clone();
    payload.insert("id".into(), Value::String(id.clone()));
    Ok(Event {
        id,
        event_type,
        name,
        anonymous_id,
        user_id,
        occurred_at_ms,
        payload,
    })
}

/// Traits become a participant's record, so they are bounded: how many, how
/// long a key, how large a value.
fn check_traits(traits: &Map<String, Value>) -> Result<(), EventRejection> {
    if traits.len() > MAX_TRAITS {
        return Err(EventRejection::new(
            "too_many_traits",
            format!("an event sets at most {MAX_TRAITS} traits"),
        ));
    }
    for (k, v) in traits {
        if k.is_empty() || k.chars().count() > MAX_TRAIT_KEY_CHARS || k.chars().any(char::is_control) {
            return Err(EventRejection::new(
                "invalid_trait",
                format!("a trait key is 1 to {MAX_TRAIT_KEY_CHARS} printable characters"),
            ));
        }
        if k.starts_with('$') {
            return Err(EventRejection::new(
                "invalid_trait",
                format!("trait keys that start with `$` are refloop's own (`{k}`)"),
            ));
        }
        if v.to_string().len() > MAX_TRAIT_VALUE_BYTES {
            return Err(EventRejection::new(
                "invalid_trait",
                format!("trait `{k}` is larger than {MAX_TRAIT_VALUE_BYTES} bytes"),
            ));
        }
    }
    Ok(())
}

fn is_valid_name(s: &str) -> bool {
    let n = s.chars().count();
    (1..=MAX_EVENT_NAME_CHARS).contains(&n) && !s.chars().any(char::is_control) && s.trim() == s
}

fn optional_id(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, EventRejection> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if is_valid_name(s) && s.chars().count() <= MAX_ID_CHARS => Ok(Some(s.clone())),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(_) => Err(EventRejection::new(
            "invalid_field",
            format!("`{field}` must be a string of 1 to {MAX_ID_CHARS} printable characters"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn ok(v: Value) -> Event {
        validate_event(&v, 0, NOW).expect("valid")
    }

    fn code(v: Value) -> &'static str {
        validate_event(&v, 0, NOW).unwrap_err().code
    }

    #[test]
    fn a_track_event_is_normalised() {
        let e = ok(
            json!({"id":"0190F3C2-8E4B-7A4E-9F7A-2B1C3D4E5F60","type":"track","event":"signup",
                          "anonymous_id":"a1","timestamp":"2027-01-15T08:00:00Z","properties":{"plan":"pro"}}),
        );
        assert_eq!(e.id, "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60");
        assert_eq!(e.payload["id"], "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60");
        assert_eq!(e.name, "signup");
        assert_eq!(e.event_type, EventType::Track);
        assert_eq!(
            e.occurred_at_ms,
            1_800_000_000_000.min(parse_rfc3339_ms("2027-01-15T08:00:00Z").unwrap())
        );
    }

    #[test]
    fn page_and_identify_take_their_type_as_name() {
        let e = ok(json!({"id":"0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60","type":"page","anonymous_id":"a"}));
        assert_eq!(e.name, "page");
        assert_eq!(e.occurred_at_ms, NOW);
        assert_eq!(
            code(json!({"id":"0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60","type":"identify","anonymous_id":"a"})),
            "missing_user_id"
        );
    }

    #[test]
    fn bad_events_are_rejected_with_a_reason() {
        let id = "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60";
        assert_eq!(code(json!([1])), "invalid_event");
        assert_eq!(
            code(json!({"id":"nope","type":"track","event":"x","anonymous_id":"a"})),
            "invalid_id"
        );
        assert_eq!(
            code(json!({"id":"00000000-0000-0000-0000-000000000000","type":"track","event":"x","anonymous_id":"a"})),
            "invalid_id"
        );
        assert_eq!(
            code(json!({"id":id,"type":"alias","event":"x","anonymous_id":"a"})),
            "invalid_type"
        );
        assert_eq!(
            code(json!({"id":id,"type":"track","anonymous_id":"a"})),
            "missing_event"
        );
        assert_eq!(
            code(json!({"id":id,"type":"track","event":"","anonymous_id":"a"})),
            "invalid_event_name"
        );
        assert_eq!(
            code(json!({"id":id,"type":"track","event":"x".repeat(129),"anonymous_id":"a"})),
            "invalid_event_name"
        );
        assert_eq!(code(json!({"id":id,"type":"track","event":"x"})), "missing_identity");
        assert_eq!(
            code(json!({"id":id,"type":"track","event":"x","anonymous_id":7})),
            "invalid_field"
        );
        assert_eq!(
            code(json!({"id":id,"type":"track","event":"x","anonymous_id":"a","properties":[1]})),
            "invalid_field"
        );
        assert_eq!(
            code(json!({"id":id,"type":"track","event":"x","anonymous_id":"a","timestamp":"soon"})),
            "invalid_timestamp"
        );
    }

    #[test]
    fn clock_skew_is_corrected_and_the_future_is_clamped() {
        let id = "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60";
        let v = json!({"id":id,"type":"track","event":"x","anonymous_id":"a","timestamp":crate::time::format_rfc3339_ms(NOW - 5_000)});
        // The sender's clock is 60 s behind ours.
        assert_eq!(validate_event(&v, 60_000, NOW).unwrap().occurred_at_ms, NOW);
        assert_eq!(validate_event(&v, 1_000, NOW).unwrap().occurred_at_ms, NOW - 4_000);
    }
}
