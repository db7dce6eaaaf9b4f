//! The outgoing queue, without the browser: events are kept as their JSON text
//! (serialised once, when tracked) so a batch is a concatenation, its size is
//! known before sending, and the same id goes out on every retry.

use refloop_core::error::json_string;
use refloop_core::limits::MAX_BATCH_EVENTS;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedEvent {
    pub id: String,
    /// The event object as JSON text.
    pub json: String,
}

#[derive(Debug, Default)]
pub struct Queue {
    events: Vec<QueuedEvent>,
}

impl Queue {
    pub fn push(&mut self, event: QueuedEvent) {
        self.events.push(event);
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// Removes every queued event and returns them cut into batches of at most
    /// `max_body_bytes` (the whole body, envelope included) and the contract's
    /// event limit, in order. An event too large to fit any batch alone is
    /// dropped: no send could ever succeed, and keeping it would block the rest.
    pub fn drain_batches(&mut self, key: &str, sent_at: &str, max_body_bytes: usize) -> Vec<Batch> {
        let envelope = batch_body(key, sent_at, &[]).len();
        let mut batches: Vec<Batch> = Vec::new();
        let mut current = Batch::default();
        let mut current_bytes = envelope;
        for event in self.events.drain(..) {
            // One comma between events.
            let cost = event.json.len() + 1;
            if envelope + cost > max_body_bytes {
                continue;
            }
            if current.events.len() == MAX_BATCH_EVENTS || current_bytes + cost > max_body_bytes {
                batches.push(std::mem::take(&mut current));
                current_bytes = envelope;
            }
            current_bytes += cost;
            current.events.push(event);
        }
        if !current.events.is_empty() {
            batches.push(current);
        }
        batches
    }
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Batch {
    pub events: Vec<QueuedEvent>,
}

impl Batch {
    pub fn body(&self, key: &str, sent_at: &str) -> String {
        batch_body(key, sent_at, &self.events)
    }
}

/// The `POST /v1/batch` body.
pub fn batch_body(key: &str, sent_at: &str, events: &[QueuedEvent]) -> String {
    let mut body = String::with_capacity(64 + events.iter().map(|e| e.json.len() + 1).sum::<usize>());
    body.push_str(r#"{"key":"#);
    body.push_str(&json_string(key));
    body.push_str(r#","sent_at":"#);
    body.push_str(&json_string(sent_at));
    body.push_str(r#","events":["#);
    for (i, e) in events.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&e.json);
    }
    body.push_str("]}");
    body
}

/// The JSON text of one event. `properties` and `traits` arrive already as JSON
/// text (the browser's own `JSON.stringify`), so the wasm carries no JSON library.
pub struct EventFields<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub name: Option<&'a str>,
    pub anonymous_id: &'a str,
    pub user_id: Option<&'a str>,
    pub timestamp: &'a str,
    pub properties: Option<&'a str>,
    pub traits: Option<&'a str>,
    /// `{"ref","invite","at"}` for a signup, as JSON text.
    pub attribution: Option<&'a str>,
}

pub fn event_json(f: &EventFields<'_>) -> String {
    // Built with pushes, not `format!`: its machinery costs the wasm kilobytes.
    // The id comes first: the persisted queue finds events by it.
    let mut s = String::with_capacity(160);
    let mut field = |name: &str, raw: &str| {
        s.push(if s.is_empty() { '{' } else { ',' });
        s.push('"');
        s.push_str(name);
        s.push_str("\":");
        s.push_str(raw);
    };
    field("id", &json_string(f.id));
    field("type", &json_string(f.kind));
    field("anonymous_id", &json_string(f.anonymous_id));
    field("timestamp", &json_string(f.timestamp));
    if let Some(name) = f.name {
        field("event", &json_string(name));
    }
    if let Some(user_id) = f.user_id {
        field("user_id", &json_string(user_id));
    }
    if let Some(p) = f.properties {
        field("properties", p);
    }
    if let Some(t) = f.traits {
        field("traits", t);
    }
    if let Some(a) = f.attribution {
        field("attribution", a);
    }
    s.push('}');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(i: usize, pad: usize) -> QueuedEvent {
        let id = format!("id-{i}");
        QueuedEvent {
            json: format!(r#"{{"id":"{id}","p":"{}"}}"#, "x".repeat(pad)),
            id,
        }
    }

    #[test]
    fn batches_respect_bytes_and_count_and_keep_order() {
        let mut q = Queue::default();
        for i in 0..250 {
            q.push(ev(i, 10));
        }
        let batches = q.drain_batches("pk_k", "t", 1 << 20);
        assert_eq!(q.len(), 0);
        assert_eq!(
            batches.iter().map(|b| b.events.len()).collect::<Vec<_>>(),
            [100, 100, 50]
        );
        let mut q = Queue::default();
        for i in 0..10 {
            q.push(ev(i, 1000));
        }
        let batches = q.drain_batches("pk_k", "t", 3500);
        for b in &batches {
            assert!(b.body("pk_k", "t").len() <= 3500);
        }
        let ids: Vec<_> = batches
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.id.clone()))
            .collect();
        assert_eq!(ids, (0..10).map(|i| format!("id-{i}")).collect::<Vec<_>>());
    }

    #[test]
    fn an_event_larger_than_any_batch_is_dropped_not_stuck() {
        let mut q = Queue::default();
        q.push(ev(0, 10));
        q.push(ev(1, 5000));
        q.push(ev(2, 10));
        let batches = q.drain_batches("pk_k", "t", 1000);
        let ids: Vec<_> = batches
            .iter()
            .flat_map(|b| b.events.iter().map(|e| e.id.as_str()))
            .collect();
        assert_eq!(ids, ["id-0", "id-2"]);
    }

    #[test]
    fn event_json_escapes_and_omits_absent_fields() {
        let s = event_json(&EventFields {
            id: "i",
            kind: "track",
            name: Some("say \"hi\""),
            anonymous_id: "a",
            user_id: None,
            timestamp: "2026-01-01T00:00:00.000Z",
            properties: Some(r#"{"n":1}"#),
            traits: None,
            attribution: None,
        });
        assert_eq!(
            s,
            r#"{"id":"i","type":"track","anonymous_id":"a","timestamp":"2026-01-01T00:00:00.000Z","event":"say \"hi\"","properties":{"n":1}}"#
        );
    }
}
