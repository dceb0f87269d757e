//! `GET /openapi.json`: the API description, generated from the handlers and body types, with
//! the dashboard's files and the operations endpoints every service serves.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::model::{
    Accepted, Candle, CandlesAnswer, ColumnInfo, ErrorBody, ErrorDetail, Interval, PartitionInfo,
    QueryAnswer, QueryBody, QueryInfo, Quote, QuotesAnswer, ResultsPage, SymbolInfo, SymbolsAnswer,
    TableDetail, TableSummary, TablesAnswer,
};
use super::status::{LakeStatus, StatusAnswer};
use crate::engine::{QueryState, QueryStats};
use crate::status::{Check, ServiceStatus};

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "stockstream query API",
        description = "SQL over the stockstream lake (Apache DataFusion embedded, or Amazon Athena), market-data endpoints and the catalog. Every error is `{\"error\": {\"kind\", \"message\", \"retryable\"}}`.",
    ),
    paths(
        super::query::post_query,
        super::queries::get_query,
        super::queries::delete_query,
        super::queries::get_results,
        super::market::symbols,
        super::market::quotes,
        super::market::candles,
        super::market::tables,
        super::market::table,
        super::status::status,
        super::stream::quotes,
        super::assets::index,
        super::assets::asset,
    ),
    components(schemas(
        QueryBody, QueryAnswer, ColumnInfo, QueryStats, QueryState, Accepted, QueryInfo,
        ResultsPage, ErrorBody, ErrorDetail, SymbolsAnswer, SymbolInfo, QuotesAnswer, Quote,
        CandlesAnswer, Candle, Interval, TablesAnswer, TableSummary, TableDetail, PartitionInfo,
        StatusAnswer, LakeStatus, ServiceStatus, Check,
    )),
    modifiers(&BearerAuth),
    tags(
        (name = "query", description = "SQL queries, synchronous or asynchronous"),
        (name = "market data", description = "Symbols, quotes and candles"),
        (name = "catalog", description = "Tables and partitions"),
        (name = "live", description = "Live quotes as Server-Sent Events"),
        (name = "dashboard", description = "The dashboard page and its files"),
    ),
)]
pub(crate) struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        if let Some(components) = openapi.components.as_mut() {
            components.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

/// The API's and the dashboard's description (`ops_router` adds the operations endpoints').
pub(crate) fn api() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
