//! Partition paths and object keys.

use serde::{Deserialize, Serialize};

/// Name (and top-level prefix) of the quotes table.
pub const QUOTES_TABLE: &str = "quotes";
/// Prefix of stockstream's own control objects; never part of a table.
pub const CONTROL_PREFIX: &str = "_stockstream/";

/// Folder below a table that holds compacted generations of its partitions
/// (`quotes/_compacted/<partition path>/g<id>/`); the `_` hides it from Hive-style readers that
/// glob the table, and from the crawler's partition paths.
pub const COMPACTED_DIR: &str = "_compacted";

/// The key a file of a compacted generation would have in its partition's own directory:
/// `<table>/_compacted/<path>/g<id>/<file>` → `<table>/<path>/<file>`; other keys are returned as
/// they are. `table_location` ends in `/`.
pub fn home_key<'a>(table_location: &str, key: &'a str) -> std::borrow::Cow<'a, str> {
    let compacted = format!("{table_location}{COMPACTED_DIR}/");
    let Some(rest) = key.strip_prefix(&compacted) else {
        return key.into();
    };
    let mut parts = rest.rsplitn(3, '/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(file), Some(generation), Some(path))
            if generation.len() > 1
                && generation.starts_with('g')
                && generation[1..].bytes().all(|byte| byte.is_ascii_digit()) =>
        {
            format!("{table_location}{path}/{file}").into()
        }
        _ => key.into(),
    }
}

/// The Kafka range a data file's name carries: `<topic>+<partition>+<first>+<last>.parquet`.
///
/// Sink files and merged files are both named this way; a merged file's range spans the ranges it
/// merged, and within its Hive partition no record of that Kafka partition in the span lies in
/// another file, so the name stays exact for readers that decide by name (the live tail).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileRange {
    /// Kafka topic.
    pub topic: String,
    /// Kafka partition.
    pub partition: i32,
    /// First offset in the file.
    pub first: i64,
    /// Last offset in the file.
    pub last: i64,
}

impl FileRange {
    /// Parses a file name (the last segment of a key); `None` if it is not a data file's name.
    pub fn parse(file_name: &str) -> Option<Self> {
        let stem = file_name.strip_suffix(".parquet")?;
        let mut parts = stem.rsplitn(4, '+');
        let last = parts.next()?.parse().ok()?;
        let first = parts.next()?.parse().ok()?;
        let partition = parts.next()?.parse().ok()?;
        let topic = parts.next()?.to_string();
        (!topic.is_empty() && first <= last).then_some(Self {
            topic,
            partition,
            first,
            last,
        })
    }

    /// Parses the file name of a key.
    pub fn of_key(key: &str) -> Option<Self> {
        Self::parse(key.rsplit('/').next().unwrap_or(key))
    }

    /// The file name: `<topic>+<partition>+<first, 20 digits>+<last, 20 digits>.parquet`.
    pub fn file_name(&self) -> String {
        format!(
            "{}+{}+{:020}+{:020}.parquet",
            self.topic, self.partition, self.first, self.last
        )
    }

    /// Whether both name the same Kafka partition and their offset spans meet.
    pub fn overlaps(&self, other: &FileRange) -> bool {
        self.topic == other.topic
            && self.partition == other.partition
            && self.first <= other.last
            && other.first <= self.last
    }
}

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
    fn generation_files_map_to_their_home_directory() {
        assert_eq!(
            home_key(
                "quotes/",
                "quotes/_compacted/symbol=HSI/year=1987/g0001795730437647/q+0+1+2.parquet"
            ),
            "quotes/symbol=HSI/year=1987/q+0+1+2.parquet"
        );
        for key in [
            "quotes/symbol=HSI/year=1987/q+0+1+2.parquet",
            "quotes/_compacted/symbol=HSI/year=1987/gx/q.parquet",
            "quotes/_compacted/q.parquet",
        ] {
            assert_eq!(home_key("quotes/", key), key);
        }
    }

    #[test]
    fn file_names_carry_their_kafka_range() {
        let range = FileRange::of_key(
            "quotes/symbol=HSI/year=1987/quotes+2+00000000000000000000+00000000000000000249.parquet",
        )
        .expect("a data file");
        assert_eq!((range.partition, range.first, range.last), (2, 0, 249));
        assert_eq!(FileRange::parse(&range.file_name()), Some(range.clone()));
        let later = FileRange {
            first: 250,
            last: 300,
            ..range.clone()
        };
        assert!(!range.overlaps(&later));
        assert!(range.overlaps(&FileRange {
            first: 249,
            ..later.clone()
        }));
        assert!(!range.overlaps(&FileRange {
            partition: 3,
            ..range.clone()
        }));
        for name in [
            "x.parquet",
            "q+1+2.parquet",
            "q+a+1+2.parquet",
            "q+1+5+2.parquet",
            "q+1+2+3.json",
        ] {
            assert_eq!(FileRange::parse(name), None, "{name}");
        }
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
