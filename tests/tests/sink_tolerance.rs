//! `sink.dead_letter_tolerance`: past the allowed number of undecodable messages the sink stops
//! with a clear error instead of dead-lettering on (Kafka Connect's `errors.tolerance=none`, with
//! a budget).

use std::time::Duration;

use anyhow::{Result, bail};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use stockstream_common::config::LakeConfig;
use stockstream_common::kafka::{client_config, ensure_topics, pipeline_topics};
use stockstream_e2e::{Tansu, kafka_config, read_topic};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sink_stops_past_its_dead_letter_tolerance() -> Result<()> {
    let tansu = Tansu::start()?;
    let mut kafka = kafka_config(&tansu.bootstrap, "tolerance");
    kafka.topics.partitions = 1;
    ensure_topics(&kafka, &pipeline_topics(&kafka)).await?;
    let producer: ThreadedProducer<DefaultProducerContext> =
        client_config(&kafka, "test").create()?;
    for payload in ["{not json", "also not json", "{\"symbol\": 3}"] {
        producer
            .send(BaseRecord::<str, str>::to(&kafka.topics.quotes).payload(payload))
            .map_err(|(error, _)| error)?;
    }
    producer.flush(Duration::from_secs(10))?;

    let work = tempfile::tempdir()?;
    let mut config = stockstream_s3_sink::Config::load(None)?;
    config.kafka = kafka.clone();
    config.lake = LakeConfig::Local {
        root: work.path().join("lake"),
    };
    config.http.listen = "127.0.0.1:0".parse()?;
    config.sink.dead_letter_tolerance = Some(2);
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        stockstream_s3_sink::run(config, CancellationToken::new()),
    )
    .await;
    let error = match outcome {
        Ok(Err(error)) => error.to_string(),
        Ok(Ok(())) => bail!("the sink ended without an error"),
        Err(_) => bail!("the sink did not stop within 120 s"),
    };
    assert!(error.contains("dead_letter_tolerance"), "{error}");
    assert!(
        error.contains("/2"),
        "names the third message (offset 2): {error}"
    );
    let bootstrap = tansu.bootstrap.clone();
    let letters =
        tokio::task::spawn_blocking(move || read_topic(&bootstrap, "tolerance.quotes.dlq"))
            .await??;
    assert_eq!(letters.len(), 2, "two dead letters, then the stop");
    Ok(())
}
