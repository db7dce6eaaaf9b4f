//! The edge's handlers on real SQLite: every D1 statement against the
//! directory's schema, the whole edge (worker and campaign objects, each on
//! rusqlite) against the in-memory reference program, the ranks, the limits,
//! the cron, and the bound on round trips per request.

use proptest::prelude::*;
use refloop_core::engine::config::CampaignConfig;
use refloop_core::engine::program::{EngineEvent, Input, Program};
use refloop_core::engine::referral::Touch;
use refloop_tests::{Edge, migrated_db};
use serde_json::{Value, json};

#[test]
fn every_statement_of_the_edge_prepares_against_the_migrated_schema() {
    let db = migrated_db();
    for (name, sql) in refloop_edge::sql::ALL {
        if let Err(e) = db.prepare(sql) {
            panic!("{name}: {e}\n{sql}");
        }
    }
}

fn plan(db: &rusqlite::Connection, sql: &str) -> Vec<String> {
    let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let n = stmt.parameter_count();
    let args: Vec<rusqlite::types::Value> = (0..n).map(|_| rusqlite::types::Value::Integer(1)).collect();
    stmt.query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

/// The queries of every event and every widget read are answered from an
/// index, never by scanning a table (D1 bills every row read).
#[test]
fn hot_queries_never_scan_a_table() {
    use refloop_edge::sql::*;
    let db = migrated_db();
    for (name, sql) in [
        ("INSERT_EVENTS", INSERT_EVENTS),
        ("ACTIVE_CAMPAIGNS", ACTIVE_CAMPAIGNS),
        ("COUNT_REQUESTS", COUNT_REQUESTS),
        ("CLAIM_CAMPAIGN_DELIVERIES", CLAIM_CAMPAIGN_DELIVERIES),
        ("CLAIMED_DELIVERIES", CLAIMED_DELIVERIES),
        ("NEXT_DELIVERY_DUE", NEXT_DELIVERY_DUE),
        ("SITE_BY_PUBLISHABLE_KEY", SITE_BY_PUBLISHABLE_KEY),
        ("LIST_EVENTS", LIST_EVENTS),
        ("LINKS", LINKS),
    ] {
        let p = plan(&db, sql);
        let scans: Vec<&String> = p
            .iter()
            .filter(|d| {
                d.starts_with("SCAN")
                    && !d.contains("USING")
                    && !d.contains("json_each")
                    && !d.contains("VIRTUAL TABLE")
                    && !d.contains("CONSTANT ROW")
            })
            .collect();
        assert!(scans.is_empty(), "{name} scans: {p:#?}");
    }
}

const CONFIG: &str = r#"{
  "name": "Parity",
  "quest": {"steps": [{"event": "signup"}, {"event": "purchase", "trusted": true}], "window_days": 30},
  "point_rules": [
    {"id": "joined", "event": "signup", "to": "self", "points": 10},
    {"id": "per", "event": "referral_confirmed", "to": "referrer", "points": 50},
    {"id": "third", "event": "referral_confirmed", "to": "referrer", "points": 25, "when": {"referral_count": {"equals": 3}}},
    {"id": "welcome", "event": "referral_confirmed", "to": "referee", "points": 20},
    {"id": "bought", "event": "purchase", "to": "self", "points": 5, "trusted": true},
    {"id": "friend-bought", "event": "purchase", "to": "referrer", "points": 3}
  ],
  "milestones": [
    {"id": "first", "confirmed_referrals": 1, "reward": "bonus"},
    {"id": "pairs", "every": 2, "reward": "small"}
  ],
  "rewards": [
    {"id": "bonus", "name": "bonus", "kind": {"type": "points", "points": 100}},
    {"id": "small", "name": "small", "kind": {"type": "points", "points": 7}},
    {"id": "hello", "name": "hello", "kind": {"type": "badge", "badge": "hello"}}
  ],
  "referee_reward": "hello",
  "caps": {"per_referrer_max_points": 400},
  "fraud": {"flag_shared_ip": false, "flag_disposable_email": true, "velocity_per_hour": 1000}
}"#;

#[derive(Debug, Clone)]
enum Op {
    /// A disposable email flags the referral: its rewards and referral-side
    /// points wait for a review.
    Signup {
        user: u8,
        referrer: Option<u8>,
        disposable: bool,
    },
    Purchase {
        user: u8,
        trusted: bool,
    },
    Visit {
        user: u8,
    },
    Review {
        referee: u8,
        approve: bool,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u8..7, proptest::option::of(0u8..7), proptest::bool::weighted(0.3))
            .prop_map(|(user, referrer, disposable)| Op::Signup { user, referrer, disposable }),
        3 => (0u8..7, any::<bool>()).prop_map(|(user, trusted)| Op::Purchase { user, trusted }),
        1 => (0u8..7).prop_map(|user| Op::Visit { user }),
        1 => (0u8..7, any::<bool>()).prop_map(|(referee, approve)| Op::Review { referee, approve }),
    ]
}

fn uuid(n: u64) -> String {
    format!("00000000-0000-7000-8000-{n:012x}")
}

/// Runs the same operations through the edge (SQLite, one slice at a time) and
/// through the in-memory program; returns per user (score, confirmed, grants).
/// Per user: (score, confirmed referrals, grants).
type Outcomes = Vec<(i64, i64, usize)>;

fn both(ops: &[Op]) -> (Outcomes, Outcomes, Vec<String>) {
    let edge = Edge::new();
    let (s, _) = edge.json("POST", "/v1/admin/campaigns/launch/status", json!({"status": "paused"}));
    assert_eq!(s, 200);
    let config: Value = serde_json::from_str(CONFIG).unwrap();
    let (s, body) = edge.json("POST", "/v1/admin/campaigns", json!({"slug": "p", "config": config}));
    assert_eq!(s, 201, "{body}");
    let mut program = Program::new(CampaignConfig::from_json(CONFIG).unwrap(), 9).unwrap();
    let start = edge.now.get();
    for (i, op) in ops.iter().enumerate() {
        let at = start + i as i64 * 60_000;
        edge.now.set(at);
        let (user, name, trusted, referrer, disposable) = match op {
            Op::Signup {
                user,
                referrer,
                disposable,
            } => (*user, "signup", false, *referrer, *disposable),
            Op::Purchase { user, trusted } => (*user, "purchase", *trusted, None, false),
            Op::Visit { user } => (*user, "visit", false, None, false),
            Op::Review { referee, approve } => {
                review_both(&edge, &mut program, *referee, *approve, at);
                continue;
            }
        };
        let anon = format!("u{user}");
        let edge_code = referrer.map(|r| {
            edge.me("p", &format!("u{r}"))
                .map_or("ZZZZZZZZ".to_owned(), |m| m["code"].as_str().unwrap().to_owned())
        });
        let program_code = referrer.map(|r| {
            program
                .find(Some(&format!("u{r}")), None)
                .and_then(|p| program.participant(p))
                .map_or("ZZZZZZZZ".to_owned(), |p| p.code.clone())
        });
        let id = uuid(i as u64 + 1);
        let mut event = json!({"id": id, "type": "track", "event": name, "anonymous_id": anon});
        if let Some(c) = &edge_code {
            event["attribution"] = json!({"ref": c});
        }
        let domain = if disposable { "mailinator.com" } else { "example.com" };
        if name == "signup" {
            event["traits"] = json!({"email": format!("{anon}@{domain}")});
        }
        let (status, body) = if trusted {
            edge.server(json!([event]))
        } else {
            edge.batch(json!([event]))
        };
        assert_eq!((status, body["accepted"].as_i64()), (202, Some(1)), "{body}");
        let mut e = EngineEvent::new(id, name, anon.clone(), at);
        e.trusted = trusted;
        if name == "signup" {
            e.email_hash = Some(format!("{anon}@{domain}"));
            e.email_domain = Some(domain.to_owned());
        }
        e.touch = program_code.map(|code| Touch {
            code: Some(code),
            invitation: None,
            at,
        });
        program.apply(Input::Event(Box::new(e)));
    }
    let mut from_edge = Vec::new();
    let mut from_program = Vec::new();
    for u in 0..7u8 {
        let anon = format!("u{u}");
        from_edge.push(edge.me("p", &anon).map_or((0, 0, 0), |m| {
            (
                m["points"].as_i64().unwrap(),
                m["referrals"]["confirmed"].as_i64().unwrap(),
                m["rewards"].as_array().unwrap().len(),
            )
        }));
        from_program.push(program.find(Some(&anon), None).map_or((0, 0, 0), |p| {
            (
                program.score(p),
                i64::from(program.confirmed_referrals(p)),
                program.grants().iter().filter(|g| g.participant == p).count(),
            )
        }));
    }
    (from_edge, from_program, edge.violations())
}

/// An operator reviews the referral of `referee` in both: the edge through the
/// admin API, the program through its input (each a no-op when there is no
/// referral waiting for review).
fn review_both(edge: &Edge, program: &mut Program, referee: u8, approve: bool, at: i64) {
    let anon = format!("u{referee}");
    let Some(code) = edge.me("p", &anon).map(|m| m["code"].as_str().unwrap().to_owned()) else {
        return;
    };
    let (_, list) = edge.json("GET", "/v1/admin/campaigns/p/referrals?review=pending", json!({}));
    if let Some(r) = list["referrals"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["referee"]["code"] == code.as_str())
    {
        let (s, body) = edge.json(
            "POST",
            &format!("/v1/admin/campaigns/p/referrals/{}/review", r["id"]),
            json!({"approve": approve}),
        );
        assert_eq!(s, 200, "{body}");
    }
    if let Some(referral) = program
        .find(Some(&anon), None)
        .and_then(|p| program.referral_of(p))
        .map(|r| r.id)
    {
        program.apply(Input::Review { referral, approve, at });
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The edge composes the engine over stored slices; the program composes it
    /// in memory. For any sequence of signups, referrals and conversions they
    /// agree on every score, every confirmed count and every grant, and the
    /// database keeps its invariants.
    #[test]
    fn the_edge_on_sqlite_agrees_with_the_reference_program(ops in proptest::collection::vec(op(), 1..40)) {
        let (edge, program, violations) = both(&ops);
        prop_assert_eq!(edge, program);
        prop_assert!(violations.is_empty(), "{:?}", violations);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// The rank a participant is shown is the rank by sorting everyone:
    /// higher score first, ties to the earlier join.
    #[test]
    fn shown_ranks_equal_sorted_ranks(points in proptest::collection::vec(-3i64..6, 1..30)) {
        let edge = Edge::new();
        let (s, _) = edge.json("POST", "/v1/admin/campaigns/launch/status", json!({"status": "paused"}));
        prop_assert_eq!(s, 200);
        let (s, b) = edge.json("POST", "/v1/admin/campaigns", json!({"slug": "r", "config": {"name": "r"}}));
        prop_assert_eq!(s, 201, "{}", b);
        let mut ids = Vec::new();
        for (i, p) in points.iter().enumerate() {
            // Joins spread over a few hours, several in the same hour and ms-apart.
            edge.now.set(edge.now.get() + if i % 3 == 0 { 1_900_000 } else { 1 });
            edge.batch(json!([{"id": uuid(i as u64 + 1), "type": "track", "event": "signup", "anonymous_id": format!("u{i}")}]));
            let id = edge.json("GET", &format!("/v1/admin/campaigns/r/participants?q=u{i}"), json!({})).1["participants"][0]["id"].as_i64().unwrap();
            if *p != 0 {
                let (s, b) = edge.json("POST", &format!("/v1/admin/campaigns/r/participants/{id}/adjustments"), json!({"points": p, "note": "t"}));
                prop_assert_eq!(s, 201, "{}", b);
            }
            ids.push((id, *p, i));
        }
        let mut sorted: Vec<&(i64, i64, usize)> = ids.iter().filter(|x| x.1 > 0).collect();
        sorted.sort_by_key(|x| (-x.1, x.2));
        for (rank, (_, _, i)) in sorted.iter().enumerate() {
            let me = edge.me("r", &format!("u{i}")).unwrap();
            prop_assert_eq!(me["rank"].as_u64(), Some(rank as u64 + 1));
        }
        prop_assert!(edge.violations().is_empty());
    }
}

#[test]
fn an_ip_over_its_limit_waits_for_the_next_minute() {
    let edge = Edge::new();
    edge.limiter.limits.set(refloop_edge::app::Limits {
        per_key_per_minute: 1_000_000,
        per_ip_per_minute: 3,
    });
    let send = |n: u64| {
        let body = json!({"key": refloop_tests::PK, "events": [{"id": uuid(n), "type": "page", "anonymous_id": "x"}]})
            .to_string();
        edge.call("POST", "/v1/batch", &[("cf-connecting-ip", "203.0.113.9")], &body)
    };
    edge.now.set(1_790_000_000_000 / 60_000 * 60_000 + 1_000);
    let statuses: Vec<u16> = (1..=5).map(|n| send(n).status).collect();
    assert_eq!(statuses, [202, 202, 202, 429, 429]);
    let r = send(6);
    let retry: u32 = r
        .headers
        .iter()
        .find(|(k, _)| k == "Retry-After")
        .unwrap()
        .1
        .parse()
        .unwrap();
    assert_eq!(retry, 59);
    edge.now.set(edge.now.get() + 60_000);
    assert_eq!(send(7).status, 202);
    assert_eq!(
        edge.db.count("SELECT count(*) FROM events"),
        4,
        "refused requests stored nothing"
    );
}

/// A webhook post as the receiver saw it: url, headers, body.
type Post = (String, Vec<(String, String)>, String);

/// Records posts and answers every one with its status.
struct Recorder(std::cell::RefCell<Vec<Post>>, u16);

impl refloop_edge::webhooks::Outbound for Recorder {
    async fn post(&self, url: &str, headers: &[(String, String)], body: &str) -> Result<u16, String> {
        self.0
            .borrow_mut()
            .push((url.to_owned(), headers.to_vec(), body.to_owned()));
        Ok(self.1)
    }
}

#[test]
fn the_alarm_expires_overdue_referrals_and_grants_and_delivers_signed_webhooks() {
    let edge = Edge::new();
    edge.json("POST", "/v1/admin/campaigns/launch/status", json!({"status": "paused"}));
    let config = json!({
        "name": "cron",
        "quest": {"steps": [{"event": "signup"}, {"event": "purchase"}], "window_days": 1},
        "point_rules": [{"id": "hi", "event": "signup", "to": "self", "points": 1}],
        "milestones": [{"id": "one", "confirmed_referrals": 1, "reward": "gift"}],
        "rewards": [{"id": "gift", "name": "gift", "kind": {"type": "badge", "badge": "b"}, "expires_after_days": 2}],
        "fraud": {"flag_shared_ip": false}
    });
    assert_eq!(
        edge.json("POST", "/v1/admin/campaigns", json!({"slug": "c", "config": config}))
            .0,
        201
    );
    let (s, hook) = edge.json("POST", "/v1/admin/webhooks", json!({"url": "https://hooks.example/x"}));
    assert_eq!(s, 201);
    let secret = hook["secret"].as_str().unwrap().to_owned();
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "a"}]));
    let code = edge.me("c", "a").unwrap()["code"].as_str().unwrap().to_owned();
    for (n, who) in [(2, "b"), (4, "c")] {
        edge.batch(json!([{"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": who, "attribution": {"ref": code}}]));
    }
    edge.batch(json!([{"id": uuid(3), "type": "track", "event": "purchase", "anonymous_id": "b"}]));
    assert_eq!(edge.me("c", "a").unwrap()["referrals"]["confirmed"], 1);

    // Three days later: c's quest window closed, the gift's two days ran out.
    let later = edge.now.get() + 3 * 86_400_000;
    let failing = Recorder(Default::default(), 503);
    let report = edge.alarm("c", &failing, later);
    assert!(report.snapshot, "the day's snapshot of the board");
    assert_eq!(edge.me("c", "a").unwrap()["referrals"]["expired"], 1);
    let (_, grants) = edge.json("GET", "/v1/admin/campaigns/c/grants", json!({}));
    let history: Vec<&str> = grants["grants"][0]["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["to"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["earned", "approved", "expired"]);

    // The receiver failed: every notice waits for the next attempt, 30 s on,
    // and the alarm comes back for it.
    let sent = failing.0.borrow().len();
    assert!(
        sent >= 3,
        "referral.confirmed, milestone.reached, reward.earned at least: {sent}"
    );
    assert_eq!(report.failed as usize, sent.min(10));
    assert!(report.next <= later + 30_000, "wakes for the retry: {report:?}");
    let again = edge.alarm("c", &failing, later + 1_000);
    assert_eq!(again.delivered + again.failed, 0, "not due yet");
    assert_eq!(
        edge.cron(&failing, later + 1_000).failed,
        0,
        "the cron leaves the campaign's own deliveries"
    );
    let ok = Recorder(Default::default(), 200);
    let mut delivered = 0;
    for n in 0..5 {
        delivered += edge.alarm("c", &ok, later + 31_000 + n).delivered;
    }
    assert_eq!(delivered as usize, sent);
    for (url, headers, body) in ok.0.borrow().iter() {
        assert_eq!(url, "https://hooks.example/x");
        let sig = &headers.iter().find(|(k, _)| k == "Refloop-Signature").unwrap().1;
        let ts = sig
            .split(',')
            .next()
            .unwrap()
            .trim_start_matches("t=")
            .parse::<i64>()
            .unwrap();
        assert_eq!(sig, &refloop_edge::webhooks::signature(&secret, ts, body));
    }
    // What a receiver needs is in the payload: codes and user ids beside the ids, versioned.
    let confirmed: Value =
        ok.0.borrow()
            .iter()
            .map(|(_, _, body)| serde_json::from_str::<Value>(body).unwrap())
            .find(|b| b["type"] == "referral.confirmed")
            .expect("a referral.confirmed delivery");
    assert_eq!(confirmed["referrer_code"], json!(code), "{confirmed}");
    assert_eq!(confirmed["schema"], 1);
    let fine = edge.alarm("c", &ok, later + 10_000_000);
    assert_eq!(fine.delivered, 0, "delivered once");
    assert_eq!(
        edge.cron(&ok, later + 20_000_000).delivered,
        0,
        "and not again by the cron"
    );
    assert!(edge.violations().is_empty());
}

/// Deliveries a run claimed are not sent by another run; a delivery no alarm
/// sent is the cron's; a deleted webhook receives nothing more.
#[test]
fn deliveries_are_claimed_and_stop_with_their_webhook() {
    let edge = Edge::new();
    let (_, hook) = edge.json("POST", "/v1/admin/webhooks", json!({"url": "https://hooks.example/y"}));
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "a"}]));
    let code = edge.me("launch", "a").unwrap()["code"].as_str().unwrap().to_owned();
    edge.batch(
        json!([{"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "b", "attribution": {"ref": code}}]),
    );
    let due = edge.db.count("SELECT count(*) FROM outbox WHERE delivered_at IS NULL");
    assert!(due >= 1, "a notice to deliver");
    // Another run holds every delivery: this one sends none of them.
    let now = edge.now.get();
    edge.db
        .conn
        .borrow()
        .execute("UPDATE outbox SET claim = 'other', claimed_until = ?1", [now + 60_000])
        .unwrap();
    let ok = Recorder(Default::default(), 200);
    assert_eq!(edge.alarm("launch", &ok, now).delivered, 0, "claimed by another run");
    // The other run died: its claim lapses, and long after, the cron sends what no alarm did.
    let late = now + refloop_edge::webhooks::STRAGGLER_MS + 120_000;
    assert_eq!(edge.cron(&ok, late).delivered as i64, due);
    assert_eq!(ok.0.borrow().len() as i64, due);
    // Deleted: the next notice is never sent.
    let id = hook["id"].as_i64().unwrap();
    assert_eq!(
        edge.json("DELETE", &format!("/v1/admin/webhooks/{id}"), json!({})).0,
        200
    );
    edge.batch(
        json!([{"id": uuid(3), "type": "track", "event": "signup", "anonymous_id": "c", "attribution": {"ref": code}}]),
    );
    edge.db
        .conn
        .borrow()
        .execute(
            "UPDATE outbox SET delivered_at = NULL, claim = NULL, claimed_until = 0",
            [],
        )
        .unwrap();
    let report = edge.alarm("launch", &ok, late + 1);
    assert_eq!(report.delivered, 0, "a deleted webhook receives nothing");
    assert_eq!(
        edge.cron(&ok, late + 2 * refloop_edge::webhooks::STRAGGLER_MS)
            .delivered,
        0
    );
}

/// A flagged referral's referral-side points wait for the review and are
/// paid on approval, in the edge as in the program.
#[test]
fn held_events_are_paid_on_approval_like_the_program_does() {
    let ops = [
        Op::Signup {
            user: 0,
            referrer: None,
            disposable: false,
        },
        Op::Signup {
            user: 1,
            referrer: Some(0),
            disposable: true,
        },
        Op::Purchase {
            user: 1,
            trusted: false,
        },
        Op::Purchase { user: 1, trusted: true },
        Op::Review {
            referee: 1,
            approve: true,
        },
    ];
    let (edge, program, violations) = both(&ops);
    assert_eq!(edge, program);
    assert!(violations.is_empty(), "{violations:?}");
    // The referrer: 10 for joining, 3 + 3 held from the two purchases, 50 for
    // the confirmed referral, 100 for the first milestone.
    assert_eq!(edge[0].0, 10 + 3 + 3 + 50 + 100);
    let rejected = [
        Op::Signup {
            user: 0,
            referrer: None,
            disposable: false,
        },
        Op::Signup {
            user: 1,
            referrer: Some(0),
            disposable: true,
        },
        Op::Purchase { user: 1, trusted: true },
        Op::Review {
            referee: 1,
            approve: false,
        },
    ];
    let (edge, program, _) = both(&rejected);
    assert_eq!(edge, program);
    assert_eq!(edge[0].0, 10, "nothing held is paid after a rejection");
}

#[test]
fn a_qr_code_is_an_svg_of_the_link() {
    let edge = Edge::new();
    let r = edge.call(
        "GET",
        "/v1/qr.svg?data=https%3A%2F%2Fedge.example%2Fr%2FABCD2345",
        &[],
        "",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.body.starts_with("<?xml") && r.body.contains("<svg"),
        "{}",
        &r.body[..60]
    );
    assert_eq!(edge.call("GET", "/v1/qr.svg", &[], "").status, 400);
}

/// A request costs a fixed number of D1 round trips and one call per campaign
/// it reaches, whatever the number of events in it: signed-up participants'
/// events across many campaigns, 10 per batch or 100.
#[test]
fn round_trips_per_request_do_not_grow_with_its_events() {
    use refloop_edge::ingest::MAX_D1_ROUND_TRIPS;
    let edge = Edge::new();
    // Eight campaigns that all score `viewed`.
    for c in 0..8 {
        let config = json!({"name": format!("c{c}"), "point_rules": [{"id": "v", "event": "viewed", "to": "self", "points": 1, "max_per_participant": 1000}]});
        let (s, b) = edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": format!("c{c}"), "config": config}),
        );
        assert_eq!(s, 201, "{b}");
    }
    let people = 50;
    let signups: Vec<Value> = (0..people)
        .map(|i| json!({"id": uuid(1000 + i), "type": "track", "event": "signup", "anonymous_id": format!("p{i}")}))
        .collect();
    assert_eq!(edge.batch(json!(signups)).0, 202);
    let mut next = 10_000;
    let mut cost = |n: u64| {
        let events: Vec<Value> = (0..n)
            .map(|i| {
                next += 1;
                json!({"id": uuid(next), "type": "track", "event": "viewed", "anonymous_id": format!("p{}", i % people)})
            })
            .collect();
        let (trips, calls) = (edge.db.round_trips.get(), edge.objects.calls.get());
        let (s, body) = edge.batch(json!(events));
        assert_eq!((s, body["accepted"].as_u64()), (202, Some(n)), "{body}");
        (edge.db.round_trips.get() - trips, edge.objects.calls.get() - calls)
    };
    let ten = cost(10);
    let hundred = cost(100);
    eprintln!("participants' batch of 10: {ten:?}, of 100: {hundred:?} (D1 round trips, campaign calls)");
    assert_eq!(ten, hundred, "the cost of a request does not grow with its events");
    assert!(ten.0 as usize <= MAX_D1_ROUND_TRIPS, "{} D1 round trips", ten.0);
    // The demo's two campaigns name no `viewed`: they are not called at all.
    assert_eq!(ten.1, 8, "one call per campaign reached");
    let scored: i64 = (0..8)
        .map(|c| {
            edge.json("GET", &format!("/v1/admin/campaigns/c{c}/check"), json!({}))
                .1["counts"]["ledger"]
                .as_i64()
                .unwrap()
        })
        .sum();
    assert_eq!(scored, 8 * 110, "every campaign scored every event once");
    assert!(edge.violations().is_empty());
}

/// Public reads, browsers' ingestion and servers' ingestion have budgets of
/// their own: a flood of anonymous leaderboard reads spends only the reads'
/// (issue: 1,250 reads once made a real purchase 429). No request writes a
/// counter to D1.
#[test]
fn a_flood_of_public_reads_never_stops_a_tenants_ingestion() {
    let edge = Edge::new();
    edge.limiter.limits.set(refloop_edge::app::Limits {
        per_key_per_minute: 1_200,
        per_ip_per_minute: 1_000_000,
    });
    edge.now.set(1_790_000_000_000 / 60_000 * 60_000 + 1_000);
    let read = |i: u32| {
        let ip = format!("198.51.100.{}", i % 200);
        edge.call(
            "GET",
            &format!("/v1/campaigns/launch/leaderboard?key={}", refloop_tests::PK),
            &[("cf-connecting-ip", &ip)],
            "",
        )
        .status
    };
    let statuses: Vec<u16> = (0..1_250).map(read).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 429).count(),
        50,
        "the reads' own budget ran out"
    );
    let (s, _) = edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "a"}]));
    assert_eq!(s, 202, "browsers' ingestion has its own budget");
    let (s, _) = edge.server(json!([{"id": uuid(2), "type": "track", "event": "purchase", "anonymous_id": "a"}]));
    assert_eq!(s, 202, "so has the site's server");
    assert_eq!(
        edge.db.count("SELECT count(*) FROM rate_windows"),
        0,
        "nothing counted in D1"
    );
}

/// Finding 1 of "trust boundaries": a signup that names a participant who
/// joined before, with someone's code, made a referral after the fact (and
/// the victim's real purchase paid the code's owner). A person joins through
/// a link once; a page that identifies and then signs up still brings it.
#[test]
fn a_signup_cannot_claim_someone_who_already_joined() {
    let edge = Edge::new();
    let signup = |n: u64, who: &str, code: Option<&str>| {
        let mut e = json!({"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": who, "user_id": format!("user-{who}")});
        if let Some(c) = code {
            e["attribution"] = json!({"ref": c});
        }
        assert_eq!(edge.batch(json!([e])).0, 202);
    };
    signup(1, "victim", None);
    signup(2, "attacker", None);
    let code = edge.me("launch", "attacker").unwrap()["code"]
        .as_str()
        .unwrap()
        .to_owned();
    edge.now.set(edge.now.get() + 11 * 60_000);
    signup(3, "victim", Some(&code));
    let (_, refs) = edge.json("GET", "/v1/admin/campaigns/launch/referrals", json!({}));
    assert_eq!(
        refs["referrals"].as_array().unwrap().len(),
        0,
        "no referral for an old participant: {refs}"
    );
    // identify, then signup a moment later from the same page: the link counts.
    let identify = json!([{"id": uuid(4), "type": "identify", "anonymous_id": "newcomer", "user_id": "user-new"}]);
    assert_eq!(edge.batch(identify).0, 202);
    edge.now.set(edge.now.get() + 30_000);
    signup(5, "newcomer", Some(&code));
    let (_, refs) = edge.json("GET", "/v1/admin/campaigns/launch/referrals", json!({}));
    assert_eq!(refs["referrals"].as_array().unwrap().len(), 1, "{refs}");
    assert!(edge.violations().is_empty());
}

/// Finding 2: untrusted rules paid on every fresh event id (100 signups →
/// 1,000 points). A browser's events fire a rule once per participant unless
/// the rule says how often; a trusted server's events are not capped.
#[test]
fn a_browser_cannot_mint_points_by_repeating_an_event() {
    let edge = Edge::new();
    let config = json!({
        "name": "mint",
        "point_rules": [
            {"id": "joined", "event": "signup", "to": "self", "points": 10},
            {"id": "read", "event": "article_read", "to": "self", "points": 1, "max_per_participant": 3},
            {"id": "bought", "event": "purchase", "to": "self", "points": 100, "trusted": true}
        ],
        "fraud": {"flag_shared_ip": false}
    });
    assert_eq!(
        edge.json("POST", "/v1/admin/campaigns", json!({"slug": "mint", "config": config}))
            .0,
        201
    );
    let events = |from: u64, name: &str, n: u64| -> Value {
        (0..n)
            .map(|i| json!({"id": uuid(from + i), "type": "track", "event": name, "anonymous_id": "x", "campaign": "mint"}))
            .collect()
    };
    assert_eq!(edge.batch(events(1, "signup", 100)).0, 202);
    assert_eq!(edge.me("mint", "x").unwrap()["points"], 10, "one payout of `joined`");
    assert_eq!(edge.batch(events(200, "article_read", 50)).0, 202);
    assert_eq!(
        edge.me("mint", "x").unwrap()["points"],
        13,
        "`read` three times, as configured"
    );
    assert_eq!(edge.server(events(300, "purchase", 4)).0, 202);
    assert_eq!(
        edge.me("mint", "x").unwrap()["points"],
        413,
        "trusted purchases all count"
    );
    let (s, bad) = edge.json(
        "POST",
        "/v1/admin/campaigns",
        json!({"slug": "bad", "config": {"name": "bad", "point_rules": [{"id": "r", "event": "e", "to": "self", "points": 1, "max_per_participant": 0}]}}),
    );
    assert_eq!(s, 422, "{bad}");
    assert!(bad.to_string().contains("max_per_participant"), "{bad}");
    assert!(edge.violations().is_empty());
}

/// Finding 3: client clocks decided windows and ties (a signup dated 1800
/// won every tie). Server time decides; the client's time stays in the log.
#[test]
fn server_time_decides_not_the_clients_clock() {
    let edge = Edge::new();
    let now = edge.now.get();
    let backdated = json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "old", "timestamp": "1800-01-01T00:00:00Z"}]);
    assert_eq!(edge.batch(backdated).0, 202);
    let (_, people) = edge.json("GET", "/v1/admin/campaigns/launch/participants", json!({}));
    let joined = people["participants"][0]["joined_at"].as_str().unwrap().to_owned();
    assert_eq!(
        refloop_core::time::parse_rfc3339_ms(&joined),
        Some(now / 1000 * 1000),
        "joined at server time: {joined}"
    );
    let id = people["participants"][0]["id"].as_i64().unwrap();
    let (_, ledger) = edge.json(
        "GET",
        &format!("/v1/admin/campaigns/launch/participants/{id}/ledger"),
        json!({}),
    );
    for e in ledger["entries"].as_array().unwrap() {
        assert_eq!(
            refloop_core::time::parse_rfc3339_ms(e["at"].as_str().unwrap()),
            Some(now / 1000 * 1000)
        );
    }
    // The site's server is believed about its own events' time (importing
    // history), within the last 30 days.
    let ten_days_ago = now - 10 * 86_400_000;
    let at = refloop_core::time::format_rfc3339_ms(ten_days_ago);
    let imported =
        json!([{"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "imported", "timestamp": at}]);
    assert_eq!(edge.server(imported).0, 202);
    let (_, people) = edge.json("GET", "/v1/admin/campaigns/launch/participants?q=imported", json!({}));
    let joined = people["participants"][0]["joined_at"].as_str().unwrap().to_owned();
    assert_eq!(
        refloop_core::time::parse_rfc3339_ms(&joined),
        Some(ten_days_ago / 1000 * 1000),
        "{joined}"
    );
}

/// Finding 9 (the edge's part): a cross-origin page can read a 429's
/// `Retry-After` (so the SDK waits as asked), and a 405 says what is allowed.
#[test]
fn a_429_exposes_retry_after_and_a_405_says_allow() {
    let edge = Edge::new();
    edge.limiter.limits.set(refloop_edge::app::Limits {
        per_key_per_minute: 1,
        per_ip_per_minute: 1_000_000,
    });
    let body = json!({"key": refloop_tests::PK, "events": []}).to_string();
    let origin = [("origin", "http://127.0.0.1:8080")];
    assert_eq!(edge.call("POST", "/v1/batch", &origin, &body).status, 202);
    let r = edge.call("POST", "/v1/batch", &origin, &body);
    assert_eq!(r.status, 429);
    let header = |r: &refloop_edge::app::Response, name: &str| {
        r.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    assert!(header(&r, "Retry-After").is_some());
    assert_eq!(
        header(&r, "Access-Control-Expose-Headers").as_deref(),
        Some("Retry-After")
    );
    let r = edge.call("GET", "/v1/batch", &[], "");
    assert_eq!(r.status, 405);
    assert_eq!(header(&r, "Allow").as_deref(), Some("POST"));
    let r = edge.call("DELETE", "/v1/campaigns/launch/leaderboard", &[], "");
    assert_eq!(header(&r, "Allow").as_deref(), Some("GET, HEAD"));
}

/// Finding 6: a browser event posted first with a server event's id made the
/// trusted conversion a silent duplicate. Trusted and browser events have
/// dedupe keys of their own, in the log and in the campaign.
#[test]
fn a_browser_cannot_preempt_a_trusted_event_by_its_id() {
    let edge = Edge::new();
    let code = {
        edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "host"}]));
        edge.me("launch", "host").unwrap()["code"].as_str().unwrap().to_owned()
    };
    edge.batch(json!([{"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "guest", "attribution": {"ref": code}}]));
    // The page guesses (or copies) the id the shop's server will use.
    let purchase = json!({"id": uuid(3), "type": "track", "event": "purchase", "anonymous_id": "guest"});
    let (s, b) = edge.batch(json!([purchase.clone()]));
    assert_eq!((s, b["accepted"].as_u64()), (202, Some(1)));
    assert_eq!(
        edge.me("launch", "host").unwrap()["referrals"]["confirmed"],
        0,
        "a browser's purchase confirms nothing"
    );
    let (s, b) = edge.server(json!([purchase]));
    assert_eq!(
        (s, b["accepted"].as_u64(), b["duplicates"].as_u64()),
        (202, Some(1), Some(0)),
        "{b}"
    );
    assert_eq!(
        edge.me("launch", "host").unwrap()["referrals"]["confirmed"],
        1,
        "the trusted purchase counts"
    );
    let (s, b) = edge.server(json!([{"id": uuid(3), "type": "track", "event": "purchase", "anonymous_id": "guest"}]));
    assert_eq!((s, b["duplicates"].as_u64()), (202, Some(1)), "and only once");
    assert!(edge.violations().is_empty());
}

/// Finding 5 (traits): 40 forged `identify`s once grew a participant's row
/// to 2 MB (then 500s, and an innocent event lost behind them). An event's
/// traits are bounded with a clear rejection, and a record holds at most 50.
#[test]
fn traits_are_bounded_per_event_and_per_participant() {
    let edge = Edge::new();
    let traits = |from: usize, n: usize| -> Value {
        (from..from + n)
            .map(|i| (format!("k{i}"), json!("v")))
            .collect::<serde_json::Map<_, _>>()
            .into()
    };
    let identify = |id: u64, t: Value| json!({"id": uuid(id), "type": "identify", "anonymous_id": "x", "user_id": "u-x", "traits": t});
    let (s, b) = edge.batch(
        json!([identify(1, traits(0, 51)), {"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "x"}]),
    );
    assert_eq!(s, 202);
    assert_eq!(b["rejected"][0]["error"], "too_many_traits", "{b}");
    assert_eq!(b["accepted"], 1, "the innocent event behind it is kept: {b}");
    let big = json!({"k": "x".repeat(2000)});
    let (_, b) = edge.batch(json!([identify(3, big)]));
    assert_eq!(b["rejected"][0]["error"], "invalid_trait", "{b}");
    for round in 0..4u64 {
        let (s, b) = edge.batch(json!([identify(10 + round, traits(round as usize * 40, 40))]));
        assert_eq!((s, b["accepted"].as_u64()), (202, Some(1)), "{b}");
    }
    let (_, people) = edge.json("GET", "/v1/admin/campaigns/launch/participants", json!({}));
    let held = people["participants"][0]["traits"].as_object().unwrap().len();
    assert_eq!(held, 50, "a participant holds at most 50 traits");
}

/// Finding 7: webhook URLs are parsed and must be public https (no
/// `http://localhost.attacker.example`, no metadata host), and a tenant has a
/// bounded number of them.
#[test]
fn webhooks_go_only_to_public_https_hosts_and_are_capped_per_tenant() {
    let edge = Edge::new();
    for bad in [
        "http://localhost.attacker.example/x",
        "https://metadata.internal/x",
        "https://169.254.169.254/x",
        "http://127.0.0.1:9/x",
    ] {
        let (s, b) = edge.json("POST", "/v1/admin/webhooks", json!({"url": bad}));
        assert_eq!(
            (s, b["error"]["code"].as_str()),
            (400, Some("invalid_parameter")),
            "{bad}: {b}"
        );
    }
    for i in 0..10 {
        let (s, b) = edge.json(
            "POST",
            "/v1/admin/webhooks",
            json!({"url": format!("https://hooks.example/{i}")}),
        );
        assert_eq!(s, 201, "{b}");
    }
    let (s, b) = edge.json("POST", "/v1/admin/webhooks", json!({"url": "https://hooks.example/11"}));
    assert_eq!((s, b["error"]["code"].as_str()), (409, Some("conflict")), "{b}");
}

/// Finding 9: the leaderboard published a `name` that was an email address
/// in full. A public name is a first word and an initial, never an address.
#[test]
fn public_names_never_show_an_address() {
    use refloop_edge::campaign::masked_name;
    assert_eq!(masked_name(r#"{"name":"Ana María López"}"#, "ABC123"), "Ana L.");
    assert_eq!(masked_name(r#"{"name":"victim@example.com"}"#, "ABC123"), "ABC•••");
    assert_eq!(
        masked_name(r#"{"name":"https://phish.example/win"}"#, "XYZ999"),
        "XYZ•••"
    );
    assert_eq!(masked_name(r#"{"name":"shop.example"}"#, "QRS111"), "QRS•••");
    assert_eq!(masked_name(r#"{}"#, "QRS111"), "QRS•••");
}

/// Finding 1 (identity): a forged `identify` rewrote a victim's public name,
/// and `me?user_id=` told whether a user exists. A browser's user id reaches
/// an existing participant only with the site's signature (`user_hash`).
#[test]
fn a_browser_cannot_take_over_a_user_id_without_the_sites_signature() {
    let edge = Edge::new();
    let identify = |n: u64, anon: &str, name: &str, hash: Option<&str>| {
        let mut e = json!({"id": uuid(n), "type": "identify", "anonymous_id": anon, "user_id": "user-victim", "traits": {"name": name}});
        if let Some(h) = hash {
            e["user_hash"] = json!(h);
        }
        assert_eq!(edge.batch(json!([e])).0, 202);
    };
    identify(1, "victim-laptop", "Vera Victim", None);
    identify(2, "attacker", "Hacked Name", None);
    let (_, people) = edge.json(
        "GET",
        "/v1/admin/campaigns/launch/participants?q=user-victim",
        json!({}),
    );
    assert_eq!(people["participants"][0]["traits"]["name"], "Vera Victim", "{people}");
    assert_eq!(people["participants"][0]["anonymous_id"], "victim-laptop");
    // No oracle: without the signature a user id is not looked up at all.
    let me = |query: &str| {
        edge.call(
            "GET",
            &format!("/v1/campaigns/launch/me?key={}&{query}", refloop_tests::PK),
            &[],
            "",
        )
    };
    assert_eq!(me("user_id=user-victim").status, 400);
    assert_eq!(
        me("user_id=user-nobody").status,
        400,
        "the same answer for a user who does not exist"
    );
    // The site's server signs the user id; with it, the user's new device is theirs.
    let (s, id) = edge.json("GET", "/v1/admin/identity?user_id=user-victim", json!({}));
    assert_eq!(s, 200);
    let hash = id["example"]["user_hash"].as_str().unwrap().to_owned();
    assert!(id["identity_secret"].as_str().unwrap().starts_with("idsec_"));
    identify(3, "victim-phone", "Vera Victim", Some(&hash));
    let r = me(&format!("user_id=user-victim&user_hash={hash}"));
    assert_eq!(r.status, 200, "{}", r.body);
    let stats: Value = serde_json::from_str(&r.body).unwrap();
    let phone: Value = serde_json::from_str(&me("anonymous_id=victim-phone").body).unwrap();
    assert_eq!(
        stats["code"], phone["code"],
        "the phone is the victim's own participant now"
    );
    assert_eq!(
        me("user_id=user-victim&user_hash=00ff").status,
        400,
        "a wrong hash is no hash"
    );
    assert!(edge.violations().is_empty());
}

/// Finding 2 (traits): a self-set `lifecycle_stage` earned a trusted reward.
/// Trusted rules' trait conditions read only what the site's server said.
#[test]
fn trusted_rules_read_only_the_servers_traits() {
    let edge = Edge::new();
    let config = json!({
        "name": "winback",
        "point_rules": [{"id": "won-back", "event": "renewed", "to": "self", "points": 2000, "trusted": true,
            "when": {"traits": [{"key": "lifecycle_stage", "in": ["inactive"]}]}}],
        "fraud": {"flag_shared_ip": false}
    });
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": "winback", "config": config})
        )
        .0,
        201
    );
    let identify = |n: u64, who: &str| json!({"id": uuid(n), "type": "identify", "anonymous_id": who, "user_id": format!("u-{who}"), "campaign": "winback", "traits": {"lifecycle_stage": "inactive"}});
    let renewed = |n: u64, who: &str| json!({"id": uuid(n), "type": "track", "event": "renewed", "anonymous_id": who, "campaign": "winback"});
    // The browser says it is inactive; the shop's server reports a renewal.
    assert_eq!(edge.batch(json!([identify(1, "self-set")])).0, 202);
    assert_eq!(edge.server(json!([renewed(2, "self-set")])).0, 202);
    assert_eq!(
        edge.me("winback", "self-set").unwrap()["points"],
        0,
        "a browser's trait never fires a trusted rule"
    );
    // The server says so: it fires.
    assert_eq!(edge.server(json!([identify(3, "real")])).0, 202);
    assert_eq!(edge.server(json!([renewed(4, "real")])).0, 202);
    assert_eq!(edge.me("winback", "real").unwrap()["points"], 2000);
    // And a browser cannot write the server's traits directly.
    let forged = json!([{"id": uuid(5), "type": "identify", "anonymous_id": "self-set", "user_id": "u-self-set", "traits": {"$server": {"lifecycle_stage": "inactive"}}}]);
    let (_, b) = edge.batch(forged);
    assert_eq!(b["rejected"][0]["error"], "invalid_trait", "{b}");
}

/// Finding 5 (links): a `landing_url` with CR/LF made every `/r/` link 500,
/// and any URL was accepted (an open redirect). It must be a clean URL on
/// one of the site's origins; a preset's placeholder moves onto the site.
#[test]
fn landing_pages_are_clean_and_on_the_sites_own_origins() {
    let edge = Edge::new();
    let create = |slug: &str, landing: &str| {
        edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": slug, "config": {"name": slug, "landing_url": landing}}),
        )
    };
    let (s, b) = create("crlf", "http://127.0.0.1:8080/\r\nSet-Cookie: x=1");
    assert_eq!(s, 422, "{b}");
    let (s, b) = create("phish", "https://phish.example/login");
    assert_eq!(s, 422, "{b}");
    assert!(b.to_string().contains("site's origins"), "{b}");
    assert_eq!(create("own", "http://127.0.0.1:8080/join?x=1").0, 201);
    let (s, _) = edge.json(
        "POST",
        "/v1/admin/campaigns",
        json!({"slug": "wl", "preset": "waitlist"}),
    );
    assert_eq!(s, 201);
    let (_, c) = edge.json("GET", "/v1/admin/campaigns/wl", json!({}));
    let landing = c["config"]["landing_url"].as_str().unwrap_or_default().to_owned();
    assert!(landing.starts_with("http://127.0.0.1:8080/"), "{c}");
}

/// Finding 5 (invitations): 200 invitations per participant were minted.
/// At most 20 wait to be claimed at once.
#[test]
fn a_participant_has_a_bounded_number_of_open_invitations() {
    let edge = Edge::new();
    let config =
        json!({"name": "inv", "mode": "invite", "landing_url": "http://127.0.0.1:8080/", "quest": {"steps": []}});
    assert_eq!(
        edge.json("POST", "/v1/admin/campaigns", json!({"slug": "inv", "config": config}))
            .0,
        201
    );
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "host", "campaign": "inv"}]));
    let invite = || {
        let body = json!({"key": refloop_tests::PK, "campaign": "inv", "anonymous_id": "host"}).to_string();
        edge.call("POST", "/v1/invitations", &[], &body)
    };
    let statuses: Vec<u16> = (0..21).map(|_| invite().status).collect();
    assert_eq!(statuses[..20], [201; 20]);
    let refused = invite();
    assert!(
        refused.status >= 400 && refused.status < 500,
        "{} {}",
        refused.status,
        refused.body
    );
    assert!(refused.body.contains("at most 20"), "{}", refused.body);
}

/// Finding 5 (clicks): 100 clicks from one IP counted 100. A visitor's
/// clicks on a code count once a day.
#[test]
fn a_visitors_clicks_count_once_a_day() {
    let edge = Edge::new();
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "host"}]));
    let code = edge.me("launch", "host").unwrap()["code"].as_str().unwrap().to_owned();
    let click = |ip: &str| {
        edge.call("GET", &format!("/r/{code}"), &[("cf-connecting-ip", ip)], "")
            .status
    };
    for _ in 0..100 {
        assert_eq!(click("198.51.100.7"), 302);
    }
    assert_eq!(edge.me("launch", "host").unwrap()["clicks"], 1);
    assert_eq!(click("198.51.100.8"), 302);
    assert_eq!(edge.me("launch", "host").unwrap()["clicks"], 2, "another visitor");
    edge.now.set(edge.now.get() + 86_400_000);
    assert_eq!(click("198.51.100.7"), 302);
    assert_eq!(edge.me("launch", "host").unwrap()["clicks"], 3, "the next day");
    assert_eq!(
        edge.call("GET", "/r/NOSUCHCODE", &[("cf-connecting-ip", "198.51.100.7")], "")
            .status,
        404
    );
}

/// Finding 8: erasing a person in one campaign left them in the tenant's
/// other campaigns, in other devices' events, in notes; contact traits were
/// stored raw. Erasure and access cover every campaign, device and note.
#[test]
fn a_person_is_erased_everywhere_and_can_see_everything_first() {
    let edge = Edge::new();
    let config = json!({"name": "other", "point_rules": [{"id": "j", "event": "signup", "to": "self", "points": 1}]});
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": "other", "config": config})
        )
        .0,
        201
    );
    let contact = json!({"name": "Pat Person", "Email": "Pat@Example.com", "phone_number": "+1 555 0100"});
    edge.batch(json!([
        {"id": uuid(1), "type": "identify", "anonymous_id": "p-laptop", "user_id": "u-pat", "campaign": "launch", "traits": contact},
        {"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "p-laptop", "campaign": "launch", "properties": {"email": "pat@example.com"}},
    ]));
    // The phone: its own participant in `other`, linked to Pat in `launch` by the shop's server.
    edge.batch(
        json!([{"id": uuid(3), "type": "track", "event": "signup", "anonymous_id": "p-phone", "campaign": "other"}]),
    );
    edge.server(json!([{"id": uuid(4), "type": "identify", "anonymous_id": "p-phone", "user_id": "u-pat", "campaign": "launch"}]));
    let (_, people) = edge.json("GET", "/v1/admin/campaigns/launch/participants?q=u-pat", json!({}));
    let pat = people["participants"][0].clone();
    assert_eq!(pat["traits"].get("Email"), None, "{pat}");
    assert_eq!(pat["traits"].get("phone_number"), None, "{pat}");
    let raw = edge
        .db
        .count("SELECT count(*) FROM events WHERE payload LIKE '%xample.com%' OR payload LIKE '%555%'");
    assert_eq!(raw, 0, "no contact detail in the raw log");
    let id = pat["id"].as_i64().unwrap();
    let note = json!({"points": 5, "note": "phoned Pat on +1 555 0100"});
    assert_eq!(
        edge.json(
            "POST",
            &format!("/v1/admin/campaigns/launch/participants/{id}/adjustments"),
            note
        )
        .0,
        201
    );

    // Access: both campaigns and every device's events.
    let (s, all) = edge.json("GET", "/v1/admin/people?user_id=u-pat", json!({}));
    assert_eq!(s, 200, "{all}");
    assert_eq!(
        all["campaigns"].as_array().unwrap().len(),
        1,
        "by the user id alone: launch ({all})"
    );
    let (_, all) = edge.json("GET", "/v1/admin/people?user_id=u-pat&anonymous_id=p-phone", json!({}));
    assert_eq!(all["campaigns"].as_array().unwrap().len(), 2, "{all}");
    assert!(all["events"].as_array().unwrap().len() >= 3, "{all}");

    // Erasure by the user id: launch, then the phone's campaign through the phone's id.
    let (s, gone) = edge.json("POST", "/v1/admin/people/erase", json!({"user_id": "u-pat"}));
    assert_eq!(s, 200, "{gone}");
    assert_eq!(gone["erased"], 2, "{gone}");
    let (_, after) = edge.json(
        "GET",
        "/v1/admin/people?user_id=u-pat&anonymous_id=p-phone&anonymous_id=p-laptop",
        json!({}),
    );
    assert_eq!(after["campaigns"].as_array().unwrap().len(), 0, "{after}");
    assert_eq!(after["events"].as_array().unwrap().len(), 0, "{after}");
    assert_eq!(
        edge.db
            .count("SELECT count(*) FROM audit_log WHERE detail LIKE '%555%'"),
        0,
        "the audit's notes"
    );
    let notes = edge.objects.with(1, |db| {
        db.count("SELECT count(*) FROM ledger WHERE reason LIKE '%555%'")
    });
    assert_eq!(notes, 0, "the ledger's notes");
    assert!(edge.violations().is_empty(), "every sum still holds");
}

/// What a participant's event costs its campaign's database: every statement
/// of a 10-event batch of a scoring event, counted (`REFLOOP_SQL_TRACE=1`
/// prints them). A cap per participant costs one counter write, not a search;
/// a batch marks its events seen in one statement; the score moves by trigger.
#[test]
fn a_participants_event_costs_a_handful_of_statements() {
    let edge = Edge::new();
    let config = json!({"name": "b", "point_rules": [{"id": "viewed", "event": "viewed", "to": "self", "points": 1, "max_per_participant": 100000}],
      "leaderboard": {"score_by": "points", "periods": ["all", "month", "week"], "top_n": 10}, "fraud": {"flag_shared_ip": false}});
    assert_eq!(
        edge.json("POST", "/v1/admin/campaigns", json!({"slug": "b", "config": config}))
            .0,
        201
    );
    let signups: Vec<Value> = (0..50)
        .map(|i| json!({"id": uuid(1000 + i), "type": "track", "event": "signup", "anonymous_id": format!("p{i}"), "campaign": "b"}))
        .collect();
    edge.batch(json!(signups));
    let mut per_batch = Vec::new();
    for round in 0..3u64 {
        let before = edge.objects.with(3, |db| db.statements.get());
        let events: Vec<Value> = (0..10)
            .map(|i| json!({"id": uuid(5000 + round * 100 + i), "type": "track", "event": "viewed", "anonymous_id": format!("p{}", (i * 7 + round) % 50), "campaign": "b"}))
            .collect();
        assert_eq!(edge.batch(json!(events)).0, 202);
        per_batch.push(edge.objects.with(3, |db| db.statements.get()) - before);
    }
    eprintln!("statements per 10-event batch: {per_batch:?}");
    assert!(per_batch.iter().all(|n| *n <= 60), "{per_batch:?}");
}

/// An operator gives a prize by hand, and a checkout redeems its coupon once.
#[test]
fn a_prize_given_by_hand_is_redeemed_once_at_checkout() {
    let edge = Edge::new();
    let config = json!({
        "name": "prizes",
        "rewards": [{"id": "coupon", "name": "20% off", "kind": {"type": "coupon", "prefix": "OFF"}}],
        "caps": {"max_winners": 1}
    });
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": "prizes", "config": config})
        )
        .0,
        201
    );
    for (n, who) in [(1, "ana"), (2, "ben")] {
        edge.batch(
            json!([{"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": who, "campaign": "prizes"}]),
        );
    }
    let id_of = |who: &str| edge.participant_id("prizes", who);
    let give = |who: &str, key: &str| {
        edge.json(
            "POST",
            &format!("/v1/admin/campaigns/prizes/participants/{}/grants", id_of(who)),
            json!({"reward": "coupon", "note": "won the photo contest", "idempotency_key": key}),
        )
    };
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/webhooks",
            json!({"url": "https://hooks.example/prizes"})
        )
        .0,
        201
    );
    let (s, given) = give("ana", "contest-1");
    assert_eq!(s, 201, "{given}");
    let token = given["grant"]["token"].as_str().unwrap().to_owned();
    assert!(token.starts_with("OFF"), "{given}");
    // The receiver is told what to honour: the reward, its token, whose it is.
    let hooks = Recorder(Default::default(), 200);
    edge.alarm("prizes", &hooks, edge.now.get());
    let earned: Value = hooks
        .0
        .borrow()
        .iter()
        .map(|(_, _, body)| serde_json::from_str::<Value>(body).unwrap())
        .find(|b| b["type"] == "reward.earned")
        .expect("a reward.earned delivery");
    assert_eq!(
        (earned["token"].as_str(), earned["reward"].as_str()),
        (Some(token.as_str()), Some("coupon")),
        "{earned}"
    );
    assert!(earned["participant_code"].is_string(), "{earned}");
    assert_eq!(give("ana", "contest-1").0, 200, "the same key grants once");
    let (s, capped) = give("ben", "contest-2");
    assert_eq!(s, 409, "max_winners 1: {capped}");

    let (s, _) = edge.json(
        "POST",
        "/v1/admin/campaigns/prizes/participants/1/grants",
        json!({"reward": "nope", "note": "x"}),
    );
    assert_eq!(s, 404);
    // The checkout: check, redeem, and never twice.
    let redeem = |body: Value| edge.json("POST", "/v1/admin/campaigns/prizes/redeem", body);
    let (s, checked) = redeem(json!({"token": token.to_lowercase(), "check": true}));
    assert_eq!((s, checked["valid"].as_bool()), (200, Some(true)), "{checked}");
    let (s, done) = redeem(json!({"token": token}));
    assert_eq!(s, 200, "{done}");
    assert_eq!(done["grant"]["status"], "redeemed", "{done}");
    let (s, again) = redeem(json!({"token": token}));
    assert_eq!((s, again["error"]["code"].as_str()), (409, Some("conflict")), "{again}");
    assert_eq!(redeem(json!({"token": "OFFNOPE"})).0, 404);
    let (_, audit) = edge.json("GET", "/v1/admin/audit", json!({}));
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .map_or(vec![], |a| a.iter().filter_map(|e| e["action"].as_str()).collect());
    assert!(
        actions.contains(&"grant.manual") && actions.contains(&"grant.redeem"),
        "{audit}"
    );
    assert!(edge.violations().is_empty());
}

/// "Why didn't my referral count?": every refusal and withheld reward is kept
/// with its reason, found by the referee's id or the code they used.
#[test]
fn an_operator_can_answer_why_a_referral_did_not_count() {
    let edge = Edge::new();
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "host"}]));
    let code = edge.me("launch", "host").unwrap()["code"].as_str().unwrap().to_owned();
    edge.batch(json!([{"id": uuid(2), "type": "track", "event": "signup", "anonymous_id": "guest", "attribution": {"ref": "NOSUCHCODE"}}]));
    edge.batch(json!([{"id": uuid(3), "type": "track", "event": "signup", "anonymous_id": "host", "attribution": {"ref": code}}]));
    let (s, a) = edge.json("GET", "/v1/admin/campaigns/launch/answers?q=guest", json!({}));
    assert_eq!(s, 200, "{a}");
    assert_eq!(a["answers"][0]["reason"], "unknown_code", "{a}");
    assert_eq!(a["answers"][0]["kind"], "refused");
    let (_, a) = edge.json(
        "GET",
        &format!("/v1/admin/campaigns/launch/answers?q={}", code.to_lowercase()),
        json!({}),
    );
    let reasons: Vec<&str> = a["answers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|x| x["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"already_joined") || reasons.contains(&"self_referral"),
        "{a}"
    );
}

/// The CSV export's ranks (one window over the board per page) are the
/// ranks `me` shows (one count on the score index).
#[test]
fn the_exports_ranks_are_the_participants_own() {
    let edge = Edge::new();
    let signups: Vec<Value> = (0..30)
        .map(|i| json!({"id": uuid(100 + i), "type": "track", "event": "signup", "anonymous_id": format!("x{i}"), "campaign": "launch"}))
        .collect();
    edge.batch(json!(signups));
    let (_, people) = edge.json("GET", "/v1/admin/campaigns/launch/participants?limit=100", json!({}));
    for (n, p) in people["participants"].as_array().unwrap().iter().enumerate() {
        let points = [5, 0, 12, 5, 7][n % 5];
        if points > 0 {
            let path = format!("/v1/admin/campaigns/launch/participants/{}/adjustments", p["id"]);
            edge.json(
                "POST",
                &path,
                json!({"points": points, "note": "tie-break test", "idempotency_key": format!("k{n}")}),
            );
        }
    }
    let csv = edge
        .call(
            "GET",
            "/v1/admin/campaigns/launch/export.csv",
            &[("authorization", &format!("Bearer {}", refloop_tests::SK))],
            "",
        )
        .body;
    let mut checked = 0;
    for line in csv.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        let (code, rank) = (cols[1], cols[6]);
        let r = edge.call(
            "GET",
            &format!("/v1/campaigns/launch/participants/{code}?key={}", refloop_tests::PK),
            &[],
            "",
        );
        let stats: Value = serde_json::from_str(&r.body).unwrap();
        assert_eq!(
            stats["rank"].as_u64().map(|r| r.to_string()).unwrap_or_default(),
            rank,
            "{code}: {line} vs {stats}"
        );
        checked += 1;
    }
    assert_eq!(checked, 30);
}

/// Money: rewards with amounts roll up per currency and status, against the budget.
#[test]
fn rewards_with_amounts_roll_up_against_the_budget() {
    let edge = Edge::new();
    let config = json!({
        "name": "money",
        "rewards": [{"id": "credit", "name": "$10", "kind": {"type": "credit", "amount_minor": 1000, "currency": "USD"}}],
        "caps": {"budget": {"amount_minor": 5000, "currency": "USD"}}
    });
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": "money", "config": config})
        )
        .0,
        201
    );
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "m", "campaign": "money"}]));
    let (_, people) = edge.json("GET", "/v1/admin/campaigns/money/participants", json!({}));
    let id = people["participants"][0]["id"].as_i64().unwrap();
    let mut grants = Vec::new();
    for k in 0..3 {
        let (s, g) = edge.json(
            "POST",
            &format!("/v1/admin/campaigns/money/participants/{id}/grants"),
            json!({"reward": "credit", "note": "support", "idempotency_key": format!("m{k}")}),
        );
        assert_eq!(s, 201, "{g}");
        grants.push(g["grant"]["id"].as_i64().unwrap());
    }
    let (s, _) = edge.json(
        "POST",
        &format!("/v1/admin/campaigns/money/grants/{}/transitions", grants[0]),
        json!({"to": "revoked"}),
    );
    assert_eq!(s, 200);
    let (s, money) = edge.json("GET", "/v1/admin/campaigns/money/stats/money", json!({}));
    assert_eq!(s, 200, "{money}");
    assert_eq!(money["budget"]["committed_minor"], 2000, "{money}");
    assert_eq!(money["budget"]["left_minor"], 3000, "{money}");
    assert_eq!(
        money["currencies"][0]["by_status"]["revoked"]["amount_minor"], 1000,
        "{money}"
    );
}

/// Finding 8 (fail closed): a missing HASH_SALT meant no salt, a failing
/// getRandomValues gave `sk_000…`. Either and the worker refuses to serve.
#[test]
fn no_salt_or_no_randomness_and_the_edge_refuses_to_serve() {
    use refloop_edge::app::Needs;
    let fine = Needs::from(Some("salt".into()), Ok([1; 8]), Ok([2; 48]));
    assert!(fine.is_ok());
    for (salt, seed, entropy) in [
        (None, Ok([1; 8]), Ok([2; 48])),
        (Some("  ".to_owned()), Ok([1; 8]), Ok([2; 48])),
        (Some("salt".to_owned()), Err("no crypto".to_owned()), Ok([2; 48])),
        (
            Some("salt".to_owned()),
            Ok([1; 8]),
            Err("getRandomValues failed".to_owned()),
        ),
    ] {
        let e = Needs::from(salt, seed, entropy).unwrap_err();
        assert_eq!(e.status(), 500);
        assert!(e.message.contains("misconfigured"), "{}", e.message);
    }
}

/// A reward a cap keeps back is told to the operator's systems
/// (`reward.withheld`) and kept among the answers.
#[test]
fn a_reward_a_cap_withholds_is_told_and_answered() {
    let edge = Edge::new();
    let config = json!({
        "name": "capped", "quest": {"steps": []}, "fraud": {"flag_shared_ip": false},
        "rewards": [{"id": "coupon", "name": "20% off", "kind": {"type": "coupon", "prefix": "OFF"}}],
        "milestones": [{"id": "first", "confirmed_referrals": 1, "reward": "coupon"}],
        "caps": {"max_winners": 1}
    });
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/campaigns",
            json!({"slug": "capped", "config": config})
        )
        .0,
        201
    );
    assert_eq!(
        edge.json(
            "POST",
            "/v1/admin/webhooks",
            json!({"url": "https://hooks.example/caps", "events": ["reward.withheld"]})
        )
        .0,
        201
    );
    let mut n = 0;
    for host in ["h1", "h2"] {
        n += 1;
        edge.batch(
            json!([{"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": host, "campaign": "capped"}]),
        );
        let code = edge.me("capped", host).unwrap()["code"].as_str().unwrap().to_owned();
        n += 1;
        edge.batch(json!([{"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": format!("{host}-friend"), "attribution": {"ref": code}}]));
    }
    let hooks = Recorder(Default::default(), 200);
    edge.alarm("capped", &hooks, edge.now.get());
    let bodies: Vec<Value> = hooks
        .0
        .borrow()
        .iter()
        .map(|(_, _, b)| serde_json::from_str(b).unwrap())
        .collect();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        (bodies[0]["type"].as_str(), bodies[0]["reward"].as_str()),
        (Some("reward.withheld"), Some("coupon"))
    );
    assert_eq!(
        bodies[0]["participant_code"].as_str(),
        edge.me("capped", "h2").unwrap()["code"].as_str()
    );
    let (_, a) = edge.json("GET", "/v1/admin/campaigns/capped/answers", json!({}));
    assert!(
        a["answers"].as_array().unwrap().iter().any(|x| x["kind"] == "withheld"),
        "{a}"
    );
}

/// Sources: a signup's campaign tags, click id or referring host are kept
/// with its referral; the operator reads referrals and confirmations by source.
#[test]
fn referrals_are_counted_by_where_they_came_from() {
    let edge = Edge::new();
    edge.batch(json!([{"id": uuid(1), "type": "track", "event": "signup", "anonymous_id": "host"}]));
    let code = edge.me("launch", "host").unwrap()["code"].as_str().unwrap().to_owned();
    let signups = [
        (
            2,
            "a",
            json!({"ref": code, "utm_source": "newsletter", "utm_medium": "email"}),
        ),
        (
            3,
            "b",
            json!({"ref": code, "utm_source": "newsletter", "utm_medium": "email"}),
        ),
        (4, "c", json!({"ref": code, "click_id": "gclid"})),
        (5, "d", json!({"ref": code, "referrer_host": "news.example"})),
        (6, "e", json!({"ref": code})),
    ];
    for (n, who, attribution) in signups {
        edge.batch(json!([{"id": uuid(n), "type": "track", "event": "signup", "anonymous_id": who, "attribution": attribution}]));
    }
    edge.server(json!([{"id": uuid(7), "type": "track", "event": "purchase", "anonymous_id": "a"}]));
    let (s, body) = edge.json("GET", "/v1/admin/campaigns/launch/stats/sources", json!({}));
    assert_eq!(s, 200, "{body}");
    let by: std::collections::HashMap<String, (i64, i64)> = body["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["source"].as_str().unwrap().to_owned(),
                (x["referrals"].as_i64().unwrap(), x["confirmed"].as_i64().unwrap()),
            )
        })
        .collect();
    assert_eq!(by["newsletter / email"], (2, 1), "{body}");
    assert_eq!(by["gclid (paid)"], (1, 0));
    assert_eq!(by["news.example"], (1, 0));
    assert_eq!(by["direct"], (1, 0));
}
