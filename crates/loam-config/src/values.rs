//! The value types of settings that are more than a string or a number: sizes (`10GiB`), durations
//! (`60`, `500ms`, `7d`), and lists that a file may give as one string or as an array. Each parses the
//! same from a flag, an environment variable and a TOML key, and writes itself back in a form that
//! parses to the same value (what `--print-config` shows can be pasted into a config file).

use crate::duration::{format_duration, parse_duration};
use loam_core::size::parse_size;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A byte size: an integer, or a string with a unit (`"10GiB"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(pub u64);

impl FromStr for ByteSize {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_size(s).map(ByteSize)
    }
}

impl fmt::Display for ByteSize {
    /// The largest binary unit that divides the size exactly (`10GiB`, `4KiB`), else bytes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (unit, shift) in [("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)] {
            if self.0 != 0 && self.0.trailing_zeros() >= shift {
                return write!(f, "{}{unit}", self.0 >> shift);
            }
        }
        write!(f, "{}", self.0)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0 >= 1 << 10 && self.0.trailing_zeros() >= 10 {
            s.serialize_str(&self.to_string())
        } else {
            // TOML integers are i64; a size past that is written with its unit, which every such size has.
            s.serialize_i64(self.0 as i64)
        }
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = ByteSize;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a size: a number of bytes or a string like \"10GiB\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ByteSize, E> {
                Ok(ByteSize(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ByteSize, E> {
                u64::try_from(v).map(ByteSize).map_err(|_| E::custom(format!("invalid size {v}: negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<ByteSize, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// A duration: integer seconds, or a string like `"500ms"`, `"7d"` or `"1h30m"` ([`crate::duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumaneDuration(pub Duration);

impl HumaneDuration {
    /// `secs` seconds.
    pub const fn secs(secs: u64) -> Self {
        Self(Duration::from_secs(secs))
    }
}

impl From<Duration> for HumaneDuration {
    fn from(d: Duration) -> Self {
        Self(d)
    }
}

impl FromStr for HumaneDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(HumaneDuration)
    }
}

impl fmt::Display for HumaneDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_duration(self.0))
    }
}

impl Serialize for HumaneDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for HumaneDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = HumaneDuration;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration: a number of seconds or a string like \"500ms\" or \"7d\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<HumaneDuration, E> {
                Ok(HumaneDuration::secs(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<HumaneDuration, E> {
                u64::try_from(v)
                    .map(HumaneDuration::secs)
                    .map_err(|_| E::custom(format!("invalid duration {v}: negative")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<HumaneDuration, E> {
                v.parse().map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

/// Splits comma-separated lists and drops empty entries (`--etcd a,b`, `etcd = "a, b"`).
pub fn split_list(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect()
}

/// `deserialize_with` for a list of strings a file may give as one string (`"a,b"`) or an array.
pub fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let items = d.deserialize_any(OneOrMany("a string, a comma-separated list, or a list of strings"))?;
    Ok(Some(split_list(&items)))
}

/// Splits comma-separated lists like [`split_list`], but keeps empty entries (`"a,,b"`), so that a check can
/// name them.
pub fn split_list_with_empties(items: &[String]) -> Vec<String> {
    items.iter().flat_map(|s| s.split(',')).map(|s| s.trim().to_string()).collect()
}

/// `deserialize_with` like [`string_list`], but keeping empty entries (`"a,,b"`), so that a check can name them.
pub fn string_list_with_empties<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<String>>, D::Error> {
    let items = d.deserialize_any(OneOrMany("a string, a comma-separated list, or a list of strings"))?;
    Ok(Some(split_list_with_empties(&items)))
}

/// `deserialize_with` for paths a file may give as one string or an array.
pub fn path_list<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<PathBuf>>, D::Error> {
    let items = d.deserialize_any(OneOrMany("a path or a list of paths"))?;
    Ok(Some(items.into_iter().map(PathBuf::from).collect()))
}

/// Accepts a string or a list of strings.
struct OneOrMany(&'static str);

impl<'de> Visitor<'de> for OneOrMany {
    type Value = Vec<String>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.0)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Vec<String>, E> {
        Ok(vec![v.to_string()])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element::<String>()? {
            out.push(s);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_write_back_as_they_parse() {
        for (n, text) in [(10u64 << 30, "10GiB"), (256 << 20, "256MiB"), (4096, "4KiB"), (1000, "1000"), (0, "0")] {
            assert_eq!(ByteSize(n).to_string(), text);
            assert_eq!(text.parse::<ByteSize>(), Ok(ByteSize(n)));
        }
        assert!("ten".parse::<ByteSize>().is_err());
    }

    #[test]
    fn durations_take_seconds_or_units() {
        for (text, d) in [("60", 60_000), ("60s", 60_000), ("500ms", 500), ("1h30m", 5_400_000), ("7d", 604_800_000)] {
            assert_eq!(text.parse::<HumaneDuration>(), Ok(HumaneDuration(Duration::from_millis(d))), "{text}");
        }
        assert_eq!(HumaneDuration::secs(90).to_string(), "1m30s");
    }

    #[test]
    fn lists_split_on_commas() {
        assert_eq!(split_list(&["a, b".into(), "".into(), "c".into()]), ["a", "b", "c"]);
    }
}
