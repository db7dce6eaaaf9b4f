//! Rewards an operator configures, through the whole edge on real SQLite:
//! a credit sized by a trusted purchase's amount (a percentage with a cap,
//! or tiers), never by what a browser says.

use refloop_tests::Edge;
use serde_json::{Value, json};

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

/// A campaign whose referral is confirmed by a trusted `purchase`, and whose
/// referrer earns `credit` on each confirmed referral.
fn campaign(edge: &Edge, slug: &str, credit: Value) {
    let config = json!({
        "name": slug,
        "quest": {"steps": [{"event": "signup"}, {"event": "purchase", "trusted": true}]},
        "rewards": [{"id": "cashback", "name": "Cashback", "kind": credit}],
        "milestones": [{"id": "each", "every": 1, "reward": "cashback"}],
        "fraud": {"flag_shared_ip": false}
    });
    let (status, body) = edge.json("POST", "/v1/admin/campaigns", json!({"slug": slug, "config": config}));
    assert_eq!(status, 201, "{body}");
}

/// `referee` joins through the referrer's code and buys for `amount` minor
/// units (from the site's server, or from a page when `!trusted`).
fn referred_purchase(edge: &Edge, slug: &str, code: &str, referee: &str, n: u64, amount: i64, trusted: bool) {
    let signup = json!([{"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": referee,
        "campaign": slug, "attribution": {"ref": code}}]);
    assert_eq!(edge.batch(signup).0, 202);
    let purchase = json!([{"id": uuid(n + 1), "type": "track", "event": "purchase", "anonymous_id": referee,
        "campaign": slug, "properties": {"amount_minor": amount, "currency": "USD"}}]);
    let status = if trusted {
        edge.server(purchase).0
    } else {
        edge.batch(purchase).0
    };
    assert_eq!(status, 202);
}

fn values(edge: &Edge, slug: &str) -> Vec<i64> {
    let (_, grants) = edge.json("GET", &format!("/v1/admin/campaigns/{slug}/grants"), json!({}));
    let mut v: Vec<i64> = grants["grants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["value_minor"].as_i64().unwrap())
        .collect();
    v.sort_unstable();
    v
}

#[test]
fn a_trusted_purchase_sizes_the_referrers_credit_within_its_cap() {
    let edge = Edge::new();
    campaign(
        &edge,
        "cash",
        json!({"type": "credit", "amount_minor": 500, "currency": "USD", "sized": {"percent": 10, "max_minor": 3000}}),
    );
    let join = json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "ann", "campaign": "cash"}]);
    assert_eq!(edge.batch(join).0, 202);
    let code = edge.me("cash", "ann").unwrap()["code"].as_str().unwrap().to_owned();
    referred_purchase(&edge, "cash", &code, "bob", 10, 12_345, true);
    referred_purchase(&edge, "cash", &code, "cat", 20, 90_000, true);
    assert_eq!(
        values(&edge, "cash"),
        [1_234, 3_000],
        "10 % of $123.45, and 10 % of $900 capped at $30"
    );
    // The money roll-up counts what the grants are worth.
    let (_, money) = edge.json("GET", "/v1/admin/campaigns/cash/stats/money", json!({}));
    assert!(money.to_string().contains("4234"), "{money}");
    assert!(edge.violations().is_empty());
}

#[test]
fn tiers_size_a_credit_and_a_pages_amount_is_not_believed() {
    let edge = Edge::new();
    campaign(
        &edge,
        "tiers",
        json!({"type": "credit", "amount_minor": 500, "currency": "USD", "sized": {"tiers": [
            {"from_minor": 5000, "amount_minor": 1000},
            {"from_minor": 10000, "amount_minor": 2500},
            {"from_minor": 25000, "amount_minor": 5000}]}}),
    );
    let join = json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "ann", "campaign": "tiers"}]);
    assert_eq!(edge.batch(join).0, 202);
    let code = edge.me("tiers", "ann").unwrap()["code"].as_str().unwrap().to_owned();
    referred_purchase(&edge, "tiers", &code, "bob", 10, 7_500, true);
    referred_purchase(&edge, "tiers", &code, "cat", 20, 30_000, true);
    assert_eq!(values(&edge, "tiers"), [1_000, 5_000]);

    // A quest step that a browser cannot complete is not completed by a
    // page's purchase, whatever amount it states.
    referred_purchase(&edge, "tiers", &code, "dan", 30, 1_000_000, false);
    assert_eq!(values(&edge, "tiers"), [1_000, 5_000]);
}

#[test]
fn a_browsers_amount_never_sizes_a_credit() {
    let edge = Edge::new();
    // The purchase step is open to browsers here: the referral confirms, but
    // the credit is the flat amount, whatever the page says it spent.
    let config = json!({
        "name": "open",
        "quest": {"steps": [{"event": "signup"}, {"event": "purchase"}]},
        "rewards": [{"id": "cashback", "name": "Cashback", "kind":
            {"type": "credit", "amount_minor": 500, "currency": "USD", "sized": {"percent": 50}}}],
        "milestones": [{"id": "each", "every": 1, "reward": "cashback"}],
        "fraud": {"flag_shared_ip": false}
    });
    assert_eq!(
        edge.json("POST", "/v1/admin/campaigns", json!({"slug": "open", "config": config}))
            .0,
        201
    );
    let join = json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "ann", "campaign": "open"}]);
    assert_eq!(edge.batch(join).0, 202);
    let code = edge.me("open", "ann").unwrap()["code"].as_str().unwrap().to_owned();
    referred_purchase(&edge, "open", &code, "bob", 10, 1_000_000, false);
    assert_eq!(values(&edge, "open"), [500]);
}

#[test]
fn a_sizing_that_cannot_be_applied_is_refused_with_its_path() {
    let edge = Edge::new();
    let config = json!({"name": "bad", "rewards": [{"id": "c", "name": "C", "kind":
        {"type": "credit", "amount_minor": 500, "currency": "USD", "sized": {"percent": 0}}}]});
    let (status, body) = edge.json("POST", "/v1/admin/campaigns", json!({"slug": "bad", "config": config}));
    assert_eq!(status, 422, "{body}");
    assert!(body.to_string().contains("rewards[0].kind.sized.percent"), "{body}");
}
