//! A small HTTP/1.1 client for the tests (no client dependency): any method, extra headers, and
//! chunked bodies (the query API streams NDJSON, CSV and Arrow answers chunk by chunk).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response: status, headers (lower-case names) and the decoded body.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names in lower case.
    pub headers: BTreeMap<String, String>,
    /// Body bytes (chunked encoding removed).
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_slice(&self.body)
            .with_context(|| format!("status {}, body is not JSON: {}", self.status, self.text()))
    }
}

/// Sends one request and reads the whole response.
pub async fn http_call(
    address: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Result<HttpResponse> {
    let mut stream = tokio::net::TcpStream::connect(address).await?;
    let mut request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        request.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await?;
    stream.write_all(body).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse_response(&raw)
}

/// `GET path` with `Accept: accept`.
pub async fn http_get_as(address: SocketAddr, path: &str, accept: &str) -> Result<HttpResponse> {
    http_call(address, "GET", path, &[("Accept", accept)], b"").await
}

/// `POST path` with a JSON body and `Accept: accept`.
pub async fn http_post_json(
    address: SocketAddr,
    path: &str,
    body: &serde_json::Value,
    accept: &str,
) -> Result<HttpResponse> {
    http_call(
        address,
        "POST",
        path,
        &[("Content-Type", "application/json"), ("Accept", accept)],
        body.to_string().as_bytes(),
    )
    .await
}

fn parse_response(raw: &[u8]) -> Result<HttpResponse> {
    let split = raw
        .windows(4)
        .position(|window| window == b"\r\n\r\n")
        .context("malformed HTTP response: no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let payload = &raw[split + 4..];
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .context("no status line")?
        .parse()?;
    let headers: BTreeMap<String, String> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_string()))
        .collect();
    let body = if headers
        .get("transfer-encoding")
        .is_some_and(|value| value.eq_ignore_ascii_case("chunked"))
    {
        dechunk(payload)?
    } else {
        payload.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Decodes a chunked body; fails if the stream ends before the last chunk (an aborted answer).
fn dechunk(mut payload: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = payload
            .windows(2)
            .position(|window| window == b"\r\n")
            .context("chunked body ended without its last chunk (the server aborted it)")?;
        let size_text = String::from_utf8_lossy(&payload[..line_end]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size `{size_text}`"))?;
        payload = &payload[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if payload.len() < size + 2 {
            bail!("chunked body ended inside a chunk (the server aborted it)");
        }
        body.extend_from_slice(&payload[..size]);
        payload = &payload[size + 2..];
    }
}

/// Runs schemathesis against the OpenAPI description at `base/openapi.json`: requests generated
/// for every documented endpoint, none of which may get a server error or an answer that breaks
/// its documented status, content type or schema. Returns schemathesis's report; fails with it.
pub async fn schemathesis(base: &str, work: &std::path::Path, max_examples: u32) -> Result<String> {
    let schemathesis = std::path::PathBuf::from(
        std::env::var_os("STOCKSTREAM_SCHEMATHESIS")
            .context("STOCKSTREAM_SCHEMATHESIS is not set: run the tests with `make test`")?,
    );
    anyhow::ensure!(
        schemathesis.is_file(),
        "{} is missing: install it with `make tools` (scripts/tools.sh schemathesis)",
        schemathesis.display()
    );
    let url = format!("{base}/openapi.json");
    let output = tokio::process::Command::new(&schemathesis)
        .args([
            "run",
            &url,
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
            "--max-examples",
            &max_examples.to_string(),
            "--request-timeout",
            "20",
        ])
        .env("SCHEMATHESIS_HOOKS", "")
        .current_dir(work)
        .kill_on_drop(true)
        .output()
        .await
        .with_context(|| format!("running {}", schemathesis.display()))?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    anyhow::ensure!(
        output.status.success(),
        "schemathesis found problems at {url}:\n{text}"
    );
    Ok(text)
}
