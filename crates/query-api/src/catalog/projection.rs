//! Athena partition projection, read from a Glue table's parameters: which partition values a
//! projected table admits (`projection.<key>.type` = `enum` | `integer` | `date`).

use std::collections::BTreeMap;

use stockstream_common::catalog::Column;

/// The admissible values of one partition key.
#[derive(Debug, Clone, PartialEq, Eq)]
enum KeyRule {
    /// One of these values.
    Enum(Vec<String>),
    /// An integer within the range, inclusive.
    Integer(i64, i64),
    /// An ISO date or month string within the range, inclusive (ISO strings sort like dates).
    Date(String, String),
    /// A type stockstream does not write (`injected`, …): any value.
    Any,
}

impl KeyRule {
    fn admits(&self, value: &str) -> bool {
        match self {
            KeyRule::Enum(values) => values.iter().any(|allowed| allowed == value),
            KeyRule::Integer(low, high) => value
                .parse::<i64>()
                .is_ok_and(|number| (*low..=*high).contains(&number)),
            KeyRule::Date(low, high) => low.as_str() <= value && value <= high.as_str(),
            KeyRule::Any => true,
        }
    }
}

/// The projection of a table: one rule per partition key, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Projection {
    rules: Vec<KeyRule>,
}

impl Projection {
    /// The projection described by `parameters`, if `projection.enabled` is `true`.
    pub fn from_parameters(parameters: &BTreeMap<String, String>, keys: &[Column]) -> Option<Self> {
        let enabled = parameters
            .get("projection.enabled")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"));
        if !enabled {
            return None;
        }
        let rules = keys
            .iter()
            .map(|key| {
                let get =
                    |suffix: &str| parameters.get(&format!("projection.{}.{suffix}", key.name));
                let range = || {
                    get("range").and_then(|range| {
                        let (low, high) = range.split_once(',')?;
                        Some((low.trim().to_string(), high.trim().to_string()))
                    })
                };
                match get("type").map(String::as_str) {
                    Some("enum") => KeyRule::Enum(
                        get("values")
                            .map(|values| values.split(',').map(|v| v.trim().to_string()).collect())
                            .unwrap_or_default(),
                    ),
                    Some("integer") => match range()
                        .and_then(|(low, high)| Some((low.parse().ok()?, high.parse().ok()?)))
                    {
                        Some((low, high)) => KeyRule::Integer(low, high),
                        None => KeyRule::Enum(Vec::new()),
                    },
                    Some("date") => match range() {
                        Some((low, high)) => KeyRule::Date(low, high),
                        None => KeyRule::Enum(Vec::new()),
                    },
                    _ => KeyRule::Any,
                }
            })
            .collect();
        Some(Self { rules })
    }

    /// Whether a partition with these values is visible.
    pub fn admits(&self, values: &[String]) -> bool {
        values.len() == self.rules.len()
            && self
                .rules
                .iter()
                .zip(values)
                .all(|(rule, value)| rule.admits(value))
    }

    /// A readable summary, one entry per key (`symbol: enum HSI,N225`).
    pub fn describe(&self, keys: &[Column]) -> Vec<String> {
        keys.iter()
            .zip(&self.rules)
            .map(|(key, rule)| match rule {
                KeyRule::Enum(values) => format!("{}: one of {}", key.name, values.join(",")),
                KeyRule::Integer(low, high) => format!("{}: {low}..={high}", key.name),
                KeyRule::Date(low, high) => format!("{}: {low}..={high}", key.name),
                KeyRule::Any => format!("{}: any", key.name),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str, data_type: &str) -> Column {
        Column {
            name: name.into(),
            data_type: data_type.into(),
        }
    }

    #[test]
    fn projection_admits_values_within_its_rules() {
        let parameters: BTreeMap<String, String> = [
            ("projection.enabled", "true"),
            ("projection.symbol.type", "enum"),
            ("projection.symbol.values", "HSI,N225"),
            ("projection.year.type", "integer"),
            ("projection.year.range", "1987,1990"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        let keys = [column("symbol", "string"), column("year", "int")];
        let projection = Projection::from_parameters(&parameters, &keys).expect("enabled");
        assert!(projection.admits(&["HSI".into(), "1987".into()]));
        assert!(!projection.admits(&["HSI".into(), "1991".into()]));
        assert!(!projection.admits(&["GDAXI".into(), "1988".into()]));
        assert!(!projection.admits(&["HSI".into()]));

        let daily: BTreeMap<String, String> = [
            ("projection.enabled", "true"),
            ("projection.date.type", "date"),
            ("projection.date.range", "1986-12-31,1987-03-09"),
        ]
        .into_iter()
        .map(|(key, value)| (key.to_string(), value.to_string()))
        .collect();
        let projection =
            Projection::from_parameters(&daily, &[column("date", "string")]).expect("enabled");
        assert!(projection.admits(&["1987-01-02".into()]));
        assert!(!projection.admits(&["1987-03-10".into()]));
        assert_eq!(Projection::from_parameters(&BTreeMap::new(), &keys), None);
    }
}
