//! Objects on S3 as sources: `s3://bucket/key` (one object) or `s3://bucket/prefix/` (every data
//! object under the prefix, sorted by key), read with aws-sdk-s3 and the lake's S3 settings
//! (`lake.region`, `lake.endpoint`, `lake.force_path_style`, `lake.request_timeout`; credentials
//! from the standard AWS chain).
//!
//! The replay runs on a blocking thread; an object's body is streamed into it chunk by chunk
//! (never held whole in memory) by blocking on the Tokio runtime the replay was started from, or
//! on a runtime of its own when there is none.

use std::future::Future;
use std::io::Read;
use std::sync::Arc;

use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use bytes::{Buf, Bytes};
use stockstream_common::lake::s3_client;

use super::{Location, Source, is_data_file};
use crate::config::S3Settings;
use crate::error::{Error, Result};

/// The runtime S3 requests run on.
#[derive(Debug, Clone)]
enum Runtime {
    /// The runtime the replay was started from (it runs on one of its blocking threads).
    Shared(tokio::runtime::Handle),
    /// A runtime of our own (no runtime was running).
    Owned(Arc<tokio::runtime::Runtime>),
}

impl Runtime {
    fn get() -> Result<Self> {
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            return Ok(Runtime::Shared(handle));
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|error| Error::Internal(format!("starting a runtime for S3: {error}")))?;
        Ok(Runtime::Owned(Arc::new(runtime)))
    }

    fn block_on<F: Future>(&self, future: F) -> F::Output {
        match self {
            Runtime::Shared(handle) => handle.block_on(future),
            Runtime::Owned(runtime) => runtime.block_on(future),
        }
    }
}

/// An S3 client for sources.
#[derive(Debug, Clone)]
pub struct S3Objects {
    client: aws_sdk_s3::Client,
    runtime: Runtime,
}

/// An S3 error naming the operation: the service's code and message when S3 answered, the whole
/// chain otherwise (connection, timeout, credentials).
fn s3_error<E, R>(what: &str, url: &str, error: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let detail = match error.as_service_error() {
        Some(service) => format!(
            "{} ({})",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("no message")
        ),
        None => DisplayErrorContext(&error).to_string(),
    };
    Error::Read {
        path: url.into(),
        source: std::io::Error::other(format!("{what}: {detail}")),
    }
}

impl S3Objects {
    /// A client with the lake's S3 settings.
    pub fn connect(settings: &S3Settings) -> Result<Self> {
        let runtime = Runtime::get()?;
        let client = runtime.block_on(s3_client(
            &settings.aws,
            settings.force_path_style,
            settings.request_timeout,
        ));
        Ok(Self { client, runtime })
    }

    /// The sources `s3://{rest}` names: one object, or every data object under a prefix that
    /// ends with `/`.
    pub fn expand(&self, url: &str, rest: &str) -> Result<Vec<Source>> {
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Usage(format!("{url}: no bucket (s3://bucket/key)")));
        }
        let source = |key: String| Source {
            location: Location::S3 {
                bucket: bucket.to_string(),
                key,
            },
            s3: Some(self.clone()),
        };
        if !key.is_empty() && !key.ends_with('/') {
            self.runtime
                .block_on(self.client.head_object().bucket(bucket).key(key).send())
                .map_err(|error| match error.as_service_error() {
                    Some(missing) if missing.is_not_found() => {
                        Error::Usage(format!("{url}: no such object (or no access to it)"))
                    }
                    _ => s3_error("HeadObject", url, error),
                })?;
            return Ok(vec![source(key.to_string())]);
        }
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(bucket)
            .prefix(key)
            .into_paginator()
            .send();
        while let Some(page) = self.runtime.block_on(pages.next()) {
            let page = page.map_err(|error| s3_error("ListObjectsV2", url, error))?;
            for object in page.contents() {
                let Some(found) = object.key() else { continue };
                let name = found.rsplit('/').next().unwrap_or(found);
                // Only the prefix's own objects, as a directory lists its own files.
                if !found[key.len()..].contains('/') && is_data_file(name) {
                    keys.push(found.to_string());
                }
            }
        }
        if keys.is_empty() {
            return Err(Error::Usage(format!(
                "{url}: no data objects (*.csv, *.tsv, *.txt, plain or .gz/.zst) under this prefix"
            )));
        }
        keys.sort();
        Ok(keys.into_iter().map(source).collect())
    }

    /// Streams an object's body.
    pub fn open(&self, bucket: &str, key: &str) -> Result<ObjectReader> {
        let url = format!("s3://{bucket}/{key}");
        let output = self
            .runtime
            .block_on(self.client.get_object().bucket(bucket).key(key).send())
            .map_err(|error| s3_error("GetObject", &url, error))?;
        Ok(ObjectReader {
            body: output.body,
            chunk: Bytes::new(),
            runtime: self.runtime.clone(),
        })
    }
}

/// An object's body as a blocking reader.
pub struct ObjectReader {
    body: ByteStream,
    chunk: Bytes,
    runtime: Runtime,
}

impl std::fmt::Debug for ObjectReader {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ObjectReader")
            .field("buffered", &self.chunk.len())
            .finish_non_exhaustive()
    }
}

impl Read for ObjectReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        while self.chunk.is_empty() {
            match self.runtime.block_on(self.body.try_next()) {
                Ok(Some(chunk)) => self.chunk = chunk,
                Ok(None) => return Ok(0),
                Err(error) => return Err(std::io::Error::other(error)),
            }
        }
        let length = buffer.len().min(self.chunk.len());
        buffer[..length].copy_from_slice(&self.chunk[..length]);
        self.chunk.advance(length);
        Ok(length)
    }
}
