//! Each service's configuration for a test: the service's own defaults (what a user gets), its
//! Kafka settings and lake replaced by the test's, listening on a free loopback port (`:0`), and
//! consumer groups named after the test's Kafka client id. Tests change what they exercise on
//! top.

use std::path::Path;
use std::time::Duration;

use anyhow::Result;
use stockstream_common::config::{KafkaConfig, LakeConfig};
use stockstream_common::lake::PartitionTemplate;

/// A lake on local disk at `root`.
pub fn local_lake(root: &Path) -> LakeConfig {
    LakeConfig::Local {
        root: root.to_path_buf(),
    }
}

/// The sink on `lake`, flushing every 500 ms, in group `<client id>-sink`.
pub fn sink_config_on(
    kafka: &KafkaConfig,
    lake: LakeConfig,
) -> Result<stockstream_s3_sink::Config> {
    let mut config = stockstream_s3_sink::Config::load(None)?;
    config.kafka = kafka.clone();
    config.lake = lake;
    config.http.listen = "127.0.0.1:0".parse()?;
    config.sink.group_id = format!("{}-sink", kafka.client_id);
    config.sink.flush_interval = Duration::from_millis(500);
    Ok(config)
}

/// The sink on a local lake at `lake` with the default layout.
pub fn sink_config(kafka: &KafkaConfig, lake: &Path) -> Result<stockstream_s3_sink::Config> {
    sink_config_with(kafka, lake, PartitionTemplate::default())
}

/// The sink on a local lake at `lake` with layout `template`.
pub fn sink_config_with(
    kafka: &KafkaConfig,
    lake: &Path,
    template: PartitionTemplate,
) -> Result<stockstream_s3_sink::Config> {
    let mut config = sink_config_on(kafka, local_lake(lake))?;
    config.sink.partition_template = template;
    Ok(config)
}

/// The catalog service on `lake` (its local catalog), in group `<client id>-catalog`.
pub fn crawler_config_on(
    kafka: &KafkaConfig,
    lake: LakeConfig,
) -> Result<stockstream_glue_crawler::Config> {
    let mut config = stockstream_glue_crawler::Config::load(None)?;
    config.kafka = kafka.clone();
    config.lake = lake;
    config.http.listen = "127.0.0.1:0".parse()?;
    config.crawler.group_id = format!("{}-catalog", kafka.client_id);
    Ok(config)
}

/// The query API (DataFusion) on `lake` and its local catalog.
pub fn api_config_on(
    kafka: &KafkaConfig,
    lake: LakeConfig,
) -> Result<stockstream_query_api::Config> {
    let mut config = stockstream_query_api::Config::load(None)?;
    config.kafka = kafka.clone();
    config.lake = lake;
    config.http.listen = "127.0.0.1:0".parse()?;
    Ok(config)
}

/// The ingest tool, its source offsets under `state`.
pub fn ingest_config(kafka: &KafkaConfig, state: &Path) -> Result<stockstream_ingest::Config> {
    let mut config = stockstream_ingest::Config::load(None)?;
    config.kafka = kafka.clone();
    config.ingest.state_dir = state.to_path_buf();
    Ok(config)
}
