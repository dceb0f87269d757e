//! Splitting CSV text into records and fields: one record per line unless a quoted field spans
//! line breaks, any one-byte delimiter, RFC 4180 quoting (`"a ""b"""`), blank lines skipped but
//! counted, CR and LF endings.
//!
//! Records are handed out borrowed from reused buffers, so reading a row allocates nothing.

use std::io::BufRead;

/// Where a field's text lies: in the record's line, or (when it was quoted) in the unescaped copy.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    end: usize,
    unescaped: bool,
}

/// One record: the line it starts on, its text and its fields.
#[derive(Debug)]
pub struct Record<'a> {
    /// 1-based line where the record starts.
    pub line: u64,
    /// The record's text without its line ending (invalid UTF-8 replaced by U+FFFD).
    pub text: &'a str,
    /// Whether the bytes were valid UTF-8.
    pub valid_utf8: bool,
    unescaped: &'a str,
    spans: &'a [Span],
}

impl<'a> Record<'a> {
    /// Number of fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// Whether the record has no fields (never true: a record has at least one).
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// Field `index` (unquoted), or `None` past the last one.
    pub fn field(&self, index: usize) -> Option<&'a str> {
        let span = self.spans.get(index)?;
        let source = if span.unescaped {
            self.unescaped
        } else {
            self.text
        };
        source.get(span.start..span.end)
    }

    /// The fields in order.
    pub fn fields(&self) -> impl Iterator<Item = &'a str> + '_ {
        (0..self.spans.len()).filter_map(|index| self.field(index))
    }

    /// Whether every field is empty or blank (`,,,,`).
    pub fn all_blank(&self) -> bool {
        self.fields().all(|field| field.trim().is_empty())
    }
}

/// Records of CSV text read from `R`.
#[derive(Debug)]
pub struct LineRecords<R> {
    reader: R,
    delimiter: u8,
    buffer: Vec<u8>,
    lossy: String,
    unescaped: String,
    spans: Vec<Span>,
    line: u64,
    bytes_read: u64,
    terminated: bool,
}

impl<R: BufRead> LineRecords<R> {
    /// Reads records from `reader`, fields separated by `delimiter`.
    pub fn new(reader: R, delimiter: u8) -> Self {
        Self {
            reader,
            delimiter,
            buffer: Vec::with_capacity(256),
            lossy: String::new(),
            unescaped: String::new(),
            spans: Vec::with_capacity(16),
            line: 0,
            bytes_read: 0,
            terminated: true,
        }
    }

    /// Splits the following records at `delimiter` (the header may be read before it is known).
    pub fn set_delimiter(&mut self, delimiter: u8) {
        self.delimiter = delimiter;
    }

    /// Bytes consumed so far.
    pub fn bytes_read(&self) -> u64 {
        self.bytes_read
    }

    /// Whether the last record read ended with a line break (a file's last line may not).
    pub fn last_record_terminated(&self) -> bool {
        self.terminated
    }

    /// Reads the next non-blank record.
    pub fn next_record(&mut self) -> std::io::Result<Option<Record<'_>>> {
        let Some(line) = self.read_lines()? else {
            return Ok(None);
        };
        let content_length = trim_line_end(&self.buffer).len();
        let valid_utf8 = std::str::from_utf8(&self.buffer[..content_length]).is_ok();
        if !valid_utf8 {
            self.lossy = String::from_utf8_lossy(&self.buffer[..content_length]).into_owned();
        }
        let text = if valid_utf8 {
            // Checked just above; the fallback is never taken.
            std::str::from_utf8(&self.buffer[..content_length]).unwrap_or_default()
        } else {
            self.lossy.as_str()
        };
        self.spans.clear();
        self.unescaped.clear();
        split_fields(text, self.delimiter, &mut self.spans, &mut self.unescaped);
        Ok(Some(Record {
            line,
            text,
            valid_utf8,
            unescaped: &self.unescaped,
            spans: &self.spans,
        }))
    }

    /// Fills the buffer with the next non-blank record's lines (more than one when a quoted field
    /// holds line breaks); returns the line it starts on.
    fn read_lines(&mut self) -> std::io::Result<Option<u64>> {
        self.buffer.clear();
        let mut start_line = 0;
        let mut quoting = Quoting::FieldStart;
        loop {
            let before = self.buffer.len();
            let read = self.reader.read_until(b'\n', &mut self.buffer)?;
            if read == 0 {
                if self.buffer.is_empty() {
                    return Ok(None);
                }
                self.terminated = false;
                return Ok(Some(start_line));
            }
            self.bytes_read += read as u64;
            self.line += 1;
            if start_line == 0 {
                start_line = self.line;
            }
            quoting = quoting.scan(&self.buffer[before..], self.delimiter);
            self.terminated = self.buffer.last() == Some(&b'\n');
            if quoting != Quoting::InQuotedField {
                if trim_line_end(&self.buffer).is_empty() {
                    // A blank line is not a record.
                    self.buffer.clear();
                    start_line = 0;
                    continue;
                }
                return Ok(Some(start_line));
            }
        }
    }
}

/// The fields of one line of text split at `delimiter` (quotes removed).
pub fn split_line(text: &str, delimiter: u8) -> Vec<String> {
    let mut spans = Vec::new();
    let mut unescaped = String::new();
    split_fields(text, delimiter, &mut spans, &mut unescaped);
    spans
        .iter()
        .map(|span| {
            let source = if span.unescaped { &unescaped } else { text };
            source
                .get(span.start..span.end)
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

/// Where the scan of a record's bytes stands, as [`split_quoted`] reads fields: a `"` opens a
/// quoted field only at the start of a field; anywhere else it is text. A line break ends the
/// record unless a quoted field is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quoting {
    /// At the start of a field.
    FieldStart,
    /// In a field that did not start with `"`, or after a quoted field's closing `"`.
    InText,
    /// In a quoted field.
    InQuotedField,
    /// Just after a `"` in a quoted field: the closing one, or the first of `""`.
    QuoteInQuotedField,
}

impl Quoting {
    fn scan(self, bytes: &[u8], delimiter: u8) -> Self {
        bytes.iter().fold(self, |state, &byte| match (state, byte) {
            (Quoting::InQuotedField, b'"') => Quoting::QuoteInQuotedField,
            (Quoting::InQuotedField, _) => Quoting::InQuotedField,
            (Quoting::QuoteInQuotedField, b'"') => Quoting::InQuotedField,
            (_, b'\n') => Quoting::FieldStart,
            (_, byte) if byte == delimiter => Quoting::FieldStart,
            (Quoting::FieldStart, b'"') => Quoting::InQuotedField,
            _ => Quoting::InText,
        })
    }
}

/// Splits `text` at `delimiter`; quoted fields are unescaped into `unescaped`.
fn split_fields(text: &str, delimiter: u8, spans: &mut Vec<Span>, unescaped: &mut String) {
    let bytes = text.as_bytes();
    if !bytes.contains(&b'"') {
        let mut start = 0;
        for (index, &byte) in bytes.iter().enumerate() {
            if byte == delimiter {
                spans.push(Span {
                    start,
                    end: index,
                    unescaped: false,
                });
                start = index + 1;
            }
        }
        spans.push(Span {
            start,
            end: bytes.len(),
            unescaped: false,
        });
        return;
    }
    split_quoted(text, delimiter, spans, unescaped);
}

/// RFC 4180: a field that starts with `"` runs to the next lone `"`; `""` inside is one quote.
/// Text after the closing quote up to the delimiter is kept (lenient, like most readers).
fn split_quoted(text: &str, delimiter: u8, spans: &mut Vec<Span>, unescaped: &mut String) {
    let bytes = text.as_bytes();
    let mut position = 0;
    loop {
        let field_start = position;
        if bytes.get(position) == Some(&b'"') {
            let start = unescaped.len();
            position += 1;
            let mut segment = position;
            while position < bytes.len() {
                if bytes[position] == b'"' {
                    unescaped.push_str(&text[segment..position]);
                    if bytes.get(position + 1) == Some(&b'"') {
                        unescaped.push('"');
                        position += 2;
                        segment = position;
                        continue;
                    }
                    position += 1;
                    segment = position;
                    break;
                }
                position += 1;
            }
            // Anything between the closing quote and the delimiter, and an unclosed field's rest.
            while position < bytes.len() && bytes[position] != delimiter {
                position += 1;
            }
            unescaped.push_str(&text[segment.min(position)..position]);
            spans.push(Span {
                start,
                end: unescaped.len(),
                unescaped: true,
            });
        } else {
            while position < bytes.len() && bytes[position] != delimiter {
                position += 1;
            }
            spans.push(Span {
                start: field_start,
                end: position,
                unescaped: false,
            });
        }
        if position >= bytes.len() {
            return;
        }
        position += 1; // the delimiter
        if position == bytes.len() {
            spans.push(Span {
                start: position,
                end: position,
                unescaped: false,
            });
            return;
        }
    }
}

fn trim_line_end(line: &[u8]) -> &[u8] {
    let mut end = line.len();
    while end > 0 && matches!(line[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    &line[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(text: &str, delimiter: u8) -> Vec<(u64, Vec<String>)> {
        let mut records = LineRecords::new(text.as_bytes(), delimiter);
        let mut out = Vec::new();
        while let Some(record) = records.next_record().expect("reads") {
            out.push((record.line, record.fields().map(str::to_string).collect()));
        }
        out
    }

    #[test]
    fn splits_plain_and_quoted_fields() {
        let records = all(
            "a,b,c\r\n\r\n\"x, y\",\"say \"\"hi\"\"\",\n\"multi\nline\",2,3\nlast",
            b',',
        );
        assert_eq!(records[0], (1, vec!["a".into(), "b".into(), "c".into()]));
        assert_eq!(
            records[1],
            (3, vec!["x, y".into(), "say \"hi\"".into(), String::new()])
        );
        assert_eq!(
            records[2],
            (4, vec!["multi\nline".into(), "2".into(), "3".into()])
        );
        assert_eq!(records[3], (6, vec!["last".into()]));
    }

    #[test]
    fn other_delimiters_and_the_last_line_break() {
        let mut records = LineRecords::new("a;b\t1\n\"2;3\";4".as_bytes(), b';');
        let first: Vec<String> = records
            .next_record()
            .expect("reads")
            .expect("a record")
            .fields()
            .map(str::to_string)
            .collect();
        assert_eq!(first, ["a", "b\t1"]);
        assert!(records.last_record_terminated());
        let second = records.next_record().expect("reads").expect("a record");
        assert_eq!(second.field(0), Some("2;3"));
        assert_eq!(second.field(1), Some("4"));
        assert_eq!(second.field(2), None);
        assert!(!records.last_record_terminated());
        assert!(records.next_record().expect("reads").is_none());
    }

    /// A `"` inside an unquoted field is text, as the field splitter reads it; it used to count
    /// as opening a quoted field, so the following rows were read as part of that one (found by
    /// `tests/fuzz_csv.rs`).
    #[test]
    fn a_quote_inside_an_unquoted_field_does_not_join_lines() {
        let records = all("a,25\"68,c\nd,\"e\"x\",f\ng,\"h\nh\",i\n", b',');
        assert_eq!(
            records[0],
            (1, vec!["a".into(), "25\"68".into(), "c".into()])
        );
        assert_eq!(records[1], (2, vec!["d".into(), "ex\"".into(), "f".into()]));
        assert_eq!(records[2], (3, vec!["g".into(), "h\nh".into(), "i".into()]));
        assert_eq!(records.len(), 3);
    }

    #[test]
    fn invalid_utf8_is_flagged() {
        let mut records = LineRecords::new(&b"a,\xff\n"[..], b',');
        let record = records.next_record().expect("reads").expect("a record");
        assert!(!record.valid_utf8);
        assert_eq!(record.field(1), Some("\u{fffd}"));
    }
}
