//! Time as trace data and requests write it: RFC 3339 timestamps, unix
//! times in any unit, and durations such as `15m`, parsed and formatted
//! exactly (integer nanoseconds, no time zone database).

/// Formats unix nanoseconds as RFC 3339 UTC with microsecond precision.
pub fn rfc3339(unix_ns: u64) -> String {
    let secs = unix_ns / 1_000_000_000;
    let micros = (unix_ns % 1_000_000_000) / 1_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Parses an RFC 3339 UTC timestamp (`2026-11-01T10:00:00Z`, optional
/// fraction, `Z` or a numeric offset) to unix nanoseconds.
pub fn parse_rfc3339(text: &str) -> Option<u64> {
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let num = |r: std::ops::Range<usize>| t.get(r)?.parse::<i64>().ok();
    let (y, mo, d, h, mi, s) = (num(0..4)?, num(5..7)?, num(8..10)?, num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &t[19..];
    let mut nanos: i64 = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        let padded = format!("{:0<9}", &frac[..digits.min(9)]);
        nanos = padded.parse().ok()?;
        rest = &frac[digits..];
    }
    let offset_s: i64 = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            if rest.len() != 6 || rest.as_bytes()[3] != b':' {
                return None;
            }
            sign * (rest[1..3].parse::<i64>().ok()? * 3600 + rest[4..6].parse::<i64>().ok()? * 60)
        }
    };
    let secs = days_from_civil(y, mo as u32, d as u32) * 86_400 + h * 3600 + mi * 60 + s - offset_s;
    u64::try_from(secs).ok()?.checked_mul(1_000_000_000)?.checked_add(nanos as u64)
}

/// Parses an absolute time to unix nanoseconds: RFC 3339
/// (`2026-11-28T10:00:00Z`), or a unix epoch number whose magnitude gives
/// its unit — seconds (`1795860000`, fractions allowed), milliseconds from
/// 10^11 (`1795860000000`, Spinnaker's `buildInfo.timestamp`), microseconds
/// from 10^14, nanoseconds from 10^17. (10^11 seconds is the year 5138.)
pub fn parse_time(text: &str) -> Option<u64> {
    let t = text.trim();
    if let Some(ns) = parse_rfc3339(t) {
        return Some(ns);
    }
    let n: f64 = t.parse().ok()?;
    if !(n.is_finite() && n >= 0.0) {
        return None;
    }
    let ns = match n {
        n if n >= 1e17 => n,
        n if n >= 1e14 => n * 1e3,
        n if n >= 1e11 => n * 1e6,
        n => n * 1e9,
    };
    (ns < u64::MAX as f64).then(|| ns.round() as u64)
}

/// (year, month, day) to days since 1970-01-01 (inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian
/// calendar (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a duration written as a whole number and a unit: `ns`, `us`
/// (or `µs`), `ms`, `s`, `m`, `h`, `d` (`90s`, `2m`, `1d`), to nanoseconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = t.split_at(split);
    let unit_ns: u64 = match unit {
        "ns" => 1,
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60_000_000_000,
        "h" => 3_600_000_000_000,
        "d" => 86_400_000_000_000,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(unit_ns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_durations() {
        assert_eq!(parse_duration("2m"), Some(120_000_000_000));
        assert_eq!(parse_duration("500ms"), Some(500_000_000));
        assert_eq!(parse_duration("0s"), Some(0));
        assert_eq!(parse_duration("1d"), Some(86_400_000_000_000));
        for bad in ["", "m", "5", "5x", "-5s", "1.5s"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn timestamps() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000Z");
        // 2024-02-29T12:34:56.789012Z
        assert_eq!(rfc3339(1_709_210_096_789_012_345), "2024-02-29T12:34:56.789012Z");
    }

    #[test]
    fn parse_timestamps() {
        for ns in [0, 1_709_210_096_789_012_000, 1_793_527_200_000_000_000] {
            assert_eq!(parse_rfc3339(&rfc3339(ns)), Some(ns));
        }
        assert_eq!(parse_rfc3339("2026-11-01T10:00:00Z"), Some(1_793_527_200_000_000_000));
        assert_eq!(parse_rfc3339("2026-11-01T12:00:00+02:00"), Some(1_793_527_200_000_000_000));
        assert_eq!(parse_rfc3339("2026-11-01T10:00:00.5Z"), Some(1_793_527_200_500_000_000));
        assert_eq!(parse_rfc3339("2026-13-01T10:00:00Z"), None);
        assert_eq!(parse_rfc3339("yesterday"), None);
    }

    #[test]
    fn absolute_times_in_every_unit() {
        let ns = 1_795_860_000_000_000_000;
        for text in [
            "2026-11-28T10:00:00Z",
            "1795860000",
            "1795860000.0",
            "1795860000000",
            "1795860000000000",
            "1795860000000000000",
        ] {
            assert_eq!(parse_time(text), Some(ns), "{text}");
        }
        assert_eq!(parse_time("1795860000.5"), Some(ns + 500_000_000));
        for bad in ["", "soon", "-5", "NaN", "inf", "1e30"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
