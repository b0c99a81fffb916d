//! Humane durations for flags and config keys (`--job-retention 7d`): a plain number is seconds, and a
//! string may chain number-unit pairs (`1h30m`, `2d 12h`) in `ms`, `s`, `m`, `h`, `d` or `w`, so the
//! long retention periods read naturally while scripts can still pass seconds. [`format_duration`]
//! writes the shortest such string, which parses back to the same duration.

use std::time::Duration;

/// Parses `604800`, `7d`, `36h`, `1h30m`, `90s`, `250ms`, `2w` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let text = s.trim();
    if text.is_empty() {
        return Err("invalid duration \"\": empty".into());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    let bad = |why: &str| format!("invalid duration {s:?}: {why} (e.g. 604800, 7d, 12h, 30m, 1h30m)");
    let mut total = Duration::ZERO;
    let mut rest = text;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        if digits == 0 {
            return Err(bad("expected a number"));
        }
        let n: u64 = rest[..digits].parse().map_err(|_| bad("number too large"))?;
        rest = &rest[digits..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c.is_whitespace()).unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = rest[unit_len..].trim_start();
        let millis_per: u64 = match unit {
            "ms" => 1,
            "s" | "sec" | "secs" => 1_000,
            "m" | "min" | "mins" => 60_000,
            "h" | "hr" | "hours" | "hour" => 3_600_000,
            "d" | "day" | "days" => 86_400_000,
            "w" | "week" | "weeks" => 604_800_000,
            "" => return Err(bad("a unit is needed after each number but the first alone")),
            _ => return Err(bad(&format!("unknown unit {unit:?}"))),
        };
        let add = n.checked_mul(millis_per).ok_or_else(|| bad("too large"))?;
        total = total.checked_add(Duration::from_millis(add)).ok_or_else(|| bad("too large"))?;
    }
    Ok(total)
}

/// Writes `d` as [`parse_duration`] reads it: `7d`, `1h30m`, `500ms`, `0s` (the largest units first).
pub fn format_duration(d: Duration) -> String {
    const UNITS: [(&str, u128); 5] = [("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1_000), ("ms", 1)];
    let mut rest = d.as_millis();
    if rest == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, per) in UNITS {
        if rest >= per {
            out.push_str(&format!("{}{unit}", rest / per));
            rest %= per;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_seconds_and_units_chain() {
        assert_eq!(parse_duration("604800"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1w"), Ok(Duration::from_secs(604_800)));
        assert_eq!(parse_duration("1h30m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse_duration("2d 12h"), Ok(Duration::from_secs(216_000)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration(" 90s "), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
    }

    #[test]
    fn formatted_durations_parse_back() {
        for (d, text) in [
            (0, "0s"),
            (500, "500ms"),
            (2_000, "2s"),
            (5_400_000, "1h30m"),
            (604_800_000, "7d"),
            (90_061_001, "1d1h1m1s1ms"),
        ] {
            let d = Duration::from_millis(d);
            assert_eq!(format_duration(d), text);
            assert_eq!(parse_duration(text), Ok(d));
        }
    }

    #[test]
    fn garbage_is_refused_with_the_input_named() {
        for bad in ["", "d", "7x", "1h30", "-5", "h1", "99999999999999999999d"] {
            let e = parse_duration(bad).unwrap_err();
            assert!(e.contains("invalid duration"), "{bad}: {e}");
        }
        assert!(parse_duration("7x").unwrap_err().contains("\"x\""));
    }
}
