//! Query string parameters (`a=1&b=2`), percent-decoded with `+` as a space, without copying.

use std::borrow::Cow;

/// One `name=value` pair of a query string, still encoded.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Param<'q> {
    name: &'q str,
    value: &'q str,
}

impl<'q> Param<'q> {
    /// Whether the decoded name equals `expected`.
    pub(crate) fn name_is(&self, expected: &[u8]) -> bool {
        decoded_equals(self.name, expected)
    }

    /// Whether the decoded value equals `expected`.
    pub(crate) fn value_is(&self, expected: &[u8]) -> bool {
        decoded_equals(self.value, expected)
    }

    /// The decoded value, borrowed when it contains no escapes.
    pub(crate) fn value(&self) -> Cow<'q, [u8]> {
        decode(self.value)
    }
}

/// The parameters of a raw query string, in order; empty pieces are skipped and a piece
/// without `=` has an empty value.
pub(crate) fn params(query: &str) -> impl Iterator<Item = Param<'_>> {
    query.split('&').filter(|piece| !piece.is_empty()).map(|piece| {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        Param { name, value }
    })
}

fn needs_decoding(raw: &str) -> bool {
    raw.bytes().any(|b| b == b'%' || b == b'+')
}

fn decoded_equals(raw: &str, expected: &[u8]) -> bool {
    if needs_decoding(raw) {
        Decoded::new(raw).eq(expected.iter().copied())
    } else {
        raw.as_bytes() == expected
    }
}

/// Percent-decodes `raw`, reading `+` as a space; invalid escapes are kept as written.
pub(crate) fn decode(raw: &str) -> Cow<'_, [u8]> {
    if needs_decoding(raw) {
        Cow::Owned(Decoded::new(raw).collect())
    } else {
        Cow::Borrowed(raw.as_bytes())
    }
}

/// The bytes of a form-encoded string, decoded one at a time.
struct Decoded<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoded<'a> {
    fn new(raw: &'a str) -> Self {
        Decoded { bytes: raw.as_bytes(), pos: 0 }
    }

    fn hex_at(&self, at: usize) -> Option<u8> {
        let digit = *self.bytes.get(at)?;
        (digit as char).to_digit(16).map(|d| d as u8)
    }
}

impl Iterator for Decoded<'_> {
    type Item = u8;

    fn next(&mut self) -> Option<u8> {
        let byte = *self.bytes.get(self.pos)?;
        self.pos += 1;
        match byte {
            b'+' => Some(b' '),
            b'%' => match (self.hex_at(self.pos), self.hex_at(self.pos + 1)) {
                (Some(high), Some(low)) => {
                    self.pos += 2;
                    Some(high << 4 | low)
                }
                _ => Some(b'%'),
            },
            other => Some(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_pairs() {
        let pairs: Vec<(&str, &str)> = params("a=1&&b=&c&d=x=y").map(|p| (p.name, p.value)).collect();
        assert_eq!(pairs, [("a", "1"), ("b", ""), ("c", ""), ("d", "x=y")]);
        assert_eq!(params("").count(), 0);
    }

    #[test]
    fn decodes_escapes_and_plus() {
        assert_eq!(&*decode("a+b%20c%2Fd"), b"a b c/d");
        assert_eq!(&*decode("%e2%82%ac"), "€".as_bytes());
        assert_eq!(&*decode("100%"), b"100%");
        assert_eq!(&*decode("%zz%4"), b"%zz%4");
        assert!(matches!(decode("plain"), Cow::Borrowed(_)));
    }

    #[test]
    fn compares_decoded_without_copying() {
        let param = params("user%20id=J%C3%B6rg+K").next().unwrap();
        assert!(param.name_is(b"user id"));
        assert!(!param.name_is(b"user%20id"));
        assert!(param.value_is("Jörg K".as_bytes()));
        assert!(!param.value_is("Jörg".as_bytes()));
        assert!(!param.value_is("Jörg Kx".as_bytes()));
    }
}
