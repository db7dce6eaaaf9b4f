//! The routes of the public contract, matched without the Worker runtime.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Health,
    Batch,
    /// CORS preflight of a route browsers call.
    Preflight,
    AdminEvents,
    NotFound,
    MethodNotAllowed,
}

pub fn route(method: &str, path: &str) -> Route {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    match (method, path) {
        ("GET" | "HEAD", "/healthz") => Route::Health,
        ("POST", "/v1/batch") => Route::Batch,
        ("OPTIONS", "/v1/batch") => Route::Preflight,
        ("GET", "/v1/admin/events") => Route::AdminEvents,
        (_, "/healthz" | "/v1/batch" | "/v1/admin/events") => Route::MethodNotAllowed,
        _ => Route::NotFound,
    }
}

/// `limit` of a listing: 1 to 1000, 50 when absent.
pub fn parse_limit(value: Option<&str>) -> Result<u32, String> {
    match value {
        None => Ok(50),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=1000).contains(&n) => Ok(n),
            _ => Err(format!("limit must be an integer from 1 to 1000, not {v:?}")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_of_the_contract() {
        assert_eq!(route("POST", "/v1/batch"), Route::Batch);
        assert_eq!(route("POST", "/v1/batch/"), Route::Batch);
        assert_eq!(route("OPTIONS", "/v1/batch"), Route::Preflight);
        assert_eq!(route("GET", "/v1/batch"), Route::MethodNotAllowed);
        assert_eq!(route("GET", "/v1/admin/events"), Route::AdminEvents);
        assert_eq!(route("GET", "/"), Route::NotFound);
        assert_eq!(route("GET", "/v1/nope"), Route::NotFound);
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None), Ok(50));
        assert_eq!(parse_limit(Some("10")), Ok(10));
        assert!(parse_limit(Some("0")).is_err());
        assert!(parse_limit(Some("1001")).is_err());
        assert!(parse_limit(Some("-1")).is_err());
        assert!(parse_limit(Some("ten")).is_err());
    }
}
