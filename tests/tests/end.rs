//! A campaign's end as an operator runs it: a preview of who would get what
//! (kept nowhere), then the end itself, which with the same seed grants the
//! same people.

use refloop_tests::Edge;
use serde_json::{Value, json};

fn uuid(n: u64) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn winners(end: &Value) -> Vec<(String, String)> {
    end["awarded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["participant"]["code"].as_str().unwrap().to_owned(),
                g["reward"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[test]
fn an_end_previewed_keeps_nothing_and_the_end_grants_what_it_showed() {
    let edge = Edge::new();
    let config = json!({
        "name": "contest",
        "ends_at": "2099-01-01T00:00:00Z",
        "quest": {"steps": [{"event": "signup"}]},
        "point_rules": [{"id": "each", "event": "referral_confirmed", "to": "referrer", "points": 10}],
        "rewards": [
            {"id": "early", "name": "Early access", "kind": {"type": "coupon", "prefix": "EARLY"}},
            {"id": "prize", "name": "Prize", "kind": {"type": "badge", "badge": "lucky"}},
            {"id": "ticket", "name": "Ticket", "kind": {"type": "raffle_ticket", "tickets": 1}}
        ],
        "milestones": [{"id": "first", "confirmed_referrals": 1, "reward": "ticket"}],
        "end_distributions": [
            {"reward": "early", "rule": {"type": "top_n", "n": 2}},
            {"reward": "prize", "rule": {"type": "raffle", "winners": 1}}
        ],
        "fraud": {"flag_shared_ip": false}
    });
    let (status, body) = edge.json(
        "POST",
        "/v1/admin/campaigns",
        json!({"slug": "contest", "config": config}),
    );
    assert_eq!(status, 201, "{body}");
    let mut n = 0;
    let mut join = |who: &str, code: Option<&str>| {
        n += 1;
        let mut e =
            json!({"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": who, "campaign": "contest"});
        if let Some(c) = code {
            e["attribution"] = json!({"ref": c});
        }
        assert_eq!(edge.batch(json!([e])).0, 202);
    };
    for who in ["ann", "ben", "cat"] {
        join(who, None);
    }
    let code = |who: &str| edge.me("contest", who).unwrap()["code"].as_str().unwrap().to_owned();
    let (ann, ben, cat) = (code("ann"), code("ben"), code("cat"));
    for (i, by) in [&ann, &ann, &ann, &ben, &ben, &cat].into_iter().enumerate() {
        join(&format!("friend{i}"), Some(by));
    }

    let (status, preview) = edge.json(
        "POST",
        "/v1/admin/campaigns/contest/end",
        json!({"seed": 42, "preview": true}),
    );
    assert_eq!(status, 200, "{preview}");
    assert_eq!(preview["preview"], true);
    let shown = winners(&preview);
    assert_eq!(
        &shown[..2],
        &[(ann.clone(), "early".into()), (ben.clone(), "early".into())]
    );
    assert_eq!(shown.len(), 3, "two coupons and one raffle prize: {shown:?}");
    // Nothing was kept: the three raffle tickets only, the campaign still runs.
    let (_, grants) = edge.json("GET", "/v1/admin/campaigns/contest/grants", json!({}));
    assert_eq!(grants["grants"].as_array().unwrap().len(), 3);
    let (_, c) = edge.json("GET", "/v1/admin/campaigns/contest", json!({}));
    assert_eq!(c["status"], "active");
    assert!(edge.violations().is_empty());

    let (status, ended) = edge.json("POST", "/v1/admin/campaigns/contest/end", json!({"seed": 42}));
    assert_eq!(status, 200, "{ended}");
    assert_eq!(ended["preview"], false);
    assert_eq!(winners(&ended), shown, "the same seed, the same winners");
    let (_, grants) = edge.json("GET", "/v1/admin/campaigns/contest/grants", json!({}));
    assert_eq!(grants["grants"].as_array().unwrap().len(), 6);
    // Ended once: neither a preview nor an end again.
    let (status, _) = edge.json("POST", "/v1/admin/campaigns/contest/end", json!({"preview": true}));
    assert_eq!(status, 409);
    assert_eq!(edge.json("POST", "/v1/admin/campaigns/contest/end", json!({})).0, 409);
}
