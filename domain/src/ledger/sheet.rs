//! Spreadsheets in and out: `.xlsx` through calamine (read) and
//! rust_xlsxwriter (write), `.csv` through the csv crate.
//!
//! Chinese Excel saves CSV as UTF-8 with a byte-order mark, or in GBK on older
//! installs; both are read. What is written is UTF-8 with the mark, which
//! Excel opens without garbling the headers.

use std::io::Cursor;

use calamine::{Data, Reader, Xlsx};

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
}

/// Every row of the file (of an `.xlsx`, its first worksheet), line 1 first.
pub fn read(bytes: &[u8], format: Format) -> Result<Vec<Vec<Cell>>, SheetError> {
    match format {
        Format::Xlsx => read_xlsx(bytes),
        Format::Csv => read_csv(bytes),
    }
}

fn read_xlsx(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, SheetError> {
    let mut workbook = Xlsx::new(Cursor::new(bytes)).map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let range =
        workbook.worksheet_range_at(0).ok_or(SheetError::NoWorksheet)?.map_err(|e| SheetError::Xlsx(e.to_string()))?;
    let Some((first_row, first_column)) = range.start() else {
        return Ok(Vec::new());
    };
    // Lines as Excel numbers them: rows above the used range are empty.
    let mut rows: Vec<Vec<Cell>> = (0..first_row).map(|_| Vec::new()).collect();
    for row in range.rows() {
        let mut cells: Vec<Cell> = (0..first_column).map(|_| Cell::Empty).collect();
        cells.extend(row.iter().map(|data| match data {
            Data::Empty => Cell::Empty,
            Data::String(text) => Cell::Text(text.clone()),
            Data::Float(number) => Cell::Number(*number),
            #[allow(clippy::cast_precision_loss)]
            Data::Int(number) => Cell::Number(*number as f64),
            Data::Bool(true) => Cell::Text("是".into()),
            Data::Bool(false) => Cell::Text("否".into()),
            other => Cell::Text(other.to_string()),
        }));
        rows.push(cells);
    }
    Ok(rows)
}

fn read_csv(bytes: &[u8]) -> Result<Vec<Vec<Cell>>, SheetError> {
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
        rows.push(record.iter().map(|field| Cell::Text(field.to_string())).collect());
    }
    Ok(rows)
}

/// A spreadsheet of text cells: `rows[0]` is the header row.
pub fn write(rows: &[Vec<String>], format: Format, sheet_name: &str) -> Result<Vec<u8>, SheetError> {
    match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
            for row in rows {
                writer.write_record(row).map_err(|e| SheetError::Write(e.to_string()))?;
            }
            writer.into_inner().map_err(|e| SheetError::Write(e.to_string()))
        }
        Format::Xlsx => write_xlsx(rows, sheet_name).map_err(|e| SheetError::Write(e.to_string())),
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
            let back = read(&bytes, format).unwrap();
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
        let rows = read(&gbk, Format::Csv).unwrap();
        assert_eq!(rows[1][0], Cell::Text("王秀英".into()));
        assert!(read(b"\xff\xfe\x00garbage\xff", Format::Csv).is_err());
        assert!(read(b"not a zip", Format::Xlsx).is_err());
    }

    #[test]
    fn whole_numbers_read_as_text_lose_their_decimal_point() {
        assert_eq!(Cell::Number(13_904_150_001.0).text(), "13904150001");
        assert_eq!(Cell::Number(1200.5).text(), "1200.5");
    }
}
