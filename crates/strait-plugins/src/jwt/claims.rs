//! Checking a verified token's claims: registered times, issuer, audience, required names.

use serde_json::{Map, Value};

use super::refusal::Refusal;

/// The token's `exp` and `nbf`, kept so a cached token is checked again on each use.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Times {
    /// `exp`, seconds since the epoch.
    pub exp: Option<f64>,
    /// `nbf`, seconds since the epoch.
    pub nbf: Option<f64>,
}

/// The claim rules of one filter.
#[derive(Debug, Clone, Default)]
pub struct ClaimRules {
    /// `exp` must be present (`claims_to_verify: [exp]`); when present it is always checked.
    pub require_exp: bool,
    /// `nbf` must be present (`claims_to_verify: [nbf]`); when present it is always checked.
    pub require_nbf: bool,
    /// `exp` may be at most this many seconds away (0: no limit).
    pub maximum_expiration: u64,
    /// Seconds of clock skew allowed on `exp` and `nbf`.
    pub leeway: u64,
    /// Accepted `iss` values (empty: any).
    pub issuers: Vec<String>,
    /// Accepted `aud` values (empty: any).
    pub audiences: Vec<String>,
    /// Claims that must be present.
    pub required: Vec<String>,
}

impl ClaimRules {
    /// The checks that do not depend on the time: issuer, audience, required claims and the
    /// types of `exp` and `nbf`, which it returns.
    pub fn check(&self, claims: &Map<String, Value>) -> Result<Times, Refusal> {
        for name in &self.required {
            if !claims.contains_key(name) {
                return Err(Refusal::MissingClaim(name.clone()));
            }
        }
        if !self.issuers.is_empty() {
            match claims.get("iss") {
                Some(Value::String(iss)) if self.issuers.contains(iss) => {}
                None => return Err(Refusal::MissingClaim("iss".into())),
                Some(_) => return Err(Refusal::WrongIssuer),
            }
        }
        if !self.audiences.is_empty() {
            let accepted = |aud: &Value| aud.as_str().is_some_and(|aud| self.audiences.iter().any(|a| a == aud));
            match claims.get("aud") {
                Some(Value::Array(list)) if list.iter().any(accepted) => {}
                Some(single @ Value::String(_)) if accepted(single) => {}
                None => return Err(Refusal::MissingClaim("aud".into())),
                Some(_) => return Err(Refusal::WrongAudience),
            }
        }
        Ok(Times { exp: numeric_date(claims, "exp")?, nbf: numeric_date(claims, "nbf")? })
    }

    /// The checks that depend on the time `now` (seconds since the epoch): run on every use.
    pub fn check_times(&self, times: Times, now: f64) -> Result<(), Refusal> {
        let leeway = self.leeway as f64;
        match times.exp {
            Some(exp) if now >= exp + leeway => return Err(Refusal::Expired),
            Some(exp) if self.maximum_expiration > 0 && exp - now > self.maximum_expiration as f64 => {
                return Err(Refusal::TooLongLived)
            }
            None if self.require_exp => return Err(Refusal::MissingClaim("exp".into())),
            _ => {}
        }
        match times.nbf {
            Some(nbf) if nbf - leeway > now => Err(Refusal::NotYetValid),
            None if self.require_nbf => Err(Refusal::MissingClaim("nbf".into())),
            _ => Ok(()),
        }
    }
}

/// A NumericDate claim (RFC 7519 §2): a JSON number, if present.
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => value.as_f64().map(Some).ok_or_else(|| Refusal::InvalidClaim(name.into())),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn claims(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    const NOW: f64 = 1_000_000.0;

    #[test]
    fn exp_and_nbf_are_checked_when_present_with_the_leeway() {
        let rules = ClaimRules::default();
        let check = |rules: &ClaimRules, value: Value| rules.check_times(rules.check(&claims(value))?, NOW);
        assert_eq!(check(&rules, json!({"exp": NOW})), Err(Refusal::Expired));
        assert_eq!(check(&rules, json!({"exp": NOW + 1.0})), Ok(()));
        assert_eq!(check(&rules, json!({"nbf": NOW + 1.0})), Err(Refusal::NotYetValid));
        assert_eq!(check(&rules, json!({"nbf": NOW})), Ok(()));
        assert_eq!(check(&rules, json!({"exp": "soon"})), Err(Refusal::InvalidClaim("exp".into())));
        let lenient = ClaimRules { leeway: 30, ..ClaimRules::default() };
        assert_eq!(check(&lenient, json!({"exp": NOW - 29.0, "nbf": NOW + 29.0})), Ok(()));
        assert_eq!(check(&lenient, json!({"exp": NOW - 30.0})), Err(Refusal::Expired));
        assert_eq!(check(&lenient, json!({"nbf": NOW + 31.0})), Err(Refusal::NotYetValid));
    }

    #[test]
    fn claims_to_verify_makes_exp_and_nbf_required() {
        let rules = ClaimRules { require_exp: true, require_nbf: true, ..ClaimRules::default() };
        let times = |value: Value| rules.check(&claims(value)).unwrap();
        assert_eq!(rules.check_times(times(json!({"nbf": NOW})), NOW), Err(Refusal::MissingClaim("exp".into())));
        assert_eq!(rules.check_times(times(json!({"exp": NOW + 5.0})), NOW), Err(Refusal::MissingClaim("nbf".into())));
        assert_eq!(rules.check_times(times(json!({"exp": NOW + 5.0, "nbf": NOW})), NOW), Ok(()));
    }

    #[test]
    fn maximum_expiration_refuses_long_lived_tokens() {
        let rules = ClaimRules { require_exp: true, maximum_expiration: 60, ..ClaimRules::default() };
        assert_eq!(rules.check_times(Times { exp: Some(NOW + 61.0), nbf: None }, NOW), Err(Refusal::TooLongLived));
        assert_eq!(rules.check_times(Times { exp: Some(NOW + 60.0), nbf: None }, NOW), Ok(()));
    }

    #[test]
    fn issuer_audience_and_required_claims() {
        let rules = ClaimRules {
            issuers: vec!["https://idp".into()],
            audiences: vec!["api".into()],
            required: vec!["sub".into()],
            ..ClaimRules::default()
        };
        let base = json!({"iss": "https://idp", "aud": "api", "sub": "u"});
        assert!(rules.check(&claims(base.clone())).is_ok());
        let with = |key: &str, value: Value| {
            let mut map = claims(base.clone());
            map.insert(key.into(), value);
            rules.check(&map)
        };
        assert!(with("aud", json!(["other", "api"])).is_ok());
        assert_eq!(with("aud", json!(["other"])).unwrap_err(), Refusal::WrongAudience);
        assert_eq!(with("aud", json!("other")).unwrap_err(), Refusal::WrongAudience);
        assert_eq!(with("iss", json!("https://evil")).unwrap_err(), Refusal::WrongIssuer);
        let mut no_sub = claims(base);
        no_sub.remove("sub");
        assert_eq!(rules.check(&no_sub).unwrap_err(), Refusal::MissingClaim("sub".into()));
    }
}
