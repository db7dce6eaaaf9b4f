//! Delivery in the browser: `fetch` for flushes (its answer tells whether the
//! edge took the batch) and `sendBeacon` when the page is going away (the only
//! send a browser finishes after unload).

use crate::{MAX_SEND_BYTES, State};
use std::rc::Rc;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::{JsFuture, future_to_promise};

/// Sends every queued event with `fetch`, batch by batch. Events of a batch the
/// edge did not take (network error, 5xx, 408, 429) go back to the front of the
/// queue; a batch the edge refused as bad (other 4xx) is dropped with a warning,
/// since sending it again cannot succeed.
pub(crate) fn flush(state: &Rc<State>) -> js_sys::Promise {
    clear_timer(state);
    let sent_at: String = js_sys::Date::new_0().to_iso_string().into();
    let batches = state
        .queue
        .borrow_mut()
        .drain_batches(&state.config.key, &sent_at, MAX_SEND_BYTES);
    let state = state.clone();
    future_to_promise(async move {
        let mut failed = false;
        for batch in batches {
            let body = batch.body(&state.config.key, &sent_at);
            match post(&state.config.batch_url(), &body).await {
                Ok(status) if (200..300).contains(&status) => {}
                Ok(status) if (400..500).contains(&status) && status != 408 && status != 429 => {
                    web_sys::console::warn_3(
                        &JsValue::from_str("[refloop] the edge refused a batch with status"),
                        &JsValue::from(status),
                        &JsValue::from_str("; its events were dropped"),
                    );
                }
                _ => {
                    failed = true;
                    state.queue.borrow_mut().requeue_front(batch);
                }
            }
        }
        if failed {
            schedule_flush(&state, state.config.flush_ms.max(1000));
            return Err(JsValue::from_str(
                "some events could not be delivered; they stay queued",
            ));
        }
        Ok(JsValue::UNDEFINED)
    })
}

async fn post(url: &str, body: &str) -> Result<u16, JsValue> {
    let init = web_sys::RequestInit::new();
    init.set_method("POST");
    // text/plain keeps the request "simple": no CORS preflight.
    let headers = web_sys::Headers::new()?;
    headers.set("Content-Type", "text/plain;charset=UTF-8")?;
    init.set_headers(&headers);
    init.set_body(&JsValue::from_str(body));
    // keepalive lets the send outlive the page; web-sys has no setter for it.
    js_sys::Reflect::set(&init, &"keepalive".into(), &JsValue::TRUE)?;
    init.set_mode(web_sys::RequestMode::Cors);
    let window = web_sys::window().ok_or("no window")?;
    let response: web_sys::Response = JsFuture::from(window.fetch_with_str_and_init(url, &init))
        .await?
        .dyn_into()?;
    Ok(response.status())
}

/// Hands every queued event to `sendBeacon`; a chunk the browser refuses
/// (quota) falls back to a keepalive `fetch`.
fn beacon_all(state: &Rc<State>) {
    clear_timer(state);
    let Some(window) = web_sys::window() else { return };
    let sent_at: String = js_sys::Date::new_0().to_iso_string().into();
    let batches = state
        .queue
        .borrow_mut()
        .drain_batches(&state.config.key, &sent_at, MAX_SEND_BYTES);
    let url = state.config.batch_url();
    let mut refused = Vec::new();
    for batch in batches {
        let body = batch.body(&state.config.key, &sent_at);
        if !window
            .navigator()
            .send_beacon_with_opt_str(&url, Some(&body))
            .unwrap_or(false)
        {
            refused.push(batch);
        }
    }
    if !refused.is_empty() {
        for batch in refused.into_iter().rev() {
            state.queue.borrow_mut().requeue_front(batch);
        }
        let _ = flush(state);
    }
}

/// Flushes with beacons when the page is hidden or unloaded: the last moment a
/// page can be sure to send anything (`unload` is unreliable on mobile).
pub(crate) fn flush_when_hidden(state: &Rc<State>) -> Result<(), JsValue> {
    let window = web_sys::window().ok_or("no window")?;
    let document = window.document().ok_or("no document")?;
    let on_hidden = {
        let state = state.clone();
        Closure::<dyn FnMut()>::new(move || {
            let hidden = web_sys::window()
                .and_then(|w| w.document())
                .is_none_or(|d| d.visibility_state() == web_sys::VisibilityState::Hidden);
            if hidden {
                beacon_all(&state);
            }
        })
    };
    document.add_event_listener_with_callback("visibilitychange", on_hidden.as_ref().unchecked_ref())?;
    window.add_event_listener_with_callback("pagehide", on_hidden.as_ref().unchecked_ref())?;
    // The listeners live as long as the page.
    on_hidden.forget();
    Ok(())
}

/// Flushes after `delay_ms` unless a flush is already scheduled.
pub(crate) fn schedule_flush(state: &Rc<State>, delay_ms: i32) {
    if state.flush_timer.get().is_some() {
        return;
    }
    let Some(window) = web_sys::window() else { return };
    let callback = {
        let state = state.clone();
        Closure::once_into_js(move || {
            state.flush_timer.set(None);
            let _ = flush(&state);
        })
    };
    if let Ok(id) = window.set_timeout_with_callback_and_timeout_and_arguments_0(callback.unchecked_ref(), delay_ms) {
        state.flush_timer.set(Some(id));
    }
}

fn clear_timer(state: &State) {
    if let (Some(id), Some(window)) = (state.flush_timer.take(), web_sys::window()) {
        window.clear_timeout_with_handle(id);
    }
}
