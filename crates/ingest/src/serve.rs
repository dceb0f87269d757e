//! The push service: `POST /v1/quotes` takes quotes from external feeds and answers once Kafka has
//! acknowledged them.
//!
//! - Bodies are NDJSON (`application/x-ndjson`, `application/jsonl`, or `application/json` with one
//!   object per line or a JSON array), in stockstream's wire format or the original tutorial's
//!   (`{"Index": …, "Date": …, …, "CloseUSD": …}`), or CSV (`text/csv`) with the header of
//!   `indexProcessed.csv`.
//! - A request is all or nothing at validation: if any record is bad, none is produced and the
//!   answer (422) lists every bad record with its line and reason; the bad records are also
//!   dead-lettered with the request id, so nothing is lost even if the caller drops the answer.
//! - Valid requests are produced through the idempotent producer and answered 200 only after every
//!   record is acknowledged; a delivery failure answers 503 with the failed lines.
//! - Bodies above `ingest.max_body_bytes` get 413, an unsupported content type 415.
//!
//! `/metrics`, `/health/livez` and `/health/readyz` (ready while Kafka answers metadata requests)
//! share the listener. SIGTERM stops accepting requests, answers the open ones, flushes, exits.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer as _};
use serde::Serialize;
use stockstream_common::http::{Readiness, ops_router};
use stockstream_common::kafka::{ensure_topics, headers, pipeline_topics, producer_config};
use stockstream_common::record::{Quote, SCHEMA_VERSION, SCHEMA_VERSION_HEADER};
use stockstream_common::telemetry::metrics_handle;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::reader::{Column, Columns, DateFormat, Decimal, Form, LineRecords, RowParser};

/// How often Kafka's reachability is checked for `/health/readyz`.
const READINESS_INTERVAL: Duration = Duration::from_secs(5);

struct PushState {
    producer: FutureProducer,
    quotes_topic: String,
    dlq_topic: String,
    delivery_timeout: Duration,
    requests: AtomicU64,
}

/// Runs the push service until `shutdown` is cancelled, then answers open requests and flushes.
pub async fn serve(config: Config, shutdown: CancellationToken) -> Result<()> {
    let (address, service) = start(config, shutdown).await?;
    tracing::info!(%address, "push service ready: POST /v1/quotes");
    service
        .await
        .map_err(|join| Error::Usage(format!("the push service panicked: {join}")))?
}

/// Starts the push service; returns the bound address and the task that ends after the drain.
pub async fn start(
    config: Config,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<Result<()>>)> {
    // The recorder first: the Kafka watcher's first figures would be lost otherwise.
    let metrics = metrics_handle();
    ensure_topics(&config.kafka, &pipeline_topics(&config.kafka)).await?;
    let linger = config.ingest.linger.as_millis().to_string();
    let batch = config.ingest.batch_bytes.to_string();
    let timeout = config.ingest.delivery_timeout.as_millis().to_string();
    let producer: FutureProducer = producer_config(
        &config.kafka,
        "ingest-push",
        &[
            ("compression.type", config.ingest.compression.as_str()),
            ("linger.ms", &linger),
            ("batch.size", &batch),
            ("message.timeout.ms", &timeout),
        ],
    )
    .create()
    .map_err(|error| Error::kafka("creating the push producer", error))?;
    let state = Arc::new(PushState {
        producer,
        quotes_topic: config.kafka.topics.quotes.clone(),
        dlq_topic: config.kafka.topics.dlq.clone(),
        delivery_timeout: config.ingest.delivery_timeout,
        requests: AtomicU64::new(0),
    });
    let readiness = Readiness::default();
    readiness.set("kafka", false, "not checked yet");
    let checker = tokio::spawn(watch_kafka(
        state.clone(),
        readiness.clone(),
        shutdown.clone(),
    ));
    let router = Router::new()
        .route("/v1/quotes", post(push_quotes))
        .layer(DefaultBodyLimit::max(config.ingest.max_body_bytes))
        .with_state(state.clone())
        .merge(ops_router(readiness, metrics));
    let (address, server) =
        stockstream_common::http::serve(config.http.listen, router, shutdown).await?;
    let task = tokio::spawn(async move {
        let _ = server.await;
        checker.abort();
        let flush_timeout = state.delivery_timeout + Duration::from_secs(5);
        let producer = state.producer.clone();
        tokio::task::spawn_blocking(move || producer.flush(flush_timeout))
            .await
            .map_err(|join| Error::Usage(format!("flush panicked: {join}")))?
            .map_err(|error| Error::kafka("flushing the push producer", error))?;
        tracing::info!("push service drained");
        Ok(())
    });
    Ok((address, task))
}

async fn watch_kafka(state: Arc<PushState>, readiness: Readiness, shutdown: CancellationToken) {
    loop {
        let probe = state.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            probe
                .producer
                .client()
                .fetch_metadata(Some(&probe.quotes_topic), Duration::from_secs(5))
                .map(|metadata| {
                    metadata
                        .topics()
                        .first()
                        .map_or(0, |t| t.partitions().len())
                })
        })
        .await;
        match outcome {
            Ok(Ok(partitions)) if partitions > 0 => readiness.set(
                "kafka",
                true,
                format!(
                    "topic `{}` has {partitions} partition(s)",
                    state.quotes_topic
                ),
            ),
            Ok(Ok(_)) => readiness.set(
                "kafka",
                false,
                format!("topic `{}` has no partitions", state.quotes_topic),
            ),
            Ok(Err(error)) => readiness.set("kafka", false, error.to_string()),
            Err(join) => readiness.set("kafka", false, join.to_string()),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(READINESS_INTERVAL) => {}
        }
    }
}

/// One record's problem, by its line in the body (1-based; the CSV header is line 1).
#[derive(Debug, Serialize)]
struct RecordError {
    line: u64,
    error: String,
}

#[derive(Debug, Serialize)]
struct PushAnswer {
    request_id: String,
    accepted: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RecordError>,
}

fn answer(status: StatusCode, body: PushAnswer) -> Response {
    (status, axum::Json(body)).into_response()
}

/// A parsed body: per line, a quote or why not.
type Parsed = Vec<(u64, std::result::Result<Quote, String>, String)>;

async fn push_quotes(
    State(state): State<Arc<PushState>>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        state.requests.fetch_add(1, Ordering::Relaxed)
    );
    let content_type = request_headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let refuse = |status: StatusCode, error: &'static str, message: String| {
        metrics::counter!("stockstream_ingest_http_requests_total", "outcome" => error)
            .increment(1);
        answer(
            status,
            PushAnswer {
                request_id: request_id.clone(),
                accepted: 0,
                error: Some(error),
                message: Some(message),
                errors: Vec::new(),
            },
        )
    };
    let parsed = match content_type.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/json" => parse_json(&body),
        "text/csv" => parse_csv(&body),
        other => {
            return refuse(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                format!(
                    "content type `{other}` is not one of application/x-ndjson, application/jsonl, application/json, text/csv"
                ),
            );
        }
    };
    let parsed = match parsed {
        Ok(parsed) if parsed.is_empty() => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "empty_body",
                "the body holds no records".into(),
            );
        }
        Ok(parsed) => parsed,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, "malformed_body", message),
    };
    let errors: Vec<RecordError> = parsed
        .iter()
        .filter_map(|(line, outcome, _)| {
            outcome.as_ref().err().map(|error| RecordError {
                line: *line,
                error: error.clone(),
            })
        })
        .collect();
    if !errors.is_empty() {
        for (line, outcome, raw) in &parsed {
            if let Err(reason) = outcome {
                dead_letter(&state, &request_id, *line, raw, reason);
            }
        }
        metrics::counter!("stockstream_ingest_dead_letters_total").increment(errors.len() as u64);
        metrics::counter!("stockstream_ingest_http_requests_total", "outcome" => "invalid_records")
            .increment(1);
        return answer(
            StatusCode::UNPROCESSABLE_ENTITY,
            PushAnswer {
                request_id,
                accepted: 0,
                error: Some("invalid_records"),
                message: Some(format!(
                    "{} of {} record(s) are invalid; nothing was produced (the invalid ones were dead-lettered)",
                    errors.len(),
                    parsed.len()
                )),
                errors,
            },
        );
    }
    produce(&state, request_id, parsed).await
}

async fn produce(state: &PushState, request_id: String, parsed: Parsed) -> Response {
    let mut pending = Vec::with_capacity(parsed.len());
    let mut errors = Vec::new();
    for (line, outcome, _) in &parsed {
        let Ok(quote) = outcome else { continue };
        let payload = quote.to_json();
        let line_text = line.to_string();
        let record_headers = headers(&[
            (SCHEMA_VERSION_HEADER, SCHEMA_VERSION),
            ("stockstream-source", "http"),
            ("stockstream-source-request", &request_id),
            ("stockstream-source-line", &line_text),
        ]);
        let mut record = FutureRecord::to(&state.quotes_topic)
            .key(quote.symbol.as_bytes())
            .payload(payload.as_slice())
            .headers(record_headers);
        let queued = Instant::now();
        loop {
            match state.producer.send_result(record) {
                Ok(future) => {
                    pending.push((*line, queued, future));
                    break;
                }
                Err((
                    rdkafka::error::KafkaError::MessageProduction(
                        rdkafka::types::RDKafkaErrorCode::QueueFull,
                    ),
                    returned,
                )) => {
                    record = returned;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                Err((error, _)) => {
                    errors.push(RecordError {
                        line: *line,
                        error: error.to_string(),
                    });
                    break;
                }
            }
        }
    }
    let mut accepted = 0;
    for (line, queued, future) in pending {
        match future.await {
            Ok(Ok(_delivery)) => {
                accepted += 1;
                metrics::histogram!("stockstream_ingest_produce_latency_seconds")
                    .record(queued.elapsed().as_secs_f64());
            }
            Ok(Err((error, _message))) => errors.push(RecordError {
                line,
                error: error.to_string(),
            }),
            Err(_canceled) => errors.push(RecordError {
                line,
                error: "the producer shut down before the record was acknowledged".into(),
            }),
        }
    }
    metrics::counter!("stockstream_ingest_records_produced_total").increment(accepted);
    if errors.is_empty() {
        metrics::counter!("stockstream_ingest_http_requests_total", "outcome" => "ok").increment(1);
        return answer(
            StatusCode::OK,
            PushAnswer {
                request_id,
                accepted,
                error: None,
                message: None,
                errors,
            },
        );
    }
    metrics::counter!("stockstream_ingest_delivery_failures_total").increment(errors.len() as u64);
    metrics::counter!("stockstream_ingest_http_requests_total", "outcome" => "delivery_failed")
        .increment(1);
    tracing::error!(%request_id, failed = errors.len(), accepted, "records were not delivered");
    answer(
        StatusCode::SERVICE_UNAVAILABLE,
        PushAnswer {
            request_id,
            accepted,
            error: Some("delivery_failed"),
            message: Some(format!(
                "{} record(s) were not acknowledged by Kafka; {accepted} were (a retry of the whole request would send those again)",
                errors.len()
            )),
            errors,
        },
    )
}

fn dead_letter(state: &PushState, request_id: &str, line: u64, raw: &str, reason: &str) {
    tracing::warn!(%request_id, line, %reason, "dead-lettering a pushed record");
    let line_text = line.to_string();
    let record_headers = headers(&[
        ("stockstream-error", reason),
        ("stockstream-stage", "ingest-http"),
        ("stockstream-source", "http"),
        ("stockstream-source-request", request_id),
        ("stockstream-source-line", &line_text),
    ]);
    let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&state.dlq_topic)
        .payload(raw.as_bytes())
        .headers(record_headers);
    if let Err((error, _)) = state.producer.send_result(record) {
        tracing::error!(%request_id, line, %error, "could not queue a dead letter");
    }
}

/// NDJSON (one JSON object per line; blank lines ignored) or a JSON array of objects.
fn parse_json(body: &[u8]) -> std::result::Result<Parsed, String> {
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
fn parse_csv(body: &[u8]) -> std::result::Result<Parsed, String> {
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
