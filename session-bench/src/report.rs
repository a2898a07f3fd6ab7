//! Tables of results, the way they are printed and pasted into
//! `BENCHMARKS.md`.

use std::fmt::{self, Write as _};
use std::time::Duration;

/// A Markdown table with a title, printed with aligned columns.
#[derive(Debug, Clone)]
pub struct Table {
    title: String,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
    notes: Vec<String>,
}

impl Table {
    /// An empty table with these column names.
    #[must_use]
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Self {
            title: title.into(),
            header: header.iter().map(|&h| h.to_owned()).collect(),
            rows: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// Adds a row; missing cells are left empty, extra ones dropped.
    pub fn row(&mut self, cells: Vec<String>) {
        let mut cells = cells;
        cells.resize(self.header.len(), String::new());
        self.rows.push(cells);
    }

    /// Adds a line printed under the table.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Whether the table has no rows.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let widths: Vec<usize> = (0..self.header.len())
            .map(|col| {
                let cells = self.rows.iter().map(|row| row[col].chars().count());
                cells
                    .chain([self.header[col].chars().count(), 3])
                    .max()
                    .unwrap_or(3)
            })
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::from("|");
            for (cell, width) in cells.iter().zip(&widths) {
                let pad = width - cell.chars().count();
                let _ = write!(out, " {cell}{} |", " ".repeat(pad));
            }
            out
        };

        writeln!(f, "### {}\n", self.title)?;
        writeln!(f, "{}", line(&self.header))?;
        let rule: Vec<String> = widths.iter().map(|&w| "-".repeat(w)).collect();
        writeln!(f, "{}", line(&rule))?;
        for row in &self.rows {
            writeln!(f, "{}", line(row))?;
        }
        if !self.notes.is_empty() {
            writeln!(f)?;
        }
        for note in &self.notes {
            writeln!(f, "{note}")?;
        }
        Ok(())
    }
}

/// Operations per second, with a thousands suffix above 10,000.
#[must_use]
pub fn rate(per_second: f64) -> String {
    if per_second >= 10_000.0 {
        format!("{:.1}k", per_second / 1_000.0)
    } else {
        format!("{per_second:.0}")
    }
}

/// A latency in microseconds, or milliseconds when long.
#[must_use]
pub fn latency(duration: Duration) -> String {
    let micros = duration.as_secs_f64() * 1e6;
    if micros >= 10_000.0 {
        format!("{:.1} ms", micros / 1_000.0)
    } else if micros >= 100.0 {
        format!("{micros:.0} µs")
    } else {
        format!("{micros:.1} µs")
    }
}

/// A ratio with two decimals.
#[must_use]
pub fn ratio(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.2}")
    } else {
        "n/a".to_owned()
    }
}

/// "met" or "MISSED" for a target.
#[must_use]
pub fn verdict(met: bool) -> String {
    if met { "met" } else { "MISSED" }.to_owned()
}

/// The machine and its load, for the head of a report.
#[must_use]
pub fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());

    format!(
        "{cores} cores ({cpu}), load average {}",
        if load.is_empty() {
            "unknown".to_owned()
        } else {
            load.join(" ")
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_pads_columns_and_fills_missing_cells() {
        let mut table = Table::new("t", &["a", "long name"]);
        table.row(vec!["wide cell".to_owned()]);
        table.note("n");

        let text = table.to_string();

        assert!(text.contains("| a         | long name |"));
        assert!(text.contains("| wide cell |           |"));
        assert!(text.ends_with("n\n"));
    }

    #[test]
    fn figures_read_naturally() {
        assert_eq!(rate(950.4), "950");
        assert_eq!(rate(25_300.0), "25.3k");
        assert_eq!(latency(Duration::from_nanos(12_340)), "12.3 µs");
        assert_eq!(latency(Duration::from_micros(250)), "250 µs");
        assert_eq!(latency(Duration::from_millis(12)), "12.0 ms");
        assert_eq!(ratio(f64::NAN), "n/a");
    }
}
