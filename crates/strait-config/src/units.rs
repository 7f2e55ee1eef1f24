//! Human units in configuration values: durations (`250ms`, `5s`, `10m`) and sizes (`1MiB`).

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

/// A duration written as `<number><unit>` with unit `ms`, `s`, `m`, `h` or `d`, or a bare
/// number of seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub Duration);

impl Dur {
    /// The longest duration accepted: 100 years (`36500d`). Longer ones are errors rather than
    /// deadlines so far away that adding them to a clock would overflow.
    pub const MAX: Dur = Dur::secs(36_500 * 86_400);

    /// A duration of `n` seconds.
    pub const fn secs(n: u64) -> Dur {
        Dur(Duration::from_secs(n))
    }

    /// Parses `250ms`, `5s`, `1.5s`, `10m`, `2h`, `30d` or `7` (seconds).
    pub fn parse(text: &str) -> Result<Dur, String> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 =
            number.parse().map_err(|_| format!("invalid duration `{text}`: expected e.g. `500ms`, `5s`, `10m`"))?;
        let scale = match unit.trim() {
            "" | "s" => 1.0,
            "ms" => 0.001,
            "us" => 0.000_001,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86400.0,
            other => return Err(format!("invalid duration unit `{other}` in `{text}`: use ms, s, m, h or d")),
        };
        seconds_to_dur(value * scale).map_err(|_| format!("duration `{text}` is too long: {TOO_LONG}"))
    }
}

/// The end of the message about a duration beyond [`Dur::MAX`].
const TOO_LONG: &str = "the most is 36500d (100 years)";

/// A duration of `seconds`, or an error when it is longer than [`Dur::MAX`] (or not a number).
///
/// The check is made on the float, before any conversion, so no size of input can overflow.
fn seconds_to_dur(seconds: f64) -> Result<Dur, ()> {
    if !(0.0..=Dur::MAX.0.as_secs_f64()).contains(&seconds) {
        return Err(());
    }
    Duration::try_from_secs_f64(seconds).map(Dur).map_err(|_| ())
}

impl fmt::Display for Dur {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Dur, D::Error> {
        deserializer.deserialize_any(UnitVisitor::<Dur>::new("a duration such as `5s`", Dur::parse, |n| {
            seconds_to_dur(n).map_err(|_| format!("{n} seconds is too long: {TOO_LONG}"))
        }))
    }
}

/// A size in bytes written as `<number><unit>` with unit `B`, `KB`, `KiB`, `MB`, `MiB`, `GB`,
/// `GiB` (also `k`, `m`, `g` as binary units, as nginx reads them), or a bare number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct ByteSize(pub u64);

impl ByteSize {
    /// Parses `512`, `16KiB`, `1MB`, `10m`.
    pub fn parse(text: &str) -> Result<ByteSize, String> {
        let text = text.trim();
        let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let value: f64 =
            number.parse().map_err(|_| format!("invalid size `{text}`: expected e.g. `512`, `16KiB`, `1MiB`"))?;
        let scale: u64 = match unit.trim() {
            "" | "B" | "b" => 1,
            "KB" | "kB" => 1000,
            "MB" => 1000 * 1000,
            "GB" => 1000 * 1000 * 1000,
            "KiB" | "k" | "K" => 1 << 10,
            "MiB" | "m" | "M" => 1 << 20,
            "GiB" | "g" | "G" => 1 << 30,
            other => {
                return Err(format!("invalid size unit `{other}` in `{text}`: use B, KiB, MiB, GiB, KB, MB or GB"))
            }
        };
        bytes_from_f64(value * scale as f64).ok_or_else(|| format!("size `{text}` is too large"))
    }
}

/// `bytes` as a whole number of bytes, or `None` beyond what 64 bits hold (2^64 is the first
/// float that does not fit; the cast below would saturate silently).
fn bytes_from_f64(bytes: f64) -> Option<ByteSize> {
    (0.0..18_446_744_073_709_551_616.0).contains(&bytes).then_some(ByteSize(bytes as u64))
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ByteSize, D::Error> {
        deserializer.deserialize_any(UnitVisitor::<ByteSize>::new("a size such as `1MiB`", ByteSize::parse, |n| {
            bytes_from_f64(n).ok_or_else(|| format!("{n} bytes is too large"))
        }))
    }
}

/// Accepts a string with a unit or a bare non-negative number.
struct UnitVisitor<T> {
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
    from_number: fn(f64) -> Result<T, String>,
}

impl<T> UnitVisitor<T> {
    fn new(
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
        from_number: fn(f64) -> Result<T, String>,
    ) -> Self {
        UnitVisitor { expecting, parse, from_number }
    }
}

impl<T> Visitor<'_> for UnitVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.expecting)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        (self.parse)(v).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        (self.from_number)(v as f64).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        if v < 0 {
            return Err(E::custom(format!("{v} is negative; {}", self.expecting)));
        }
        (self.from_number)(v as f64).map_err(E::custom)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        if v < 0.0 || !v.is_finite() {
            return Err(E::custom(format!("{v} is not a valid value; {}", self.expecting)));
        }
        (self.from_number)(v).map_err(E::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(Dur::parse("250ms").unwrap().0, Duration::from_millis(250));
        assert_eq!(Dur::parse("5s").unwrap().0, Duration::from_secs(5));
        assert_eq!(Dur::parse("10m").unwrap().0, Duration::from_secs(600));
        assert_eq!(Dur::parse("1.5s").unwrap().0, Duration::from_millis(1500));
        assert_eq!(Dur::parse("30d").unwrap().0, Duration::from_secs(30 * 86400));
        assert!(Dur::parse("5 parsecs").is_err());
        assert!(Dur::parse("fast").is_err());
        assert!(Dur::parse("99999999999999999999999d").unwrap_err().contains("too long"));
    }

    #[test]
    fn durations_beyond_the_maximum_are_errors_not_overflows() {
        assert_eq!(Dur::parse("36500d"), Ok(Dur::MAX));
        for text in ["36501d", "99999999999999999999h", "18446744073709551615s", "18446744073709551615d", "1e400"] {
            assert!(Dur::parse(text).is_err(), "{text} accepted");
        }
        assert!(Dur::parse("18446744073709551615s").unwrap_err().contains("the most is 36500d"));
        assert!(seconds_to_dur(f64::INFINITY).is_err());
        assert!(seconds_to_dur(f64::NAN).is_err());
        assert!(seconds_to_dur(-1.0).is_err());
    }

    #[test]
    fn sizes_beyond_64_bits_are_errors_not_saturated() {
        assert_eq!(ByteSize::parse("16GiB").unwrap().0, 16 << 30);
        assert!(ByteSize::parse("99999999999999999999GiB").unwrap_err().contains("too large"));
        assert!(ByteSize::parse("18446744073709551616").is_err());
        assert!(bytes_from_f64(f64::NAN).is_none());
    }

    #[test]
    fn sizes_parse_with_units() {
        assert_eq!(ByteSize::parse("16KiB").unwrap().0, 16384);
        assert_eq!(ByteSize::parse("1MB").unwrap().0, 1_000_000);
        assert_eq!(ByteSize::parse("10m").unwrap().0, 10 << 20);
        assert_eq!(ByteSize::parse("512").unwrap().0, 512);
        assert!(ByteSize::parse("1 parsec").is_err());
    }
}
