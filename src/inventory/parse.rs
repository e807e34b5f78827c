//! CSV parsing and validation of an inventory: text → [`Site`]s, or every [`Problem`] at once,
//! each with its file line and column.
//!
//! The parts: `delimiter` (`,`, `;` or tab, from the header line), `columns` (the header
//! row), `row` (one row's values, using `fields`, `keys` and `urls`) and `fleet` (checks
//! across rows). Values that could be secrets
//! are never repeated in a message.

mod columns;
mod delimiter;
mod fields;
mod fleet;
mod keys;
mod problems;
mod row;
mod urls;

use std::borrow::Cow;
use std::path::Path;

use self::columns::Header;
pub use self::delimiter::Delimiter;
pub use self::problems::Problem;
use self::problems::Problems;
use super::site::Site;

/// Why an inventory could not be loaded: the file is unreadable (exit 65 all the same), or it
/// has problems, all of them listed.
#[derive(Debug, thiserror::Error)]
pub enum InventoryError {
    #[error("cannot read inventory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("inventory {path} has {} problem(s)", problems.len())]
    Invalid {
        path: String,
        problems: Vec<Problem>,
    },
}

/// A valid inventory: its sites, and the field delimiter its file uses.
#[derive(Debug, Clone)]
pub struct Inventory {
    pub sites: Vec<Site>,
    pub delimiter: Delimiter,
}

/// Reads and validates an inventory file.
pub fn load(path: &Path) -> Result<Vec<Site>, InventoryError> {
    load_inventory(path).map(|inventory| inventory.sites)
}

/// Reads and validates an inventory file, saying which delimiter it uses.
pub fn load_inventory(path: &Path) -> Result<Inventory, InventoryError> {
    let shown = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| InventoryError::Read {
        path: shown.clone(),
        source,
    })?;
    if bytes.starts_with(&[0xFF, 0xFE]) || bytes.starts_with(&[0xFE, 0xFF]) {
        return Err(InventoryError::Invalid {
            path: shown,
            problems: vec![Problem {
                line: 1,
                column: None,
                message: "the file is UTF-16; save it as UTF-8 (in Excel: CSV UTF-8)".to_owned(),
            }],
        });
    }
    let mut problems = Problems::default();
    let text = decode(&bytes, &mut problems);
    let (delimiter, parsed) = parse_delimited(&text);
    let problems = match parsed {
        Ok(sites) if problems.is_empty() => return Ok(Inventory { sites, delimiter }),
        Ok(_) => problems.into_sorted(),
        Err(found) => {
            let mut all = problems.into_sorted();
            all.extend(found);
            // Stable: the encoding problems come first within their line.
            all.sort_by_key(|problem| problem.line);
            all
        }
    };
    Err(InventoryError::Invalid {
        path: shown,
        problems,
    })
}

/// Validates inventory text; every problem at once.
pub fn parse(text: &str) -> Result<Vec<Site>, Vec<Problem>> {
    parse_delimited(text).1
}

/// Validates inventory text whose delimiter is recognised from its header line.
pub fn parse_delimited(text: &str) -> (Delimiter, Result<Vec<Site>, Vec<Problem>>) {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let delimiter = Delimiter::sniff(text);
    (delimiter, parse_with(text, delimiter))
}

fn parse_with(text: &str, delimiter: Delimiter) -> Result<Vec<Site>, Vec<Problem>> {
    let mut problems = Problems::default();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter.byte())
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .comment(Some(b'#'))
        .from_reader(text.as_bytes());
    let mut lines = LineFinder::new(text);
    let mut record = csv::StringRecord::new();
    let mut header: Option<(Header, usize)> = None;
    let mut data_rows = 0usize;
    let mut facts = Vec::new();
    let mut sites = Vec::new();

    loop {
        match reader.read_record(&mut record) {
            Ok(true) => {}
            Ok(false) => break,
            Err(err) => {
                // Input is a `&str`, so neither I/O nor UTF-8 errors can occur; be safe anyway.
                let line = err.position().map_or(lines.line, |position| {
                    lines.line_at(usize::try_from(position.byte()).unwrap_or(usize::MAX))
                });
                problems.push(line, 0, None, format!("cannot read the CSV: {err}"));
                break;
            }
        }
        let offset = record.position().map_or(0, |position| {
            usize::try_from(position.byte()).unwrap_or(usize::MAX)
        });
        let line = lines.record_line(offset);
        let Some((header, _)) = &header else {
            let cells: Vec<&str> = record.iter().collect();
            match Header::parse(&cells, line, &mut problems) {
                Some(parsed) => header = Some((parsed, line)),
                None => return Err(problems.into_sorted()),
            }
            continue;
        };
        if record.iter().all(str::is_empty) {
            // Spreadsheets export blank rows as `,,,,`: not a site.
            continue;
        }
        data_rows += 1;
        if record.len() != header.width {
            problems.push(
                line,
                0,
                None,
                format!(
                    "this row has {} fields but the header has {} (a value containing {} \
                     must be in double quotes)",
                    record.len(),
                    header.width,
                    delimiter.described()
                ),
            );
            continue;
        }
        let (row_facts, site) = row::check_row(&record, header, delimiter, line, &mut problems);
        facts.push(row_facts);
        sites.extend(site);
    }

    match &header {
        None => problems.push(
            1,
            0,
            None,
            "the inventory is empty: it needs a header row (site,product,server_url,…) and one \
             row per site"
                .to_owned(),
        ),
        Some((_, header_line)) if data_rows == 0 => problems.push(
            *header_line,
            0,
            None,
            "the inventory has a header but no sites: add one row per site".to_owned(),
        ),
        Some((header, _)) => fleet::check_fleet(&facts, header, &mut problems),
    }
    if problems.is_empty() {
        Ok(sites)
    } else {
        Err(problems.into_sorted())
    }
}

/// Decodes file bytes as UTF-8: invalid bytes are problems (one per line holding them); the
/// rest is still validated, with U+FFFD in place of the bad bytes.
fn decode<'a>(bytes: &'a [u8], problems: &mut Problems) -> Cow<'a, str> {
    let text = String::from_utf8_lossy(bytes);
    if let Cow::Owned(_) = text {
        let mut offset = 0;
        let mut last_line = 0;
        for chunk in bytes.utf8_chunks() {
            offset += chunk.valid().len();
            if !chunk.invalid().is_empty() {
                let line = 1 + bytecount_newlines(&bytes[..offset]);
                if line != last_line {
                    problems.push(
                        line,
                        0,
                        None,
                        "this line is not valid UTF-8; save the file as UTF-8 (in Excel: CSV \
                         UTF-8)"
                            .to_owned(),
                    );
                    last_line = line;
                }
            }
            offset += chunk.invalid().len();
        }
    }
    text
}

fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|&&b| b == b'\n').count()
}

/// Maps the byte offset where the csv reader starts a record to the record's first line.
/// The reader's own position is where the previous record ended, which is before any blank
/// or comment lines it skipped; this walks past them, counting lines incrementally.
struct LineFinder<'a> {
    bytes: &'a [u8],
    /// Byte offset up to which newlines have been counted.
    offset: usize,
    /// 1-based line number at `offset`.
    line: usize,
}

impl<'a> LineFinder<'a> {
    fn new(text: &'a str) -> Self {
        LineFinder {
            bytes: text.as_bytes(),
            offset: 0,
            line: 1,
        }
    }

    /// The line at byte `offset` (offsets only move forward).
    fn line_at(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.bytes.len());
        if offset > self.offset {
            self.line += bytecount_newlines(&self.bytes[self.offset..offset]);
            self.offset = offset;
        }
        self.line
    }

    /// The first line of the record the reader began at `offset`: past the empty lines and
    /// `#` comment lines that the reader skips before a record.
    fn record_line(&mut self, offset: usize) -> usize {
        let mut at = offset.min(self.bytes.len());
        loop {
            match self.bytes.get(at) {
                Some(b'\r' | b'\n') => at += 1,
                Some(b'#') => {
                    at = match self.bytes[at..].iter().position(|&b| b == b'\n') {
                        Some(newline) => at + newline + 1,
                        None => self.bytes.len(),
                    }
                }
                _ => break,
            }
        }
        self.line_at(at)
    }
}

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
