//! A Server-Sent Events client for the tests: opens `/v1/stream/quotes`, parses events as they
//! arrive (`event:`, `id:`, `data:` lines; comments are heartbeats), and can be told to stop
//! reading (a stalled client) with a small receive buffer.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpSocket, TcpStream};

/// One event of the stream.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    /// `event:` (`message` when absent).
    pub event: String,
    /// `id:`, if the event had one.
    pub id: Option<String>,
    /// `data:` lines joined with `\n`.
    pub data: String,
}

impl SseEvent {
    /// The data as JSON.
    pub fn json(&self) -> Result<serde_json::Value> {
        serde_json::from_str(&self.data).with_context(|| format!("event data: {}", self.data))
    }
}

/// An open event stream.
#[derive(Debug)]
pub struct SseClient {
    reader: BufReader<TcpStream>,
    /// The response status.
    pub status: u16,
    /// Heartbeat comments seen so far.
    pub heartbeats: usize,
    /// Decoded body text not yet split into lines.
    pending: String,
}

impl SseClient {
    /// `GET path` with `Last-Event-ID: last_event_id` when given; `receive_buffer` sets the
    /// socket's receive buffer (small values make a stalled client fill up fast).
    pub async fn connect(
        address: SocketAddr,
        path: &str,
        last_event_id: Option<&str>,
        receive_buffer: Option<u32>,
    ) -> Result<Self> {
        let socket = TcpSocket::new_v4()?;
        if let Some(size) = receive_buffer {
            socket.set_recv_buffer_size(size)?;
        }
        let mut stream = socket.connect(address).await?;
        let mut request =
            format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/event-stream\r\n");
        if let Some(id) = last_event_id {
            request.push_str(&format!("Last-Event-ID: {id}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).await?;
        let mut reader = BufReader::new(stream);
        let mut status_line = String::new();
        reader.read_line(&mut status_line).await?;
        let status = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("not an HTTP status line: {status_line:?}"))?;
        let mut chunked = false;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await?;
            if line.trim().is_empty() {
                break;
            }
            if line
                .to_ascii_lowercase()
                .starts_with("transfer-encoding: chunked")
            {
                chunked = true;
            }
        }
        if status == 200 && !chunked {
            bail!("the event stream is not chunked; this client expects chunked encoding");
        }
        Ok(Self {
            reader,
            status,
            heartbeats: 0,
            pending: String::new(),
        })
    }

    /// The next event, or `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<SseEvent>> {
        let mut event = SseEvent {
            event: "message".into(),
            id: None,
            data: String::new(),
        };
        let mut has_data = false;
        loop {
            let Some(line) = self.body_line().await? else {
                return Ok(None);
            };
            if line.is_empty() {
                if has_data {
                    return Ok(Some(event));
                }
                continue;
            }
            if line.starts_with(':') {
                self.heartbeats += 1;
                continue;
            }
            let (field, value) = line.split_once(':').unwrap_or((line.as_str(), ""));
            let value = value.strip_prefix(' ').unwrap_or(value);
            match field {
                "event" => event.event = value.to_string(),
                "id" => event.id = Some(value.to_string()),
                "data" => {
                    if has_data {
                        event.data.push('\n');
                    }
                    event.data.push_str(value);
                    has_data = true;
                }
                _ => {}
            }
        }
    }

    /// The next event within `timeout`; an error when none came.
    pub async fn next_within(&mut self, timeout: Duration) -> Result<Option<SseEvent>> {
        tokio::time::timeout(timeout, self.next())
            .await
            .with_context(|| format!("no event within {timeout:?}"))?
    }

    /// One line of the chunked body (chunk headers removed; a line may span chunks).
    async fn body_line(&mut self) -> Result<Option<String>> {
        let mut line = String::new();
        loop {
            if self.pending.is_empty() && !self.next_chunk().await? {
                return Ok(if line.is_empty() { None } else { Some(line) });
            }
            match self.pending.find('\n') {
                Some(end) => {
                    line.push_str(&self.pending[..end]);
                    self.pending.drain(..=end);
                    return Ok(Some(line.trim_end_matches('\r').to_string()));
                }
                None => {
                    line.push_str(&self.pending);
                    self.pending.clear();
                }
            }
        }
    }

    /// Reads one chunk into `pending`; `false` at the last chunk or the end of the connection.
    async fn next_chunk(&mut self) -> Result<bool> {
        let mut size_line = String::new();
        if self.reader.read_line(&mut size_line).await? == 0 {
            return Ok(false);
        }
        let size_text = size_line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("bad chunk size line {size_line:?}"))?;
        if size == 0 {
            return Ok(false);
        }
        let mut bytes = vec![0; size + 2];
        self.reader.read_exact(&mut bytes).await?;
        bytes.truncate(size);
        self.pending.push_str(&String::from_utf8(bytes)?);
        Ok(true)
    }
}
