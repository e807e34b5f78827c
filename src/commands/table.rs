//! Aligned text tables sized to their content: each column as wide as its widest cell
//! (counted in characters), two spaces between columns, no trailing spaces. A long cell — a
//! 46-character `reuse job <uuid>` — widens its column instead of pushing the next one off.

/// How a column's cells sit in its width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Align {
    Left,
    /// Numbers and durations.
    Right,
}

/// A table being filled: a header, then rows of as many cells.
#[derive(Debug, Clone)]
pub(super) struct Table {
    aligns: Vec<Align>,
    /// The header row first.
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new<const N: usize>(columns: [(&str, Align); N]) -> Table {
        Table {
            aligns: columns.iter().map(|(_, align)| *align).collect(),
            rows: vec![columns.iter().map(|(name, _)| (*name).to_owned()).collect()],
        }
    }

    pub(super) fn row<const N: usize>(&mut self, cells: [String; N]) {
        debug_assert_eq!(N, self.aligns.len(), "a row has one cell per column");
        self.rows.push(cells.into());
    }

    /// The lines, each ending with a line end.
    pub(super) fn render(&self) -> String {
        let mut widths = vec![0usize; self.aligns.len()];
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in &self.rows {
            let mut line = String::new();
            for (index, ((cell, width), align)) in
                row.iter().zip(&widths).zip(&self.aligns).enumerate()
            {
                if index > 0 {
                    line.push_str("  ");
                }
                let pad = width - cell.chars().count();
                match align {
                    Align::Left => {
                        line.push_str(cell);
                        line.extend(std::iter::repeat_n(' ', pad));
                    }
                    Align::Right => {
                        line.extend(std::iter::repeat_n(' ', pad));
                        line.push_str(cell);
                    }
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_fit_their_widest_cell() {
        let mut table = Table::new([
            ("SITE", Align::Left),
            ("N", Align::Right),
            ("ACTION", Align::Left),
        ]);
        table.row(["a".into(), "12".into(), "create".into()]);
        table.row(["a-much-longer-name".into(), "3".into(), "".into()]);
        assert_eq!(
            table.render(),
            "SITE                 N  ACTION\n\
             a                   12  create\n\
             a-much-longer-name   3\n"
        );
    }
}
