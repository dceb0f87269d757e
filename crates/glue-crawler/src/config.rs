//! Configuration of the catalog service: shared sections plus `[crawler]` and `[http]`.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;
use stockstream_common::config::AwsEndpoint;
use stockstream_common::config::{
    HttpConfig, KafkaConfig, LakeConfig, LakeSection, SHARED_DEFAULTS, TelemetryConfig, load,
    parse_duration, validate_database_name,
};
use stockstream_common::lake::CompactionConfig;
use stockstream_common::{Error, Result};

use crate::glue::{GlueSettings, Strategy};

const CRAWLER_DEFAULTS: &str = r#"
[crawler]
mode = "local"
database = "stockstream"
group_id = "stockstream-glue-crawler"
batch_window = "200ms"
strategy = "partitions"
crawler_name = "stockstream-lake"
crawler_role = ""
crawler_debounce = "60s"
poll_interval = "15s"
drain_deadline = "30s"

[http]
listen = "127.0.0.1:9102"
"#;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    kafka: KafkaConfig,
    lake: LakeSection,
    telemetry: TelemetryConfig,
    crawler: RawCrawlerSection,
    http: HttpConfig,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCrawlerSection {
    mode: ModeKind,
    database: String,
    group_id: String,
    batch_window: String,
    strategy: Strategy,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    glue_endpoint: Option<String>,
    crawler_name: String,
    crawler_role: String,
    crawler_debounce: String,
    poll_interval: String,
    drain_deadline: String,
}

/// Where the catalog is kept, as configured (`crawler.mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum ModeKind {
    Local,
    Glue,
}

/// Where the catalog is kept.
#[derive(Debug, Clone)]
pub enum CatalogMode {
    /// A Glue-shaped JSON catalog inside the lake (`_stockstream/catalog/catalog.json`).
    Local,
    /// The AWS Glue Data Catalog.
    Glue(GlueSettings),
}

/// The catalog service's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Kafka connection and topics.
    pub kafka: KafkaConfig,
    /// Where the lake lives.
    pub lake: LakeConfig,
    /// Logging.
    pub telemetry: TelemetryConfig,
    /// Catalog settings.
    pub crawler: CrawlerConfig,
    /// Operations endpoint.
    pub http: HttpConfig,
    /// Compaction and retention (`[lake.compaction]`, `[lake.retention]`).
    pub compaction: CompactionConfig,
}

/// Settings of the catalog service (section `[crawler]`).
#[derive(Debug, Clone)]
pub struct CrawlerConfig {
    /// Where the catalog lives.
    pub mode: CatalogMode,
    /// Database the tables are registered in.
    pub database: String,
    /// Consumer group reading `lake.commits`.
    pub group_id: String,
    /// How long to gather further events after the first before applying them together.
    pub batch_window: Duration,
    /// How often a running Glue crawler is polled (`glue` mode, `crawler` strategy).
    pub poll_interval: Duration,
    /// How long a shutdown (SIGTERM) may take to finish the batch being applied before the
    /// process gives up and exits non-zero.
    pub drain_deadline: Duration,
}

impl Config {
    /// Loads defaults, then `file`, then `STOCKSTREAM__…` variables, and validates the result.
    pub fn load(file: Option<&Path>) -> Result<Self> {
        let defaults = format!("{SHARED_DEFAULTS}\n{CRAWLER_DEFAULTS}");
        let raw: RawConfig = load(&defaults, file)?;
        let crawler = &raw.crawler;
        let mode = match crawler.mode {
            ModeKind::Local => CatalogMode::Local,
            ModeKind::Glue => {
                let strategy = crawler.strategy;
                if strategy == Strategy::Crawler && crawler.crawler_role.is_empty() {
                    return Err(Error::config(
                        "crawler.crawler_role",
                        "the crawler strategy needs the IAM role the Glue crawler runs as",
                    ));
                }
                let optional = |value: &Option<String>| value.clone().filter(|v| !v.is_empty());
                CatalogMode::Glue(GlueSettings {
                    strategy,
                    aws: AwsEndpoint {
                        region: optional(&crawler.region),
                        endpoint: optional(&crawler.glue_endpoint),
                    },
                    crawler_name: crawler.crawler_name.clone(),
                    crawler_role: crawler.crawler_role.clone(),
                    crawler_debounce: parse_duration(
                        "crawler.crawler_debounce",
                        &crawler.crawler_debounce,
                    )?,
                })
            }
        };
        let poll_interval = parse_duration("crawler.poll_interval", &crawler.poll_interval)?;
        let database = raw.crawler.database;
        validate_database_name("crawler.database", &database)?;
        let compaction = raw.lake.compaction.validate(&raw.lake.retention)?;
        refuse_maintenance_without_locations(&mode, &compaction)?;
        Ok(Self {
            compaction,
            kafka: raw.kafka.validate()?,
            lake: raw.lake.validate()?,
            telemetry: raw.telemetry,
            crawler: CrawlerConfig {
                mode,
                database,
                group_id: raw.crawler.group_id,
                batch_window: parse_duration("crawler.batch_window", &raw.crawler.batch_window)?,
                poll_interval,
                drain_deadline: parse_duration(
                    "crawler.drain_deadline",
                    &raw.crawler.drain_deadline,
                )?,
            },
            http: raw.http,
        })
    }
}

/// Compaction and retention point a partition at other files in the catalog; the `projection`
/// and `crawler` strategies derive every location from the lake's paths, so they cannot
/// (see `GlueCatalog::compaction_refusal`). Refused at load time, naming both keys.
fn refuse_maintenance_without_locations(
    mode: &CatalogMode,
    compaction: &CompactionConfig,
) -> Result<()> {
    let CatalogMode::Glue(settings) = mode else {
        return Ok(());
    };
    if settings.strategy == Strategy::Partitions {
        return Ok(());
    }
    let key = if compaction.enabled {
        "lake.compaction.enabled"
    } else if compaction.retention.is_some() {
        "lake.retention.max_age"
    } else {
        return Ok(());
    };
    Err(Error::config(
        key,
        format!(
            "needs crawler.strategy = \"partitions\": with `{}` the catalog computes each \
             partition's location from the lake's paths, so a partition cannot be pointed at \
             compacted files",
            settings.strategy.as_str()
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_load_and_a_wrong_key_or_value_is_named() {
        stockstream_common::config_checks::check_config_key_errors(
            "crawler.toml",
            Config::load,
            (
                "[crawler]\nbatch_windw = \"1s\"\n",
                &["batch_windw", "crawler"],
            ),
            (
                "[crawler]\nbatch_window = \"soon\"\n",
                &["crawler.batch_window"],
            ),
        );
    }

    #[test]
    fn choices_are_enums_whose_wrong_values_name_the_key() {
        for (toml, key, value) in [
            ("[crawler]\nmode = \"hive\"\n", "crawler.mode", "hive"),
            (
                "[crawler]\nmode = \"glue\"\nstrategy = \"guess\"\n",
                "crawler.strategy",
                "guess",
            ),
            ("[lake]\nbackend = \"ftp\"\n", "lake.backend", "ftp"),
        ] {
            stockstream_common::config_checks::check_config_key_errors(
                "choices.toml",
                Config::load,
                ("[crawler]\nmod = \"glue\"\n", &["mod", "crawler"]),
                (toml, &[key, value]),
            );
        }
        for (strategy, maintenance, key) in [
            (
                "projection",
                "[lake.compaction]\nenabled = true\n",
                "lake.compaction.enabled",
            ),
            (
                "crawler",
                "[lake.retention]\nmax_age = \"30d\"\n",
                "lake.retention.max_age",
            ),
        ] {
            let toml = format!(
                "[crawler]\nmode = \"glue\"\nstrategy = \"{strategy}\"\ncrawler_role = \"arn:aws:iam::1:role/r\"\n{maintenance}"
            );
            stockstream_common::config_checks::check_config_key_errors(
                "maintenance.toml",
                Config::load,
                ("[crawler]\nmod = \"glue\"\n", &["mod", "crawler"]),
                (&toml, &[key, "crawler.strategy"]),
            );
        }
        let glue = "[crawler]\nmode = \"glue\"\nstrategy = \"projection\"\n";
        let directory = tempfile::tempdir().expect("a temporary directory");
        let path = directory.path().join("glue.toml");
        std::fs::write(&path, glue).expect("write the configuration");
        let config = Config::load(Some(&path)).expect("glue mode loads");
        assert!(
            matches!(&config.crawler.mode, CatalogMode::Glue(glue) if glue.strategy == Strategy::Projection),
            "{:?}",
            config.crawler.mode
        );
    }

    #[test]
    fn secrets_are_named_but_never_shown_and_world_readable_files_refused() {
        stockstream_common::secret::check_config_secrets("crawler.toml", |path| {
            Config::load(Some(path))
        });
    }
}
