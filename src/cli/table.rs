//! Plain text tables for the terminal (`sessions`, `cost`): no borders, two spaces between
//! columns, widths measured in terminal columns (comfy-table, which uses Unicode display width,
//! so CJK text and emoji stay aligned), no wrapping, trailing spaces trimmed.

use comfy_table::{CellAlignment, ContentArrangement, Table, presets::NOTHING};

/// A borderless table with `header`; the columns whose indexes are in `right` are
/// right-aligned (numbers).
pub fn plain(header: &[&str], right: &[usize]) -> Table {
    let mut table = Table::new();
    table
        .load_style(NOTHING)
        .set_content_arrangement(ContentArrangement::Disabled)
        .set_header(header.iter().copied());
    let last = header.len().saturating_sub(1);
    for (index, column) in table.column_iter_mut().enumerate() {
        column.set_padding((0, if index == last { 0 } else { 2 }));
        if right.contains(&index) {
            column.set_cell_alignment(CellAlignment::Right);
        }
    }
    table
}

/// The table's lines, each without trailing spaces.
pub(crate) fn render(table: &Table) -> String {
    table.trim_fmt()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 15 item 7: wide characters count as two columns, so the next column stays aligned.
    #[test]
    fn wide_characters_keep_columns_aligned() {
        let mut table = plain(&["PROJECT", "N"], &[1]);
        table.add_row(vec!["日本語のプロジェクト", "1"]);
        table.add_row(vec!["plain", "22"]);
        table.add_row(vec!["🚀 rocket", "333"]);
        let text = render(&table);
        let widths: Vec<usize> = text
            .lines()
            .map(|l| l.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum())
            .collect();
        assert!(
            widths.iter().all(|w| *w == widths[0]),
            "every line ends at the same column:\n{text}"
        );
        assert!(text.lines().next().unwrap().starts_with("PROJECT"));
    }
}
