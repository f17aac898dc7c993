//! Exports of the portal's lists: one [`Report`] (a title and one or more tables) rendered
//! as Excel (`xlsx`), PDF or CSV. The pages and the JSON API build the report from the same
//! rows they show, so an export always matches the screen.

use protocol::{Money, SignedMoney};

/// One cell of a table.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    /// Nothing (a blank cell).
    Empty,
    /// Text.
    Text(String),
    /// A whole number (document number, shift, code, count).
    Int(i64),
    /// An amount in BYN (shown `50 027.08` in PDF, a number with 2 decimals in Excel).
    Money(Money),
    /// A signed amount (Выручка).
    Signed(SignedMoney),
}

/// One table: its column headers and rows (each row as long as `columns`).
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Column headers, as on the page.
    pub columns: Vec<String>,
    /// The rows.
    pub rows: Vec<Vec<Cell>>,
}

/// What one export holds: a title (the page's heading) and its tables, in order.
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    /// The heading, e.g. «Кассовые документы по AVQ11169990740».
    pub title: String,
    /// A line under the heading (the period), if any.
    pub subtitle: Option<String>,
    /// The tables.
    pub tables: Vec<Table>,
}

/// The export formats of CONTRACTS §3.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Excel.
    Xlsx,
    /// PDF.
    Pdf,
    /// CSV for programs: RFC 4180, UTF-8, amounts as plain decimals (`50027.08`).
    Csv,
}
