//! `docs/openapi.yaml`'s response schemas, held against what the edge
//! answers: every response the native tests receive through `Edge::call`
//! is validated against the schema the spec documents for its route and
//! status (JSON Schema 2020-12, formats checked), and a status the spec
//! does not document for the route is a failure too.

use refloop_edge::routes::{Matched, route};
use serde_json::Value;
use std::collections::HashMap;

thread_local! {
    static SPEC: Value = {
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(include_str!("../../docs/openapi.yaml")).expect("docs/openapi.yaml is YAML");
        let mut spec = serde_json::to_value(yaml).expect("the spec as JSON");
        spec["$schema"] = Value::from("https://json-schema.org/draft/2020-12/schema");
        spec
    };
    static VALIDATORS: std::cell::RefCell<HashMap<String, std::rc::Rc<jsonschema::Validator>>> = Default::default();
    /// The routes (method, pattern) this thread saw answer 2xx or 3xx.
    static ANSWERED: std::cell::RefCell<std::collections::BTreeSet<(&'static str, &'static str)>> = Default::default();
}

/// The routes this thread has seen succeed through `Edge::call` (each
/// answer checked against the spec).
pub fn answered() -> std::collections::BTreeSet<(&'static str, &'static str)> {
    ANSWERED.with(|a| a.borrow().clone())
}

/// The whole spec, as a JSON value.
pub fn spec() -> Value {
    SPEC.with(Value::clone)
}

fn escape(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// The JSON pointer of the response `status` of `method path` (through a
/// `$ref` to `components/responses`), or why there is none.
fn response_pointer(spec: &Value, method: &str, path: &str, status: u16) -> Result<String, String> {
    let op = format!("/paths/{}/{}", escape(path), method.to_ascii_lowercase());
    let responses = spec
        .pointer(&format!("{op}/responses"))
        .ok_or_else(|| format!("{method} {path} is not in the spec"))?;
    let response = responses
        .get(status.to_string())
        .ok_or_else(|| format!("{method} {path} answered {status}, which the spec does not document"))?;
    Ok(match response.get("$ref").and_then(Value::as_str) {
        Some(r) => r.trim_start_matches('#').to_owned(),
        None => format!("{op}/responses/{status}"),
    })
}

fn validator(pointer: &str) -> std::rc::Rc<jsonschema::Validator> {
    VALIDATORS.with(|v| {
        v.borrow_mut()
            .entry(pointer.to_owned())
            .or_insert_with(|| {
                let mut root = spec();
                // A URI fragment: the path's braces percent-encoded.
                let fragment = pointer.replace('{', "%7B").replace('}', "%7D");
                root["$ref"] = Value::from(format!("#{fragment}"));
                let compiled = jsonschema::options()
                    .should_validate_formats(true)
                    .build(&root)
                    .unwrap_or_else(|e| panic!("the spec's schema at {pointer}: {e}"));
                std::rc::Rc::new(compiled)
            })
            .clone()
    })
}

/// Checks one answer of the edge against the spec; `Err` says what differs.
pub fn check(method: &str, path: &str, status: u16, content_type: Option<&str>, body: &str) -> Result<(), String> {
    let def = match route(method, path) {
        Matched::Route(def, _) => def,
        // Preflights, 405 and 404 of unknown paths are the router's own.
        _ => return Ok(()),
    };
    if (200..400).contains(&status) {
        ANSWERED.with(|a| a.borrow_mut().insert((def.method, def.path)));
    }
    let spec = spec();
    let method = if method == "HEAD" { "GET" } else { method };
    let response = response_pointer(&spec, method, def.path, status)?;
    let is_json = content_type.is_some_and(|c| c.starts_with("application/json"));
    let schema = format!("{response}/content/application~1json/schema");
    if !is_json || spec.pointer(&schema).is_none() || body.is_empty() {
        return Ok(());
    }
    let answer: Value =
        serde_json::from_str(body).map_err(|e| format!("{method} {} answered JSON that is not: {e}", def.path))?;
    let errors: Vec<String> = validator(&schema)
        .iter_errors(&answer)
        .take(5)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    match errors.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "{method} {} {status} does not match the spec ({schema}):\n  {}\n{body}",
            def.path,
            errors.join("\n  ")
        )),
    }
}
