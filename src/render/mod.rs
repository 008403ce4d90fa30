//! Text rendering shared by every command's output: timestamps and
//! durations in human form, and the service graph as table, DOT and Mermaid.

pub mod graph;

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

/// Formats a duration in nanoseconds with a unit that fits: `850ns`,
/// `12.3µs`, `4.56ms`, `1.23s`, `2m03s`, `1h02m`, `3d04h`.
pub fn duration(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}ms", ns as f64 / 1e6),
        1_000_000_000..60_000_000_000 => format!("{:.2}s", ns as f64 / 1e9),
        _ => {
            let s = ns / 1_000_000_000;
            if s < 3600 {
                format!("{}m{:02}s", s / 60, s % 60)
            } else if s < 86_400 {
                format!("{}h{:02}m", s / 3600, (s % 3600) / 60)
            } else {
                format!("{}d{:02}h", s / 86_400, (s % 86_400) / 3600)
            }
        }
    }
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

/// `n` and the noun, plural unless `n` is 1: `1 trace`, `2 traces`. Nouns
/// ending in s, x or ch take `es`; `y` after a consonant becomes `ies`.
pub fn count(n: u64, noun: &str) -> String {
    if n == 1 {
        return format!("1 {noun}");
    }
    let plural = if noun.ends_with('s') || noun.ends_with('x') || noun.ends_with("ch") {
        format!("{noun}es")
    } else if let Some(stem) = noun.strip_suffix('y')
        && !stem.ends_with(['a', 'e', 'i', 'o', 'u'])
    {
        format!("{stem}ies")
    } else {
        format!("{noun}s")
    };
    format!("{n} {plural}")
}

/// A p-value as a decimal to two significant digits (`0.042`, `0.0013`),
/// `< 0.001` below one in a thousand, `-` when there is none.
pub fn p_value(p: f64) -> String {
    if p.is_nan() {
        return "-".to_string();
    }
    // Rounded to two significant digits first, so 0.0996 reads 0.10.
    let p: f64 = format!("{:.1e}", p.clamp(0.0, 1.0)).parse().unwrap_or(p);
    if p < 0.001 {
        "< 0.001".to_string()
    } else if p >= 0.1 {
        format!("{p:.2}")
    } else {
        // 0.01..0.1 -> 3 decimals, 0.001..0.01 -> 4.
        let decimals = (-p.log10().floor()) as usize + 1;
        format!("{p:.decimals$}")
    }
}

/// Column alignment in a [`TextTable`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Align {
    /// Text: padded on the right.
    Left,
    /// Numbers: padded on the left.
    Right,
}

/// Rows of text cells printed with each column as wide as its widest cell
/// (header included), two spaces apart; the last column is not padded.
#[derive(Clone, Debug)]
pub struct TextTable {
    align: Vec<Align>,
    rows: Vec<Vec<String>>,
    indent: usize,
}

impl TextTable {
    /// A table with these column headers and alignments.
    pub fn new(header: &[(&str, Align)]) -> TextTable {
        TextTable {
            align: header.iter().map(|h| h.1).collect(),
            rows: vec![header.iter().map(|h| h.0.to_string()).collect()],
            indent: 0,
        }
    }

    /// Indents every line by `n` spaces.
    pub fn indent(mut self, n: usize) -> TextTable {
        self.indent = n;
        self
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.align.len());
        self.rows.push(cells);
    }

    /// Rows added, the header not counted.
    pub fn len(&self) -> usize {
        self.rows.len() - 1
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Writes the header and the rows; nothing when there is no row.
    pub fn write(&self, w: &mut dyn std::io::Write) -> std::io::Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let columns = self.align.len();
        let mut widths = vec![0usize; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut line = String::new();
        for row in &self.rows {
            line.clear();
            line.extend(std::iter::repeat_n(' ', self.indent));
            for (i, cell) in row.iter().enumerate() {
                let pad = widths[i] - cell.chars().count();
                let last = i + 1 == columns;
                if self.align[i] == Align::Right {
                    line.extend(std::iter::repeat_n(' ', pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                }
                if !last {
                    line.push_str("  ");
                }
            }
            writeln!(w, "{}", line.trim_end())?;
        }
        Ok(())
    }
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
    fn durations() {
        assert_eq!(duration(850), "850ns");
        assert_eq!(duration(12_300), "12.3µs");
        assert_eq!(duration(4_560_000), "4.56ms");
        assert_eq!(duration(1_230_000_000), "1.23s");
        assert_eq!(duration(123_000_000_000), "2m03s");
        assert_eq!(duration(3_720_000_000_000), "1h02m");
        assert_eq!(duration(86_400_000_000_000), "1d00h");
        assert_eq!(duration(3 * 86_400_000_000_000 + 4 * 3_600_000_000_000 + 59_000_000_000), "3d04h");
    }

    #[test]
    fn counts_and_p_values() {
        assert_eq!(count(1, "trace"), "1 trace");
        assert_eq!(count(0, "trace"), "0 traces");
        assert_eq!(count(2, "process"), "2 processes");
        assert_eq!(count(3, "dependency"), "3 dependencies");
        assert_eq!(count(3, "day"), "3 days");
        assert_eq!(p_value(0.5), "0.50");
        assert_eq!(p_value(0.042), "0.042");
        assert_eq!(p_value(0.0013), "0.0013");
        assert_eq!(p_value(0.00099), "< 0.001");
        assert_eq!(p_value(1.0), "1.00");
        assert_eq!(p_value(0.0996), "0.10");
        assert_eq!(p_value(f64::NAN), "-");
    }

    #[test]
    fn text_tables_fit_their_content() {
        let mut t = TextTable::new(&[("SERVICE", Align::Left), ("CALLS", Align::Right), ("OPERATION", Align::Left)]);
        t.row(vec!["a-very-long-service-name".into(), "7".into(), "GET /".into()]);
        t.row(vec!["b".into(), "12345".into(), "x".into()]);
        let mut out = Vec::new();
        t.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "SERVICE                   CALLS  OPERATION\n\
             a-very-long-service-name      7  GET /\n\
             b                         12345  x\n"
        );
    }
}
