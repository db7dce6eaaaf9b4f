//! Errors are values a client can act on: a stable machine code, an HTTP status
//! and a human sentence. They serialise to `{"error":{"code","message"}}`.

use std::fmt;

/// Stable error codes of the public contract. Adding one is fine; renaming one
/// breaks clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The body is not the JSON the route expects.
    MalformedRequest,
    /// The request names no key.
    MissingKey,
    /// The key is not known (or revoked).
    UnknownKey,
    /// The page's Origin is not on the site's allow-list.
    OriginNotAllowed,
    /// Body over `MAX_BATCH_BYTES`.
    PayloadTooLarge,
    /// More than `MAX_BATCH_EVENTS` events.
    TooManyEvents,
    /// The route needs `Authorization: Bearer sk_…`.
    Unauthorized,
    /// A query parameter is out of range or of the wrong form.
    InvalidParameter,
    NotFound,
    MethodNotAllowed,
    /// Too many requests; `Retry-After` says when to come back.
    RateLimited,
    /// The key is valid but may not do this (a publishable key on an admin route).
    Forbidden,
    /// The request contradicts the current state (an illegal grant transition, a taken slug).
    Conflict,
    /// A campaign configuration failed validation; the message lists every problem.
    InvalidConfig,
    /// Contention: the state changed under the request too often; retry.
    Busy,
    /// The edge failed; nothing was half-written and the request may be retried.
    Internal,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::MalformedRequest => "malformed_request",
            Self::MissingKey => "missing_key",
            Self::UnknownKey => "unknown_key",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::PayloadTooLarge => "payload_too_large",
            Self::TooManyEvents => "too_many_events",
            Self::Unauthorized => "unauthorized",
            Self::InvalidParameter => "invalid_parameter",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::RateLimited => "rate_limited",
            Self::Forbidden => "forbidden",
            Self::Conflict => "conflict",
            Self::InvalidConfig => "invalid_config",
            Self::Busy => "busy",
            Self::Internal => "internal",
        }
    }

    /// The code of `as_str`'s text.
    pub fn parse(s: &str) -> Option<Self> {
        use ErrorCode::*;
        [
            MalformedRequest,
            MissingKey,
            UnknownKey,
            OriginNotAllowed,
            PayloadTooLarge,
            TooManyEvents,
            Unauthorized,
            InvalidParameter,
            NotFound,
            MethodNotAllowed,
            RateLimited,
            Forbidden,
            Conflict,
            InvalidConfig,
            Busy,
            Internal,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }

    pub const fn http_status(self) -> u16 {
        match self {
            Self::MalformedRequest | Self::MissingKey | Self::InvalidParameter => 400,
            Self::UnknownKey | Self::Unauthorized => 401,
            Self::OriginNotAllowed => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::PayloadTooLarge | Self::TooManyEvents => 413,
            Self::RateLimited => 429,
            Self::Forbidden => 403,
            Self::Conflict => 409,
            Self::InvalidConfig => 422,
            Self::Busy => 503,
            Self::Internal => 500,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// Seconds the client should wait before trying again (`Retry-After`),
    /// for the errors a wait cures (rate limits, contention).
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The same error, telling the client to wait `seconds` first.
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn status(&self) -> u16 {
        self.code.http_status()
    }

    /// The contract's error body. Written by hand so the type needs no serde
    /// and the SDK can share it.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"error":{{"code":"{}","message":{}}}}}"#,
            self.code.as_str(),
            json_string(&self.message)
        )
    }
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

/// A JSON string literal for `s`, escaped per RFC 8259.
pub fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(all(test, feature = "json"))]
mod tests {
    use super::*;

    #[test]
    fn error_body_is_the_contract_shape_and_escapes_the_message() {
        let e = ApiError::new(ErrorCode::UnknownKey, "no site has key \"pk_x\"\n");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        assert_eq!(v["error"]["code"], "unknown_key");
        assert_eq!(v["error"]["message"], "no site has key \"pk_x\"\n");
        assert_eq!(e.status(), 401);
    }

    proptest::proptest! {
        #[test]
        fn json_string_round_trips_any_text(s in ".*") {
            let back: String = serde_json::from_str(&json_string(&s)).unwrap();
            proptest::prop_assert_eq!(back, s);
        }
    }
}
