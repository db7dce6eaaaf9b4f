//! `docs/openapi.yaml` against the edge's route table: every route the
//! router serves is documented, with the auth the table gives it, and
//! nothing else is.

use refloop_edge::routes::{Auth, ROUTES};
use std::collections::BTreeSet;

fn spec() -> serde_yaml_ng::Value {
    let text = include_str!("../../docs/openapi.yaml");
    serde_yaml_ng::from_str(text).expect("docs/openapi.yaml is YAML")
}

const METHODS: [&str; 5] = ["get", "post", "put", "delete", "options"];

#[test]
fn the_spec_and_the_router_list_the_same_routes() {
    let spec = spec();
    let paths = spec["paths"].as_mapping().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        let path = path.as_str().expect("a path is text");
        for m in METHODS {
            if item.get(m).is_some() {
                documented.insert((m.to_ascii_uppercase(), path.to_owned()));
            }
        }
    }
    let mut served: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|d| (d.method.to_owned(), d.path.to_owned()))
        .collect();
    // The CORS preflight of the SDK's batch is documented on its own.
    served.insert(("OPTIONS".into(), "/v1/batch".into()));
    let missing: Vec<_> = served.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&served).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "undocumented: {missing:?}\ndocumented but not served: {extra:?}"
    );
}

/// A route of the secret key says so (`security: secretKey`), one of the
/// root key `rootKey`; a public route names no bearer scheme.
#[test]
fn the_spec_states_each_routes_auth() {
    let spec = spec();
    for d in ROUTES {
        let op = &spec["paths"][d.path][d.method.to_ascii_lowercase().as_str()];
        let schemes: Vec<String> = op["security"]
            .as_sequence()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_mapping())
            .flat_map(|m| m.keys().filter_map(|k| k.as_str().map(str::to_owned)))
            .collect();
        let expected: &[&str] = match d.auth {
            Auth::Secret => &["secretKey"],
            Auth::Root => &["rootKey"],
            Auth::Open | Auth::Publishable | Auth::PublishableInBody => &[],
        };
        assert_eq!(schemes, expected, "{} {}", d.method, d.path);
    }
}
