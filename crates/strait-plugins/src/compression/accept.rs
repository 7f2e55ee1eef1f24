//! `Accept-Encoding` (RFC 9110 §12.5.3): which content codings a client takes, and how much
//! it prefers each.

use http::header::{HeaderMap, ACCEPT_ENCODING};

use super::Algorithm;

/// A q-value in thousandths: `1000` is `q=1`, `0` is "not acceptable".
type Weight = u16;

/// What one request's `Accept-Encoding` fields say, per coding Strait can produce.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Accepted {
    gzip: Option<Weight>,
    br: Option<Weight>,
    zstd: Option<Weight>,
    identity: Option<Weight>,
    any: Option<Weight>,
}

impl Accepted {
    /// Reads every `Accept-Encoding` field of `headers`. Tokens are case-insensitive,
    /// `x-gzip` is `gzip` (RFC 9110 §8.4.1.3), unknown codings are ignored, and an invalid
    /// q-value makes its coding unacceptable. A coding listed twice keeps its highest weight.
    pub(crate) fn parse(headers: &HeaderMap) -> Accepted {
        let mut accepted = Accepted::default();
        for value in headers.get_all(ACCEPT_ENCODING) {
            let Ok(value) = value.to_str() else { continue };
            for element in value.split(',') {
                let mut parts = element.split(';');
                let coding = parts.next().unwrap_or("").trim();
                if coding.is_empty() {
                    continue;
                }
                let weight = parts
                    .filter_map(|param| param.split_once('='))
                    .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
                    .map_or(1000, |(_, q)| parse_weight(q.trim()).unwrap_or(0));
                let slot = match coding.to_ascii_lowercase().as_str() {
                    "gzip" | "x-gzip" => &mut accepted.gzip,
                    "br" => &mut accepted.br,
                    "zstd" => &mut accepted.zstd,
                    "identity" => &mut accepted.identity,
                    "*" => &mut accepted.any,
                    _ => continue,
                };
                *slot = Some(slot.map_or(weight, |seen| seen.max(weight)));
            }
        }
        accepted
    }

    /// The weight of `algorithm`: its own entry, else that of `*`, else not acceptable.
    fn weight(&self, algorithm: Algorithm) -> Weight {
        let own = match algorithm {
            Algorithm::Gzip => self.gzip,
            Algorithm::Br => self.br,
            Algorithm::Zstd => self.zstd,
        };
        own.or(self.any).unwrap_or(0)
    }

    /// The coding to answer with among `offered` (the server's order of preference): the
    /// client's highest weight wins, the earlier offer breaks a tie. `None` when no offer is
    /// acceptable, or when the client weighs identity (by name or through `*`) above the best
    /// offer.
    pub(crate) fn choose(&self, offered: &[Algorithm]) -> Option<Algorithm> {
        let mut best: Option<(Algorithm, Weight)> = None;
        for &algorithm in offered {
            let weight = self.weight(algorithm);
            if weight > 0 && best.is_none_or(|(_, top)| weight > top) {
                best = Some((algorithm, weight));
            }
        }
        let (algorithm, weight) = best?;
        let identity = self.identity.or(self.any).unwrap_or(0);
        (identity <= weight).then_some(algorithm)
    }
}

/// Parses a qvalue: `0`, `0.5`, `0.125`, `1`, `1.000` (at most three decimals, at most 1).
fn parse_weight(text: &str) -> Option<Weight> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let thousandths = format!("{fraction:0<3}").parse::<Weight>().ok()?;
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    const SERVER_ORDER: &[Algorithm] = &[Algorithm::Zstd, Algorithm::Br, Algorithm::Gzip];

    fn choose(fields: &[&str], offered: &[Algorithm]) -> Option<Algorithm> {
        let mut headers = HeaderMap::new();
        for field in fields {
            headers.append(ACCEPT_ENCODING, HeaderValue::from_str(field).unwrap());
        }
        Accepted::parse(&headers).choose(offered)
    }

    #[test]
    fn weights_parse_as_thousandths() {
        assert_eq!(parse_weight("1"), Some(1000));
        assert_eq!(parse_weight("1.000"), Some(1000));
        assert_eq!(parse_weight("0.5"), Some(500));
        assert_eq!(parse_weight("0.125"), Some(125));
        assert_eq!(parse_weight("0"), Some(0));
        assert_eq!(parse_weight("0."), Some(0));
        for invalid in ["1.5", "2", "0.1234", "-1", "", "abc", "0.x"] {
            assert_eq!(parse_weight(invalid), None, "{invalid}");
        }
    }

    #[test]
    fn highest_client_weight_wins_over_server_order() {
        assert_eq!(choose(&["gzip;q=0.9, br;q=0.5, zstd;q=0.1"], SERVER_ORDER), Some(Algorithm::Gzip));
        assert_eq!(choose(&["gzip;q=0.5, br"], SERVER_ORDER), Some(Algorithm::Br));
    }

    #[test]
    fn ties_are_broken_by_server_preference() {
        assert_eq!(choose(&["gzip, deflate, br, zstd"], SERVER_ORDER), Some(Algorithm::Zstd));
        assert_eq!(choose(&["gzip, br"], SERVER_ORDER), Some(Algorithm::Br));
        assert_eq!(choose(&["gzip, br"], &[Algorithm::Gzip, Algorithm::Br]), Some(Algorithm::Gzip));
    }

    #[test]
    fn zero_weight_is_not_acceptable() {
        assert_eq!(choose(&["gzip;q=0"], SERVER_ORDER), None);
        assert_eq!(choose(&["gzip;q=0, br;q=0.1"], SERVER_ORDER), Some(Algorithm::Br));
        assert_eq!(choose(&["br;q=0, *"], SERVER_ORDER), Some(Algorithm::Zstd));
        assert_eq!(choose(&["zstd;q=0, br;q=0, *"], SERVER_ORDER), Some(Algorithm::Gzip));
    }

    #[test]
    fn star_covers_codings_not_listed() {
        assert_eq!(choose(&["*"], SERVER_ORDER), Some(Algorithm::Zstd));
        assert_eq!(choose(&["*;q=0"], SERVER_ORDER), None);
        assert_eq!(choose(&["gzip, *;q=0"], SERVER_ORDER), Some(Algorithm::Gzip));
    }

    #[test]
    fn identity_weighted_above_the_best_offer_means_no_compression() {
        assert_eq!(choose(&["gzip;q=0.5, identity"], &[Algorithm::Gzip]), None);
        assert_eq!(choose(&["gzip;q=0.5, *"], &[Algorithm::Gzip]), None);
        assert_eq!(choose(&["gzip, identity"], &[Algorithm::Gzip]), Some(Algorithm::Gzip));
        assert_eq!(choose(&["gzip, identity;q=0"], &[Algorithm::Gzip]), Some(Algorithm::Gzip));
        assert_eq!(choose(&["identity;q=0"], &[Algorithm::Gzip]), None);
    }

    #[test]
    fn tokens_and_q_are_case_insensitive_and_spaces_are_optional() {
        assert_eq!(choose(&["GZip ; Q=0.8 ,BR;q=0.4"], SERVER_ORDER), Some(Algorithm::Gzip));
        assert_eq!(choose(&["x-gzip"], SERVER_ORDER), Some(Algorithm::Gzip));
        assert_eq!(choose(&[" , ,zstd"], SERVER_ORDER), Some(Algorithm::Zstd));
    }

    #[test]
    fn several_fields_are_one_list() {
        assert_eq!(choose(&["gzip;q=0.2", "br;q=0.3"], SERVER_ORDER), Some(Algorithm::Br));
    }

    #[test]
    fn invalid_weight_makes_its_coding_unacceptable() {
        assert_eq!(choose(&["br;q=2, gzip;q=0.1"], SERVER_ORDER), Some(Algorithm::Gzip));
        assert_eq!(choose(&["br;q=high"], SERVER_ORDER), None);
    }

    #[test]
    fn no_field_or_unknown_codings_mean_identity() {
        assert_eq!(choose(&[], SERVER_ORDER), None);
        assert_eq!(choose(&[""], SERVER_ORDER), None);
        assert_eq!(choose(&["deflate, compress"], SERVER_ORDER), None);
        assert_eq!(choose(&["br"], &[Algorithm::Gzip]), None);
    }
}
