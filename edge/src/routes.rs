//! The routes of the public contract: one table, `routes!` below. A row
//! names the route, its method and path, who may call it (`Auth`), whether
//! browsers call it (CORS), the limit it counts against and its handler;
//! `app::handle` applies all of it before the handler runs, so a handler gets a
//! ready context (`app::Cx`, `app::Browser` or `admin::Admin`). A test holds
//! the table equal to the paths of `docs/openapi.yaml`.

use crate::app::{Bucket, Campaigns, Cx, Limiter, Reply};
use crate::db::{Db, Kv};
use crate::{admin, ingest, public};

/// Who may call a route; `app::handle` checks it before the handler runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Auth {
    /// Anyone (health, referral links, the QR image).
    Open,
    /// A page of a site: the publishable key as `key=` in the query, from one
    /// of the site's origins. The handler receives the site (`app::Browser`).
    Publishable,
    /// A page of a site whose key travels in the JSON body (a beacon sends
    /// no headers): the handler reads the body once and calls
    /// `Cx::browser_site` with the key, which applies the same checks.
    PublishableInBody,
    /// A site's server: `Authorization: Bearer sk_…`. The handler receives
    /// the site (`admin::Admin`).
    Secret,
    /// The edge's operator: the root key.
    Root,
}

/// One row of the table.
#[derive(Debug, Clone, Copy)]
pub struct RouteDef {
    pub method: &'static str,
    pub path: &'static str,
    pub route: Route,
    pub auth: Auth,
    /// Answers carry CORS headers for the calling page (errors too, so the
    /// SDK can tell a refusal from a failure).
    pub browser: bool,
    /// The per-site budget the request counts against (public routes also
    /// count against the client's IP); `None`: no site budget.
    pub bucket: Option<Bucket>,
}

/// The table: `Variant: METHOD "path", auth, browser?, bucket => handler;`.
/// It makes the `Route` enum, `ROUTES` and the dispatch to the handlers.
macro_rules! routes {
    ($($variant:ident: $method:literal $path:literal, $auth:ident, $browser:literal, $bucket:expr => $handler:path;)*) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Route { $($variant),* }

        pub const ROUTES: &[RouteDef] = &[$(RouteDef {
            method: $method,
            path: $path,
            route: Route::$variant,
            auth: Auth::$auth,
            browser: $browser,
            bucket: $bucket,
        }),*];

        /// Runs the handler of `cx.def.route` with the context its `Auth` makes.
        pub(crate) async fn dispatch<D: Db, K: Kv, C: Campaigns, L: Limiter>(cx: Cx<'_, D, K, C, L>) -> Reply {
            match cx.def.route {
                $(Route::$variant => routes!(@run $auth, cx, $handler),)*
            }
        }
    };
    (@run Open, $cx:ident, $h:path) => { $h(&$cx).await };
    (@run PublishableInBody, $cx:ident, $h:path) => { $h(&$cx).await };
    (@run Root, $cx:ident, $h:path) => {{ $cx.check_root()?; $h(&$cx).await }};
    (@run Publishable, $cx:ident, $h:path) => {{ let b = $cx.browser().await?; $h(&b).await }};
    (@run Secret, $cx:ident, $h:path) => {{ let a = $cx.admin().await?; $h(&a).await }};
}

use Bucket::{Browser, PublicRead, Server};

routes! {
    Health: "GET" "/healthz", Open, false, None => crate::app::health;
    Batch: "POST" "/v1/batch", PublishableInBody, true, Some(Browser) => ingest::batch;
    ServerEvents: "POST" "/v1/server/events", Secret, false, Some(Server) => ingest::server_events;
    Click: "GET" "/r/{code}", Open, false, Some(Bucket::Ip) => public::click;
    Leaderboard: "GET" "/v1/campaigns/{campaign}/leaderboard", Publishable, true, Some(PublicRead) => public::leaderboard;
    PublicParticipant: "GET" "/v1/campaigns/{campaign}/participants/{code}", Publishable, true, Some(PublicRead) => public::participant;
    Me: "GET" "/v1/campaigns/{campaign}/me", Publishable, true, Some(PublicRead) => public::me;
    Invitations: "POST" "/v1/invitations", PublishableInBody, true, Some(Browser) => public::invitation;
    Qr: "GET" "/v1/qr.svg", Open, false, None => public::qr;
    Tenants: "POST" "/v1/admin/tenants", Root, false, None => admin::tenants::create;
    ListTenants: "GET" "/v1/admin/tenants", Root, false, None => admin::tenants::list;
    CheckAll: "GET" "/v1/admin/check", Root, false, None => admin::check::all;
    AdminEvents: "GET" "/v1/admin/events", Secret, false, Some(Server) => admin::site::events;
    Identity: "GET" "/v1/admin/identity", Secret, false, Some(Server) => admin::site::identity;
    Audit: "GET" "/v1/admin/audit", Secret, false, Some(Server) => admin::site::audit_log;
    ListSites: "GET" "/v1/admin/sites", Secret, false, Some(Server) => admin::sites::list;
    CreateSite: "POST" "/v1/admin/sites", Secret, false, Some(Server) => admin::sites::create;
    RotateKeys: "POST" "/v1/admin/sites/{site}/keys", Secret, false, Some(Server) => admin::sites::rotate;
    SetOrigins: "PUT" "/v1/admin/sites/{site}/origins", Secret, false, Some(Server) => admin::sites::set_origins;
    ListCampaigns: "GET" "/v1/admin/campaigns", Secret, false, Some(Server) => admin::campaigns::list;
    CreateCampaign: "POST" "/v1/admin/campaigns", Secret, false, Some(Server) => admin::campaigns::create;
    GetCampaign: "GET" "/v1/admin/campaigns/{campaign}", Secret, false, Some(Server) => admin::campaigns::get;
    UpdateCampaign: "PUT" "/v1/admin/campaigns/{campaign}", Secret, false, Some(Server) => admin::campaigns::update;
    SetCampaignStatus: "POST" "/v1/admin/campaigns/{campaign}/status", Secret, false, Some(Server) => admin::campaigns::set_status;
    CampaignVersions: "GET" "/v1/admin/campaigns/{campaign}/versions", Secret, false, Some(Server) => admin::campaigns::versions;
    PutPointRules: "PUT" "/v1/admin/campaigns/{campaign}/point-rules", Secret, false, Some(Server) => admin::campaigns::put_point_rules;
    PutRewards: "PUT" "/v1/admin/campaigns/{campaign}/rewards", Secret, false, Some(Server) => admin::campaigns::put_rewards;
    EndCampaign: "POST" "/v1/admin/campaigns/{campaign}/end", Secret, false, Some(Server) => admin::program::end;
    Replay: "POST" "/v1/admin/campaigns/{campaign}/replay", Secret, false, Some(Server) => admin::program::replay;
    CheckCampaign: "GET" "/v1/admin/campaigns/{campaign}/check", Secret, false, Some(Server) => admin::check::campaign;
    SearchParticipants: "GET" "/v1/admin/campaigns/{campaign}/participants", Secret, false, Some(Server) => admin::participants::search;
    ParticipantLedger: "GET" "/v1/admin/campaigns/{campaign}/participants/{participant}/ledger", Secret, false, Some(Server) => admin::participants::ledger;
    Adjust: "POST" "/v1/admin/campaigns/{campaign}/participants/{participant}/adjustments", Secret, false, Some(Server) => admin::participants::adjust;
    GrantByHand: "POST" "/v1/admin/campaigns/{campaign}/participants/{participant}/grants", Secret, false, Some(Server) => admin::participants::grant_by_hand;
    SetCode: "POST" "/v1/admin/campaigns/{campaign}/participants/{participant}/code", Secret, false, Some(Server) => admin::participants::set_code;
    Erase: "DELETE" "/v1/admin/campaigns/{campaign}/participants/{participant}", Secret, false, Some(Server) => admin::people::erase_participant;
    Person: "GET" "/v1/admin/people", Secret, false, Some(Server) => admin::people::access;
    ErasePerson: "POST" "/v1/admin/people/erase", Secret, false, Some(Server) => admin::people::erase;
    Answers: "GET" "/v1/admin/campaigns/{campaign}/answers", Secret, false, Some(Server) => admin::participants::answers;
    ListReferrals: "GET" "/v1/admin/campaigns/{campaign}/referrals", Secret, false, Some(Server) => admin::referrals::list;
    ReviewReferral: "POST" "/v1/admin/campaigns/{campaign}/referrals/{referral}/review", Secret, false, Some(Server) => admin::referrals::review;
    ListGrants: "GET" "/v1/admin/campaigns/{campaign}/grants", Secret, false, Some(Server) => admin::grants::list;
    GrantTransition: "POST" "/v1/admin/campaigns/{campaign}/grants/{grant}/transitions", Secret, false, Some(Server) => admin::grants::transition;
    Redeem: "POST" "/v1/admin/campaigns/{campaign}/redeem", Secret, false, Some(Server) => admin::grants::redeem;
    ListSnapshots: "GET" "/v1/admin/campaigns/{campaign}/snapshots", Secret, false, Some(Server) => admin::stats::snapshots;
    TakeSnapshot: "POST" "/v1/admin/campaigns/{campaign}/snapshots", Secret, false, Some(Server) => admin::stats::take_snapshot;
    Funnel: "GET" "/v1/admin/campaigns/{campaign}/stats/funnel", Secret, false, Some(Server) => admin::stats::funnel;
    Money: "GET" "/v1/admin/campaigns/{campaign}/stats/money", Secret, false, Some(Server) => admin::stats::money;
    Sources: "GET" "/v1/admin/campaigns/{campaign}/stats/sources", Secret, false, Some(Server) => admin::stats::sources;
    Trend: "GET" "/v1/admin/campaigns/{campaign}/stats/trend", Secret, false, Some(Server) => admin::stats::trend;
    Export: "GET" "/v1/admin/campaigns/{campaign}/export.csv", Secret, false, Some(Server) => admin::stats::export;
    ListWebhooks: "GET" "/v1/admin/webhooks", Secret, false, Some(Server) => admin::webhooks::list;
    CreateWebhook: "POST" "/v1/admin/webhooks", Secret, false, Some(Server) => admin::webhooks::create;
    DeleteWebhook: "DELETE" "/v1/admin/webhooks/{webhook}", Secret, false, Some(Server) => admin::webhooks::delete;
    Deliveries: "GET" "/v1/admin/webhooks/{webhook}/deliveries", Secret, false, Some(Server) => admin::webhooks::deliveries;
}

/// What a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    Route(&'static RouteDef, Vec<(&'static str, String)>),
    /// CORS preflight of a path that exists.
    Preflight,
    /// The path exists with these methods only (the `Allow` header).
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

impl PartialEq for RouteDef {
    fn eq(&self, other: &Self) -> bool {
        self.route == other.route
    }
}
impl Eq for RouteDef {}

/// Each path pattern with the rows of `ROUTES` that serve it.
fn router() -> &'static matchit::Router<Vec<&'static RouteDef>> {
    static ROUTER: std::sync::OnceLock<matchit::Router<Vec<&'static RouteDef>>> = std::sync::OnceLock::new();
    ROUTER.get_or_init(|| {
        let mut by_path: Vec<(&str, Vec<&'static RouteDef>)> = Vec::new();
        for def in ROUTES {
            match by_path.iter_mut().find(|(p, _)| *p == def.path) {
                Some((_, defs)) => defs.push(def),
                None => by_path.push((def.path, vec![def])),
            }
        }
        let mut router = matchit::Router::new();
        for (path, defs) in by_path {
            // The table is a constant; a test builds this router.
            router
                .insert(path, defs)
                .expect("the route table's paths do not conflict");
        }
        router
    })
}

pub fn route(method: &str, path: &str) -> Matched {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let Ok(found) = router().at(path) else {
        return Matched::NotFound;
    };
    let mut params = Vec::new();
    for (name, raw) in found.params.iter() {
        let Ok(value) = percent_encoding::percent_decode_str(raw).decode_utf8() else {
            return Matched::NotFound;
        };
        let Some(name) = found.value[0].path_param(name) else {
            return Matched::NotFound;
        };
        params.push((name, value.into_owned()));
    }
    if let Some(def) = found
        .value
        .iter()
        .find(|d| d.method == method || (method == "HEAD" && d.method == "GET"))
    {
        return Matched::Route(def, params);
    }
    match method {
        "OPTIONS" => Matched::Preflight,
        _ => Matched::MethodNotAllowed(
            found
                .value
                .iter()
                .flat_map(|d| match d.method {
                    "GET" => vec!["GET", "HEAD"],
                    m => vec![m],
                })
                .collect(),
        ),
    }
}

impl RouteDef {
    /// The pattern's own `&'static` name of a path parameter.
    fn path_param(&self, name: &str) -> Option<&'static str> {
        self.path
            .split('/')
            .filter_map(|p| p.strip_prefix('{')?.strip_suffix('}'))
            .find(|p| *p == name)
    }
}

/// `limit` of a listing: 1 to `max`, `default` when absent.
pub fn parse_limit(value: Option<&str>, default: u32, max: u32) -> Result<u32, String> {
    match value {
        None => Ok(default),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(format!("limit must be an integer from 1 to {max}, not {v:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Params = Vec<(&'static str, String)>;

    fn r(method: &str, path: &str) -> Result<(Route, Params), Matched> {
        match route(method, path) {
            Matched::Route(def, params) => Ok((def.route, params)),
            other => Err(other),
        }
    }

    #[test]
    fn routes_of_the_contract() {
        assert_eq!(r("POST", "/v1/batch"), Ok((Route::Batch, vec![])));
        assert_eq!(r("POST", "/v1/batch/"), Ok((Route::Batch, vec![])));
        assert_eq!(r("HEAD", "/healthz"), Ok((Route::Health, vec![])));
        assert_eq!(r("OPTIONS", "/v1/batch"), Err(Matched::Preflight));
        assert_eq!(r("GET", "/v1/batch"), Err(Matched::MethodNotAllowed(vec!["POST"])));
        assert_eq!(
            r("DELETE", "/v1/admin/campaigns/x/snapshots"),
            Err(Matched::MethodNotAllowed(vec!["GET", "HEAD", "POST"]))
        );
        assert_eq!(
            r("GET", "/r/ABCD2345"),
            Ok((Route::Click, vec![("code", "ABCD2345".into())]))
        );
        assert_eq!(
            r("GET", "/v1/campaigns/launch%20x/leaderboard"),
            Ok((Route::Leaderboard, vec![("campaign", "launch x".into())]))
        );
        assert_eq!(
            r("POST", "/v1/admin/campaigns/launch/grants/7/transitions"),
            Ok((
                Route::GrantTransition,
                vec![("campaign", "launch".into()), ("grant", "7".into())]
            ))
        );
        assert_eq!(
            r("GET", "/v1/admin/campaigns/launch/export.csv").map(|m| m.0),
            Ok(Route::Export)
        );
        assert_eq!(r("GET", "/"), Err(Matched::NotFound));
        assert_eq!(r("GET", "/v1/nope"), Err(Matched::NotFound));
        assert_eq!(r("GET", "/r/"), Err(Matched::NotFound));
        assert_eq!(r("GET", "/r/%FF"), Err(Matched::NotFound));
    }

    #[test]
    fn every_row_is_reachable_and_none_repeats() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.method == b.method && a.path == b.path), "{a:?} twice");
                assert!(a.route != b.route, "{:?} names two rows", a.route);
            }
            let path = a.path.replace('{', "x").replace('}', "");
            assert_eq!(r(a.method, &path).map(|m| m.0), Ok(a.route), "{} {}", a.method, a.path);
        }
    }

    /// Browsers call exactly the routes a publishable key opens, and every
    /// route of a key counts against a budget.
    #[test]
    fn auth_cors_and_budgets_agree() {
        for d in ROUTES {
            let by_key = matches!(d.auth, Auth::Publishable | Auth::PublishableInBody);
            assert_eq!(d.browser, by_key, "{:?}", d.route);
            if by_key || d.auth == Auth::Secret {
                assert!(d.bucket.is_some(), "{:?} counts against nothing", d.route);
            }
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None, 50, 1000), Ok(50));
        assert_eq!(parse_limit(Some("10"), 50, 1000), Ok(10));
        assert!(parse_limit(Some("0"), 50, 1000).is_err());
        assert!(parse_limit(Some("1001"), 50, 1000).is_err());
        assert!(parse_limit(Some("-1"), 50, 1000).is_err());
        assert!(parse_limit(Some("ten"), 50, 1000).is_err());
    }
}
