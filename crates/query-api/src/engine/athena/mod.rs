//! Amazon Athena as the engine: the SQL runs in AWS against the Glue Data Catalog.
//!
//! A query starts with `StartQueryExecution` in the configured workgroup and database, with the
//! result location (unless the workgroup enforces one), the `?` parameters as
//! `ExecutionParameters` (strings quoted and escaped, numbers and booleans as literals), a
//! `ClientRequestToken` derived from the query id (so a retried start does not run it twice), and
//! optional result reuse. `GetQueryExecution` is polled with backoff (`query.athena.poll_initial`,
//! doubling to `poll_max`) until the query ends, is cancelled (`StopQueryExecution`), or passes
//! its deadline (`StopQueryExecution`, then a timeout error). Throttling is retried by the SDK's
//! standard retry policy, and polls that still fail with a retryable error are polled again.
//! Rows come from `GetQueryResults`, 1,000 a page, typed by [`results`]; for a SELECT the first
//! row of the first page is the header and is dropped.

mod results;

use std::time::Duration;

use aws_sdk_athena::config::retry::RetryConfig;
use aws_sdk_athena::types::{
    QueryExecutionContext, QueryExecutionState, ResultConfiguration, ResultReuseByAgeConfiguration,
    ResultReuseConfiguration,
};
use datafusion::sql::sqlparser::ast::Statement;
use sha2::{Digest, Sha256};
use tokio::time::Instant;

use super::{Execution, ExecutionSink, Output, Param, QueryEngine, QueryRequest, QueryState};
use crate::aws::aws_error;
use crate::config::{AthenaConfig, EngineKind};
use crate::error::{Error, Result};

/// Rows per `GetQueryResults` page (Athena's maximum).
const PAGE_ROWS: i32 = 1000;
/// Attempts of each Athena request under the SDK's standard retry policy (throttling, 5xx).
const MAX_ATTEMPTS: u32 = 5;
/// Athena's `ErrorCategory` for errors caused by the query itself.
const USER_ERROR: i32 = 2;

/// Amazon Athena.
#[derive(Debug, Clone)]
pub struct AthenaEngine {
    client: aws_sdk_athena::Client,
    config: AthenaConfig,
    database: String,
}

impl AthenaEngine {
    /// Connects to Athena in the configured region (and endpoint).
    pub async fn connect(config: AthenaConfig, database: String) -> Self {
        let sdk = config.aws.sdk_config().await;
        let client_config = aws_sdk_athena::config::Builder::from(&sdk)
            .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
            .build();
        Self::with_client(
            aws_sdk_athena::Client::from_conf(client_config),
            config,
            database,
        )
    }

    /// Uses an existing client (tests with mocked responses).
    pub fn with_client(
        client: aws_sdk_athena::Client,
        config: AthenaConfig,
        database: String,
    ) -> Self {
        Self {
            client,
            config,
            database,
        }
    }
}

/// The literal Athena substitutes for a `?`: strings quoted with `'` doubled.
pub fn execution_parameter(param: &Param) -> String {
    match param {
        Param::Null => "NULL".to_string(),
        Param::Bool(flag) => flag.to_string(),
        Param::Int(integer) => integer.to_string(),
        Param::Float(float) if float.is_finite() => {
            let text = format!("{float:?}");
            // Trino reads `1e300` as a double, `1.5` as a decimal: keep doubles doubles.
            if text.contains(['e', 'E']) {
                text
            } else {
                format!("{text}E0")
            }
        }
        Param::Float(float) => format!("CAST('{float}' AS DOUBLE)"),
        Param::Text(text) => format!("'{}'", text.replace('\'', "''")),
    }
}

/// Athena's `ClientRequestToken` for a query id: 64 hex characters (Athena wants 32 to 128).
pub fn request_token(query_id: &str) -> String {
    Sha256::digest(query_id.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[async_trait::async_trait]
impl QueryEngine for AthenaEngine {
    fn kind(&self) -> EngineKind {
        EngineKind::Athena
    }

    async fn start(&self, request: QueryRequest) -> Result<Execution> {
        let mut start = self
            .client
            .start_query_execution()
            .query_string(&request.sql)
            .query_execution_context(
                QueryExecutionContext::builder()
                    .catalog("AwsDataCatalog")
                    .database(&self.database)
                    .build(),
            )
            .work_group(&self.config.workgroup)
            .client_request_token(request_token(&request.id));
        if let Some(location) = &self.config.output_location {
            start = start.result_configuration(
                ResultConfiguration::builder()
                    .output_location(location)
                    .build(),
            );
        }
        if !request.params.is_empty() {
            start = start.set_execution_parameters(Some(
                request.params.iter().map(execution_parameter).collect(),
            ));
        }
        if let Some(age) = self.config.result_reuse_max_age {
            start = start.result_reuse_configuration(
                ResultReuseConfiguration::builder()
                    .result_reuse_by_age_configuration(
                        ResultReuseByAgeConfiguration::builder()
                            .enabled(true)
                            .max_age_in_minutes((age.as_secs() / 60) as i32)
                            .build(),
                    )
                    .build(),
            );
        }
        let started = start.send().await.map_err(|error| {
            if crate::aws::error_code(&error) == Some("InvalidRequestException") {
                Error::AthenaUser(aws_sdk_athena::error::DisplayErrorContext(&error).to_string())
            } else {
                aws_error("Athena", "StartQueryExecution", error)
            }
        })?;
        let execution_id = started
            .query_execution_id()
            .ok_or_else(|| Error::Internal("Athena returned no QueryExecutionId".into()))?
            .to_string();
        let (sink, execution) = ExecutionSink::channel(EngineKind::Athena);
        sink.update(|status| status.stats.athena_query_id = Some(execution_id.clone()));
        let run = Run {
            engine: self.clone(),
            execution_id,
            has_header: matches!(request.checked.statement, Statement::Query(_)),
            max_rows: request.max_rows,
            deadline: Instant::now() + request.timeout,
            timeout: request.timeout,
        };
        tokio::spawn(run.drive(sink));
        Ok(execution)
    }
}

/// What one poll found.
#[derive(Debug)]
enum Poll {
    /// Queued or running.
    Pending,
    /// Done; results can be read.
    Succeeded,
    /// Failed or cancelled in Athena.
    Ended(Error),
}

/// One query in Athena, driven to its end.
#[derive(Debug)]
struct Run {
    engine: AthenaEngine,
    execution_id: String,
    has_header: bool,
    max_rows: usize,
    deadline: Instant,
    timeout: Duration,
}

impl Run {
    async fn drive(self, sink: ExecutionSink) {
        let started = Instant::now();
        let outcome = self.run(&sink).await;
        sink.update(|status| status.stats.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0);
        sink.finish(outcome);
    }

    async fn run(&self, sink: &ExecutionSink) -> Result<()> {
        self.wait_until_done(sink).await?;
        self.read_results(sink).await
    }

    /// Polls until SUCCEEDED (Ok), FAILED or CANCELLED (Err), a cancel, or the deadline.
    async fn wait_until_done(&self, sink: &ExecutionSink) -> Result<()> {
        let mut delay = self.engine.config.poll_initial;
        loop {
            match self.poll(sink).await {
                Ok(Poll::Succeeded) => return Ok(()),
                Ok(Poll::Ended(error)) => return Err(error),
                Ok(Poll::Pending) => {}
                // A request that failed (throttled past the SDK's retries, a network blip): the
                // query itself goes on in Athena, so poll again.
                Err(error) if error.is_retryable() => {
                    tracing::debug!(%error, execution_id = %self.execution_id, "polling Athena failed; polling again");
                }
                Err(error) => return Err(error),
            }
            let wake = (Instant::now() + delay).min(self.deadline);
            tokio::select! {
                () = sink.cancel.cancelled() => {
                    self.stop().await;
                    return Err(Error::Cancelled(String::new()));
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            if Instant::now() >= self.deadline {
                self.stop().await;
                return Err(Error::Timeout(self.timeout));
            }
            delay = (delay * 2).min(self.engine.config.poll_max);
        }
    }

    /// One `GetQueryExecution`: publishes state and statistics. An `Err` is the request's own
    /// failure; the query's end (failed, cancelled) is [`Poll::Ended`].
    async fn poll(&self, sink: &ExecutionSink) -> Result<Poll> {
        let answer = self
            .engine
            .client
            .get_query_execution()
            .query_execution_id(&self.execution_id)
            .send()
            .await
            .map_err(|error| aws_error("Athena", "GetQueryExecution", error))?;
        let execution = answer
            .query_execution()
            .ok_or_else(|| Error::Internal("GetQueryExecution returned no execution".into()))?;
        if let Some(statistics) = execution.statistics() {
            sink.update(|status| {
                status.stats.bytes_scanned = statistics
                    .data_scanned_in_bytes()
                    .map_or(0, |bytes| bytes.max(0) as u64);
                status.stats.engine_execution_ms = statistics
                    .engine_execution_time_in_millis()
                    .map(|millis| millis.max(0) as u64);
                status.stats.queue_ms = statistics
                    .query_queue_time_in_millis()
                    .map(|millis| millis.max(0) as u64);
                status.stats.result_reused = statistics
                    .result_reuse_information()
                    .map(|reuse| reuse.reused_previous_result());
            });
        }
        let status = execution.status();
        let state = status.and_then(|status| status.state());
        match state {
            Some(QueryExecutionState::Succeeded) => Ok(Poll::Succeeded),
            Some(QueryExecutionState::Failed) => {
                let reason = status
                    .and_then(|status| status.state_change_reason())
                    .unwrap_or("no reason given")
                    .to_string();
                let error = status.and_then(|status| status.athena_error());
                Ok(Poll::Ended(match error {
                    Some(error) if error.error_category() == Some(USER_ERROR) => {
                        Error::AthenaUser(reason)
                    }
                    _ => Error::Aws {
                        service: "Athena",
                        operation: "query",
                        message: reason,
                        retryable: error.is_some_and(|error| error.retryable()),
                    },
                }))
            }
            Some(QueryExecutionState::Cancelled) => {
                Ok(Poll::Ended(Error::Cancelled(" in Athena".to_string())))
            }
            Some(QueryExecutionState::Running) => {
                sink.update(|status| status.state = QueryState::Running);
                Ok(Poll::Pending)
            }
            _ => Ok(Poll::Pending),
        }
    }

    async fn stop(&self) {
        let stopped = self
            .engine
            .client
            .stop_query_execution()
            .query_execution_id(&self.execution_id)
            .send()
            .await;
        if let Err(error) = stopped {
            tracing::warn!(
                execution_id = %self.execution_id,
                error = %aws_sdk_athena::error::DisplayErrorContext(&error),
                "StopQueryExecution failed"
            );
        }
    }

    /// Pages through the results, sending batches until `max_rows + 1` rows or the last page.
    async fn read_results(&self, sink: &ExecutionSink) -> Result<()> {
        sink.update(|status| status.state = QueryState::Running);
        let mut token: Option<String> = None;
        let mut schema = None;
        let mut first_page = true;
        let mut sent = 0usize;
        loop {
            if sink.cancel.is_cancelled() {
                return Err(Error::Cancelled(String::new()));
            }
            let page = self
                .engine
                .client
                .get_query_results()
                .query_execution_id(&self.execution_id)
                .max_results(PAGE_ROWS)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(|error| aws_error("Athena", "GetQueryResults", error))?;
            let Some(result_set) = page.result_set() else {
                break;
            };
            let columns = result_set
                .result_set_metadata()
                .map(|metadata| metadata.column_info().to_vec())
                .unwrap_or_default();
            let schema = match &schema {
                Some(schema) => std::sync::Arc::clone(schema),
                None => {
                    let found = results::schema_of(&columns);
                    schema = Some(found.clone());
                    if !sink.send(Output::Schema(found.clone())).await {
                        return Ok(());
                    }
                    found
                }
            };
            let mut rows = result_set.rows();
            if first_page && self.has_header && !rows.is_empty() {
                rows = &rows[1..];
            }
            first_page = false;
            let room = self.max_rows.saturating_add(1).saturating_sub(sent);
            let rows = &rows[..rows.len().min(room)];
            if !rows.is_empty() {
                let batch = results::batch_of(&columns, &schema, rows)?;
                sent += batch.num_rows();
                sink.update(|status| status.stats.rows = sent);
                // The client stopped reading: the Athena query itself succeeded.
                if !sink.send(Output::Batch(batch)).await {
                    return Ok(());
                }
            }
            token = page.next_token().map(str::to_string);
            if token.is_none() || sent > self.max_rows {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod literal_tests {
    use super::*;

    #[test]
    fn parameters_become_athena_literals() {
        assert_eq!(execution_parameter(&Param::Text("HSI".into())), "'HSI'");
        assert_eq!(
            execution_parameter(&Param::Text("O'Brien'; DROP TABLE x --".into())),
            "'O''Brien''; DROP TABLE x --'"
        );
        assert_eq!(execution_parameter(&Param::Int(-42)), "-42");
        assert_eq!(execution_parameter(&Param::Float(1.5)), "1.5E0");
        assert_eq!(execution_parameter(&Param::Float(1e300)), "1e300");
        assert_eq!(execution_parameter(&Param::Bool(true)), "true");
        assert_eq!(execution_parameter(&Param::Null), "NULL");
    }

    #[test]
    fn request_tokens_are_stable_and_long_enough() {
        let token = request_token("6f1c2a6e-5d1b-4a59-9d7e-2f3c1b0a9e8d");
        assert_eq!(token.len(), 64);
        assert_eq!(token, request_token("6f1c2a6e-5d1b-4a59-9d7e-2f3c1b0a9e8d"));
        assert_ne!(token, request_token("another"));
    }
}
