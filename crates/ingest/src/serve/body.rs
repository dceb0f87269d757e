//! Reading a push request's body: NDJSON or a JSON array (either wire format), or CSV with the
//! header of `indexProcessed.csv`. Each record is judged on its own, by its line.

use stockstream_common::record::Quote;

use crate::reader::{Column, Columns, DateFormat, Decimal, Form, LineRecords, RowParser};

/// A parsed body: per line, a quote or why not, and the record's text.
pub(super) type Parsed = Vec<(u64, std::result::Result<Quote, String>, String)>;

/// NDJSON (one JSON object per line; blank lines ignored) or a JSON array of objects.
pub(super) fn parse_json(body: &[u8]) -> std::result::Result<Parsed, String> {
    let text = std::str::from_utf8(body).map_err(|error| format!("body is not UTF-8: {error}"))?;
    if text.trim_start().starts_with('[') {
        let values: Vec<serde_json::Value> = serde_json::from_str(text)
            .map_err(|error| format!("body is not a JSON array of records: {error}"))?;
        return Ok(values
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let raw = value.to_string();
                let outcome = Quote::from_any_json(raw.as_bytes())
                    .map(|(quote, _)| quote)
                    .map_err(|error| error.to_string());
                (index as u64 + 1, outcome, raw)
            })
            .collect());
    }
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            let outcome = Quote::from_any_json(line.trim().as_bytes())
                .map(|(quote, _)| quote)
                .map_err(|error| error.to_string());
            (index as u64 + 1, outcome, line.to_string())
        })
        .collect())
}

/// CSV with the header of `indexProcessed.csv` (columns found by name; `Index` required,
/// `CloseUSD` optional: null when absent); all-empty rows ignored. Numeric day/month dates are
/// accepted only when unambiguous: a request is too small to settle the order.
pub(super) fn parse_csv(body: &[u8]) -> std::result::Result<Parsed, String> {
    let mut records = LineRecords::new(body, b',');
    let header: Vec<String> = match records
        .next_record()
        .map_err(|error| format!("unreadable CSV: {error}"))?
    {
        Some(record) => record.fields().map(str::to_string).collect(),
        None => return Ok(Vec::new()),
    };
    let columns = Columns::from_header(&header)?;
    if columns.position(Column::Symbol).is_none() {
        return Err(format!(
            "header `{}` lacks the column Index (the symbol of each row)",
            header.join(",")
        ));
    }
    let parser = RowParser {
        columns,
        decimal: Decimal::Point,
        dates: DateFormat::Inferred {
            primary: Form::YearFirst(b'-'),
            order: None,
        },
        symbol: None,
        usd_rate: None,
    };
    let mut parsed = Vec::new();
    while let Some(record) = records
        .next_record()
        .map_err(|error| format!("unreadable CSV: {error}"))?
    {
        if record.all_blank() {
            continue;
        }
        let outcome = parser.parse(&record).map_err(|bad| bad.to_string());
        parsed.push((record.line, outcome, record.text.to_string()));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_body_format() {
        let ndjson = b"{\"symbol\":\"HSI\",\"trade_date\":\"2010-01-04\",\"open\":1.0,\"high\":2.0,\"low\":1.0,\"close\":1.5,\"adj_close\":1.5,\"volume\":3,\"close_usd\":0.2}\n\n{\"Index\":\"N225\",\"Date\":\"2010-01-04\",\"Open\":1.0,\"High\":2.0,\"Low\":1.0,\"Close\":1.5,\"Adj Close\":1.5,\"Volume\":3.0,\"CloseUSD\":0.2}\nnot json\n";
        let parsed = parse_json(ndjson).expect("parses");
        assert_eq!(parsed.len(), 3);
        assert!(parsed[0].1.is_ok() && parsed[1].1.is_ok());
        assert_eq!(parsed[1].0, 3, "lines count blank lines");
        assert_eq!(parsed[2].0, 4);
        assert!(parsed[2].1.is_err());

        let array = br#"[{"Index":"N225","Date":"2010-01-04","Open":1.0,"High":2.0,"Low":1.0,"Close":1.5,"Adj Close":1.5,"Volume":3,"CloseUSD":0.2}]"#;
        assert!(parse_json(array).expect("array")[0].1.is_ok());
        assert!(parse_json(b"[{").is_err());

        let csv = b"Index,Date,Open,High,Low,Close,Adj Close,Volume,CloseUSD\r\nHSI,2010-01-04,1,2,1,1.5,1.5,3,0.2\r\n,,,,,,,,\r\nHSI,2010-01-05,1,0.5,1,1.5,1.5,3,0.2\r\n";
        let parsed = parse_csv(csv).expect("csv");
        assert_eq!(parsed.len(), 2);
        assert!(parsed[0].1.is_ok());
        assert_eq!(parsed[1].0, 4);
        assert!(
            parsed[1]
                .1
                .as_ref()
                .expect_err("high < low")
                .contains("below low")
        );
        assert!(parse_csv(b"a,b\n1,2\n").is_err());
    }
}
