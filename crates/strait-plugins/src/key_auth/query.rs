//! Query string parameters for `key_auth`: finding a key by its decoded name, and removing it
//! while every other parameter stays byte for byte as the client wrote it.

use std::borrow::Cow;

/// Percent-decodes a form-encoded piece, reading `+` as a space; invalid escapes stay as written.
pub(super) fn decode(raw: &str) -> Cow<'_, [u8]> {
    if !raw.bytes().any(|b| b == b'%' || b == b'+') {
        return Cow::Borrowed(raw.as_bytes());
    }
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => decoded.push(b' '),
            b'%' if i + 2 < bytes.len() && hex_pair(bytes[i + 1], bytes[i + 2]).is_some() => {
                decoded.extend(hex_pair(bytes[i + 1], bytes[i + 2]));
                i += 2;
            }
            other => decoded.push(other),
        }
        i += 1;
    }
    Cow::Owned(decoded)
}

fn hex_pair(high: u8, low: u8) -> Option<u8> {
    let digit = |b: u8| (b as char).to_digit(16).map(|d| d as u8);
    Some(digit(high)? << 4 | digit(low)?)
}

/// The `name=value` pieces of a raw query whose decoded name is `name`, with their values
/// (a piece without `=` has an empty value).
pub(super) fn values<'a>(query: &'a str, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
    pieces(query).filter(move |(n, _)| *decode(n) == *name.as_bytes()).map(|(_, value)| value)
}

/// `query` without the parameters named `name`; `None` when nothing is left.
pub(super) fn without(query: &str, name: &str) -> Option<String> {
    let other = |piece: &&str| *decode(piece.split_once('=').map_or(*piece, |(n, _)| n)) != *name.as_bytes();
    let kept: Vec<&str> = query.split('&').filter(|piece| !piece.is_empty()).filter(other).collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

/// Every non-empty piece of a raw query, split into its raw name and value.
fn pieces(query: &str) -> impl Iterator<Item = (&str, &str)> {
    query.split('&').filter(|piece| !piece.is_empty()).map(|piece| piece.split_once('=').unwrap_or((piece, "")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_are_decoded() {
        assert_eq!(&*decode("a%20b+c"), b"a b c");
        assert_eq!(&*decode("100%"), b"100%", "an escape cut short stays");
        assert_eq!(&*decode("%zz%4"), b"%zz%4");
        assert_eq!(&*decode("%41"), b"A");
        let found: Vec<&str> = values("x=1&api%6Bey=k%2B1&apikey&other=2", "apikey").collect();
        assert_eq!(found, ["k%2B1", ""]);
        assert_eq!(&*decode(found[0]), b"k+1");
    }

    #[test]
    fn removing_a_parameter_keeps_the_others_as_written() {
        assert_eq!(without("a=%41&apikey=k&b=x+y", "apikey").as_deref(), Some("a=%41&b=x+y"));
        assert_eq!(without("apikey=k&&api%6bey=2", "apikey"), None);
        assert_eq!(without("a=1", "apikey").as_deref(), Some("a=1"));
    }
}
