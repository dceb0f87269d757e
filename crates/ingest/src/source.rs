//! Reading `indexProcessed.csv`-shaped files the way real files come: a byte-order mark, CRLF or
//! LF line endings, blank and all-empty rows, columns found by header name, the date formats of
//! [`parse_trade_date`](stockstream_common::record::parse_trade_date), integer or float volumes,
//! and a truncated last line. Every data row comes out as a [`Row`] with its line number and raw
//! text, so a bad one can be dead-lettered with its origin.

use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use stockstream_common::record::{CSV_COLUMNS, CsvLayout, Quote, QuoteError};

use crate::error::{Error, Result};

/// What a data row turned out to be.
#[derive(Debug, Clone, PartialEq)]
pub enum RowOutcome {
    /// A valid quote.
    Quote(Quote),
    /// A bad row and why.
    Bad(String),
    /// Every field is empty (e.g. `,,,,,,,,`): skipped and counted, not dead-lettered.
    Empty,
}

/// One data row of the file.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// 1-based line number where the row starts (the header is line 1).
    pub line: u64,
    /// 1-based index of the row among the file's data rows.
    pub index: u64,
    /// The row's text as read (fields joined by commas), for dead letters.
    pub raw: String,
    /// Parsed quote, or why not.
    pub outcome: RowOutcome,
}

/// A CSV file opened for reading, header checked.
///
/// Lines are counted here rather than by the `csv` crate, whose line numbers drift after blank
/// lines and CRLF endings. A row is one line unless a quoted field spans line breaks.
pub struct CsvSource {
    path: PathBuf,
    records: LineRecords<BufReader<std::fs::File>>,
    layout: CsvLayout,
    total_bytes: u64,
    ends_with_newline: bool,
    index: u64,
    pending: Option<Row>,
}

impl std::fmt::Debug for CsvSource {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("CsvSource")
            .field("path", &self.path)
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

impl CsvSource {
    /// Opens `path` and maps its header; fails with a clear message on an empty file or a header
    /// without the dataset's columns.
    pub fn open(path: &Path) -> Result<Self> {
        let read_error = |source| Error::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut file = std::fs::File::open(path).map_err(read_error)?;
        let total_bytes = file.metadata().map_err(read_error)?.len();
        let ends_with_newline = total_bytes == 0 || {
            file.seek(SeekFrom::End(-1)).map_err(read_error)?;
            let mut last = [0u8; 1];
            file.read_exact(&mut last).map_err(read_error)?;
            file.seek(SeekFrom::Start(0)).map_err(read_error)?;
            last[0] == b'\n' || last[0] == b'\r'
        };
        let mut source = Self {
            path: path.to_path_buf(),
            records: LineRecords::new(BufReader::with_capacity(1 << 20, file)),
            layout: CsvLayout::from_header(&CSV_COLUMNS).map_err(format_error_for(path))?,
            total_bytes,
            ends_with_newline,
            index: 0,
            pending: None,
        };
        let header = loop {
            match source.read_record()? {
                None => {
                    return Err(format_error_for(path)(format!(
                        "file is empty; expected a header with the columns {}",
                        CSV_COLUMNS.join(",")
                    )));
                }
                Some((_, fields)) if fields.iter().all(|field| field.trim().is_empty()) => {}
                Some((_, fields)) => break fields,
            }
        };
        source.layout = CsvLayout::from_header(&header).map_err(format_error_for(path))?;
        Ok(source)
    }

    /// Size of the file in bytes.
    pub fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Bytes read so far.
    pub fn bytes_read(&self) -> u64 {
        self.records.bytes_read()
    }

    /// Reads the next record (first line, fields).
    fn read_record(&mut self) -> Result<Option<(u64, Vec<String>)>> {
        self.records.next_record().map_err(|source| Error::Read {
            path: self.path.clone(),
            source,
        })
    }

    /// The next data row, or `None` at the end of the file.
    ///
    /// Rows are read one ahead, so the last row of a file that does not end with a line break is
    /// known to be last: if it lacks fields, the reason says the line was truncated.
    pub fn next_row(&mut self) -> Result<Option<Row>> {
        if self.pending.is_none() {
            self.pending = self.read_one()?;
        }
        let Some(mut row) = self.pending.take() else {
            return Ok(None);
        };
        self.pending = self.read_one()?;
        if self.pending.is_none()
            && !self.ends_with_newline
            && let RowOutcome::Bad(reason) = &row.outcome
            && reason.starts_with("expected")
        {
            row.outcome = RowOutcome::Bad(format!(
                "truncated last line (the file does not end with a line break): {reason}"
            ));
        }
        Ok(Some(row))
    }

    fn read_one(&mut self) -> Result<Option<Row>> {
        let Some((line, fields)) = self.read_record()? else {
            return Ok(None);
        };
        self.index += 1;
        let raw = fields.join(",");
        let outcome = if fields.iter().all(|field| field.trim().is_empty()) {
            RowOutcome::Empty
        } else if fields.iter().any(|field| field.contains('\u{fffd}')) {
            RowOutcome::Bad("row is not valid UTF-8".to_string())
        } else {
            match self.layout.parse(&fields) {
                Ok(quote) => RowOutcome::Quote(quote),
                Err(QuoteError::FieldCount { expected, found }) => {
                    RowOutcome::Bad(format!("expected {expected} fields, found {found}"))
                }
                Err(error) => RowOutcome::Bad(error.to_string()),
            }
        };
        Ok(Some(Row {
            line,
            index: self.index,
            raw,
            outcome,
        }))
    }
}

/// Records of CSV text, one per line unless a quoted field spans line breaks; blank lines are
/// skipped but counted, so each record knows the line it starts on.
#[derive(Debug)]
pub struct LineRecords<R> {
    reader: R,
    buffer: Vec<u8>,
    line: u64,
    bytes_read: u64,
}

impl<R: BufRead> LineRecords<R> {
    /// Reads records from `reader`.
    pub fn new(reader: R) -> Self {
        Self {
            reader,
            buffer: Vec::with_capacity(256),
            line: 0,
            bytes_read: 0,
        }
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Reads the next non-blank record: its first line and its fields. Fields without quotes are
    /// split directly (the fast path); quoted ones follow RFC 4180.
    pub fn next_record(&mut self) -> std::io::Result<Option<(u64, Vec<String>)>> {
        self.buffer.clear();
        let mut start_line = 0;
        loop {
            let read = self.reader.read_until(b'\n', &mut self.buffer)?;
            if read == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                break;
            }
            self.bytes_read += read as u64;
            self.line += 1;
            if start_line == 0 {
                start_line = self.line;
            }
            let quotes = self.buffer.iter().filter(|&&byte| byte == b'"').count();
            if quotes % 2 == 0 {
                let content = trim_line_end(&self.buffer);
                if content.is_empty() {
                    // A blank line is not a row.
                    self.buffer.clear();
                    start_line = 0;
                    continue;
                }
                break;
            }
        }
        let content = trim_line_end(&self.buffer);
        let text = String::from_utf8_lossy(content);
        let fields = if content.contains(&b'"') {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .from_reader(content);
            let mut record = csv::StringRecord::new();
            match reader.read_record(&mut record) {
                Ok(_) => record.iter().map(str::to_string).collect(),
                Err(_) => vec![text.into_owned()],
            }
        } else {
            text.split(',').map(str::to_string).collect()
        };
        Ok(Some((start_line, fields)))
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

fn format_error_for(path: &Path) -> impl Fn(String) -> Error + '_ {
    move |message| Error::Format {
        path: path.to_path_buf(),
        message,
    }
}

impl Iterator for CsvSource {
    type Item = Result<Row>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_row().transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(content: &[u8]) -> Vec<Row> {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("messy.csv");
        std::fs::write(&path, content).expect("write");
        CsvSource::open(&path)
            .expect("opens")
            .collect::<Result<Vec<_>>>()
            .expect("reads")
    }

    #[test]
    fn reads_a_messy_file() {
        let content = b"\xef\xbb\xbfIndex,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\r\n\
HSI,1986-12-31,2568.3,2568.3,2568.3,2568.3,2568.3,0.0,333.88\r\n\
\r\n\
,,,,,,,,\r\n\
HSI,02.01.1987,2540.1,2540.1,2540.1,2540.1,2540.1,0,330.21\r\n\
HSI,1987-01-05,abc,2540.1,2540.1,2540.1,2540.1,0,330.21\r\n\
HSI,1987-01-06,2540.1,2540";
        let rows = rows(content);
        let summary: Vec<(u64, String)> = rows
            .iter()
            .map(|row| {
                let what = match &row.outcome {
                    RowOutcome::Quote(quote) => format!("quote {}", quote.trade_date),
                    RowOutcome::Bad(reason) => format!("bad: {reason}"),
                    RowOutcome::Empty => "empty".to_string(),
                };
                (row.line, what)
            })
            .collect();
        assert_eq!(summary.len(), 5, "{summary:?}");
        // The blank line 3 is not a row, but it counts as a line.
        assert_eq!(summary[0], (2, "quote 1986-12-31".to_string()));
        assert_eq!(summary[1], (4, "empty".to_string()));
        assert_eq!(summary[2], (5, "quote 1987-01-02".to_string()));
        assert_eq!(summary[3].0, 6);
        assert!(summary[3].1.contains("Open"), "{summary:?}");
        assert_eq!(summary[4].0, 7);
        assert!(summary[4].1.contains("truncated last line"), "{summary:?}");
        assert_eq!(rows[4].raw, "HSI,1987-01-06,2540.1,2540");
    }

    #[test]
    fn a_complete_last_line_without_a_line_break_is_fine() {
        let rows = rows(
            b"Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\n\
HSI,1986-12-31,2568.3,2568.3,2568.3,2568.3,2568.3,0.0,333.",
        );
        assert!(matches!(rows[0].outcome, RowOutcome::Quote(_)));
    }

    #[test]
    fn a_wrong_header_is_a_clear_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("wrong.csv");
        std::fs::write(&path, "a,b,c\n1,2,3\n").expect("write");
        let error = CsvSource::open(&path).expect_err("wrong header");
        assert!(
            error.to_string().contains("lacks the column(s) Index"),
            "{error}"
        );
        std::fs::write(&path, "").expect("write");
        let error = CsvSource::open(&path).expect_err("empty");
        assert!(error.to_string().contains("empty"), "{error}");
    }
}
