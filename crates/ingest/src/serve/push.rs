//! `POST /v1/quotes`: validate the whole body, dead-letter every bad record, produce the good ones
//! through the idempotent producer and answer once Kafka acknowledged them.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{DeliveryFuture, FutureRecord};
use serde::Serialize;
use stockstream_common::headers::{
    ERROR_HEADER, SCHEMA_VERSION_HEADER, SOURCE_HEADER, SOURCE_LINE_HEADER, SOURCE_REQUEST_HEADER,
    STAGE_HEADER,
};
use stockstream_common::kafka::headers;
use stockstream_common::record::{Quote, SCHEMA_VERSION};

use super::PushState;
use super::body::{Parsed, parse_csv, parse_json};

/// One record's problem, by its line in the body (1-based; the CSV header is line 1).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct RecordError {
    /// The record's line in the body (for a JSON array: its position, from 1).
    line: u64,
    /// Why it was refused or not delivered.
    error: String,
}

/// The answer to every push request.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub(super) struct PushAnswer {
    /// Names this request in the dead letters and in the records' `stockstream-source-request`
    /// header.
    request_id: String,
    /// Records Kafka acknowledged.
    accepted: u64,
    /// What went wrong, as a stable code: `unsupported_media_type`, `empty_body`,
    /// `malformed_body`, `invalid_records` or `delivery_failed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    error: Option<&'static str>,
    /// The same, for people.
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    /// Each bad or undelivered record.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    errors: Vec<RecordError>,
}

/// A request refused before anything was produced.
struct Refusal {
    status: StatusCode,
    error: &'static str,
    message: String,
}

fn answer(status: StatusCode, body: PushAnswer) -> Response {
    (status, axum::Json(body)).into_response()
}

/// Takes quotes from a feed: all or nothing at validation, answered once Kafka acknowledged them.
#[utoipa::path(
    post,
    path = "/v1/quotes",
    tag = "ingest",
    request_body(
        description = "Quotes in stockstream's wire format (or the original tutorial's, `{\"Index\", \"Date\", \"Open\", …, \"CloseUSD\"}`): a JSON object, a JSON array of objects, NDJSON (one object per line), or CSV with the header of `indexProcessed.csv`",
        content(
            (Vec<Quote> = "application/json"),
            (String = "application/x-ndjson"),
            (String = "application/jsonl"),
            (String = "text/csv"),
        ),
    ),
    responses(
        (status = 200, description = "Every record was acknowledged by Kafka", body = PushAnswer),
        (status = 400, description = "The body is empty or not readable as its content type", body = PushAnswer),
        (status = 408, description = "The body stalled or took too long to arrive"),
        (status = 413, description = "Body over `ingest.max_body_bytes`"),
        (status = 415, description = "Content type not JSON, NDJSON or CSV", body = PushAnswer),
        (status = 422, description = "Some records are invalid: nothing was produced, the invalid ones were dead-lettered", body = PushAnswer),
        (status = 503, description = "Kafka did not acknowledge some records", body = PushAnswer),
    ),
)]
pub(super) async fn push_quotes(
    State(state): State<Arc<PushState>>,
    request_headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request_id = format!(
        "{}-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ"),
        state.requests.fetch_add(1, Ordering::Relaxed)
    );
    let parsed = match read_body(&request_headers, &body) {
        Ok(parsed) => parsed,
        Err(refusal) => return refuse(request_id, refusal),
    };
    if let Some(invalid) = refuse_invalid(&state, &request_id, &parsed) {
        return invalid;
    }
    produce(&state, request_id, parsed).await
}

/// The body's records by its content type, or why it cannot be read at all.
fn read_body(request_headers: &HeaderMap, body: &[u8]) -> Result<Parsed, Refusal> {
    let content_type = request_headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let parsed = match content_type.as_str() {
        "application/x-ndjson" | "application/jsonl" | "application/json" => parse_json(body),
        "text/csv" => parse_csv(body),
        other => {
            return Err(Refusal {
                status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
                error: "unsupported_media_type",
                message: format!(
                    "content type `{other}` is not one of application/x-ndjson, application/jsonl, application/json, text/csv"
                ),
            });
        }
    };
    match parsed {
        Ok(parsed) if parsed.is_empty() => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            error: "empty_body",
            message: "the body holds no records".into(),
        }),
        Ok(parsed) => Ok(parsed),
        Err(message) => Err(Refusal {
            status: StatusCode::BAD_REQUEST,
            error: "malformed_body",
            message,
        }),
    }
}

fn refuse(request_id: String, refusal: Refusal) -> Response {
    metrics::counter!("stockstream_ingest_http_requests_total", "outcome" => refusal.error)
        .increment(1);
    answer(
        refusal.status,
        PushAnswer {
            request_id,
            accepted: 0,
            error: Some(refusal.error),
            message: Some(refusal.message),
            errors: Vec::new(),
        },
    )
}

/// If any record is invalid: dead-letters each invalid one and answers 422 (nothing produced).
fn refuse_invalid(state: &PushState, request_id: &str, parsed: &Parsed) -> Option<Response> {
    let errors: Vec<RecordError> = parsed
        .iter()
        .filter_map(|(line, outcome, _)| {
            outcome.as_ref().err().map(|error| RecordError {
                line: *line,
                error: error.clone(),
            })
        })
        .collect();
    if errors.is_empty() {
        return None;
    }
    for (line, outcome, raw) in parsed {
        if let Err(reason) = outcome {
            dead_letter(state, request_id, *line, raw, reason);
        }
    }
    metrics::counter!("stockstream_ingest_dead_letters_total").increment(errors.len() as u64);
    metrics::counter!("stockstream_ingest_http_requests_total", "outcome" => "invalid_records")
        .increment(1);
    Some(answer(
        StatusCode::UNPROCESSABLE_ENTITY,
        PushAnswer {
            request_id: request_id.to_string(),
            accepted: 0,
            error: Some("invalid_records"),
            message: Some(format!(
                "{} of {} record(s) are invalid; nothing was produced (the invalid ones were dead-lettered)",
                errors.len(),
                parsed.len()
            )),
            errors,
        },
    ))
}

/// A record handed to the producer: its line, when, and its delivery report.
type Pending = (u64, Instant, DeliveryFuture);

/// Produces every record, waits for each acknowledgement, answers 200 or 503.
async fn produce(state: &PushState, request_id: String, parsed: Parsed) -> Response {
    let (pending, mut errors) = queue_records(state, &request_id, &parsed).await;
    let accepted = await_deliveries(pending, &mut errors).await;
    metrics::counter!("stockstream_ingest_records_produced_total").increment(accepted);
    delivery_answer(request_id, accepted, errors)
}

/// Hands each valid record to the producer, waiting while its queue is full.
async fn queue_records(
    state: &PushState,
    request_id: &str,
    parsed: &Parsed,
) -> (Vec<Pending>, Vec<RecordError>) {
    let mut pending = Vec::with_capacity(parsed.len());
    let mut errors = Vec::new();
    for (line, outcome, _) in parsed {
        let Ok(quote) = outcome else { continue };
        let payload = quote.to_json();
        let mut record = FutureRecord::to(&state.quotes_topic)
            .key(quote.symbol.as_bytes())
            .payload(payload.as_slice())
            .headers(record_headers(request_id, *line));
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
    (pending, errors)
}

/// The headers of a pushed record: schema version and its origin (request and line).
fn record_headers(request_id: &str, line: u64) -> OwnedHeaders {
    let line_text = line.to_string();
    headers(&[
        (SCHEMA_VERSION_HEADER, SCHEMA_VERSION),
        (SOURCE_HEADER, "http"),
        (SOURCE_REQUEST_HEADER, request_id),
        (SOURCE_LINE_HEADER, &line_text),
    ])
}

/// Waits for every delivery report; returns how many were acknowledged, adding the others to
/// `errors`.
async fn await_deliveries(pending: Vec<Pending>, errors: &mut Vec<RecordError>) -> u64 {
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
    accepted
}

/// 200 when every record was acknowledged, else 503 listing the ones that were not.
fn delivery_answer(request_id: String, accepted: u64, errors: Vec<RecordError>) -> Response {
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
        (ERROR_HEADER, reason),
        (STAGE_HEADER, "ingest-http"),
        (SOURCE_HEADER, "http"),
        (SOURCE_REQUEST_HEADER, request_id),
        (SOURCE_LINE_HEADER, &line_text),
    ]);
    let record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(&state.dlq_topic)
        .payload(raw.as_bytes())
        .headers(record_headers);
    if let Err((error, _)) = state.producer.send_result(record) {
        tracing::error!(%request_id, line, %error, "could not queue a dead letter");
    }
}
