//! Which character separates an inventory's fields: `,` as the documented format writes it, `;` as Excel
//! saves "CSV" wherever the decimal separator is a comma (most of Europe), or a tab (a
//! spreadsheet's "Text (tab-delimited)"). Recognised from the header line, whose cells are
//! column names and so contain none of the three.
//!
//! The list columns (`keys`, `apps`, `global_entities`) separate items with `;` — unless `;`
//! separates the fields: a `;` file's lists use `,` (a `;` inside double quotes works too).

use std::fmt;

/// The field separator of one inventory file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delimiter {
    #[default]
    Comma,
    Semicolon,
    Tab,
}

impl Delimiter {
    /// Recognises the delimiter from the header line (the first line that is neither blank
    /// nor a `#` comment): the most frequent of `,`, `;` and tab outside double quotes; `,`
    /// when none occurs or on a tie with it.
    pub fn sniff(text: &str) -> Delimiter {
        let header = text
            .lines()
            .map(|line| line.trim_start_matches('\u{feff}'))
            .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .unwrap_or("");
        let (mut commas, mut semicolons, mut tabs) = (0usize, 0usize, 0usize);
        let mut quoted = false;
        for c in header.chars() {
            match c {
                '"' => quoted = !quoted,
                ',' if !quoted => commas += 1,
                ';' if !quoted => semicolons += 1,
                '\t' if !quoted => tabs += 1,
                _ => {}
            }
        }
        if tabs > commas && tabs >= semicolons {
            Delimiter::Tab
        } else if semicolons > commas {
            Delimiter::Semicolon
        } else {
            Delimiter::Comma
        }
    }

    /// The byte the CSV reader splits fields on.
    pub fn byte(self) -> u8 {
        match self {
            Delimiter::Comma => b',',
            Delimiter::Semicolon => b';',
            Delimiter::Tab => b'\t',
        }
    }

    /// The characters that separate the items of a list cell.
    pub fn list_separators(self) -> &'static [char] {
        match self {
            Delimiter::Comma | Delimiter::Tab => &[';'],
            Delimiter::Semicolon => &[',', ';'],
        }
    }

    /// The list separator a message tells people to use.
    pub fn list_separator(self) -> char {
        match self {
            Delimiter::Comma | Delimiter::Tab => ';',
            Delimiter::Semicolon => ',',
        }
    }

    /// How a message names the delimiter inside a sentence: `a comma`, `a semicolon`, `a tab`.
    pub fn described(self) -> &'static str {
        match self {
            Delimiter::Comma => "a comma",
            Delimiter::Semicolon => "a semicolon",
            Delimiter::Tab => "a tab",
        }
    }
}

/// `,`, `;` or `tab`, as the fleet summary shows it.
impl fmt::Display for Delimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Delimiter::Comma => ",",
            Delimiter::Semicolon => ";",
            Delimiter::Tab => "tab",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_line_decides() {
        assert_eq!(Delimiter::sniff("site,product,keys\n"), Delimiter::Comma);
        assert_eq!(
            Delimiter::sniff("site;product;keys\n"),
            Delimiter::Semicolon
        );
        assert_eq!(Delimiter::sniff("site\tproduct\tkeys\n"), Delimiter::Tab);
        // Comments, blank lines and a byte-order mark come before the header.
        assert_eq!(
            Delimiter::sniff("\u{feff}# fleet, 2026\n\nsite;product;keys\na,b,c\n"),
            Delimiter::Semicolon
        );
        // Data rows do not vote: their `;` lists and `,` in quotes are not the header's.
        assert_eq!(
            Delimiter::sniff("site,product,keys\nx,jira,A;B;C;D;E\n"),
            Delimiter::Comma
        );
        assert_eq!(
            Delimiter::sniff("\"site\";\"a,b\";keys\n"),
            Delimiter::Semicolon
        );
    }

    #[test]
    fn a_single_column_or_empty_text_is_comma() {
        assert_eq!(Delimiter::sniff(""), Delimiter::Comma);
        assert_eq!(Delimiter::sniff("site\n"), Delimiter::Comma);
        assert_eq!(Delimiter::sniff("site,product;keys\n"), Delimiter::Comma);
    }

    #[test]
    fn lists_use_the_separator_the_fields_do_not() {
        assert_eq!(Delimiter::Comma.list_separators(), [';']);
        assert_eq!(Delimiter::Tab.list_separator(), ';');
        assert_eq!(Delimiter::Semicolon.list_separator(), ',');
        assert_eq!(Delimiter::Semicolon.list_separators(), [',', ';']);
        assert_eq!(Delimiter::Tab.to_string(), "tab");
    }
}
