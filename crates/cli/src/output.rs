//! Output of read commands: aligned text tables for people, JSON for
//! scripts.

use std::io::Write;

use clap::ValueEnum;
use serde::Serialize;

use crate::error::CliError;

/// The format a read command prints its result in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for reading.
    #[default]
    Table,
    /// JSON for scripts.
    Json,
}

/// A table: headers and rows of the same width.
#[derive(Debug, Clone, Default)]
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(headers: &[&str]) -> Self {
        Self {
            headers: headers.iter().map(|header| (*header).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Renders the table as text, every column as wide as its widest cell.
    pub fn render(&self) -> String {
        let columns = self.headers.len();
        let mut widths: Vec<usize> = self
            .headers
            .iter()
            .map(|header| header.chars().count())
            .collect();
        for row in &self.rows {
            for (index, cell) in row.iter().enumerate().take(columns) {
                widths[index] = widths[index].max(cell.chars().count());
            }
        }

        let mut text = String::new();
        let mut write_row = |cells: &[String]| {
            let mut line = String::new();
            for (index, cell) in cells.iter().enumerate().take(columns) {
                if index + 1 == columns {
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    let padding = widths[index] - cell.chars().count() + 2;
                    line.extend(std::iter::repeat_n(' ', padding));
                }
            }
            text.push_str(line.trim_end());
            text.push('\n');
        };
        write_row(&self.headers);
        for row in &self.rows {
            write_row(row);
        }
        text
    }
}

/// Prints `value` as pretty JSON followed by a newline.
pub fn print_json<T: Serialize>(out: &mut dyn Write, value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|error| {
        CliError::Protocol(format!("cannot encode the result as JSON: {error}"))
    })?;
    writeln!(out, "{text}").map_err(|error| CliError::io("standard output", error))
}

pub fn print_text(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .map_err(|error| CliError::io("standard output", error))
}

/// Returns a cell for an optional value: the text, or "-" when empty.
pub fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".to_owned()
    } else {
        text.to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut table = Table::new(&["NAME", "ROLE"]);
        table.push(vec!["alice".to_owned(), "owner".to_owned()]);
        table.push(vec!["bo".to_owned(), "collaborator".to_owned()]);
        assert_eq!(
            table.render(),
            "NAME   ROLE\nalice  owner\nbo     collaborator\n"
        );
    }
}
