//! The dashboard: `GET /` (the page) and `GET /assets/{*path}` (its scripts, styles and the
//! vendored charting library with its licence), embedded in the binary — nothing is fetched from
//! elsewhere at run time. Every answer carries the Content-Security-Policy the page works under.
//! The files themselves are in `crates/query-api/assets/` (see docs/dashboard.md).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// What the page needs and nothing more: its own scripts, inline styles (the chart library sets
/// them), a `data:` favicon, and calls to this API.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

macro_rules! asset {
    ($path:literal, $type:literal) => {
        (
            $path,
            $type,
            include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)).as_slice(),
        )
    };
}

/// `(path under /assets/, content type, bytes)` of every embedded file.
const ASSETS: &[(&str, &str, &[u8])] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("app.js", "text/javascript; charset=utf-8"),
    asset!("api.js", "text/javascript; charset=utf-8"),
    asset!("board.js", "text/javascript; charset=utf-8"),
    asset!("chart.js", "text/javascript; charset=utf-8"),
    asset!("format.js", "text/javascript; charset=utf-8"),
    asset!("sql.js", "text/javascript; charset=utf-8"),
    asset!("status.js", "text/javascript; charset=utf-8"),
    asset!("ticker.js", "text/javascript; charset=utf-8"),
    asset!(
        "vendor/lightweight-charts.standalone.production.js",
        "text/javascript; charset=utf-8"
    ),
    asset!(
        "vendor/lightweight-charts.LICENSE",
        "text/plain; charset=utf-8"
    ),
    asset!(
        "vendor/lightweight-charts.NOTICE",
        "text/plain; charset=utf-8"
    ),
];

/// `GET /`: the dashboard page.
#[utoipa::path(
    get,
    path = "/",
    tag = "dashboard",
    responses((status = 200, description = "The dashboard page", content_type = "text/html", body = String)),
)]
pub async fn index() -> Response {
    serve("index.html")
}

/// `GET /assets/{*path}`: one embedded file.
#[utoipa::path(
    get,
    path = "/assets/{path}",
    tag = "dashboard",
    params(("path" = String, Path, description = "The file under `assets/`, e.g. `app.js` or `vendor/lightweight-charts.LICENSE`")),
    responses(
        (status = 200, description = "The file, with the page's Content-Security-Policy", body = String,
            content(
                (String = "text/javascript"),
                (String = "text/css"),
                (String = "text/html"),
                (String = "text/plain"),
            )),
        (status = 404, description = "No such file is embedded", content_type = "text/plain", body = String),
    ),
)]
pub(crate) async fn asset(Path(path): Path<String>) -> Response {
    serve(&path)
}

fn serve(path: &str) -> Response {
    let Some((_, content_type, bytes)) = ASSETS.iter().find(|(name, _, _)| *name == path) else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let mut response = (StatusCode::OK, *bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    // The assets change with the binary; revalidate so an upgrade is seen at once.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_page_references_is_embedded() {
        let page = std::str::from_utf8(ASSETS[0].2).expect("utf-8");
        for reference in page.split("\"/assets/").skip(1) {
            let path = reference.split('"').next().unwrap_or_default();
            assert!(
                ASSETS.iter().any(|(name, _, _)| *name == path),
                "index.html references /assets/{path}, which is not embedded"
            );
        }
        for (name, _, bytes) in ASSETS.iter().filter(|(name, _, _)| name.ends_with(".js")) {
            let text = std::str::from_utf8(bytes).expect("utf-8");
            for reference in text.split("from \"./").skip(1) {
                let module = reference.split('"').next().unwrap_or_default();
                assert!(
                    ASSETS.iter().any(|(name, _, _)| *name == module),
                    "{name} imports ./{module}, which is not embedded"
                );
            }
        }
    }

    #[test]
    fn unknown_assets_are_404() {
        assert_eq!(serve("../Cargo.toml").status(), StatusCode::NOT_FOUND);
        assert_eq!(serve("app.js").status(), StatusCode::OK);
    }
}
