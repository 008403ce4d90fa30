//! Text rendering shared by every command's output: durations, counts and
//! p-values in human form, aligned tables, and the service graph as table,
//! DOT and Mermaid.

pub mod graph;

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
