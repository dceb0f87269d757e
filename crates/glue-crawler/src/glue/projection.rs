//! The `projection` strategy: Athena partition-projection properties on the table (`enum`
//! values for string keys, an `integer` range for int keys, a location template), widened with
//! one `UpdateTable` when a value falls outside.

use std::collections::{BTreeMap, BTreeSet};

use aws_sdk_glue::types::TableInput;
use stockstream_common::catalog::Column;
use stockstream_common::events::LakeCommitEvent;

use super::{GlueCatalog, GlueOutcome, catalog_columns, glue_build_error};
use crate::error::Result;

impl GlueCatalog {
    pub(super) async fn extend_projection(
        &mut self,
        table: &str,
        events: &[&LakeCommitEvent],
        outcome: &mut GlueOutcome,
    ) -> Result<()> {
        let found = self.fetch_table(table).await?;
        let Some(definition) = found.table() else {
            return Ok(());
        };
        let current = definition.parameters().cloned().unwrap_or_default();
        let location = definition
            .storage_descriptor()
            .and_then(|descriptor| descriptor.location())
            .unwrap_or_default()
            .to_string();
        let keys = catalog_columns(definition.partition_keys());
        let wanted = merge_projection(&current, &projection_parameters(&location, &keys, events));
        if wanted == current {
            return Ok(());
        }
        let mut input = TableInput::builder()
            .name(table)
            .table_type(definition.table_type().unwrap_or("EXTERNAL_TABLE"))
            .set_storage_descriptor(definition.storage_descriptor().cloned())
            .set_partition_keys(Some(definition.partition_keys().to_vec()));
        for (key, value) in &wanted {
            input = input.parameters(key, value);
        }
        let input = input
            .build()
            .map_err(|error| glue_build_error("building the table", error))?;
        self.update_table(input).await?;
        tracing::info!(table, "partition projection extended");
        outcome.tables_updated += 1;
        Ok(())
    }
}

/// Athena partition-projection parameters covering the partitions of `events`.
pub(super) fn projection_parameters(
    location: &str,
    keys: &[Column],
    events: &[&LakeCommitEvent],
) -> BTreeMap<String, String> {
    let mut parameters = BTreeMap::from([("projection.enabled".to_string(), "true".to_string())]);
    let template: Vec<String> = keys
        .iter()
        .map(|key| format!("{0}=${{{0}}}", key.name))
        .collect();
    parameters.insert(
        "storage.location.template".to_string(),
        format!("{}{}/", location, template.join("/")),
    );
    for key in keys {
        let values: BTreeSet<&str> = events
            .iter()
            .flat_map(|event| event.partition.iter())
            .filter(|value| value.name == key.name)
            .map(|value| value.value.as_str())
            .collect();
        let properties = if key.data_type == "int" || key.data_type == "bigint" {
            integer_projection(&values)
        } else if let Some((java_format, unit)) = iso_date_format(&values) {
            date_projection(&values, java_format, unit)
        } else {
            enum_projection(&values)
        };
        for (property, value) in properties {
            parameters.insert(format!("projection.{}.{property}", key.name), value);
        }
    }
    parameters
}

/// Projection properties of an integer key (`type`, `range`, and `digits` when zero-padded);
/// none without a number.
fn integer_projection(values: &BTreeSet<&str>) -> Vec<(&'static str, String)> {
    let numbers: Vec<i64> = values
        .iter()
        .filter_map(|value| value.parse().ok())
        .collect();
    let (Some(min), Some(max)) = (numbers.iter().min(), numbers.iter().max()) else {
        return Vec::new();
    };
    let mut properties = vec![
        ("type", "integer".into()),
        ("range", format!("{min},{max}")),
    ];
    // Zero-padded values (`month=03`): Athena must render them the same way.
    if let Some(width) = values
        .iter()
        .filter(|value| value.len() > 1 && value.starts_with('0'))
        .map(|value| value.len())
        .max()
    {
        properties.push(("digits", width.to_string()));
    }
    properties
}

/// The Java date format and interval unit when every value is an ISO date (`yyyy-mm-dd`: 10
/// characters) or an ISO month (`yyyy-mm`: 7).
fn iso_date_format(values: &BTreeSet<&str>) -> Option<(&'static str, &'static str)> {
    let all_iso = |length: usize, suffix: &str| {
        !values.is_empty()
            && values.iter().all(|value| {
                value.len() == length
                    && chrono::NaiveDate::parse_from_str(&format!("{value}{suffix}"), "%Y-%m-%d")
                        .is_ok()
            })
    };
    [
        (all_iso(10, ""), "yyyy-MM-dd", "DAYS"),
        (all_iso(7, "-01"), "yyyy-MM", "MONTHS"),
    ]
    .into_iter()
    .find_map(|(matches, format, unit)| matches.then_some((format, unit)))
}

/// Projection properties of an ISO date key (`date={yyyy-mm-dd}`, `{yyyy-mm}`): a date
/// projection, not an ever growing enum. ISO strings sort like the dates they name.
fn date_projection(
    values: &BTreeSet<&str>,
    java_format: &'static str,
    unit: &'static str,
) -> Vec<(&'static str, String)> {
    let (Some(min), Some(max)) = (values.first(), values.last()) else {
        return Vec::new();
    };
    vec![
        ("type", "date".into()),
        ("format", java_format.into()),
        ("range", format!("{min},{max}")),
        ("interval", "1".into()),
        ("interval.unit", unit.into()),
    ]
}

/// Projection properties of any other key: an `enum` of its values; none without a value.
fn enum_projection(values: &BTreeSet<&str>) -> Vec<(&'static str, String)> {
    if values.is_empty() {
        return Vec::new();
    }
    vec![
        ("type", "enum".into()),
        (
            "values",
            values.iter().copied().collect::<Vec<_>>().join(","),
        ),
    ]
}

/// `current` table parameters with the projection widened to also cover `wanted`.
pub(super) fn merge_projection(
    current: &std::collections::HashMap<String, String>,
    wanted: &BTreeMap<String, String>,
) -> std::collections::HashMap<String, String> {
    let mut merged = current.clone();
    for (key, value) in wanted {
        let widened = match current.get(key) {
            Some(old) if key.ends_with(".values") => {
                let mut values: BTreeSet<&str> = old.split(',').collect();
                values.extend(value.split(','));
                values.into_iter().collect::<Vec<_>>().join(",")
            }
            Some(old) if key.ends_with(".range") => {
                let parse = |text: &str| -> Option<(i64, i64)> {
                    let (low, high) = text.split_once(',')?;
                    Some((low.trim().parse().ok()?, high.trim().parse().ok()?))
                };
                match (parse(old), parse(value)) {
                    (Some((a, b)), Some((c, d))) => format!("{},{}", a.min(c), b.max(d)),
                    // Date ranges: ISO dates compare as strings.
                    _ => match (old.split_once(','), value.split_once(',')) {
                        (Some((a, b)), Some((c, d))) => {
                            format!("{},{}", a.trim().min(c.trim()), b.trim().max(d.trim()))
                        }
                        _ => value.clone(),
                    },
                }
            }
            _ => value.clone(),
        };
        merged.insert(key.clone(), widened);
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, Utc};
    use stockstream_common::events::LAKE_COMMIT_VERSION;
    use stockstream_common::lake::{PartitionTemplate, PartitionValue, partition_path};
    use stockstream_common::record::Quote;

    pub(super) fn event(
        template: &PartitionTemplate,
        symbol: &str,
        date: NaiveDate,
    ) -> LakeCommitEvent {
        let quote = Quote {
            symbol: symbol.into(),
            trade_date: date,
            open: 1.0,
            high: 1.0,
            low: 1.0,
            close: 1.0,
            adj_close: 1.0,
            volume: 1,
            close_usd: Some(1.0),
        };
        let partition: Vec<PartitionValue> = template.partition(&quote);
        LakeCommitEvent {
            version: LAKE_COMMIT_VERSION,
            table: "quotes".into(),
            table_location: "quotes/".into(),
            object_key: format!("quotes/{}/f.parquet", partition_path(&partition)),
            partition_keys: template.partition_keys(),
            partition,
            row_count: 1,
            size_bytes: 1,
            min_trade_date: date,
            max_trade_date: date,
            schema_fingerprint: "f".into(),
            source_topic: "quotes".into(),
            source_partition: 0,
            first_offset: 0,
            last_offset: 0,
            committed_at: Utc::now(),
        }
    }

    pub(super) fn projection(
        template: &str,
        quotes: &[(&str, (i32, u32, u32))],
    ) -> BTreeMap<String, String> {
        let template: PartitionTemplate = template.parse().expect("valid");
        let events: Vec<LakeCommitEvent> = quotes
            .iter()
            .map(|(symbol, (year, month, day))| {
                let date = NaiveDate::from_ymd_opt(*year, *month, *day).expect("date");
                event(&template, symbol, date)
            })
            .collect();
        let refs: Vec<&LakeCommitEvent> = events.iter().collect();
        projection_parameters("s3://b/quotes/", &template.partition_keys(), &refs)
    }

    #[test]
    pub(super) fn projections_follow_the_partition_template() {
        let default = projection(
            "symbol={symbol}/year={year}",
            &[("HSI", (1987, 1, 2)), ("N225", (1990, 5, 1))],
        );
        assert_eq!(default["projection.symbol.type"], "enum");
        assert_eq!(default["projection.symbol.values"], "HSI,N225");
        assert_eq!(default["projection.year.range"], "1987,1990");
        assert!(!default.contains_key("projection.year.digits"));
        assert_eq!(
            default["storage.location.template"],
            "s3://b/quotes/symbol=${symbol}/year=${year}/"
        );

        let daily = projection(
            "date={yyyy-mm-dd}",
            &[
                ("HSI", (1987, 1, 2)),
                ("HSI", (1987, 3, 9)),
                ("X", (1986, 12, 31)),
            ],
        );
        assert_eq!(daily["projection.date.type"], "date");
        assert_eq!(daily["projection.date.format"], "yyyy-MM-dd");
        assert_eq!(daily["projection.date.range"], "1986-12-31,1987-03-09");
        assert_eq!(daily["projection.date.interval.unit"], "DAYS");

        let monthly = projection("ym={yyyy-mm}", &[("HSI", (1987, 1, 2))]);
        assert_eq!(monthly["projection.ym.format"], "yyyy-MM");
        assert_eq!(monthly["projection.ym.interval.unit"], "MONTHS");

        let padded = projection(
            "year={yyyy}/month={mm}",
            &[("HSI", (1987, 1, 2)), ("HSI", (1987, 11, 2))],
        );
        assert_eq!(padded["projection.month.range"], "1,11");
        assert_eq!(padded["projection.month.digits"], "2");

        // Widening a date range keeps the earliest start and the latest end.
        let current = std::collections::HashMap::from([(
            "projection.date.range".to_string(),
            "1987-01-02,1987-03-09".to_string(),
        )]);
        let wanted = BTreeMap::from([(
            "projection.date.range".to_string(),
            "1986-12-31,1987-02-01".to_string(),
        )]);
        assert_eq!(
            merge_projection(&current, &wanted)["projection.date.range"],
            "1986-12-31,1987-03-09"
        );
    }
}
