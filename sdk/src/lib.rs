//! refloop's browser SDK. The loader (`js/loader.js`) reads the script tag,
//! instantiates this module and exposes a `Client` as `window.refloop`.
//!
//! Rust holds the state and the decisions (`queue`); `transport` is the thin
//! browser shell that sends batches.

mod queue;
mod transport;

use queue::{EventFields, Queue, event_json};
use refloop_core::keys::{KeyKind, key_kind};
use refloop_core::limits::BEACON_CHUNK_BYTES;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use wasm_bindgen::prelude::*;

pub use queue::{QueuedEvent, batch_body};

const ANONYMOUS_ID_KEY: &str = "refloop.aid";

/// Settings from the script tag's `data-*` attributes, as the loader passes them.
struct Config {
    key: String,
    api: String,
    batch_size: usize,
    flush_ms: i32,
}

impl Config {
    fn from_js(value: &JsValue) -> Result<Self, JsValue> {
        let get = |name: &str| js_sys::Reflect::get(value, &JsValue::from_str(name)).ok();
        let key = get("key")
            .and_then(|v| v.as_string())
            .filter(|k| key_kind(k) == Some(KeyKind::Publishable))
            .ok_or_else(|| JsValue::from_str("data-key must be a publishable key (pk_…)"))?;
        let api = get("api")
            .and_then(|v| v.as_string())
            .ok_or_else(|| JsValue::from_str("the edge's address (data-api) is missing"))?;
        // Not f64::clamp: its assertion formats floats, which costs the wasm ~20 KB.
        let number = |name: &str, default: f64, min: f64, max: f64| {
            let n = get(name)
                .and_then(|v| v.as_f64())
                .filter(|n| n.is_finite())
                .unwrap_or(default);
            if n < min {
                min
            } else if n > max {
                max
            } else {
                n
            }
        };
        Ok(Self {
            key,
            api: api.trim_end_matches('/').to_owned(),
            batch_size: number("batchSize", 10.0, 1.0, 100.0) as usize,
            flush_ms: number("flushMs", 5000.0, 0.0, 600_000.0) as i32,
        })
    }

    fn batch_url(&self) -> String {
        let mut url = self.api.clone();
        url.push_str("/v1/batch");
        url
    }
}

pub(crate) struct State {
    config: Config,
    anonymous_id: RefCell<String>,
    user_id: RefCell<Option<String>>,
    queue: RefCell<Queue>,
    flush_timer: Cell<Option<i32>>,
}

/// One SDK instance, as `window.refloop` exposes it.
#[wasm_bindgen]
pub struct Client {
    state: Rc<State>,
}

#[wasm_bindgen]
impl Client {
    #[wasm_bindgen(constructor)]
    pub fn new(config: &JsValue) -> Result<Client, JsValue> {
        let config = Config::from_js(config)?;
        let anonymous_id = load_or_create_anonymous_id();
        let state = Rc::new(State {
            config,
            anonymous_id: RefCell::new(anonymous_id),
            user_id: RefCell::new(None),
            queue: RefCell::new(Queue::default()),
            flush_timer: Cell::new(None),
        });
        transport::flush_when_hidden(&state)?;
        Ok(Client { state })
    }

    /// Queues an event; returns its id (UUID v7).
    pub fn track(&self, event: &str, properties: JsValue) -> Result<String, JsValue> {
        let name = event.trim();
        if name.is_empty() || name.chars().count() > refloop_core::limits::MAX_EVENT_NAME_CHARS {
            return Err(JsValue::from_str("track needs an event name of 1 to 128 characters"));
        }
        self.enqueue("track", Some(name), None, &properties, &JsValue::UNDEFINED)
    }

    /// Links the anonymous id to the site's user id.
    pub fn identify(&self, user_id: &str, traits: JsValue) -> Result<String, JsValue> {
        let user_id = user_id.trim();
        if user_id.is_empty() {
            return Err(JsValue::from_str("identify needs a user id"));
        }
        *self.state.user_id.borrow_mut() = Some(user_id.to_owned());
        self.enqueue("identify", None, Some(user_id), &JsValue::UNDEFINED, &traits)
    }

    /// A page view.
    pub fn page(&self, properties: JsValue) -> Result<String, JsValue> {
        self.enqueue("page", None, None, &properties, &JsValue::UNDEFINED)
    }

    /// Sends what is queued now; resolves when the edge has answered.
    pub fn flush(&self) -> js_sys::Promise {
        transport::flush(&self.state)
    }

    #[wasm_bindgen(js_name = anonymousId)]
    pub fn anonymous_id(&self) -> String {
        self.state.anonymous_id.borrow().clone()
    }

    /// Logout: a new anonymous id, no user.
    pub fn reset(&self) {
        let id = new_event_id();
        storage().and_then(|s| s.set_item(ANONYMOUS_ID_KEY, &id).ok());
        *self.state.anonymous_id.borrow_mut() = id;
        *self.state.user_id.borrow_mut() = None;
    }

    /// How many events wait to be sent (for tests and debugging).
    #[wasm_bindgen(js_name = queuedCount)]
    pub fn queued_count(&self) -> usize {
        self.state.queue.borrow().len()
    }
}

impl Client {
    fn enqueue(
        &self,
        kind: &str,
        name: Option<&str>,
        user_id: Option<&str>,
        properties: &JsValue,
        traits: &JsValue,
    ) -> Result<String, JsValue> {
        let id = new_event_id();
        let properties = json_object(properties, "properties must be a plain object")?;
        let traits = json_object(traits, "traits must be a plain object")?;
        let timestamp: String = js_sys::Date::new_0().to_iso_string().into();
        let user_id = user_id
            .map(str::to_owned)
            .or_else(|| self.state.user_id.borrow().clone());
        let json = event_json(&EventFields {
            id: &id,
            kind,
            name,
            anonymous_id: &self.state.anonymous_id.borrow(),
            user_id: user_id.as_deref(),
            timestamp: &timestamp,
            properties: properties.as_deref(),
            traits: traits.as_deref(),
        });
        let queued = {
            let mut queue = self.state.queue.borrow_mut();
            queue.push(QueuedEvent { id: id.clone(), json });
            queue.len()
        };
        if queued >= self.state.config.batch_size {
            let _ = transport::flush(&self.state);
        } else {
            transport::schedule_flush(&self.state, self.state.config.flush_ms);
        }
        Ok(id)
    }
}

/// The JSON text of a plain object argument, `None` when it is absent.
fn json_object(value: &JsValue, what: &str) -> Result<Option<String>, JsValue> {
    if value.is_undefined() || value.is_null() {
        return Ok(None);
    }
    if !value.is_object() || js_sys::Array::is_array(value) {
        return Err(JsValue::from_str(what));
    }
    let text = js_sys::JSON::stringify(value)?;
    Ok(text.as_string())
}

fn new_event_id() -> String {
    let mut random = [0u8; 10];
    // getRandomValues cannot fail for 10 bytes in a browser; should it, a
    // Math.random fallback still gives ids unique enough for one page.
    let filled = web_sys::window()
        .and_then(|w| w.crypto().ok())
        .is_some_and(|c| c.get_random_values_with_u8_array(&mut random).is_ok());
    if !filled {
        for b in &mut random {
            *b = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    refloop_core::id::uuid_v7(js_sys::Date::now() as u64, random)
}

fn storage() -> Option<web_sys::Storage> {
    // Storage can throw (SecurityError in sandboxed frames); then we do without.
    web_sys::window()?.local_storage().ok().flatten()
}

fn load_or_create_anonymous_id() -> String {
    let store = storage();
    if let Some(id) = store.as_ref().and_then(|s| s.get_item(ANONYMOUS_ID_KEY).ok().flatten())
        && !id.is_empty()
    {
        return id;
    }
    let id = new_event_id();
    if let Some(s) = store {
        let _ = s.set_item(ANONYMOUS_ID_KEY, &id);
    }
    id
}

/// Largest beacon or keepalive body.
pub(crate) const MAX_SEND_BYTES: usize = BEACON_CHUNK_BYTES;
