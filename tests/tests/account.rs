//! An operator's account: several sites per tenant, keys rotated with a
//! grace period, origins edited; on real SQLite through the whole edge.

use refloop_tests::{Edge, PK, SK};
use serde_json::{Value, json};

fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// A batch of one page view with `key`, from `origin`.
fn page_view(edge: &Edge, key: &str, origin: &str, n: u32) -> u16 {
    let body = json!({"key": key, "events": [{"id": format!("00000000-0000-4000-8000-{n:012}"), "type": "page",
        "event": "page", "anonymous_id": "visitor"}]});
    edge.call("POST", "/v1/batch", &[("origin", origin)], &body.to_string())
        .status
}

fn admin(edge: &Edge, key: &str, method: &str, path: &str, body: Value) -> (u16, Value) {
    let r = edge.call(method, path, &[("authorization", &bearer(key))], &body.to_string());
    (r.status, serde_json::from_str(&r.body).unwrap_or(Value::Null))
}

#[test]
fn a_rotated_key_keeps_working_for_its_grace_period_then_stops() {
    let edge = Edge::new();
    let (status, sites) = admin(&edge, SK, "GET", "/v1/admin/sites", Value::Null);
    assert_eq!(status, 200);
    let site = sites["sites"][0]["id"].as_i64().unwrap();
    let origin = sites["sites"][0]["origins"][0].as_str().unwrap().to_owned();
    assert_eq!(sites["sites"][0]["publishable_key"], PK);

    let (status, rotated) = admin(
        &edge,
        SK,
        "POST",
        &format!("/v1/admin/sites/{site}/keys"),
        json!({"grace_hours": 2}),
    );
    assert_eq!(status, 200, "{rotated}");
    let (new_pk, new_sk) = (
        rotated["publishable_key"].as_str().unwrap().to_owned(),
        rotated["secret_key"].as_str().unwrap().to_owned(),
    );
    assert_ne!(new_pk, PK);
    assert!(rotated["previous_keys_valid_until"].is_string());

    // Within the grace period both pairs work.
    assert_eq!(page_view(&edge, PK, &origin, 1), 202);
    assert_eq!(page_view(&edge, &new_pk, &origin, 2), 202);
    assert_eq!(admin(&edge, SK, "GET", "/v1/admin/sites", Value::Null).0, 200);
    assert_eq!(admin(&edge, &new_sk, "GET", "/v1/admin/sites", Value::Null).0, 200);

    // After it, only the new pair.
    edge.now.set(edge.now.get() + 2 * 3_600_000 + 1);
    assert_eq!(page_view(&edge, PK, &origin, 3), 401);
    assert_eq!(admin(&edge, SK, "GET", "/v1/admin/sites", Value::Null).0, 401);
    assert_eq!(page_view(&edge, &new_pk, &origin, 4), 202);
    let (_, sites) = admin(&edge, &new_sk, "GET", "/v1/admin/sites", Value::Null);
    assert_eq!(sites["sites"][0]["previous_keys_valid_until"], Value::Null);
}

#[test]
fn a_rotation_without_grace_stops_the_old_keys_at_once() {
    let edge = Edge::new();
    let (_, sites) = admin(&edge, SK, "GET", "/v1/admin/sites", Value::Null);
    let site = sites["sites"][0]["id"].as_i64().unwrap();
    let origin = sites["sites"][0]["origins"][0].as_str().unwrap().to_owned();
    let (status, _) = admin(
        &edge,
        SK,
        "POST",
        &format!("/v1/admin/sites/{site}/keys"),
        json!({"grace_hours": 0}),
    );
    assert_eq!(status, 200);
    assert_eq!(page_view(&edge, PK, &origin, 1), 401);
    assert_eq!(admin(&edge, SK, "GET", "/v1/admin/sites", Value::Null).0, 401);
}

#[test]
fn a_tenant_runs_several_sites_each_with_its_origins() {
    let edge = Edge::new();
    let (status, shop) = admin(
        &edge,
        SK,
        "POST",
        "/v1/admin/sites",
        json!({"name": "shop", "origins": ["https://shop.example"]}),
    );
    assert_eq!(status, 201, "{shop}");
    let shop_pk = shop["publishable_key"].as_str().unwrap().to_owned();
    let shop_sk = shop["secret_key"].as_str().unwrap().to_owned();
    // The new site's keys reach the same tenant's campaigns and sites.
    let (_, sites) = admin(&edge, &shop_sk, "GET", "/v1/admin/sites", Value::Null);
    assert_eq!(sites["sites"].as_array().unwrap().len(), 2);
    let (_, campaigns) = admin(&edge, &shop_sk, "GET", "/v1/admin/campaigns", Value::Null);
    assert!(!campaigns["campaigns"].as_array().unwrap().is_empty());

    // Each site takes events from its own origins only.
    assert_eq!(page_view(&edge, &shop_pk, "https://shop.example", 1), 202);
    assert_eq!(page_view(&edge, &shop_pk, "https://blog.example", 2), 403);
    // Adding an origin lets it in; removing one shuts it out.
    let (status, edited) = admin(
        &edge,
        SK,
        "PUT",
        &format!("/v1/admin/sites/{}/origins", shop["id"]),
        json!({"origins": ["https://blog.example"]}),
    );
    assert_eq!(status, 200, "{edited}");
    assert_eq!(edited["origins"], json!(["https://blog.example"]));
    assert_eq!(page_view(&edge, &shop_pk, "https://blog.example", 3), 202);
    assert_eq!(page_view(&edge, &shop_pk, "https://shop.example", 4), 403);

    // Bad input changes nothing: not an origin, or another tenant's site.
    let (status, _) = admin(
        &edge,
        SK,
        "PUT",
        &format!("/v1/admin/sites/{}/origins", shop["id"]),
        json!({"origins": ["https://blog.example/path"]}),
    );
    assert_eq!(status, 400);
    assert_eq!(page_view(&edge, &shop_pk, "https://blog.example", 5), 202);
    let (status, _) = admin(&edge, SK, "PUT", "/v1/admin/sites/999/origins", json!({"origins": []}));
    assert_eq!(status, 404);
    // Every change is in the audit log.
    let (_, audit) = admin(&edge, SK, "GET", "/v1/admin/audit", Value::Null);
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"site.create") && actions.contains(&"site.origins"),
        "{actions:?}"
    );
}

#[test]
fn an_origin_written_with_its_default_port_is_kept_as_browsers_send_it() {
    let edge = Edge::new();
    let (status, site) = admin(
        &edge,
        SK,
        "POST",
        "/v1/admin/sites",
        json!({"name": "ports", "origins": ["https://shop.example:443", "http://shop.example:80", "http://shop.example:8080"]}),
    );
    assert_eq!(status, 201, "{site}");
    let mut origins: Vec<&str> = site["origins"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    origins.sort_unstable();
    assert_eq!(
        origins,
        [
            "http://shop.example",
            "http://shop.example:8080",
            "https://shop.example"
        ]
    );
    let (status, _) = admin(
        &edge,
        SK,
        "POST",
        "/v1/admin/sites",
        json!({"name": "bad", "origins": ["http://0.0000000000:1000"]}),
    );
    assert_eq!(status, 400, "a host that is no name (a mangled IPv4 address)");
}
