//! `POST /v1/batch` and `POST /v1/server/events` without the I/O: parse the body,
//! validate each event, plan which rows to insert, and shape the answer from
//! what the database reported. The edge only executes the plan.

use crate::error::{ApiError, ErrorCode, json_string};
use crate::event::{Event, EventRejection, validate_event};
use crate::limits::{MAX_BATCH_BYTES, MAX_BATCH_EVENTS};
use crate::time::parse_rfc3339_ms;
use serde_json::Value;
use std::collections::HashSet;

/// A parsed batch: the envelope and each event's validation.
#[derive(Debug)]
pub struct Batch {
    /// `key` of the body; `None` when absent (server events authenticate by header).
    pub key: Option<String>,
    pub events: Vec<Result<Event, EventRejection>>,
}

/// Parses a batch body, whatever the Content-Type it came with (beacons send
/// `text/plain`). Errors here refuse the whole batch; per-event problems are in
/// `Batch::events`.
pub fn parse_batch(body: &[u8], received_at_ms: i64) -> Result<Batch, ApiError> {
    if body.len() > MAX_BATCH_BYTES {
        return Err(too_large());
    }
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(ErrorCode::MalformedRequest, format!("the body is not valid JSON: {e}")))?;
    let Value::Object(mut root) = root else {
        return Err(ApiError::new(
            ErrorCode::MalformedRequest,
            "the body must be a JSON object",
        ));
    };
    let key = match root.remove("key") {
        None | Some(Value::Null) => None,
        Some(Value::String(k)) => Some(k),
        Some(_) => {
            return Err(ApiError::new(ErrorCode::MalformedRequest, "`key` must be a string"));
        }
    };
    let clock_offset_ms = match root.get("sent_at") {
        None | Some(Value::Null) => 0,
        Some(Value::String(s)) => parse_rfc3339_ms(s)
            .map(|sent| received_at_ms.saturating_sub(sent))
            .ok_or_else(|| ApiError::new(ErrorCode::MalformedRequest, "`sent_at` must be an RFC 3339 timestamp"))?,
        Some(_) => {
            return Err(ApiError::new(ErrorCode::MalformedRequest, "`sent_at` must be a string"));
        }
    };
    let Some(Value::Array(raw_events)) = root.remove("events") else {
        return Err(ApiError::new(ErrorCode::MalformedRequest, "`events` must be an array"));
    };
    if raw_events.len() > MAX_BATCH_EVENTS {
        return Err(ApiError::new(
            ErrorCode::TooManyEvents,
            format!("a batch holds at most {MAX_BATCH_EVENTS} events; split it"),
        ));
    }
    let events = raw_events
        .iter()
        .map(|v| validate_event(v, clock_offset_ms, received_at_ms))
        .collect();
    Ok(Batch { key, events })
}

pub fn too_large() -> ApiError {
    ApiError::new(
        ErrorCode::PayloadTooLarge,
        format!("a batch is at most {MAX_BATCH_BYTES} bytes; split it"),
    )
}

/// What to write for a batch: the events to insert (each insert ignores an id
/// the site already has), and what is already known without asking the database.
#[derive(Debug, Default)]
pub struct InsertPlan {
    pub inserts: Vec<Event>,
    /// The same id twice in one batch: the later copies are duplicates.
    pub duplicates_in_batch: usize,
    pub rejected: Vec<(usize, EventRejection)>,
}

pub fn plan_inserts(events: Vec<Result<Event, EventRejection>>) -> InsertPlan {
    let mut plan = InsertPlan::default();
    let mut seen = HashSet::new();
    for (index, event) in events.into_iter().enumerate() {
        match event {
            Ok(e) if !seen.insert(e.id.clone()) => plan.duplicates_in_batch += 1,
            Ok(e) => plan.inserts.push(e),
            Err(r) => plan.rejected.push((index, r)),
        }
    }
    plan
}

/// The `202` answer of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOutcome {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: Vec<(usize, EventRejection)>,
}

impl BatchOutcome {
    /// `inserted[i]` says whether `plan.inserts[i]` made a new row; an insert that
    /// changed nothing met an id stored before: a duplicate.
    pub fn new(plan: InsertPlan, inserted: &[bool]) -> Self {
        assert_eq!(
            inserted.len(),
            plan.inserts.len(),
            "one database answer per planned insert"
        );
        let accepted = inserted.iter().filter(|&&new| new).count();
        Self {
            accepted,
            duplicates: plan.duplicates_in_batch + (inserted.len() - accepted),
            rejected: plan.rejected,
        }
    }

    pub fn to_json(&self) -> String {
        let rejected: Vec<String> = self
            .rejected
            .iter()
            .map(|(i, r)| {
                format!(
                    r#"{{"index":{i},"error":{},"message":{}}}"#,
                    json_string(r.code),
                    json_string(&r.message)
                )
            })
            .collect();
        format!(
            r#"{{"accepted":{},"duplicates":{},"rejected":[{}]}}"#,
            self.accepted,
            self.duplicates,
            rejected.join(",")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_800_000_000_000;

    fn ev(id: &str) -> Value {
        json!({"id": id, "type": "track", "event": "hello", "anonymous_id": "anon"})
    }

    fn body(v: Value) -> Vec<u8> {
        serde_json::to_vec(&v).unwrap()
    }

    #[test]
    fn envelope_errors_refuse_the_whole_batch() {
        let code = |b: &[u8]| parse_batch(b, NOW).unwrap_err().code;
        assert_eq!(code(b"not json"), ErrorCode::MalformedRequest);
        assert_eq!(code(b"[]"), ErrorCode::MalformedRequest);
        assert_eq!(code(&body(json!({"key":"pk_x"}))), ErrorCode::MalformedRequest);
        assert_eq!(code(&body(json!({"key":1,"events":[]}))), ErrorCode::MalformedRequest);
        assert_eq!(
            code(&body(json!({"sent_at":"now","events":[]}))),
            ErrorCode::MalformedRequest
        );
        let many: Vec<Value> = (0..101).map(|_| ev("0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60")).collect();
        assert_eq!(code(&body(json!({"events": many}))), ErrorCode::TooManyEvents);
        assert_eq!(code(&vec![b' '; MAX_BATCH_BYTES + 1]), ErrorCode::PayloadTooLarge);
    }

    #[test]
    fn per_event_outcomes() {
        let b = parse_batch(
            &body(json!({"key":"pk_demo","sent_at":"2027-01-15T08:00:00Z","events":[
                ev("0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60"),
                {"id":"bad"},
                ev("0190F3C2-8E4B-7A4E-9F7A-2B1C3D4E5F60"),
                ev("0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f61"),
            ]})),
            NOW,
        )
        .unwrap();
        assert_eq!(b.key.as_deref(), Some("pk_demo"));
        let plan = plan_inserts(b.events);
        assert_eq!(plan.inserts.len(), 2);
        assert_eq!(plan.duplicates_in_batch, 1, "the upper-case copy is the same id");
        // The database already had the second id.
        let outcome = BatchOutcome::new(plan, &[true, false]);
        let v: Value = serde_json::from_str(&outcome.to_json()).unwrap();
        assert_eq!(v["accepted"], 1);
        assert_eq!(v["duplicates"], 2);
        assert_eq!(v["rejected"][0]["index"], 1);
        assert_eq!(v["rejected"][0]["error"], "invalid_id");
    }

    proptest! {
        // Whatever arrives, the parser answers with a value, never a panic, and
        // every event of the batch is accounted for exactly once.
        #[test]
        fn every_event_is_accounted_for(bytes in proptest::collection::vec(any::<u8>(), 0..512),
                                        ids in proptest::collection::vec(0u8..6, 0..40)) {
            let _ = parse_batch(&bytes, NOW);
            let events: Vec<Value> = ids.iter().map(|i| if *i == 5 { json!({"id": "x"}) } else {
                ev(&format!("0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f6{i}"))
            }).collect();
            let n = events.len();
            let b = parse_batch(&body(json!({"events": events})), NOW).unwrap();
            let plan = plan_inserts(b.events);
            let inserted = vec![true; plan.inserts.len()];
            let o = BatchOutcome::new(plan, &inserted);
            prop_assert_eq!(o.accepted + o.duplicates + o.rejected.len(), n);
            let distinct: HashSet<_> = ids.iter().filter(|i| **i != 5).collect();
            prop_assert_eq!(o.accepted, distinct.len());
        }
    }
}
