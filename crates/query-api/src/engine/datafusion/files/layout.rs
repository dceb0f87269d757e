//! Where a table's files sit in the lake: which partition owns a key, from the catalogued
//! locations or from Hive-style `key=value/` path segments.

use std::collections::BTreeMap;

use stockstream_common::lake::{hive_escape, hive_unescape};

use crate::catalog::{PartitionDef, TableDef};

/// The registered partition whose location holds `key` (the deepest, as Athena reads prefixes).
pub(super) fn owning_partition(
    wanted: &BTreeMap<String, PartitionDef>,
    key: &str,
) -> Option<PartitionDef> {
    let mut end = key.len();
    while let Some(slash) = key[..end].rfind('/') {
        if let Some(def) = wanted.get(&key[..=slash]) {
            return Some(def.clone());
        }
        end = slash;
    }
    None
}

/// The partition a file of a projected table belongs to, from its `key=value/` path segments.
pub(super) fn projected_partition(
    def: &TableDef,
    location: &str,
    key: &str,
) -> Option<PartitionDef> {
    let relative = key.strip_prefix(location)?;
    let segments: Vec<&str> = relative.split('/').collect();
    let keys = &def.partition_keys;
    if segments.len() <= keys.len() {
        return None;
    }
    let mut values = Vec::with_capacity(keys.len());
    for (segment, column) in segments.iter().zip(keys) {
        let (name, value) = segment.split_once('=')?;
        if name != column.name {
            return None;
        }
        values.push(hive_unescape(value));
    }
    Some(PartitionDef {
        location: format!("{location}{}/", partition_path(def, &values)),
        values,
    })
}

/// The `key=value/key=value` path of a partition below its table's location (values
/// Hive-escaped, no trailing slash).
pub(super) fn partition_path(def: &TableDef, values: &[String]) -> String {
    def.partition_keys
        .iter()
        .zip(values)
        .map(|(key, value)| format!("{}={}", key.name, hive_escape(value)))
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_belong_to_the_deepest_catalogued_location() {
        let wanted = BTreeMap::from([(
            "quotes/symbol=HSI/year=1987/".to_string(),
            PartitionDef {
                values: vec!["HSI".into(), "1987".into()],
                location: "quotes/symbol=HSI/year=1987/".into(),
            },
        )]);
        let owner = owning_partition(&wanted, "quotes/symbol=HSI/year=1987/quotes+0+1+2.parquet");
        assert_eq!(
            owner.map(|def| def.values),
            Some(vec!["HSI".to_string(), "1987".to_string()])
        );
        assert!(owning_partition(&wanted, "quotes/symbol=HSI/year=1988/x.parquet").is_none());
    }
}
