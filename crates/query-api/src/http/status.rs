//! `GET /v1/status`: the lake (tables, columns, partitions, the last commit) and each service's
//! readiness and key figures, as sampled by [`crate::status::StatusBoard`].

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use super::model::TableSummary;
use crate::status::ServiceStatus;

/// `GET /v1/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusAnswer {
    /// When this answer was made (RFC 3339).
    pub generated_at: String,
    /// The lake as the catalog shows it.
    pub lake: LakeStatus,
    /// Every configured service and the query API itself.
    pub services: Vec<ServiceStatus>,
}

/// The lake part of [`StatusAnswer`].
#[derive(Debug, Serialize, ToSchema)]
pub struct LakeStatus {
    /// The last commit of a file to the lake a service reported (RFC 3339), if any.
    pub last_commit_at: Option<String>,
    /// The catalog database.
    pub database: String,
    /// When the catalog was read (RFC 3339).
    pub catalog_loaded_at: String,
    /// Its tables, as `/v1/tables` lists them.
    pub tables: Vec<TableSummary>,
}

/// The lake and the pipeline's services.
#[utoipa::path(
    get,
    path = "/v1/status",
    tag = "catalog",
    responses(
        (status = 200, description = "Lake and services", body = StatusAnswer),
        (status = 401, description = "Missing or wrong bearer token", body = super::model::ErrorBody),
    ),
    security((), ("bearer" = [])),
)]
pub(crate) async fn status(State(app): State<AppState>) -> Json<StatusAnswer> {
    let snapshot = app.catalog.snapshot();
    let tables = snapshot
        .tables
        .values()
        .map(|table| super::market::summary(&app, table))
        .collect();
    Json(StatusAnswer {
        generated_at: chrono::Utc::now().to_rfc3339(),
        lake: LakeStatus {
            last_commit_at: app.status.last_commit_at(),
            database: snapshot.database.clone(),
            catalog_loaded_at: snapshot.loaded_at.to_rfc3339(),
            tables,
        },
        services: app.status.services(),
    })
}
