//! Referral codes an operator manages, through the whole edge on real
//! SQLite: vanity codes, a fresh code for a leaked one, codes that run out of
//! days; a replaced code never names anyone again.

use refloop_tests::Edge;
use serde_json::{Value, json};

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

const DAY: i64 = 86_400_000;

fn campaign(edge: &Edge, extra: Value) {
    let mut config = json!({
        "name": "codes",
        "landing_url": "http://127.0.0.1:8080/",
        "quest": {"steps": [{"event": "signup"}]},
        "fraud": {"flag_shared_ip": false}
    });
    config
        .as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    let (status, body) = edge.json(
        "POST",
        "/v1/admin/campaigns",
        json!({"slug": "codes", "config": config}),
    );
    assert_eq!(status, 201, "{body}");
}

fn join(edge: &Edge, who: &str, n: u64, code: Option<&str>) {
    let mut e = json!({"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": who, "campaign": "codes"});
    if let Some(c) = code {
        e["attribution"] = json!({"ref": c});
    }
    assert_eq!(edge.batch(json!([e])).0, 202);
}

/// The answer the campaign gave `who`'s signup, if it refused a referral.
fn refusal(edge: &Edge, who: &str) -> Option<String> {
    let (_, answers) = edge.json("GET", &format!("/v1/admin/campaigns/codes/answers?q={who}"), json!({}));
    answers["answers"][0]["reason"].as_str().map(str::to_owned)
}

fn confirmed(edge: &Edge, who: &str) -> i64 {
    edge.me("codes", who).unwrap()["referrals"]["confirmed"]
        .as_i64()
        .unwrap()
}

fn set_code(edge: &Edge, participant: i64, body: Value) -> (u16, Value) {
    edge.json(
        "POST",
        &format!("/v1/admin/campaigns/codes/participants/{participant}/code"),
        body,
    )
}

fn location(edge: &Edge, code: &str) -> (u16, String) {
    let r = edge.call("GET", &format!("/r/{code}"), &[], "");
    let at = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("location"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    (r.status, at)
}

#[test]
fn a_vanity_code_replaces_the_old_one_which_never_names_anyone_again() {
    let edge = Edge::new();
    campaign(&edge, json!({}));
    join(&edge, "ann", 1, None);
    let old = edge.me("codes", "ann").unwrap()["code"].as_str().unwrap().to_owned();
    let ann = edge.participant_id("codes", "ann");

    let (status, given) = set_code(&edge, ann, json!({"code": "anna2525"}));
    assert_eq!(status, 200, "{given}");
    assert_eq!(given["code"], "ANNA2525");
    assert_eq!(given["previous_code"], old.as_str());
    assert_eq!(edge.me("codes", "ann").unwrap()["code"], "ANNA2525");
    // Asked again: nothing changes.
    let (status, again) = set_code(&edge, ann, json!({"code": "ANNA2525"}));
    assert_eq!((status, again["duplicate"].clone()), (200, json!(true)));

    // The new code's link works (the directory knows it); the old one lands
    // the visitor on the site without naming anyone.
    let (status, at) = location(&edge, "ANNA2525");
    assert_eq!(status, 302);
    assert!(at.ends_with("ref=ANNA2525"), "{at}");
    let (status, at) = location(&edge, &old);
    assert_eq!(status, 302);
    assert!(!at.contains("ref="), "{at}");

    join(&edge, "bob", 2, Some("ANNA2525"));
    assert_eq!(confirmed(&edge, "ann"), 1);
    join(&edge, "cat", 3, Some(&old));
    assert_eq!(confirmed(&edge, "ann"), 1, "the retired code brings no referral");
    assert_eq!(refusal(&edge, "cat").as_deref(), Some("retired_code"));

    // Nobody else can take either code; a code must use the alphabet.
    let bob = edge.participant_id("codes", "bob");
    assert_eq!(set_code(&edge, bob, json!({"code": "ANNA2525"})).0, 409);
    assert_eq!(set_code(&edge, bob, json!({"code": old})).0, 409);
    assert_eq!(
        set_code(&edge, bob, json!({"code": "BOB0"})).0,
        400,
        "0 is a look-alike"
    );
    assert_eq!(set_code(&edge, bob, json!({"code": "ab"})).0, 400, "too short");
    assert_eq!(set_code(&edge, 999, json!({})).0, 404);
    assert!(edge.violations().is_empty());
}

#[test]
fn a_leaked_code_is_replaced_by_a_fresh_one() {
    let edge = Edge::new();
    campaign(&edge, json!({}));
    join(&edge, "ann", 1, None);
    let ann = edge.participant_id("codes", "ann");
    let old = edge.me("codes", "ann").unwrap()["code"].as_str().unwrap().to_owned();
    let (status, given) = set_code(&edge, ann, json!({}));
    assert_eq!(status, 200, "{given}");
    let fresh = given["code"].as_str().unwrap().to_owned();
    assert_ne!(fresh, old);
    assert_eq!(fresh.len(), 8);
    join(&edge, "bob", 2, Some(&fresh));
    join(&edge, "cat", 3, Some(&old));
    assert_eq!(confirmed(&edge, "ann"), 1);
    // The audit log says who got which code.
    let (_, audit) = edge.json("GET", "/v1/admin/audit", json!({}));
    assert!(audit.to_string().contains(&fresh), "{audit}");
}

#[test]
fn a_code_runs_out_of_days_and_a_new_one_starts_them_again() {
    let edge = Edge::new();
    campaign(&edge, json!({"code_valid_days": 7}));
    join(&edge, "ann", 1, None);
    let me = edge.me("codes", "ann").unwrap();
    let code = me["code"].as_str().unwrap().to_owned();
    assert!(me["code_valid_until"].is_string(), "{me}");

    edge.now.set(edge.now.get() + 6 * DAY);
    join(&edge, "bob", 2, Some(&code));
    assert_eq!(confirmed(&edge, "ann"), 1, "within its days");
    edge.now.set(edge.now.get() + 2 * DAY);
    join(&edge, "cat", 3, Some(&code));
    assert_eq!(confirmed(&edge, "ann"), 1, "past its days");
    assert_eq!(refusal(&edge, "cat").as_deref(), Some("expired_code"));
    let (_, at) = location(&edge, &code);
    assert!(!at.contains("ref="), "an expired code names no one: {at}");

    let ann = edge.participant_id("codes", "ann");
    let (_, given) = set_code(&edge, ann, json!({}));
    assert!(given["valid_until"].is_string(), "{given}");
    join(&edge, "dan", 4, given["code"].as_str());
    assert_eq!(confirmed(&edge, "ann"), 2, "a new code has its days again");
}

/// "Why didn't my referral count?", asked with the person's email: the
/// answer is found by its keyed hash (the edge never keeps the address).
#[test]
fn an_operator_finds_the_answers_of_a_person_by_their_email() {
    let edge = Edge::new();
    campaign(&edge, json!({}));
    let signup = json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "zoe",
        "campaign": "codes", "attribution": {"ref": "NOSUCHCD"}, "traits": {"email": "Zoe@Example.com"}}]);
    assert_eq!(edge.batch(signup).0, 202);
    let (status, answers) = edge.json(
        "GET",
        "/v1/admin/campaigns/codes/answers?q=zoe%40example.com",
        json!({}),
    );
    assert_eq!(status, 200);
    assert_eq!(answers["answers"][0]["reason"], "unknown_code", "{answers}");
    assert_eq!(answers["answers"][0]["anonymous_id"], "zoe");
    let (_, none) = edge.json(
        "GET",
        "/v1/admin/campaigns/codes/answers?q=someone%40example.com",
        json!({}),
    );
    assert_eq!(none["answers"], json!([]));
}
