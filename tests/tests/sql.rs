//! The edge's SQL, run on real SQLite with the D1 migrations and the demo seed.

use refloop_core::keys::hash_secret_key;
use refloop_edge::sql;
use refloop_tests::migrated_db;
use rusqlite::{Connection, params};

const SEED: &str = include_str!("../../edge/seed/demo.sql");

fn seeded() -> Connection {
    let db = migrated_db();
    db.execute_batch(SEED).expect("seed");
    db
}

fn insert(db: &Connection, event_id: &str) -> usize {
    db.execute(
        sql::INSERT_EVENT,
        params![1, event_id, "track", "hello", "anon", None::<String>, 1, 2, 0, "{}"],
    )
    .expect("insert")
}

#[test]
fn the_seeded_secret_key_is_found_by_the_hash_the_edge_computes() {
    let db = seeded();
    let site: i64 = db
        .query_row(
            sql::SITE_BY_SECRET_KEY_HASH,
            rusqlite::params![hash_secret_key("sk_demo_refloop_secret"), 0],
            |r| r.get(0),
        )
        .expect("the seed's hash must be hash_secret_key of the documented key");
    assert_eq!(site, 1);
}

#[test]
fn the_site_lookup_returns_its_origins() {
    let db = seeded();
    let origins: String = db
        .query_row(
            sql::SITE_BY_PUBLISHABLE_KEY,
            rusqlite::params!["pk_demo_refloop_public", 0],
            |r| r.get("origins"),
        )
        .unwrap();
    assert!(origins.split(' ').any(|o| o == "http://127.0.0.1:8080"), "{origins}");
    let none = db.query_row(sql::SITE_BY_PUBLISHABLE_KEY, rusqlite::params!["pk_nope", 0], |r| {
        r.get::<_, i64>(0)
    });
    assert!(matches!(none, Err(rusqlite::Error::QueryReturnedNoRows)));
    let allowed: i64 = db
        .query_row(sql::ANY_SITE_ALLOWS_ORIGIN, ["http://localhost:8080"], |r| r.get(0))
        .unwrap();
    assert_eq!(allowed, 1);
}

#[test]
fn an_event_id_is_stored_once_however_often_it_is_inserted() {
    let db = seeded();
    assert_eq!(insert(&db, "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60"), 1);
    assert_eq!(
        insert(&db, "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60"),
        0,
        "a resend changes nothing"
    );
    assert_eq!(insert(&db, "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f61"), 1);
    let n: i64 = db.query_row("SELECT count(*) FROM events", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 2);
    let mut list = db.prepare(sql::LIST_EVENTS).unwrap();
    let ids: Vec<String> = list
        .query_map(params![1, 10], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        ids,
        [
            "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f61",
            "0190f3c2-8e4b-7a4e-9f7a-2b1c3d4e5f60"
        ]
    );
}

#[test]
fn the_schema_refuses_what_the_core_would_never_write() {
    let db = seeded();
    let bad_type = db.execute(
        sql::INSERT_EVENT,
        params![1, "x", "alias", "hello", "anon", None::<String>, 1, 2, 0, "{}"],
    );
    assert!(bad_type.is_err());
    let no_site = db.execute(
        sql::INSERT_EVENT,
        params![99, "y", "track", "hello", "anon", None::<String>, 1, 2, 0, "{}"],
    );
    assert!(no_site.is_err(), "foreign keys hold");
}

/// Each hot query is answered from an index, never by scanning a table (D1
/// bills every row read).
#[test]
fn hot_queries_use_an_index() {
    let db = seeded();
    for (query, args) in [
        (
            sql::SITE_BY_PUBLISHABLE_KEY,
            vec!["pk_demo_refloop_public".to_owned(), "0".to_owned()],
        ),
        (sql::SITE_BY_SECRET_KEY_HASH, vec!["00".to_owned(), "0".to_owned()]),
        (sql::ANY_SITE_ALLOWS_ORIGIN, vec!["http://x".to_owned()]),
        (sql::LIST_EVENTS, vec!["1".to_owned(), "10".to_owned()]),
    ] {
        let mut stmt = db.prepare(&format!("EXPLAIN QUERY PLAN {query}")).unwrap();
        let plan: Vec<String> = stmt
            .query_map(rusqlite::params_from_iter(args.iter()), |r| r.get::<_, String>(3))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let scans: Vec<&String> = plan
            .iter()
            .filter(|d| d.starts_with("SCAN") && !d.contains("USING"))
            .collect();
        assert!(scans.is_empty(), "{query}\nplans a full scan: {plan:#?}");
    }
}
