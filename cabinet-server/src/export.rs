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

impl Format {
    /// The format named by a query value: `xlsx`, `pdf` or `csv` (exactly these spellings).
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "xlsx" => Some(Format::Xlsx),
            "pdf" => Some(Format::Pdf),
            "csv" => Some(Format::Csv),
            _ => None,
        }
    }

    /// The `Content-Type` of a file in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Pdf => "application/pdf",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }

    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Pdf => "pdf",
            Format::Csv => "csv",
        }
    }
}

/// Why an export could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The Excel writer refused the data.
    #[error("не удалось собрать файл Excel: {0}")]
    Xlsx(#[from] rust_xlsxwriter::XlsxError),
    /// More rows or columns than one Excel sheet holds.
    #[error("отчёт не помещается на лист Excel: не более 1 048 576 строк и 16 384 столбцов")]
    TooLargeForExcel,
    /// The bundled font could not be read (a broken build, not bad data).
    #[error("встроенный шрифт для PDF не читается")]
    Font,
    /// The PDF writer failed.
    #[error("не удалось собрать PDF: {0}")]
    Pdf(String),
}

impl Cell {
    /// The cell as the portal shows it: amounts with thousands grouped by spaces
    /// (`50 027.08`, `-1 234.50`), numbers plain, an empty cell as nothing.
    pub fn display_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Int(number) => number.to_string(),
            Cell::Money(amount) => amount.grouped(),
            Cell::Signed(amount) => amount.grouped(),
        }
    }

    /// The cell for programs: amounts as plain decimals (`50027.08`).
    fn plain_text(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(text) => text.clone(),
            Cell::Int(number) => number.to_string(),
            Cell::Money(amount) => amount.to_string(),
            Cell::Signed(amount) => amount.to_string(),
        }
    }

    /// Whether the cell holds a number (shown right-aligned).
    fn is_number(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::Money(_) | Cell::Signed(_))
    }
}

/// Renders `report` in `format`.
pub fn render(report: &Report, format: Format) -> Result<Vec<u8>, ExportError> {
    match format {
        Format::Xlsx => to_xlsx(report),
        Format::Pdf => to_pdf(report),
        Format::Csv => Ok(to_csv(report)),
    }
}

// ---------------------------------------------------------------------------------------------
// CSV

/// The report's tables as CSV (RFC 4180: commas, CRLF, quoted where needed), UTF-8 without
/// a BOM. The title is left out so that programs read the tables directly: each table is
/// its header line and its rows, with a blank line between tables.
pub fn to_csv(report: &Report) -> Vec<u8> {
    let mut out = String::new();
    for (index, table) in report.tables.iter().enumerate() {
        if index > 0 {
            out.push_str("\r\n");
        }
        push_csv_record(&mut out, table.columns.iter().map(String::as_str));
        for row in &table.rows {
            let fields: Vec<String> = row.iter().map(csv_field).collect();
            push_csv_record(&mut out, fields.iter().map(String::as_str));
        }
    }
    out.into_bytes()
}

/// A cell as a CSV field. Text a spreadsheet would run as a formula (`=`, `+`, `-`, `@`
/// first: a merchant's note, say) gets a leading `'`, so opening the file cannot execute
/// it; amounts and numbers are written plain.
fn csv_field(cell: &Cell) -> String {
    match cell {
        Cell::Text(text) if text.starts_with(['=', '+', '-', '@', '\t', '\r']) => format!("'{text}"),
        other => other.plain_text(),
    }
}

/// Appends one CSV record and its CRLF.
fn push_csv_record<'a>(out: &mut String, fields: impl Iterator<Item = &'a str>) {
    for (index, field) in fields.enumerate() {
        if index > 0 {
            out.push(',');
        }
        if field.contains([',', '"', '\n', '\r']) {
            out.push('"');
            out.push_str(&field.replace('"', "\"\""));
            out.push('"');
        } else {
            out.push_str(field);
        }
    }
    out.push_str("\r\n");
}

// ---------------------------------------------------------------------------------------------
// Excel

/// Rows on one Excel sheet.
const EXCEL_MAX_ROWS: usize = 1_048_576;
/// Columns on one Excel sheet.
const EXCEL_MAX_COLUMNS: usize = 16_384;
/// The widest column set, in Excel's character units: longer texts overflow or are cut.
const EXCEL_MAX_WIDTH: usize = 60;

/// The report as an Excel workbook of one sheet: the title (bold) in row 1, the subtitle
/// in row 2, then each table after a blank row, its header row bold. Whole numbers and
/// amounts are number cells, so Excel can sum them; amounts show two decimals.
pub fn to_xlsx(report: &Report) -> Result<Vec<u8>, ExportError> {
    use rust_xlsxwriter::{Format as XlsxFormat, Workbook};

    let heading_rows = 1 + usize::from(report.subtitle.is_some());
    let total_rows = heading_rows + report.tables.iter().map(|table| 2 + table.rows.len()).sum::<usize>();
    let widest = report.tables.iter().map(|table| table.columns.len()).max().unwrap_or(0);
    if total_rows > EXCEL_MAX_ROWS || widest > EXCEL_MAX_COLUMNS {
        return Err(ExportError::TooLargeForExcel);
    }
    // From here every row index is below 2²⁰ and every column below 2¹⁴, so the `as`
    // conversions to Excel's u32 rows and u16 columns below cannot truncate.

    let title = XlsxFormat::new().set_bold().set_font_size(12);
    let bold = XlsxFormat::new().set_bold();
    let plain = XlsxFormat::new();
    let whole = XlsxFormat::new().set_num_format("0");
    // `,` is Excel's thousands separator placeholder; it shows as the reader's locale
    // separator (a space in Russian Excel).
    let amount = XlsxFormat::new().set_num_format("#,##0.00");

    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("Отчёт")?;
    sheet.write_string_with_format(0, 0, report.title.as_str(), &title)?;
    if let Some(subtitle) = &report.subtitle {
        sheet.write_string_with_format(1, 0, subtitle.as_str(), &plain)?;
    }

    let mut widths: Vec<usize> = Vec::new();
    let mut row = heading_rows;
    for table in &report.tables {
        row += 1; // the blank row before each table
        for (column, header) in table.columns.iter().enumerate() {
            sheet.write_string_with_format(row as u32, column as u16, header.as_str(), &bold)?;
            widen(&mut widths, column, header.chars().count() + 1);
        }
        row += 1;
        for cells in &table.rows {
            for (column, cell) in cells.iter().enumerate().take(table.columns.len()) {
                let (r, c) = (row as u32, column as u16);
                match cell {
                    Cell::Empty => {}
                    Cell::Text(text) => {
                        sheet.write_string_with_format(r, c, text.as_str(), &plain)?;
                    }
                    // A double holds whole numbers exactly up to 2⁵³; anything larger (never
                    // a real number or count) stays exact as text.
                    Cell::Int(number) if number.unsigned_abs() <= 1 << 53 => {
                        sheet.write_number_with_format(r, c, *number as f64, &whole)?;
                    }
                    Cell::Int(number) => {
                        sheet.write_string_with_format(r, c, number.to_string(), &plain)?;
                    }
                    Cell::Money(money) => {
                        sheet.write_number_with_format(r, c, excel_number(money.as_decimal()), &amount)?;
                    }
                    Cell::Signed(money) => {
                        sheet.write_number_with_format(r, c, excel_number(money.as_decimal()), &amount)?;
                    }
                }
                widen(&mut widths, column, cell.display_text().chars().count());
            }
            row += 1;
        }
    }
    // Widths from the longest shown text rather than `autofit`, which would size column A
    // to the title and underestimates grouped amounts (`50027.08` shown as `50 027.08`).
    for (column, chars) in widths.iter().enumerate() {
        sheet.set_column_width(column as u16, (chars + 2).min(EXCEL_MAX_WIDTH) as f64)?;
    }
    Ok(workbook.save_to_buffer()?)
}

/// Raises the recorded width of `column` to at least `chars`.
fn widen(widths: &mut Vec<usize>, column: usize, chars: usize) {
    if widths.len() <= column {
        widths.resize(column + 1, 0);
    }
    widths[column] = widths[column].max(chars);
}

/// An amount as the double Excel stores: the nearest one to the exact decimal. Parsing
/// the decimal's text rounds correctly; `Decimal::as_f64` adds two rounded parts.
fn excel_number(amount: rust_decimal::Decimal) -> f64 {
    // A Decimal's text is always a valid float literal, so the fallback never runs; it is
    // there only so that no path can panic.
    amount.to_string().parse().unwrap_or_else(|_| amount.as_f64())
}

// ---------------------------------------------------------------------------------------------
// PDF

/// The report as an A4 landscape PDF: the title (bold) and subtitle, then the tables with a
/// shaded header row repeated on every page they cross, amounts grouped (`50 027.08`) and
/// right-aligned, long texts wrapped within their column, and «стр. N из M» at the foot of
/// each page. The font (DejaVu Sans) is bundled, so the file is the same on any server.
pub fn to_pdf(report: &Report) -> Result<Vec<u8>, ExportError> {
    let fonts = pdf::Fonts::load()?;
    let pages = pdf::Layout::report(&fonts, report);
    pdf::paint(&fonts, &report.title, &pages)
}

/// Laying a report out on pages (pure geometry) and painting the pages with krilla.
mod pdf {
    use std::mem;

    use krilla::Document;
    use krilla::color::rgb;
    use krilla::geom::{PathBuilder, Point};
    use krilla::metadata::Metadata;
    use krilla::page::PageSettings;
    use krilla::paint::{Fill, Stroke};
    use krilla::surface::Surface;
    use krilla::text::{Font, GlyphId, KrillaGlyph};
    use skrifa::charmap::Charmap;
    use skrifa::instance::{LocationRef, Size};
    use skrifa::metrics::GlyphMetrics;
    use skrifa::{FontRef, MetadataProvider};

    use super::{ExportError, Report, Table};

    /// DejaVu Sans: Cyrillic, Latin and every sign the portal shows; licence in
    /// `assets/fonts/LICENSE-DejaVu.txt`.
    static REGULAR: &[u8] = include_bytes!("../assets/fonts/DejaVuSans.ttf");
    /// Its bold face, for the title and the header rows.
    static BOLD: &[u8] = include_bytes!("../assets/fonts/DejaVuSans-Bold.ttf");

    /// Points per millimetre.
    const MM: f32 = 72.0 / 25.4;
    /// A4 landscape.
    const PAGE_WIDTH: f32 = 297.0 * MM;
    /// A4 landscape.
    const PAGE_HEIGHT: f32 = 210.0 * MM;
    /// The margin on every side.
    const MARGIN: f32 = 15.0 * MM;
    /// The width tables may take.
    const CONTENT_WIDTH: f32 = PAGE_WIDTH - 2.0 * MARGIN;
    /// Where content stops; the page number sits below, in the margin.
    const CONTENT_BOTTOM: f32 = PAGE_HEIGHT - MARGIN;
    /// The height between the margins.
    const CONTENT_HEIGHT: f32 = CONTENT_BOTTOM - MARGIN;
    /// Font sizes, in points.
    const TITLE_SIZE: f32 = 12.0;
    /// See [`TITLE_SIZE`].
    const SUBTITLE_SIZE: f32 = 9.0;
    /// See [`TITLE_SIZE`].
    const TABLE_SIZE: f32 = 8.0;
    /// See [`TITLE_SIZE`].
    const FOOTER_SIZE: f32 = 7.0;
    /// Space between a cell's rules and its text, across.
    const PAD_X: f32 = 3.0;
    /// Space between a cell's rules and its text, down.
    const PAD_Y: f32 = 2.0;
    /// Space after the heading and after each table.
    const GAP: f32 = 10.0;
    /// The grid lines.
    const RULE_WIDTH: f32 = 0.5;
    /// The grid lines' grey.
    const RULE_GREY: u8 = 110;
    /// The header rows' background.
    const HEADER_GREY: u8 = 225;
    /// Slack in width comparisons: one text summed in another order may differ in the last bits.
    const EPSILON: f32 = 0.01;
    /// Characters below this (Latin, Cyrillic and all between) have their glyphs looked up
    /// once per export rather than at every use.
    const FAST_CHARS: u32 = 0x500;

    /// One face of the bundled font: krilla's handle to draw with, and each character's glyph
    /// and advance read from the same font, so a measured width is the drawn width. Text is
    /// set glyph by glyph without shaping: Cyrillic, Latin and digits need none, and skipping
    /// it keeps thousands of rows quick.
    struct Face {
        /// What krilla embeds (subset) and draws with.
        font: Font,
        /// Characters to glyphs.
        charmap: Charmap<'static>,
        /// Glyph advances, in font units.
        metrics: GlyphMetrics<'static>,
        /// Font units per em.
        units_per_em: f32,
        /// Glyph and advance (in em) of each character below [`FAST_CHARS`].
        fast: Vec<(u32, f32)>,
        /// The baseline's distance below a line's top, in em.
        ascent: f32,
        /// The distance between baselines, in em.
        line_height: f32,
    }

    impl Face {
        /// Reads a bundled font file.
        fn load(data: &'static [u8]) -> Result<Face, ExportError> {
            let font = Font::new(data.into(), 0).ok_or(ExportError::Font)?;
            let font_ref = FontRef::new(data).map_err(|_| ExportError::Font)?;
            let metrics = font_ref.metrics(Size::unscaled(), LocationRef::default());
            if metrics.units_per_em == 0 {
                return Err(ExportError::Font);
            }
            let units_per_em = f32::from(metrics.units_per_em);
            let mut face = Face {
                font,
                charmap: font_ref.charmap(),
                metrics: font_ref.glyph_metrics(Size::unscaled(), LocationRef::default()),
                units_per_em,
                fast: Vec::new(),
                ascent: metrics.ascent / units_per_em,
                // `descent` is negative: below the baseline.
                line_height: (metrics.ascent - metrics.descent + metrics.leading) / units_per_em,
            };
            face.fast =
                (0..FAST_CHARS).map(|code| char::from_u32(code).map_or((0, 0.0), |ch| face.lookup(ch))).collect();
            Ok(face)
        }

        /// The glyph of `ch` (`.notdef` when the font lacks it) and its advance in em.
        fn lookup(&self, ch: char) -> (u32, f32) {
            let glyph = self.charmap.map(ch).unwrap_or(skrifa::GlyphId::NOTDEF);
            let advance = self.metrics.advance_width(glyph).unwrap_or(0.0) / self.units_per_em;
            (glyph.to_u32(), advance)
        }

        /// [`Face::lookup`], from the table for common characters.
        fn glyph(&self, ch: char) -> (u32, f32) {
            match self.fast.get(ch as usize) {
                Some(&known) => known,
                None => self.lookup(ch),
            }
        }

        /// The width of `text` set on one line at `size`, in points.
        fn width(&self, text: &str, size: f32) -> f32 {
            text.chars().map(|ch| self.glyph(ch).1).sum::<f32>() * size
        }

        /// The widest line and the widest word of `text`, in em, in one pass.
        fn extents(&self, text: &str) -> (f32, f32) {
            let (mut widest_line, mut widest_word, mut line, mut word) = (0.0f32, 0.0f32, 0.0f32, 0.0f32);
            for ch in text.chars() {
                if ch == '\n' {
                    line = 0.0;
                    word = 0.0;
                    continue;
                }
                let advance = self.glyph(ch).1;
                line += advance;
                word = if ch.is_whitespace() { 0.0 } else { word + advance };
                widest_line = widest_line.max(line);
                widest_word = widest_word.max(word);
            }
            (widest_line, widest_word)
        }

        /// `text` as glyphs for krilla, each tied to its character so that the PDF's text
        /// layer (copying, search, `pdftotext`) gives the text back exactly.
        fn glyphs(&self, text: &str) -> Vec<KrillaGlyph> {
            text.char_indices()
                .map(|(at, ch)| {
                    let (glyph, advance) = self.glyph(ch);
                    KrillaGlyph::new(GlyphId::new(glyph), advance, 0.0, 0.0, 0.0, at..at + ch.len_utf8(), None)
                })
                .collect()
        }

        /// `text` broken into lines no wider than `width` points at `size`: at line breaks
        /// in the text, then between words, and inside a word only when it alone is wider.
        fn wrap(&self, text: &str, size: f32, width: f32) -> Vec<String> {
            // The common case: one line with nothing to tidy (control characters such as
            // tabs have no glyph; the slow path turns them into single spaces).
            if !text.contains(char::is_control) && self.width(text, size) <= width + EPSILON {
                return vec![text.to_owned()];
            }
            let space = self.width(" ", size);
            let mut lines = Vec::new();
            for paragraph in text.split('\n') {
                let (mut line, mut used) = (String::new(), 0.0);
                for word in paragraph.split_whitespace() {
                    let needed = self.width(word, size);
                    if line.is_empty() && needed <= width + EPSILON {
                        (line, used) = (word.to_owned(), needed);
                    } else if used + space + needed <= width + EPSILON {
                        line.push(' ');
                        line.push_str(word);
                        used += space + needed;
                    } else if needed <= width + EPSILON {
                        lines.push(mem::replace(&mut line, word.to_owned()));
                        used = needed;
                    } else {
                        // Too wide for any line: cut between characters, starting afresh.
                        if !line.is_empty() {
                            lines.push(mem::take(&mut line));
                        }
                        used = 0.0;
                        for ch in word.chars() {
                            let advance = self.glyph(ch).1 * size;
                            if !line.is_empty() && used + advance > width + EPSILON {
                                lines.push(mem::take(&mut line));
                                used = 0.0;
                            }
                            line.push(ch);
                            used += advance;
                        }
                    }
                }
                lines.push(line);
            }
            lines
        }
    }

    /// The two faces an export uses.
    pub(super) struct Fonts {
        /// For the cells and the subtitle.
        regular: Face,
        /// For the title and the header rows.
        bold: Face,
    }

    impl Fonts {
        /// Reads the bundled fonts.
        pub(super) fn load() -> Result<Fonts, ExportError> {
            Ok(Fonts { regular: Face::load(REGULAR)?, bold: Face::load(BOLD)? })
        }

        /// The face for bold or regular text.
        fn face(&self, bold: bool) -> &Face {
            if bold { &self.bold } else { &self.regular }
        }
    }

    /// One line of text placed on a page; `y` is its baseline.
    struct Run {
        /// Where the text starts.
        x: f32,
        /// The baseline, from the page's top.
        y: f32,
        /// The font size.
        size: f32,
        /// Bold or regular.
        bold: bool,
        /// The text.
        text: String,
    }

    /// Everything one page shows. Pages are laid out in full before any is painted: krilla's
    /// page borrows the document, and the page count is known only at the end.
    #[derive(Default)]
    pub(super) struct PageContent {
        /// The text.
        runs: Vec<Run>,
        /// Grey rectangles behind header rows: left, top, width, height.
        shades: Vec<[f32; 4]>,
        /// Grid lines: x₁, y₁, x₂, y₂.
        rules: Vec<[f32; 4]>,
    }

    /// A table's columns on the page.
    struct Columns {
        /// Each column's left edge.
        lefts: Vec<f32>,
        /// Each column's width, padding included.
        widths: Vec<f32>,
        /// Columns of numbers only, whose header is right-aligned over them.
        numeric: Vec<bool>,
    }

    impl Columns {
        /// Widths from the measured texts: a column is as wide as its widest line when the
        /// table fits the page; otherwise each keeps at least its widest word (a number
        /// whole) and the rest of the page is shared in proportion to what each would like.
        fn fit(fonts: &Fonts, table: &Table) -> Columns {
            let count = table.columns.len();
            let mut natural = vec![0.0f32; count];
            let mut word = vec![0.0f32; count];
            let mut number = vec![0.0f32; count];
            let mut has_number = vec![false; count];
            let mut has_text = vec![false; count];
            for (column, header) in table.columns.iter().enumerate() {
                (natural[column], word[column]) = fonts.bold.extents(header);
            }
            for row in &table.rows {
                for (column, cell) in row.iter().enumerate().take(count) {
                    let text = cell.display_text();
                    let (line, longest_word) = fonts.regular.extents(&text);
                    natural[column] = natural[column].max(line);
                    if cell.is_number() {
                        has_number[column] = true;
                        number[column] = number[column].max(line);
                    } else if !text.is_empty() {
                        has_text[column] = true;
                        word[column] = word[column].max(longest_word);
                    }
                }
            }
            let points = |em: f32| em * TABLE_SIZE + 2.0 * PAD_X;
            // An overlong word (a hash, an address) is cut rather than squeezing the others.
            let fair = CONTENT_WIDTH / count as f32;
            let natural: Vec<f32> = natural.into_iter().map(points).collect();
            let least: Vec<f32> =
                word.iter().zip(&number).map(|(&word, &number)| points(number).max(points(word).min(fair))).collect();
            let widths = distribute(&natural, &least, CONTENT_WIDTH);
            let lefts = widths
                .iter()
                .scan(MARGIN, |x, width| {
                    let left = *x;
                    *x += width;
                    Some(left)
                })
                .collect();
            let numeric = has_number.iter().zip(&has_text).map(|(&number, &text)| number && !text).collect();
            Columns { lefts, widths, numeric }
        }

        /// Breaks one row's texts into lines for these columns, keeping at most what fits in
        /// `room` points of height (a cut cell ends with «…»).
        fn lay_row(
            &self,
            fonts: &Fonts,
            cells: impl Iterator<Item = (String, bool)>,
            header: bool,
            room: f32,
        ) -> LaidRow {
            let face = fonts.face(header);
            let line_height = face.line_height * TABLE_SIZE;
            let max_lines = (((room - 2.0 * PAD_Y) / line_height).floor() as usize).max(1);
            let cells: Vec<LaidCell> = cells
                .zip(&self.widths)
                .map(|((text, right), width)| {
                    let mut lines = face.wrap(&text, TABLE_SIZE, width - 2.0 * PAD_X);
                    if lines.len() > max_lines {
                        lines.truncate(max_lines);
                        if let Some(last) = lines.last_mut() {
                            last.push('…');
                        }
                    }
                    LaidCell { lines, right }
                })
                .collect();
            let most = cells.iter().map(|cell| cell.lines.len()).max().unwrap_or(1);
            LaidRow { cells, header, height: most as f32 * line_height + 2.0 * PAD_Y }
        }

        /// The table's left edge.
        fn left(&self) -> f32 {
            MARGIN
        }

        /// The table's right edge.
        fn right(&self) -> f32 {
            MARGIN + self.widths.iter().sum::<f32>()
        }
    }

    /// Column widths filling at most `room`: the `natural` ones when they fit; else each
    /// column's `least` plus a share of the spare room in proportion to how much wider it
    /// would like to be; and when even the least widths do not fit, those scaled down.
    fn distribute(natural: &[f32], least: &[f32], room: f32) -> Vec<f32> {
        let wanted: f32 = natural.iter().sum();
        if wanted <= room {
            return natural.to_vec();
        }
        let floor: f32 = least.iter().sum();
        if floor < room {
            // wanted > room > floor, so the division is by a positive number.
            let share = (room - floor) / (wanted - floor);
            return natural
                .iter()
                .zip(least)
                .map(|(natural, least)| least + (natural - least).max(0.0) * share)
                .collect();
        }
        let scale = room / floor;
        least.iter().map(|least| least * scale).collect()
    }

    /// One cell broken into lines.
    #[derive(Clone)]
    struct LaidCell {
        /// The lines, top to bottom.
        lines: Vec<String>,
        /// Right-aligned (numbers).
        right: bool,
    }

    /// One table row broken into lines, with its height.
    #[derive(Clone)]
    struct LaidRow {
        /// The cells, left to right.
        cells: Vec<LaidCell>,
        /// The header row: bold on grey.
        header: bool,
        /// Its height, padding included.
        height: f32,
    }

    /// Lays a report out on pages, top to bottom.
    pub(super) struct Layout<'f> {
        /// The faces, for measuring.
        fonts: &'f Fonts,
        /// Pages already full.
        done: Vec<PageContent>,
        /// The page being filled.
        page: PageContent,
        /// Where the next thing goes on it, from the page's top.
        y: f32,
    }

    impl<'f> Layout<'f> {
        /// The report's pages.
        pub(super) fn report(fonts: &'f Fonts, report: &Report) -> Vec<PageContent> {
            let mut layout = Layout { fonts, done: Vec::new(), page: PageContent::default(), y: MARGIN };
            layout.paragraph(&report.title, TITLE_SIZE, true);
            if let Some(subtitle) = &report.subtitle {
                layout.paragraph(subtitle, SUBTITLE_SIZE, false);
            }
            layout.y += GAP;
            for table in &report.tables {
                layout.table(table);
            }
            layout.finish()
        }

        /// Starts a new page.
        fn break_page(&mut self) {
            self.done.push(mem::take(&mut self.page));
            self.y = MARGIN;
        }

        /// Whether nothing is on the current page yet (a break would not gain room).
        fn at_top(&self) -> bool {
            self.y <= MARGIN
        }

        /// Text across the page width, wrapped.
        fn paragraph(&mut self, text: &str, size: f32, bold: bool) {
            let face = self.fonts.face(bold);
            for line in face.wrap(text, size, CONTENT_WIDTH) {
                let height = face.line_height * size;
                if self.y + height > CONTENT_BOTTOM && !self.at_top() {
                    self.break_page();
                }
                if !line.is_empty() {
                    self.page.runs.push(Run { x: MARGIN, y: self.y + face.ascent * size, size, bold, text: line });
                }
                self.y += height;
            }
        }

        /// A table: its header row, then its rows, breaking pages between rows and repeating
        /// the header at the top of each new page.
        fn table(&mut self, table: &Table) {
            if table.columns.is_empty() {
                return; // nothing to show, and no width to share
            }
            let columns = Columns::fit(self.fonts, table);
            let header_cells = table.columns.iter().zip(&columns.numeric).map(|(text, &right)| (text.clone(), right));
            let header = columns.lay_row(self.fonts, header_cells, true, CONTENT_HEIGHT / 4.0);
            // A row never exceeds what fits under the header on an empty page, so each row
            // fits after at most one break and the paging always moves on.
            let row_room = CONTENT_HEIGHT - header.height;
            let fonts = self.fonts;
            let mut rows = table.rows.iter().map(|row| {
                let cells = row.iter().map(|cell| (cell.display_text(), cell.is_number()));
                columns.lay_row(fonts, cells, false, row_room)
            });
            // Keep the header with the first row.
            let first = rows.next();
            let first_height = first.as_ref().map_or(0.0, |row| row.height);
            if self.y + header.height + first_height > CONTENT_BOTTOM && !self.at_top() {
                self.break_page();
            }
            let mut segment_top = self.y;
            self.place(&columns, header.clone());
            for row in first.into_iter().chain(rows) {
                if self.y + row.height > CONTENT_BOTTOM {
                    self.close_segment(&columns, segment_top);
                    self.break_page();
                    segment_top = self.y;
                    self.place(&columns, header.clone());
                }
                self.place(&columns, row);
            }
            self.close_segment(&columns, segment_top);
            self.y += GAP;
        }

        /// Puts a row at the current position, with the rule under it.
        fn place(&mut self, columns: &Columns, row: LaidRow) {
            let face = self.fonts.face(row.header);
            let top = self.y;
            if row.header {
                self.page.shades.push([columns.left(), top, columns.right() - columns.left(), row.height]);
            }
            let placed = row.cells.into_iter().zip(columns.lefts.iter().zip(&columns.widths));
            for (cell, (&left, &width)) in placed {
                for (index, text) in cell.lines.into_iter().enumerate() {
                    if text.is_empty() {
                        continue;
                    }
                    let x =
                        if cell.right { left + width - PAD_X - face.width(&text, TABLE_SIZE) } else { left + PAD_X };
                    let y = top + PAD_Y + (face.ascent + index as f32 * face.line_height) * TABLE_SIZE;
                    self.page.runs.push(Run { x, y, size: TABLE_SIZE, bold: row.header, text });
                }
            }
            self.y += row.height;
            self.page.rules.push([columns.left(), self.y, columns.right(), self.y]);
        }

        /// Draws the rule above the part of a table on this page and the column rules down
        /// to the current position.
        fn close_segment(&mut self, columns: &Columns, top: f32) {
            self.page.rules.push([columns.left(), top, columns.right(), top]);
            for x in columns.lefts.iter().copied().chain([columns.right()]) {
                self.page.rules.push([x, top, x, self.y]);
            }
        }

        /// All the pages, each with «стр. N из M» at its foot, right-aligned.
        fn finish(mut self) -> Vec<PageContent> {
            self.done.push(self.page);
            let total = self.done.len();
            let face = &self.fonts.regular;
            for (index, page) in self.done.iter_mut().enumerate() {
                let text = format!("стр. {} из {}", index + 1, total);
                let x = PAGE_WIDTH - MARGIN - face.width(&text, FOOTER_SIZE);
                page.runs.push(Run { x, y: PAGE_HEIGHT - MARGIN / 2.0, size: FOOTER_SIZE, bold: false, text });
            }
            self.done
        }
    }

    /// Paints the laid-out pages into a PDF.
    pub(super) fn paint(fonts: &Fonts, title: &str, pages: &[PageContent]) -> Result<Vec<u8>, ExportError> {
        let Some(settings) = PageSettings::from_wh(PAGE_WIDTH, PAGE_HEIGHT) else {
            return Err(ExportError::Pdf("размер страницы A4 не принят".to_owned()));
        };
        let mut document = Document::new();
        document.set_metadata(Metadata::new().title(title.to_owned()).language("ru".to_owned()));
        for content in pages {
            let mut page = document.start_page_with(settings.clone());
            let mut surface = page.surface();
            paint_page(&mut surface, fonts, content);
            surface.finish();
            page.finish();
        }
        document.finish().map_err(|error| ExportError::Pdf(error.to_string()))
    }

    /// Paints one page: the header shading, then the grid over it, then the text.
    fn paint_page(surface: &mut Surface<'_>, fonts: &Fonts, content: &PageContent) {
        let mut shades = PathBuilder::new();
        for &[x, y, width, height] in &content.shades {
            shades.move_to(x, y);
            shades.line_to(x + width, y);
            shades.line_to(x + width, y + height);
            shades.line_to(x, y + height);
            shades.close();
        }
        // `finish` gives nothing for an empty path: a page without a header row.
        if let Some(path) = shades.finish() {
            surface.set_stroke(None);
            surface.set_fill(Some(Fill { paint: grey(HEADER_GREY), ..Fill::default() }));
            surface.draw_path(&path);
        }
        let mut rules = PathBuilder::new();
        for &[x1, y1, x2, y2] in &content.rules {
            rules.move_to(x1, y1);
            rules.line_to(x2, y2);
        }
        if let Some(path) = rules.finish() {
            surface.set_fill(None);
            surface.set_stroke(Some(Stroke { paint: grey(RULE_GREY), width: RULE_WIDTH, ..Stroke::default() }));
            surface.draw_path(&path);
        }
        // Text is filled only: a stroke left set would outline it.
        surface.set_stroke(None);
        surface.set_fill(Some(Fill::default())); // black
        for run in &content.runs {
            let face = fonts.face(run.bold);
            let glyphs = face.glyphs(&run.text);
            surface.draw_glyphs(Point::from_xy(run.x, run.y), &glyphs, face.font.clone(), &run.text, run.size, false);
        }
    }

    /// A neutral grey.
    fn grey(level: u8) -> krilla::paint::Paint {
        rgb::Color::new(level, level, level).into()
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use crate::export::Cell;

        #[test]
        fn wrap_breaks_between_words_then_inside_them() {
            let fonts = Fonts::load().unwrap();
            let face = &fonts.regular;
            let width = face.width("Возврат товара", TABLE_SIZE);
            let lines = face.wrap("Возврат товара покупателем", TABLE_SIZE, width);
            assert_eq!(lines, ["Возврат товара", "покупателем"]);
            assert_eq!(face.wrap("одна\nдве", TABLE_SIZE, 1000.0), ["одна", "две"]);
            let narrow = face.width("ABCD", TABLE_SIZE);
            let lines = face.wrap("ABCDEFGHIJ", TABLE_SIZE, narrow);
            assert_eq!(lines.concat(), "ABCDEFGHIJ");
            assert!(lines.len() >= 3);
            assert!(lines.iter().all(|line| face.width(line, TABLE_SIZE) <= narrow + EPSILON));
            assert_eq!(face.wrap("", TABLE_SIZE, 10.0), [""]);
            assert_eq!(face.wrap("a\tb\r\nc", TABLE_SIZE, 1000.0), ["a b", "c"]);
        }

        #[test]
        fn widths_fit_the_room() {
            assert_eq!(distribute(&[10.0, 20.0], &[5.0, 5.0], 100.0), [10.0, 20.0]);
            // Each keeps its least and shares the spare room by how much more it wants.
            let widths = distribute(&[50.0, 150.0], &[10.0, 10.0], 100.0);
            assert!((widths.iter().sum::<f32>() - 100.0).abs() < 0.01);
            assert!((widths[0] - (10.0 + 40.0 * 80.0 / 180.0)).abs() < 0.01);
            let widths = distribute(&[300.0, 300.0], &[100.0, 200.0], 150.0);
            assert!((widths[0] - 50.0).abs() < 0.01 && (widths[1] - 100.0).abs() < 0.01);
        }

        #[test]
        fn wide_tables_are_squeezed_to_the_page_and_numbers_stay_whole() {
            let fonts = Fonts::load().unwrap();
            let long = "очень длинный текст ".repeat(40);
            let table = Table {
                columns: vec!["Текст".to_owned(), "Сумма".to_owned()],
                rows: vec![vec![Cell::Text(long.clone()), Cell::Money("1234567.89".parse().unwrap())]],
            };
            let columns = Columns::fit(&fonts, &table);
            assert!(columns.right() - columns.left() <= CONTENT_WIDTH + EPSILON);
            assert!(columns.numeric == [false, true]);
            let amount = fonts.regular.width("1 234 567.89", TABLE_SIZE) + 2.0 * PAD_X;
            assert!(columns.widths[1] >= amount - EPSILON);
            let cells = table.rows[0].iter().map(|cell| (cell.display_text(), cell.is_number()));
            let row = columns.lay_row(&fonts, cells, false, CONTENT_HEIGHT);
            assert!(row.cells[0].lines.len() > 1);
            assert_eq!(row.cells[1].lines, ["1 234 567.89"]);
        }

        #[test]
        fn a_cell_taller_than_a_page_is_cut() {
            let fonts = Fonts::load().unwrap();
            let table = Table {
                columns: vec!["Текст".to_owned()],
                rows: vec![vec![Cell::Text("строка\n".repeat(500))]],
            };
            let report = Report { title: "т".to_owned(), subtitle: None, tables: vec![table] };
            let pages = Layout::report(&fonts, &report);
            assert!(pages.len() <= 2);
            assert!(pages.iter().flat_map(|page| &page.runs).any(|run| run.text.ends_with('…')));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::process::Command;

    use super::*;

    fn money(text: &str) -> Money {
        text.parse().unwrap()
    }

    fn signed(text: &str) -> SignedMoney {
        text.parse().unwrap()
    }

    /// A report like the portal's: Cyrillic, amounts above a thousand, a negative one.
    fn sample() -> Report {
        Report {
            title: "Кассовые документы по AVQ11169990740".to_owned(),
            subtitle: Some("за период с 01.03.2025 по 31.03.2025".to_owned()),
            tables: vec![
                Table {
                    columns: vec!["№".to_owned(), "Вид документа".to_owned(), "Сумма".to_owned()],
                    rows: vec![
                        vec![Cell::Int(1), Cell::Text("Продажа".to_owned()), Cell::Money(money("50027.08"))],
                        vec![Cell::Int(2), Cell::Text("Возврат, «частичный»".to_owned()), Cell::Money(money("4.79"))],
                        vec![Cell::Int(3), Cell::Empty, Cell::Signed(signed("-1234.5"))],
                    ],
                },
                Table {
                    columns: vec!["Итого".to_owned(), "Выручка".to_owned()],
                    rows: vec![vec![Cell::Text("Смена 7".to_owned()), Cell::Signed(signed("48797.37"))]],
                },
            ],
        }
    }

    #[test]
    fn format_names() {
        for format in [Format::Xlsx, Format::Pdf, Format::Csv] {
            assert_eq!(Format::parse(format.extension()), Some(format));
        }
        assert_eq!(Format::parse("PDF"), None);
        assert_eq!(Format::parse("html"), None);
        assert_eq!(Format::Pdf.content_type(), "application/pdf");
        assert_eq!(Format::Csv.content_type(), "text/csv; charset=utf-8");
        assert!(Format::Xlsx.content_type().ends_with("spreadsheetml.sheet"));
    }

    #[test]
    fn display_text_groups_amounts() {
        assert_eq!(Cell::Money(money("50027.08")).display_text(), "50 027.08");
        assert_eq!(Cell::Signed(signed("-1234.5")).display_text(), "-1 234.50");
        assert_eq!(Cell::Money(money("876.4")).display_text(), "876.40");
        assert_eq!(Cell::Int(1234567).display_text(), "1234567");
        assert_eq!(Cell::Empty.display_text(), "");
    }

    #[test]
    fn csv_text_cannot_become_a_spreadsheet_formula() {
        let report = Report {
            title: String::new(),
            subtitle: None,
            tables: vec![Table {
                columns: vec!["Заметки".into(), "Выручка".into()],
                rows: vec![vec![Cell::Text("=HYPERLINK(\"x\")".into()), Cell::Signed("-4.79".parse().unwrap())]],
            }],
        };
        let csv = String::from_utf8(to_csv(&report)).unwrap();
        assert_eq!(csv, "Заметки,Выручка\r\n\"'=HYPERLINK(\"\"x\"\")\",-4.79\r\n");
    }

    #[test]
    fn csv_quotes_only_what_needs_it() {
        let report = Report {
            title: "не попадает в CSV".to_owned(),
            subtitle: None,
            tables: vec![Table {
                columns: vec!["a".to_owned(), "b,c".to_owned()],
                rows: vec![
                    vec![Cell::Text("он сказал \"да\"".to_owned()), Cell::Text("две\nстроки".to_owned())],
                    vec![Cell::Text("простой".to_owned()), Cell::Text("с\rвозвратом".to_owned())],
                ],
            }],
        };
        let csv = String::from_utf8(to_csv(&report)).unwrap();
        assert_eq!(csv, "a,\"b,c\"\r\n\"он сказал \"\"да\"\"\",\"две\nстроки\"\r\nпростой,\"с\rвозвратом\"\r\n");
    }

    #[test]
    fn csv_has_plain_amounts_and_blank_line_between_tables() {
        let csv = to_csv(&sample());
        assert!(!csv.starts_with(&[0xEF, 0xBB, 0xBF]), "no BOM");
        let csv = String::from_utf8(csv).unwrap();
        assert_eq!(
            csv,
            "№,Вид документа,Сумма\r\n\
             1,Продажа,50027.08\r\n\
             2,\"Возврат, «частичный»\",4.79\r\n\
             3,,-1234.50\r\n\
             \r\n\
             Итого,Выручка\r\n\
             Смена 7,48797.37\r\n"
        );
    }

    #[test]
    fn xlsx_is_a_zip() {
        let bytes = to_xlsx(&sample()).unwrap();
        assert!(bytes.starts_with(b"PK"));
        assert_eq!(render(&sample(), Format::Xlsx).unwrap()[..2], *b"PK");
    }

    #[test]
    fn xlsx_refuses_more_rows_than_a_sheet_holds() {
        let report = Report {
            title: "много".to_owned(),
            subtitle: None,
            tables: vec![Table { columns: vec!["a".to_owned()], rows: vec![Vec::new(); EXCEL_MAX_ROWS] }],
        };
        assert!(matches!(to_xlsx(&report), Err(ExportError::TooLargeForExcel)));
    }

    #[test]
    fn excel_numbers_are_the_nearest_doubles() {
        assert_eq!(excel_number(money("50027.08").as_decimal()), 50027.08);
        assert_eq!(excel_number(signed("-0.10").as_decimal()), -0.1);
        assert_eq!(excel_number(money("999999999999999.99").as_decimal()), 999999999999999.99);
    }

    #[test]
    fn pdf_text_comes_back_exactly() {
        let bytes = to_pdf(&sample()).unwrap();
        assert!(bytes.starts_with(b"%PDF"));
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let output = Command::new("pdftotext")
            .args(["-enc", "UTF-8"])
            .arg(file.path())
            .arg("-")
            .output()
            .unwrap_or_else(|error| panic!("pdftotext is needed for this test; install poppler-utils ({error})"));
        assert!(output.status.success(), "pdftotext failed: {}", String::from_utf8_lossy(&output.stderr));
        let text = String::from_utf8(output.stdout).unwrap();
        for expected in [
            "Кассовые документы по AVQ11169990740",
            "за период с 01.03.2025 по 31.03.2025",
            "Вид документа",
            "Возврат, «частичный»",
            "50 027.08",
            "-1 234.50",
            "48 797.37",
            "Смена 7",
            "стр. 1 из 1",
        ] {
            assert!(text.contains(expected), "«{expected}» not in the PDF's text:\n{text}");
        }
    }

    #[test]
    fn degenerate_reports_still_render() {
        let reports = [
            Report { title: String::new(), subtitle: None, tables: Vec::new() },
            Report {
                title: "Пусто".to_owned(),
                subtitle: Some(String::new()),
                tables: vec![
                    Table { columns: Vec::new(), rows: vec![vec![Cell::Int(1)]] },
                    Table { columns: vec!["Сумма".to_owned()], rows: Vec::new() },
                    Table { columns: vec!["a".to_owned(), "b".to_owned()], rows: vec![vec![Cell::Empty], Vec::new()] },
                ],
            },
        ];
        for report in &reports {
            assert!(to_pdf(report).unwrap().starts_with(b"%PDF"));
            assert!(to_xlsx(report).unwrap().starts_with(b"PK"));
            to_csv(report);
        }
    }

    /// A long report: every page repeats the header, and the text is all there.
    #[test]
    fn pdf_of_many_rows_repeats_the_header() {
        let rows = (0..400)
            .map(|n| {
                vec![
                    Cell::Int(n),
                    Cell::Text(format!("Товар {n}: {}", "название длиннее страницы ".repeat(8))),
                    Cell::Money(Money::from_kopecks(5_002_708 + n as u64)),
                ]
            })
            .collect();
        let report = Report {
            title: "Длинный отчёт".to_owned(),
            subtitle: None,
            tables: vec![Table {
                columns: vec!["№".to_owned(), "Наименование".to_owned(), "Сумма".to_owned()], rows
            }],
        };
        let bytes = to_pdf(&report).unwrap();
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), &bytes).unwrap();
        let output = Command::new("pdftotext")
            .args(["-enc", "UTF-8"])
            .arg(file.path())
            .arg("-")
            .output()
            .unwrap_or_else(|error| panic!("pdftotext is needed for this test; install poppler-utils ({error})"));
        let text = String::from_utf8(output.stdout).unwrap();
        let pages = text.split('\u{c}').filter(|page| !page.trim().is_empty()).count();
        assert!(pages > 1, "{pages} page(s)");
        assert_eq!(text.matches("Наименование").count(), pages, "the header on every page");
        assert!(text.contains(&format!("стр. {pages} из {pages}")));
        assert!(text.contains("50 031.07"), "the last row's amount");
    }

    /// Not run by default: `cargo test --release -p cabinet-server --lib export -- --ignored --nocapture`.
    #[test]
    #[ignore = "timing; run in release"]
    fn pdf_of_ten_thousand_rows() {
        let rows = (0..10_000)
            .map(|n| {
                vec![
                    Cell::Int(n),
                    Cell::Text("01.03.2025 12:34:56".to_owned()),
                    Cell::Text(format!("Продажа, кассир Иванова И. И., чек {n}")),
                    Cell::Money(Money::from_kopecks(5_002_708 + n as u64)),
                    Cell::Money(Money::from_kopecks(12_345)),
                    Cell::Money(Money::ZERO),
                    Cell::Signed(Money::from_kopecks(123_456).minus(Money::from_kopecks(n as u64))),
                    Cell::Int(7),
                ]
            })
            .collect();
        let columns = ["№", "Дата и время", "Документ", "Сумма", "Наличными", "Картой", "Выручка", "Смена"];
        let report = Report {
            title: "Кассовые документы".to_owned(),
            subtitle: Some("за март".to_owned()),
            tables: vec![Table { columns: columns.iter().map(|c| c.to_string()).collect(), rows }],
        };
        let started = std::time::Instant::now();
        let bytes = to_pdf(&report).unwrap();
        eprintln!("10 000 rows: {:?}, {} bytes", started.elapsed(), bytes.len());
        let started = std::time::Instant::now();
        let bytes = to_xlsx(&report).unwrap();
        eprintln!("xlsx: {:?}, {} bytes", started.elapsed(), bytes.len());
    }
}
