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

/// Every route, called once the way a tenant would, answers with a status
/// and a body its spec documents (`Edge::call` checks each against the
/// schema; this walk makes sure none is left out).
#[test]
fn every_route_answers_as_its_spec_says() {
    use refloop_tests::{Edge, PK, ROOT, SK};
    use serde_json::{Value, json};
    let edge = Edge::new();
    let root = format!("Bearer {ROOT}");
    let sk = format!("Bearer {SK}");
    let call = |method: &str, path: &str, auth: &str, body: Value, expect: u16| -> Value {
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let headers: Vec<(&str, &str)> = match auth {
            "" => vec![("origin", "http://127.0.0.1:8080")],
            a => vec![("authorization", a)],
        };
        let r = edge.call(method, path, &headers, &body);
        assert_eq!(r.status, expect, "{method} {path}: {}", r.body);
        serde_json::from_str(&r.body).unwrap_or(Value::Null)
    };
    let uuid = |n: u32| format!("0190f3c2-8e4b-7a4e-9f7a-{n:012x}");
    let admin = |method: &str, path: &str, body: Value, expect: u16| {
        call(method, &format!("/v1/admin{path}"), &sk, body, expect)
    };

    call("GET", "/healthz", "", Value::Null, 200);
    call(
        "POST",
        "/v1/admin/tenants",
        &root,
        json!({"name": "Acme", "site": {"origins": ["https://acme.example"]}}),
        201,
    );
    call("GET", "/v1/admin/tenants", &root, Value::Null, 200);

    let config = json!({
        "name": "Walk", "landing_url": "http://127.0.0.1:8080/",
        "quest": {"steps": [{"event": "signup"}, {"event": "purchase", "trusted": true}]},
        "point_rules": [{"id": "per", "event": "referral_confirmed", "to": "referrer", "points": 50}],
        "milestones": [{"id": "first", "confirmed_referrals": 1, "reward": "coupon"}],
        "rewards": [{"id": "coupon", "name": "20% off", "kind": {"type": "coupon", "prefix": "OFF"}}],
        "leaderboard": {"score_by": "points", "periods": ["all", "week"], "top_n": 10},
        "fraud": {"flag_shared_ip": false, "flag_disposable_email": true}
    });
    admin("POST", "/campaigns", json!({"slug": "walk", "config": config}), 201);
    admin("GET", "/campaigns", Value::Null, 200);
    admin("GET", "/campaigns/walk", Value::Null, 200);
    admin("PUT", "/campaigns/walk", json!({"config": config, "version": 1}), 200);
    admin(
        "PUT",
        "/campaigns/walk/point-rules",
        json!({"point_rules": config["point_rules"]}),
        200,
    );
    admin(
        "PUT",
        "/campaigns/walk/rewards",
        json!({"rewards": config["rewards"]}),
        200,
    );
    admin("POST", "/campaigns/walk/status", json!({"status": "active"}), 200);
    admin("GET", "/campaigns/walk/versions", Value::Null, 200);
    let hook = admin("POST", "/webhooks", json!({"url": "https://hooks.example/walk"}), 201);
    admin("GET", "/webhooks", Value::Null, 200);
    admin("GET", &format!("/webhooks/{}/deliveries", hook["id"]), Value::Null, 200);

    // A referrer, a referee confirmed by the site's server, a flagged one.
    let batch = |events: Value| call("POST", "/v1/batch", "", json!({"key": PK, "events": events}), 202);
    batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "ana", "campaign": "walk"}]));
    let me = call(
        "GET",
        &format!("/v1/campaigns/walk/me?key={PK}&anonymous_id=ana"),
        "",
        Value::Null,
        200,
    );
    let code = me["code"].as_str().unwrap().to_owned();
    batch(
        json!([{"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "ben", "campaign": "walk", "attribution": {"ref": code}}]),
    );
    batch(
        json!([{"id": uuid(3), "type": "track", "event": "signup", "anonymous_id": "cat", "campaign": "walk",
                  "attribution": {"ref": code}, "traits": {"email": "cat@mailinator.com"}}]),
    );
    call(
        "POST",
        "/v1/server/events",
        &sk,
        json!({"events": [{"id": uuid(4), "type": "track", "event": "purchase", "anonymous_id": "ben", "campaign": "walk"}]}),
        202,
    );
    call(
        "GET",
        &format!("/v1/campaigns/walk/participants/{code}?key={PK}"),
        "",
        Value::Null,
        200,
    );
    call(
        "GET",
        &format!("/v1/campaigns/walk/leaderboard?key={PK}&around={code}"),
        "",
        Value::Null,
        200,
    );
    call("GET", &format!("/r/{code}"), "", Value::Null, 302);
    call("GET", "/v1/qr.svg?data=hello", "", Value::Null, 200);
    // An invitation in the demo's invite-mode campaign.
    batch(json!([{"id": uuid(5), "type": "track", "event": "signup", "anonymous_id": "ana", "campaign": "friends"}]));
    call(
        "POST",
        "/v1/invitations",
        "",
        json!({"key": PK, "campaign": "friends", "anonymous_id": "ana"}),
        201,
    );

    admin("GET", "/events?limit=5", Value::Null, 200);
    admin("GET", "/identity?user_id=u1", Value::Null, 200);
    admin("GET", "/campaigns/walk/participants", Value::Null, 200);
    let id_of = |who: &str| edge.participant_id("walk", who);
    let ana = id_of("ana");
    admin(
        "GET",
        &format!("/campaigns/walk/participants/{ana}/ledger"),
        Value::Null,
        200,
    );
    admin(
        "POST",
        &format!("/campaigns/walk/participants/{ana}/adjustments"),
        json!({"points": 5, "note": "welcome"}),
        201,
    );
    // A misspelt field is refused, never ignored.
    admin(
        "POST",
        &format!("/campaigns/walk/participants/{ana}/adjustments"),
        json!({"points": 5, "note": "x", "idempotency": "k"}),
        400,
    );
    let given = admin(
        "POST",
        &format!("/campaigns/walk/participants/{ana}/grants"),
        json!({"reward": "coupon", "note": "contest"}),
        201,
    );
    admin(
        "POST",
        &format!("/campaigns/walk/participants/{ana}/code"),
        json!({"code": "wanderer"}),
        200,
    );
    admin("GET", "/campaigns/walk/answers", Value::Null, 200);
    let flagged = admin("GET", "/campaigns/walk/referrals?review=pending", Value::Null, 200);
    let referral = &flagged["referrals"][0]["id"];
    admin(
        "POST",
        &format!("/campaigns/walk/referrals/{referral}/review"),
        json!({"approve": false}),
        200,
    );
    let grants = admin("GET", "/campaigns/walk/grants", Value::Null, 200);
    let grant = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["id"] != given["grant"]["id"])
        .unwrap();
    let to = if grant["status"] == "earned" {
        "approved"
    } else {
        "revoked"
    };
    admin(
        "POST",
        &format!("/campaigns/walk/grants/{}/transitions", grant["id"]),
        json!({"to": to}),
        200,
    );
    let token = given["grant"]["token"].as_str().unwrap();
    admin(
        "POST",
        "/campaigns/walk/redeem",
        json!({"token": token, "check": true}),
        200,
    );
    admin("POST", "/campaigns/walk/snapshots", json!({"period": "week"}), 201);
    admin("GET", "/campaigns/walk/snapshots", Value::Null, 200);
    for stat in ["funnel", "money", "sources", "trend"] {
        admin("GET", &format!("/campaigns/walk/stats/{stat}"), Value::Null, 200);
    }
    let r = edge.call(
        "GET",
        "/v1/admin/campaigns/walk/export.csv",
        &[("authorization", &sk)],
        "",
    );
    assert_eq!(r.status, 200, "{}", r.body);
    for of in ["referrals", "grants"] {
        let r = edge.call(
            "GET",
            &format!("/v1/admin/campaigns/walk/export.csv?of={of}"),
            &[("authorization", &sk)],
            "",
        );
        assert_eq!(r.status, 200, "{}", r.body);
    }
    admin("GET", "/campaigns/walk/check", Value::Null, 200);
    let site = admin(
        "POST",
        "/sites",
        json!({"name": "shop", "origins": ["https://shop.example"]}),
        201,
    );
    admin("GET", "/sites", Value::Null, 200);
    admin(
        "PUT",
        &format!("/sites/{}/origins", site["id"]),
        json!({"origins": ["https://shop.example", "https://www.shop.example"]}),
        200,
    );
    admin(
        "POST",
        &format!("/sites/{}/keys", site["id"]),
        json!({"grace_hours": 1}),
        200,
    );
    admin("GET", "/people?anonymous_id=cat", Value::Null, 200);
    admin("POST", "/people/erase", json!({"anonymous_id": "cat"}), 200);
    let ben = id_of("ben");
    admin(
        "DELETE",
        &format!("/campaigns/walk/participants/{ben}"),
        Value::Null,
        200,
    );
    admin("POST", "/campaigns/walk/replay", json!({"version": 1}), 200);
    admin("POST", "/campaigns/walk/end", json!({"seed": 7, "preview": true}), 200);
    admin("POST", "/campaigns/walk/end", json!({"seed": 7}), 200);
    admin("DELETE", &format!("/webhooks/{}", hook["id"]), Value::Null, 200);
    admin("GET", "/audit", Value::Null, 200);
    call("GET", "/v1/admin/check", &root, Value::Null, 200);

    let answered = refloop_tests::spec::answered();
    let missed: Vec<_> = ROUTES
        .iter()
        .filter(|d| !answered.contains(&(d.method, d.path)))
        .map(|d| format!("{} {}", d.method, d.path))
        .collect();
    assert!(missed.is_empty(), "routes the walk did not reach: {missed:?}");
}

/// The engine's enums have one naming rule for serde and for their
/// `as_str`/`parse` (strum): the names the contract shows agree.
#[test]
fn enum_names_agree_between_serde_and_as_str() {
    use refloop_core::engine::rewards::GrantStatus;
    for g in GrantStatus::ALL {
        assert_eq!(serde_json::to_value(g).unwrap(), g.as_str(), "{g:?}");
        assert_eq!(GrantStatus::parse(g.as_str()), Some(g));
    }
}
