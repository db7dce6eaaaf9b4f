//! The routes of the public contract, matched without the Worker runtime.
//! `ROUTES` is the one table: the router reads it, and a test holds it equal
//! to the paths of `docs/openapi.yaml`.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Batch,
    ServerEvents,
    Click,
    Leaderboard,
    PublicParticipant,
    Me,
    Invitations,
    Qr,
    Tenants,
    ListTenants,
    AdminEvents,
    ListCampaigns,
    CreateCampaign,
    GetCampaign,
    UpdateCampaign,
    SetCampaignStatus,
    CampaignVersions,
    PutPointRules,
    PutRewards,
    SearchParticipants,
    ParticipantLedger,
    Adjust,
    GrantByHand,
    Redeem,
    Answers,
    Money,
    Sources,
    Erase,
    ListReferrals,
    ReviewReferral,
    ListGrants,
    GrantTransition,
    ListSnapshots,
    TakeSnapshot,
    Funnel,
    Trend,
    Export,
    ListWebhooks,
    Identity,
    Person,
    ErasePerson,
    CreateWebhook,
    DeleteWebhook,
    Deliveries,
    Audit,
    EndCampaign,
    CheckCampaign,
    CheckAll,
    Replay,
}

/// (method, path pattern, route). `{name}` matches one path segment.
pub const ROUTES: &[(&str, &str, Route)] = &[
    ("GET", "/healthz", Route::Health),
    ("POST", "/v1/batch", Route::Batch),
    ("POST", "/v1/server/events", Route::ServerEvents),
    ("GET", "/r/{code}", Route::Click),
    ("GET", "/v1/campaigns/{campaign}/leaderboard", Route::Leaderboard),
    (
        "GET",
        "/v1/campaigns/{campaign}/participants/{code}",
        Route::PublicParticipant,
    ),
    ("GET", "/v1/campaigns/{campaign}/me", Route::Me),
    ("POST", "/v1/invitations", Route::Invitations),
    ("GET", "/v1/qr.svg", Route::Qr),
    ("POST", "/v1/admin/tenants", Route::Tenants),
    ("GET", "/v1/admin/tenants", Route::ListTenants),
    ("GET", "/v1/admin/events", Route::AdminEvents),
    ("GET", "/v1/admin/campaigns", Route::ListCampaigns),
    ("POST", "/v1/admin/campaigns", Route::CreateCampaign),
    ("GET", "/v1/admin/campaigns/{campaign}", Route::GetCampaign),
    ("PUT", "/v1/admin/campaigns/{campaign}", Route::UpdateCampaign),
    (
        "POST",
        "/v1/admin/campaigns/{campaign}/status",
        Route::SetCampaignStatus,
    ),
    (
        "GET",
        "/v1/admin/campaigns/{campaign}/versions",
        Route::CampaignVersions,
    ),
    (
        "PUT",
        "/v1/admin/campaigns/{campaign}/point-rules",
        Route::PutPointRules,
    ),
    ("PUT", "/v1/admin/campaigns/{campaign}/rewards", Route::PutRewards),
    (
        "GET",
        "/v1/admin/campaigns/{campaign}/participants",
        Route::SearchParticipants,
    ),
    (
        "GET",
        "/v1/admin/campaigns/{campaign}/participants/{participant}/ledger",
        Route::ParticipantLedger,
    ),
    (
        "POST",
        "/v1/admin/campaigns/{campaign}/participants/{participant}/adjustments",
        Route::Adjust,
    ),
    (
        "POST",
        "/v1/admin/campaigns/{campaign}/participants/{participant}/grants",
        Route::GrantByHand,
    ),
    ("POST", "/v1/admin/campaigns/{campaign}/redeem", Route::Redeem),
    ("GET", "/v1/admin/campaigns/{campaign}/answers", Route::Answers),
    (
        "DELETE",
        "/v1/admin/campaigns/{campaign}/participants/{participant}",
        Route::Erase,
    ),
    ("GET", "/v1/admin/campaigns/{campaign}/referrals", Route::ListReferrals),
    (
        "POST",
        "/v1/admin/campaigns/{campaign}/referrals/{referral}/review",
        Route::ReviewReferral,
    ),
    ("GET", "/v1/admin/campaigns/{campaign}/grants", Route::ListGrants),
    (
        "POST",
        "/v1/admin/campaigns/{campaign}/grants/{grant}/transitions",
        Route::GrantTransition,
    ),
    ("GET", "/v1/admin/campaigns/{campaign}/snapshots", Route::ListSnapshots),
    ("POST", "/v1/admin/campaigns/{campaign}/snapshots", Route::TakeSnapshot),
    ("GET", "/v1/admin/campaigns/{campaign}/stats/funnel", Route::Funnel),
    ("GET", "/v1/admin/campaigns/{campaign}/stats/money", Route::Money),
    ("GET", "/v1/admin/campaigns/{campaign}/stats/sources", Route::Sources),
    ("GET", "/v1/admin/campaigns/{campaign}/stats/trend", Route::Trend),
    ("GET", "/v1/admin/campaigns/{campaign}/export.csv", Route::Export),
    ("GET", "/v1/admin/identity", Route::Identity),
    ("GET", "/v1/admin/people", Route::Person),
    ("POST", "/v1/admin/people/erase", Route::ErasePerson),
    ("GET", "/v1/admin/webhooks", Route::ListWebhooks),
    ("POST", "/v1/admin/webhooks", Route::CreateWebhook),
    ("DELETE", "/v1/admin/webhooks/{webhook}", Route::DeleteWebhook),
    ("GET", "/v1/admin/webhooks/{webhook}/deliveries", Route::Deliveries),
    ("GET", "/v1/admin/audit", Route::Audit),
    ("POST", "/v1/admin/campaigns/{campaign}/end", Route::EndCampaign),
    ("GET", "/v1/admin/campaigns/{campaign}/check", Route::CheckCampaign),
    ("GET", "/v1/admin/check", Route::CheckAll),
    ("POST", "/v1/admin/campaigns/{campaign}/replay", Route::Replay),
];

/// What a request matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    Route(Route, Vec<(&'static str, String)>),
    /// CORS preflight of a path that exists.
    Preflight,
    /// The path exists with these methods only (the `Allow` header).
    MethodNotAllowed(Vec<&'static str>),
    NotFound,
}

pub fn route(method: &str, path: &str) -> Matched {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = path.split('/').collect();
    let mut allowed: Vec<&'static str> = Vec::new();
    for (m, pattern, r) in ROUTES {
        let Some(params) = match_pattern(pattern, &segments) else {
            continue;
        };
        if *m == method || (method == "HEAD" && *m == "GET") {
            return Matched::Route(*r, params);
        }
        allowed.push(m);
        if *m == "GET" {
            allowed.push("HEAD");
        }
    }
    match (allowed.is_empty(), method) {
        (false, "OPTIONS") => Matched::Preflight,
        (false, _) => Matched::MethodNotAllowed(allowed),
        (true, _) => Matched::NotFound,
    }
}

fn match_pattern(pattern: &'static str, segments: &[&str]) -> Option<Vec<(&'static str, String)>> {
    let parts: Vec<&'static str> = pattern.split('/').collect();
    if parts.len() != segments.len() {
        return None;
    }
    let mut params = Vec::new();
    for (p, s) in parts.iter().zip(segments) {
        if let Some(name) = p.strip_prefix('{').and_then(|n| n.strip_suffix('}')) {
            if s.is_empty() {
                return None;
            }
            params.push((name, percent_decode(s)?));
        } else if p != s {
            return None;
        }
    }
    Some(params)
}

/// Decodes a path segment; `None` for invalid escapes or UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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

    fn r(method: &str, path: &str) -> Matched {
        route(method, path)
    }

    #[test]
    fn routes_of_the_contract() {
        assert_eq!(r("POST", "/v1/batch"), Matched::Route(Route::Batch, vec![]));
        assert_eq!(r("POST", "/v1/batch/"), Matched::Route(Route::Batch, vec![]));
        assert_eq!(r("OPTIONS", "/v1/batch"), Matched::Preflight);
        assert_eq!(r("GET", "/v1/batch"), Matched::MethodNotAllowed(vec!["POST"]));
        assert_eq!(
            r("GET", "/r/ABCD2345"),
            Matched::Route(Route::Click, vec![("code", "ABCD2345".into())])
        );
        assert_eq!(
            r("GET", "/v1/campaigns/launch/leaderboard"),
            Matched::Route(Route::Leaderboard, vec![("campaign", "launch".into())])
        );
        assert_eq!(
            r("POST", "/v1/admin/campaigns/launch/grants/7/transitions"),
            Matched::Route(
                Route::GrantTransition,
                vec![("campaign", "launch".into()), ("grant", "7".into())]
            )
        );
        assert_eq!(r("GET", "/"), Matched::NotFound);
        assert_eq!(r("GET", "/v1/nope"), Matched::NotFound);
        assert_eq!(r("GET", "/r/"), Matched::NotFound);
        assert_eq!(r("GET", "/r/%FF"), Matched::NotFound);
    }

    #[test]
    fn no_two_routes_share_method_and_pattern() {
        for (i, a) in ROUTES.iter().enumerate() {
            for b in &ROUTES[i + 1..] {
                assert!(!(a.0 == b.0 && a.1 == b.1), "{a:?} twice");
            }
        }
    }

    /// `docs/openapi.yaml` documents exactly the routes the router serves
    /// (plus the CORS preflight of `/v1/batch`).
    #[test]
    fn the_openapi_spec_and_the_router_list_the_same_routes() {
        let spec = include_str!("../../docs/openapi.yaml");
        let mut documented = std::collections::BTreeSet::new();
        let mut path = None;
        for line in spec.lines() {
            if let Some(p) = line.strip_prefix("  /").and_then(|l| l.strip_suffix(':')) {
                path = Some(format!("/{p}"));
            } else if !line.starts_with("  ") || line.starts_with("  ") && !line.starts_with("   ") {
                path = None;
            }
            if let (Some(p), Some(m)) = (&path, line.strip_prefix("    ").and_then(|l| l.strip_suffix(':')))
                && ["get", "post", "put", "delete", "options"].contains(&m)
            {
                documented.insert((m.to_ascii_uppercase(), p.clone()));
            }
        }
        let mut served: std::collections::BTreeSet<(String, String)> =
            ROUTES.iter().map(|(m, p, _)| (m.to_string(), p.to_string())).collect();
        served.insert(("OPTIONS".into(), "/v1/batch".into()));
        let missing: Vec<_> = served.difference(&documented).collect();
        let extra: Vec<_> = documented.difference(&served).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "undocumented: {missing:?}\ndocumented but not served: {extra:?}"
        );
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
