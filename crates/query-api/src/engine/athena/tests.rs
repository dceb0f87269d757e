//! The Athena engine against mocked SDK responses: request shape, polling, pages, failures,
//! cancellation, the deadline and throttling. (`tests/tests/query_athena.rs` runs it on moto.)

use std::collections::HashSet;
use std::time::Duration;

use aws_sdk_athena::Client;
use aws_sdk_athena::config::retry::RetryConfig;
use aws_sdk_athena::operation::get_query_execution::GetQueryExecutionOutput;
use aws_sdk_athena::operation::get_query_results::GetQueryResultsOutput;
use aws_sdk_athena::operation::start_query_execution::StartQueryExecutionOutput;
use aws_sdk_athena::operation::stop_query_execution::StopQueryExecutionOutput;
use aws_sdk_athena::types::{
    AthenaError, ColumnInfo, Datum, QueryExecution, QueryExecutionState, QueryExecutionStatistics,
    QueryExecutionStatus, ResultSet, ResultSetMetadata, Row,
};
use aws_smithy_mocks::{Rule, RuleMode, mock, mock_client};

use super::*;
use crate::engine::{Execution, Output};
use crate::guard::{Scope, check};

const QUERY_ID: &str = "0b5c3a52-3f0e-4c5e-9d7a-8c1f1d2e3a4b";

fn config() -> AthenaConfig {
    AthenaConfig {
        workgroup: "stockstream".into(),
        output_location: Some("s3://athena-results/stockstream/".into()),
        aws: Default::default(),
        poll_initial: Duration::from_millis(5),
        poll_max: Duration::from_millis(20),
        result_reuse_max_age: None,
    }
}

fn request(sql: &str, params: Vec<Param>, max_rows: usize, timeout: Duration) -> QueryRequest {
    let scope = Scope {
        database: "stockstream".into(),
        tables: HashSet::from(["quotes".to_string()]),
    };
    QueryRequest {
        id: QUERY_ID.into(),
        sql: sql.into(),
        checked: check(sql, &scope).expect("passes the guard"),
        params,
        max_rows,
        timeout,
    }
}

fn engine(rules: &[&Rule]) -> AthenaEngine {
    let client = mock_client!(aws_sdk_athena, RuleMode::MatchAny, rules, |config| config
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(4)
                .with_initial_backoff(Duration::from_millis(1))
        ));
    AthenaEngine::with_client(client, config(), "stockstream".into())
}

fn execution_in(state: QueryExecutionState) -> GetQueryExecutionOutput {
    GetQueryExecutionOutput::builder()
        .query_execution(
            QueryExecution::builder()
                .query_execution_id("exec-1")
                .status(QueryExecutionStatus::builder().state(state).build())
                .statistics(
                    QueryExecutionStatistics::builder()
                        .data_scanned_in_bytes(123_456)
                        .engine_execution_time_in_millis(789)
                        .query_queue_time_in_millis(12)
                        .build(),
                )
                .build(),
        )
        .build()
}

fn failed(category: i32, retryable: bool) -> GetQueryExecutionOutput {
    GetQueryExecutionOutput::builder()
        .query_execution(
            QueryExecution::builder()
                .status(
                    QueryExecutionStatus::builder()
                        .state(QueryExecutionState::Failed)
                        .state_change_reason(
                            "COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved",
                        )
                        .athena_error(
                            AthenaError::builder()
                                .error_category(category)
                                .retryable(retryable)
                                .build(),
                        )
                        .build(),
                )
                .build(),
        )
        .build()
}

fn datum(value: Option<&str>) -> Datum {
    Datum::builder()
        .set_var_char_value(value.map(str::to_string))
        .build()
}

/// A page of `rows` numbered rows (`n` bigint, `symbol` varchar), with the header first if asked.
fn page(first: usize, rows: usize, header: bool, next: Option<&str>) -> GetQueryResultsOutput {
    let mut all = Vec::new();
    if header {
        all.push(
            Row::builder()
                .data(datum(Some("n")))
                .data(datum(Some("symbol")))
                .build(),
        );
    }
    for n in first..first + rows {
        all.push(
            Row::builder()
                .data(datum(Some(&n.to_string())))
                .data(datum(Some("HSI")))
                .build(),
        );
    }
    let columns = ResultSetMetadata::builder()
        .column_info(
            ColumnInfo::builder()
                .name("n")
                .r#type("bigint")
                .build()
                .expect("column"),
        )
        .column_info(
            ColumnInfo::builder()
                .name("symbol")
                .r#type("varchar")
                .build()
                .expect("column"),
        )
        .build();
    GetQueryResultsOutput::builder()
        .result_set(
            ResultSet::builder()
                .set_rows(Some(all))
                .result_set_metadata(columns)
                .build(),
        )
        .set_next_token(next.map(str::to_string))
        .build()
}

fn started() -> Rule {
    mock!(Client::start_query_execution).then_output(|| {
        StartQueryExecutionOutput::builder()
            .query_execution_id("exec-1")
            .build()
    })
}

/// Reads an execution to its end: the numbers in column 0, and the final status.
async fn drain(mut execution: Execution) -> (Vec<i64>, crate::engine::QueryStatus) {
    let mut numbers = Vec::new();
    while let Some(item) = execution.output.recv().await {
        if let Output::Batch(batch) = item {
            let column = batch
                .column(0)
                .as_any()
                .downcast_ref::<arrow::array::Int64Array>()
                .expect("bigint");
            numbers.extend(column.iter().map(|value| value.expect("not null")));
        }
    }
    let status = execution.status.borrow().clone();
    (numbers, status)
}

#[tokio::test]
async fn a_query_is_sent_as_configured_polled_and_read_page_by_page() {
    let start = mock!(Client::start_query_execution)
        .match_requests(|input| {
            input.work_group() == Some("stockstream")
                && input.query_string()
                    == Some("SELECT n, symbol FROM quotes WHERE symbol = ? AND year = ?")
                && input.execution_parameters() == ["'HSI'", "1987"]
                && input.client_request_token() == Some(request_token(QUERY_ID).as_str())
                && input
                    .query_execution_context()
                    .and_then(|context| context.database())
                    == Some("stockstream")
                && input
                    .result_configuration()
                    .and_then(|configuration| configuration.output_location())
                    == Some("s3://athena-results/stockstream/")
        })
        .then_output(|| {
            StartQueryExecutionOutput::builder()
                .query_execution_id("exec-1")
                .build()
        });
    let polls = mock!(Client::get_query_execution)
        .sequence()
        .output(|| execution_in(QueryExecutionState::Queued))
        .output(|| execution_in(QueryExecutionState::Running))
        .output(|| execution_in(QueryExecutionState::Succeeded))
        .build();
    let pages = mock!(Client::get_query_results)
        .sequence()
        .output(|| page(0, 999, true, Some("page-2")))
        .output(|| page(999, 1000, false, Some("page-3")))
        .output(|| page(1999, 500, false, None))
        .build();
    let engine = engine(&[&start, &polls, &pages]);
    let execution = engine
        .start(request(
            "SELECT n, symbol FROM quotes WHERE symbol = ? AND year = ?",
            vec![Param::Text("HSI".into()), Param::Int(1987)],
            10_000,
            Duration::from_secs(10),
        ))
        .await
        .expect("started");
    let (numbers, status) = drain(execution).await;
    // The header row of the first page is dropped, no data row of a later page is.
    assert_eq!(numbers, (0..2499).collect::<Vec<i64>>());
    assert_eq!(status.state, QueryState::Succeeded);
    assert_eq!(status.stats.athena_query_id.as_deref(), Some("exec-1"));
    assert_eq!(status.stats.bytes_scanned, 123_456);
    assert_eq!(status.stats.engine_execution_ms, Some(789));
    assert_eq!(status.stats.queue_ms, Some(12));
    assert_eq!(
        (start.num_calls(), polls.num_calls(), pages.num_calls()),
        (1, 3, 3)
    );
}

#[tokio::test]
async fn reading_stops_after_the_rows_the_client_wants() {
    let start = started();
    let polls = mock!(Client::get_query_execution)
        .then_output(|| execution_in(QueryExecutionState::Succeeded));
    let pages = mock!(Client::get_query_results)
        .sequence()
        .output(|| page(0, 999, true, Some("page-2")))
        .output(|| page(999, 1000, false, None))
        .build();
    let engine = engine(&[&start, &polls, &pages]);
    let execution = engine
        .start(request(
            "SELECT n, symbol FROM quotes",
            vec![],
            10,
            Duration::from_secs(10),
        ))
        .await
        .expect("started");
    let (numbers, _) = drain(execution).await;
    assert_eq!(
        numbers.len(),
        11,
        "max_rows + 1, to know the answer was cut"
    );
    assert_eq!(pages.num_calls(), 1);
}

#[tokio::test]
async fn a_failed_query_reports_athenas_reason_and_category() {
    for (category, retryable, kind) in [(2, false, "query_failed"), (1, true, "upstream")] {
        let start = started();
        let polls =
            mock!(Client::get_query_execution).then_output(move || failed(category, retryable));
        let engine = engine(&[&start, &polls]);
        let execution = engine
            .start(request(
                "SELECT n FROM quotes",
                vec![],
                10,
                Duration::from_secs(10),
            ))
            .await
            .expect("started");
        let (_, status) = drain(execution).await;
        assert_eq!(status.state, QueryState::Failed);
        let error = status.error.expect("an error");
        assert_eq!(error.kind(), kind);
        assert_eq!(error.is_retryable(), retryable);
        assert!(error.to_string().contains("COLUMN_NOT_FOUND"), "{error}");
    }
}

#[tokio::test]
async fn a_query_cancelled_in_athena_is_cancelled_here() {
    let start = started();
    let polls = mock!(Client::get_query_execution)
        .then_output(|| execution_in(QueryExecutionState::Cancelled));
    let engine = engine(&[&start, &polls]);
    let execution = engine
        .start(request(
            "SELECT n FROM quotes",
            vec![],
            10,
            Duration::from_secs(10),
        ))
        .await
        .expect("started");
    let (_, status) = drain(execution).await;
    assert_eq!(status.state, QueryState::Cancelled);
    assert_eq!(status.error.expect("an error").kind(), "cancelled");
}

#[tokio::test]
async fn the_deadline_stops_the_query_in_athena() {
    let start = started();
    let polls = mock!(Client::get_query_execution)
        .then_output(|| execution_in(QueryExecutionState::Running));
    let stop = mock!(Client::stop_query_execution)
        .match_requests(|input| input.query_execution_id() == Some("exec-1"))
        .then_output(|| StopQueryExecutionOutput::builder().build());
    let engine = engine(&[&start, &polls, &stop]);
    let execution = engine
        .start(request(
            "SELECT n FROM quotes",
            vec![],
            10,
            Duration::from_millis(200),
        ))
        .await
        .expect("started");
    let (_, status) = drain(execution).await;
    assert_eq!(status.state, QueryState::Cancelled);
    assert_eq!(status.error.expect("an error").kind(), "timeout");
    assert_eq!(stop.num_calls(), 1);
    assert!(polls.num_calls() >= 3, "polled {} times", polls.num_calls());
}

#[tokio::test]
async fn a_cancel_stops_the_query_in_athena() {
    let start = started();
    let polls = mock!(Client::get_query_execution)
        .then_output(|| execution_in(QueryExecutionState::Running));
    let stop = mock!(Client::stop_query_execution)
        .then_output(|| StopQueryExecutionOutput::builder().build());
    let engine = engine(&[&start, &polls, &stop]);
    let execution = engine
        .start(request(
            "SELECT n FROM quotes",
            vec![],
            10,
            Duration::from_secs(30),
        ))
        .await
        .expect("started");
    execution.cancel.cancel();
    let (_, status) = drain(execution).await;
    assert_eq!(status.state, QueryState::Cancelled);
    assert_eq!(stop.num_calls(), 1);
}

#[tokio::test]
async fn throttling_is_retried() {
    let throttled = r#"{"__type":"TooManyRequestsException","Message":"Rate exceeded"}"#;
    let start = mock!(Client::start_query_execution)
        .sequence()
        .http_status(400, Some(throttled.to_string()))
        .times(2)
        .output(|| {
            StartQueryExecutionOutput::builder()
                .query_execution_id("exec-1")
                .build()
        })
        .build();
    let polls = mock!(Client::get_query_execution)
        .sequence()
        .http_status(400, Some(throttled.to_string()))
        .output(|| execution_in(QueryExecutionState::Succeeded))
        .repeatedly()
        .build();
    let pages = mock!(Client::get_query_results).then_output(|| page(0, 3, true, None));
    let engine = engine(&[&start, &polls, &pages]);
    let execution = engine
        .start(request(
            "SELECT n FROM quotes",
            vec![],
            10,
            Duration::from_secs(10),
        ))
        .await
        .expect("started after two throttled attempts");
    let (numbers, status) = drain(execution).await;
    assert_eq!(numbers, vec![0, 1, 2]);
    assert_eq!(status.state, QueryState::Succeeded);
    assert_eq!(start.num_calls(), 3);
}

#[tokio::test]
async fn a_describe_has_no_header_row_to_drop() {
    let start = started();
    let polls = mock!(Client::get_query_execution)
        .then_output(|| execution_in(QueryExecutionState::Succeeded));
    let pages = mock!(Client::get_query_results).then_output(|| page(0, 2, false, None));
    let engine = engine(&[&start, &polls, &pages]);
    let execution = engine
        .start(request(
            "DESCRIBE quotes",
            vec![],
            10,
            Duration::from_secs(10),
        ))
        .await
        .expect("started");
    let (numbers, _) = drain(execution).await;
    assert_eq!(numbers, vec![0, 1]);
}
