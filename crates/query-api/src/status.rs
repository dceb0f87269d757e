//! Pipeline status for `GET /v1/status`: every few seconds the query API reads the other
//! services' `/health/readyz` and `/metrics` (the URLs of `status.services`) and keeps each one's
//! readiness, checks and key figures — rows in per second (from consecutive samples of its record
//! counter), consumer lag, the last commit to the lake, records written, dead letters. Sampling in
//! the background means many open dashboards cost the services one request each per interval.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::{Deserialize, Serialize};
use stockstream_common::config::parse_duration;
use stockstream_common::http::Readiness;
use stockstream_common::sync::RwLockExt;
use stockstream_common::{Error, Result};
use tokio_util::sync::CancellationToken;

/// Settings of the status endpoint (section `[status]`).
#[derive(Debug, Clone)]
pub struct StatusConfig {
    /// Services to read, by name: the base URL serving their `/health/readyz` and `/metrics`.
    pub services: Vec<(String, String)>,
    /// How often they are read.
    pub interval: Duration,
    /// How long one read may take.
    pub timeout: Duration,
}

/// `[status]` as written: `services` is `name=url,name=url` (or a list of `name=url`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawStatusSection {
    services: crate::config::StringList,
    interval: String,
    timeout: String,
}

impl RawStatusSection {
    pub(crate) fn validate(self) -> Result<StatusConfig> {
        let mut services = Vec::new();
        for entry in self.services.into_vec() {
            let Some((name, url)) = entry.split_once('=') else {
                return Err(Error::config(
                    "status.services",
                    format!("`{entry}` is not name=http://host:port"),
                ));
            };
            let url = url.trim().trim_end_matches('/');
            let parsed = url.parse::<axum::http::Uri>().ok();
            let plain_http = parsed
                .as_ref()
                .is_some_and(|uri| uri.scheme_str() == Some("http") && uri.authority().is_some());
            if !plain_http {
                return Err(Error::config(
                    "status.services",
                    format!("`{url}` is not an http:// URL (the services serve plain HTTP)"),
                ));
            }
            services.push((name.trim().to_string(), url.to_string()));
        }
        let interval = parse_duration("status.interval", &self.interval)?;
        let timeout = parse_duration("status.timeout", &self.timeout)?;
        if interval < Duration::from_millis(100) || timeout.is_zero() {
            return Err(Error::config(
                "status.interval",
                "interval must be at least 100ms and timeout above 0",
            ));
        }
        Ok(StatusConfig {
            services,
            interval,
            timeout,
        })
    }
}

/// One readiness check of a service.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Check {
    /// Whether it passes.
    pub ok: bool,
    /// What the service saw.
    #[serde(default)]
    pub detail: String,
}

/// What is known about one service.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// Base URL read (absent for the query API itself).
    pub url: Option<String>,
    /// Readiness; `null` when the service could not be reached.
    pub ready: Option<bool>,
    /// Its readiness checks.
    pub checks: BTreeMap<String, Check>,
    /// Key figures (`rows_in_per_second`, `consumer_lag`, `last_flush_at`, `records_written`,
    /// `error` when unreachable, …).
    #[schema(value_type = Object)]
    pub figures: BTreeMap<String, serde_json::Value>,
    /// When it was read (RFC 3339).
    pub checked_at: String,
}

/// A record counter's previous reading, for rates.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Instant,
    records: f64,
}

/// The sampled status of every service.
#[derive(Debug, Clone)]
pub struct StatusBoard {
    services: Arc<RwLock<Vec<ServiceStatus>>>,
}

impl StatusBoard {
    /// Starts sampling `config.services` (and the query API itself) until `shutdown`.
    pub fn start(
        config: StatusConfig,
        readiness: Readiness,
        own_metrics: PrometheusHandle,
        shutdown: CancellationToken,
    ) -> Self {
        let board = Self {
            services: Arc::new(RwLock::new(Vec::new())),
        };
        let services = board.services.clone();
        tokio::spawn(async move {
            let client: Client<HttpConnector, Empty<Bytes>> =
                Client::builder(TokioExecutor::new()).build_http();
            let mut samples: BTreeMap<String, Sample> = BTreeMap::new();
            loop {
                let mut sampled = Vec::with_capacity(config.services.len() + 1);
                let reads = config
                    .services
                    .iter()
                    .map(|(name, url)| read_service(&client, name, url, config.timeout));
                for (status, reading) in futures::future::join_all(reads).await {
                    sampled.push(with_figures((status, reading), &mut samples));
                }
                let own = ServiceStatus {
                    name: "stockstream-query-api".to_string(),
                    url: None,
                    ready: Some(readiness.is_ready()),
                    checks: readiness
                        .snapshot()
                        .into_iter()
                        .map(|(name, check)| {
                            (
                                name,
                                Check {
                                    ok: check.ok,
                                    detail: check.detail,
                                },
                            )
                        })
                        .collect(),
                    figures: BTreeMap::new(),
                    checked_at: Utc::now().to_rfc3339(),
                };
                sampled.push(with_figures(
                    (own, Some(own_metrics.render())),
                    &mut samples,
                ));
                *services.write_locked() = sampled;
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(config.interval) => {}
                }
            }
        });
        board
    }

    /// The latest sample of every service.
    pub fn services(&self) -> Vec<ServiceStatus> {
        self.services.read_locked().clone()
    }

    /// The last commit to the lake any service reported.
    pub fn last_commit_at(&self) -> Option<String> {
        self.services()
            .iter()
            .filter_map(|service| service.figures.get("last_flush_at"))
            .filter_map(|value| value.as_str())
            .filter_map(|text| DateTime::parse_from_rfc3339(text).ok())
            .max()
            .map(|time| time.with_timezone(&Utc).to_rfc3339())
    }
}

/// Reads one service's readiness and metrics; the metrics text when they answered.
async fn read_service(
    client: &Client<HttpConnector, Empty<Bytes>>,
    name: &str,
    url: &str,
    timeout: Duration,
) -> (ServiceStatus, Option<String>) {
    let mut status = ServiceStatus {
        name: name.to_string(),
        url: Some(url.to_string()),
        ready: None,
        checks: BTreeMap::new(),
        figures: BTreeMap::new(),
        checked_at: Utc::now().to_rfc3339(),
    };
    match get(client, &format!("{url}/health/readyz"), timeout).await {
        Ok((_code, body)) => match serde_json::from_slice::<Readyz>(&body) {
            Ok(readyz) => {
                status.ready = Some(readyz.ready);
                status.checks = readyz.checks;
            }
            Err(error) => {
                status.figures.insert(
                    "error".into(),
                    format!("/health/readyz is not a readiness answer: {error}").into(),
                );
            }
        },
        Err(error) => {
            status
                .figures
                .insert("error".into(), format!("unreachable: {error}").into());
            return (status, None);
        }
    }
    let metrics = match get(client, &format!("{url}/metrics"), timeout).await {
        Ok((200, body)) => Some(String::from_utf8_lossy(&body).into_owned()),
        _ => None,
    };
    (status, metrics)
}

#[derive(Debug, Deserialize)]
struct Readyz {
    ready: bool,
    #[serde(default)]
    checks: BTreeMap<String, Check>,
}

async fn get(
    client: &Client<HttpConnector, Empty<Bytes>>,
    url: &str,
    timeout: Duration,
) -> std::result::Result<(u16, Bytes), String> {
    let uri: axum::http::Uri = url.parse().map_err(|error| format!("{error}"))?;
    let exchange = async {
        let response = client.get(uri).await.map_err(|error| error.to_string())?;
        let code = response.status().as_u16();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|error| error.to_string())?
            .to_bytes();
        Ok((code, body))
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no answer within {timeout:?}"))?
}

/// Adds the figures found in `metrics` (Prometheus text) to `status`.
fn with_figures(
    (mut status, metrics): (ServiceStatus, Option<String>),
    samples: &mut BTreeMap<String, Sample>,
) -> ServiceStatus {
    let Some(metrics) = metrics else {
        return status;
    };
    let values = parse_prometheus(&metrics);
    let figures = &mut status.figures;
    let mut number = |figure: &str, metric: &str| {
        if let Some(value) = values.get(metric) {
            figures.insert(figure.to_string(), json_number(*value));
        }
    };
    number(
        "records_produced",
        "stockstream_ingest_records_produced_total",
    );
    number("records_written", "stockstream_sink_records_written_total");
    number("consumer_lag", "stockstream_sink_consumer_lag_records");
    number("buffered_records", "stockstream_sink_buffered_records");
    number("files_committed", "stockstream_sink_files_committed_total");
    number(
        "partitions_registered",
        "stockstream_catalog_partitions_registered_total",
    );
    number(
        "catalog_events_applied",
        "stockstream_catalog_events_applied_total",
    );
    number("queries", "stockstream_query_requests_total");
    number("live_clients", "stockstream_live_clients");
    let dead_letters = values
        .get("stockstream_ingest_dead_letters_total")
        .copied()
        .unwrap_or(0.0)
        + values
            .get("stockstream_sink_dead_letters_total")
            .copied()
            .unwrap_or(0.0);
    if values.contains_key("stockstream_ingest_dead_letters_total")
        || values.contains_key("stockstream_sink_dead_letters_total")
    {
        figures.insert("dead_letters".into(), json_number(dead_letters));
    }
    if let Some(seconds) = values.get("stockstream_sink_last_commit_timestamp_seconds")
        && *seconds > 0.0
        && let Some(time) = DateTime::<Utc>::from_timestamp_millis((*seconds * 1000.0) as i64)
    {
        figures.insert("last_flush_at".into(), time.to_rfc3339().into());
    }
    // Rows in: the ingest's produced records, the sink's written records, the query API's queries.
    let counter = [
        "stockstream_ingest_records_produced_total",
        "stockstream_sink_records_written_total",
    ]
    .iter()
    .find_map(|metric| values.get(*metric).copied());
    if let Some(records) = counter {
        let now = Sample {
            at: Instant::now(),
            records,
        };
        if let Some(before) = samples.insert(status.name.clone(), now) {
            let seconds = now.at.duration_since(before.at).as_secs_f64();
            if seconds > 0.0 && records >= before.records {
                let rate = (records - before.records) / seconds;
                status.figures.insert(
                    "rows_in_per_second".into(),
                    json_number((rate * 10.0).round() / 10.0),
                );
            }
        }
    }
    status
}

fn json_number(value: f64) -> serde_json::Value {
    if value.fract() == 0.0 && value.abs() < 9.0e15 {
        serde_json::Value::from(value as i64)
    } else {
        serde_json::Number::from_f64(value)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Sums each metric over its label sets (quantile and bucket series are left out).
pub(crate) fn parse_prometheus(text: &str) -> BTreeMap<String, f64> {
    let mut values = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (series, rest) = match line.find('{') {
            Some(open) => match line[open..].find('}') {
                Some(close) => {
                    let labels = &line[open + 1..open + close];
                    if labels.contains("quantile=") || labels.contains("le=") {
                        continue;
                    }
                    (&line[..open], &line[open + close + 1..])
                }
                None => continue,
            },
            None => match line.split_once(' ') {
                Some((name, rest)) => (name, rest),
                None => continue,
            },
        };
        let Some(value) = rest
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<f64>().ok())
        else {
            continue;
        };
        if value.is_finite() {
            *values.entry(series.to_string()).or_insert(0.0) += value;
        }
    }
    values
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_is_summed_per_metric() {
        let text = "# TYPE a counter\na_total 3\nlag{partition=\"0\"} 2\nlag{partition=\"1\"} 5\n\
                    latency{quantile=\"0.5\"} 0.1\nlatency_sum 4.5\nlatency_count 9\nbad line\n";
        let values = parse_prometheus(text);
        assert_eq!(values.get("a_total"), Some(&3.0));
        assert_eq!(values.get("lag"), Some(&7.0));
        assert_eq!(values.get("latency"), None);
        assert_eq!(values.get("latency_count"), Some(&9.0));
    }

    #[test]
    fn figures_and_rates_come_from_consecutive_samples() {
        let mut samples = BTreeMap::new();
        let status = |name: &str| ServiceStatus {
            name: name.to_string(),
            url: None,
            ready: Some(true),
            checks: BTreeMap::new(),
            figures: BTreeMap::new(),
            checked_at: String::new(),
        };
        let first = "stockstream_sink_records_written_total 100\n\
                     stockstream_sink_consumer_lag_records{partition=\"0\"} 4\n\
                     stockstream_sink_last_commit_timestamp_seconds 1700000000.5\n";
        let sampled = with_figures((status("sink"), Some(first.into())), &mut samples);
        assert_eq!(sampled.figures["records_written"], 100);
        assert_eq!(sampled.figures["consumer_lag"], 4);
        assert_eq!(
            sampled.figures["last_flush_at"],
            "2023-11-14T22:13:20.500+00:00"
        );
        assert!(!sampled.figures.contains_key("rows_in_per_second"));
        std::thread::sleep(Duration::from_millis(50));
        let second = "stockstream_sink_records_written_total 200\n";
        let sampled = with_figures((status("sink"), Some(second.into())), &mut samples);
        let rate = sampled.figures["rows_in_per_second"]
            .as_f64()
            .expect("rate");
        assert!(rate > 0.0 && rate <= 100.0 / 0.05, "{rate}");
    }
}
