//! Partition paths and object keys.

use serde::{Deserialize, Serialize};

/// Name (and top-level prefix) of the quotes table.
pub const QUOTES_TABLE: &str = "quotes";
/// Prefix of stockstream's own control objects; never part of a table.
pub const CONTROL_PREFIX: &str = "_stockstream/";

/// One `name=value` segment of a Hive-style partition path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct PartitionValue {
    /// Partition column.
    pub name: String,
    /// Value as it appears in the path, unescaped.
    pub value: String,
}

/// Renders partition values as a path, e.g. `symbol=HSI/year=1987`.
pub fn partition_path(values: &[PartitionValue]) -> String {
    values
        .iter()
        .map(|segment| format!("{}={}", segment.name, hive_escape(&segment.value)))
        .collect::<Vec<_>>()
        .join("/")
}

/// Key of a data file: `<table>/<partition path>/<topic>+<partition>+<first>+<last>.parquet`.
///
/// Offsets are zero-padded to 20 digits so that keys sort in offset order, and the key names the
/// exact Kafka range the file holds (as the Kafka Connect S3 sink does).
pub fn data_object_key(
    table: &str,
    partition: &[PartitionValue],
    topic: &str,
    kafka_partition: i32,
    first_offset: i64,
    last_offset: i64,
) -> String {
    format!(
        "{table}/{}/{topic}+{kafka_partition}+{first_offset:020}+{last_offset:020}.parquet",
        partition_path(partition)
    )
}

/// Parses the partition values out of a data object key below `table/`.
///
/// Returns `None` for keys outside the table or with a segment that is not `name=value`.
pub fn parse_partition_path(table: &str, key: &str) -> Option<Vec<PartitionValue>> {
    let rest = key.strip_prefix(table)?.strip_prefix('/')?;
    let (directories, _file) = rest.rsplit_once('/')?;
    directories
        .split('/')
        .map(|segment| {
            let (name, value) = segment.split_once('=')?;
            if name.is_empty() {
                return None;
            }
            Some(PartitionValue {
                name: name.to_string(),
                value: hive_unescape(value),
            })
        })
        .collect()
}

/// Escapes a partition value the way Hive does (`%XX` for characters unsafe in paths).
pub fn hive_escape(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    hive_escape_into(value, &mut escaped);
    escaped
}

/// [`hive_escape`], appending to `escaped`.
pub fn hive_escape_into(value: &str, escaped: &mut String) {
    for character in value.chars() {
        let unsafe_character = character.is_control()
            || matches!(
                character,
                '"' | '#' | '%' | '\'' | '*' | '/' | ':' | '=' | '?' | '\\' | '{' | '[' | ']' | '^'
            );
        if unsafe_character && character.is_ascii() {
            use std::fmt::Write;
            // Writing into a String cannot fail.
            let _ = write!(escaped, "%{:02X}", character as u32);
        } else {
            escaped.push(character);
        }
    }
}

/// Reverses [`hive_escape`]; malformed escapes are kept as they are.
pub fn hive_unescape(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%'
            && index + 2 < bytes.len()
            && let Some(byte) = std::str::from_utf8(&bytes[index + 1..index + 3])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
        {
            decoded.push(byte);
            index += 3;
            continue;
        }
        decoded.push(bytes[index]);
        index += 1;
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(symbol: &str, year: &str) -> Vec<PartitionValue> {
        vec![
            PartitionValue {
                name: "symbol".into(),
                value: symbol.into(),
            },
            PartitionValue {
                name: "year".into(),
                value: year.into(),
            },
        ]
    }

    #[test]
    fn keys_name_the_partition_and_the_offset_range() {
        let key = data_object_key("quotes", &values("HSI", "1987"), "quotes", 2, 0, 249);
        assert_eq!(
            key,
            "quotes/symbol=HSI/year=1987/quotes+2+00000000000000000000+00000000000000000249.parquet"
        );
        assert_eq!(
            parse_partition_path("quotes", &key),
            Some(values("HSI", "1987"))
        );
        assert_eq!(parse_partition_path("quotes", "other/x=1/f.parquet"), None);
        assert_eq!(
            parse_partition_path("quotes", "quotes/nokey/f.parquet"),
            None
        );
    }

    #[test]
    fn escaping_round_trips() {
        for value in ["^GSPC", "000001.SS", "a/b=c%d", "plain"] {
            let escaped = hive_escape(value);
            assert!(!escaped.contains('/') && !escaped.contains('='));
            assert_eq!(hive_unescape(&escaped), value);
        }
        assert_eq!(hive_escape("^GSPC"), "%5EGSPC");
        assert_eq!(hive_unescape("100%"), "100%");
    }
}
