//! The field types of request bodies: each checks itself while the body is
//! read (`Cx::body`), so a handler only ever sees values in range.

use serde::{Deserialize, Deserializer, Serialize, de::Error};

/// Text of 1 to `MAX` characters, not blank, without control characters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Text<const MAX: usize>(pub String);

impl<'de, const MAX: usize> Deserialize<'de> for Text<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() || s.chars().count() > MAX || s.chars().any(char::is_control) {
            return Err(D::Error::custom(format!("must be text of 1 to {MAX} characters")));
        }
        Ok(Text(s))
    }
}

impl<const MAX: usize> Text<MAX> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Free text of at most `MAX` characters (may be empty), for notes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Note<const MAX: usize>(pub String);

impl<'de, const MAX: usize> Deserialize<'de> for Note<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.chars().count() > MAX {
            return Err(D::Error::custom(format!("must be text of at most {MAX} characters")));
        }
        Ok(Note(s))
    }
}

/// An integer in `MIN..=MAX`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounded<const MIN: i64, const MAX: i64>(pub i64);

/// A configuration version.
pub type Version = Bounded<1, { u32::MAX as i64 }>;

/// An integer, written as JSON allows (`7` or `7.0`).
fn integer<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    n.as_i64()
        .or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 9.2e18)
                .map(|f| f as i64)
        })
        .ok_or_else(|| D::Error::custom(format!("{n} is not an integer")))
}

impl<'de, const MIN: i64, const MAX: i64> Deserialize<'de> for Bounded<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = integer(d)?;
        if !(MIN..=MAX).contains(&n) {
            return Err(D::Error::custom(format!("must be an integer from {MIN} to {MAX}")));
        }
        Ok(Bounded(n))
    }
}

/// An adjustment's points: non-zero, within ±1,000,000,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Points(pub i64);

/// The largest correction one adjustment makes.
pub const MAX_ADJUSTMENT: i64 = 1_000_000_000;

impl<'de> Deserialize<'de> for Points {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let n = integer(d)?;
        if n == 0 || n.abs() > MAX_ADJUSTMENT {
            return Err(D::Error::custom("must be a non-zero integer within ±1,000,000,000"));
        }
        Ok(Points(n))
    }
}

/// A seed: a non-negative integer, or its decimal text (JavaScript cannot
/// hold every u64 as a number).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seed(pub u64);

impl<'de> Deserialize<'de> for Seed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(serde_json::Number),
            Text(String),
        }
        let refuse = || D::Error::custom("must be a non-negative integer (or its decimal text)");
        match Either::deserialize(d).map_err(|_| refuse())? {
            Either::Number(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && (0.0..1.8e19).contains(f))
                        .map(|f| f as u64)
                })
                .map(Seed)
                .ok_or_else(refuse),
            Either::Text(t) => t.parse().map(Seed).map_err(|_| refuse()),
        }
    }
}

/// A web origin as browsers send it: `https://shop.example` (scheme, host,
/// port; no path, no trailing slash), at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin(pub String);

impl<'de> Deserialize<'de> for Origin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let refuse = || D::Error::custom(format!("{s:?} is not an origin like https://shop.example"));
        let url = url::Url::parse(&s).map_err(|_| refuse())?;
        if s.len() > 200 || !matches!(url.scheme(), "http" | "https") {
            return Err(refuse());
        }
        // As a browser sends it; a default port written out is taken without it.
        let normal = url.origin().ascii_serialization();
        let default_port = if url.scheme() == "http" { ":80" } else { ":443" };
        if normal != s && format!("{normal}{default_port}") != s {
            return Err(refuse());
        }
        Ok(Origin(normal))
    }
}
