//! The lake on Amazon S3 (or an S3-compatible store: endpoint override, path-style addressing).
//!
//! An object becomes visible whole when its upload completes — a single `PutObject`, or a
//! multipart upload for objects above [`MULTIPART_THRESHOLD`] (aborted if a part fails), so readers
//! never see a partial file. Credentials come from the standard AWS chain; the SDK retries
//! throttling and 5xx answers with exponential backoff (standard retry mode).

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::store::{LakeStore, ObjectMeta};
use crate::aws_error::AwsErrorKind;
use crate::config::AwsEndpoint;
use crate::{Error, Result};

/// Objects larger than this are uploaded in parts.
pub const MULTIPART_THRESHOLD: usize = 16 * 1024 * 1024;
/// How long connecting to S3 may take.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// Size of each part of a multipart upload (S3's minimum is 5 MiB).
const PART_SIZE: usize = 8 * 1024 * 1024;

/// An S3 client with the lake's settings: region and endpoint, path-style addressing, and bounded
/// attempts — an unreachable or stalled endpoint fails the request (and the caller backs off or
/// reports it) instead of hanging forever. Ingest reads S3 sources with the same client.
pub async fn s3_client(
    aws: &AwsEndpoint,
    force_path_style: bool,
    request_timeout: std::time::Duration,
) -> aws_sdk_s3::Client {
    let sdk = aws.sdk_config().await;
    let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .operation_attempt_timeout(request_timeout)
        .build();
    let config = aws_sdk_s3::config::Builder::from(&sdk)
        .force_path_style(force_path_style)
        .timeout_config(timeouts)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A lake in an S3 bucket, under an optional key prefix.
#[derive(Debug, Clone)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    prefix: String,
}

/// An S3 request's failure, classified by its error code and HTTP status.
fn s3_error<E>(operation: &'static str, key: &str, error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    Error::S3 {
        operation,
        key: key.to_string(),
        kind: AwsErrorKind::of(&error),
        message: DisplayErrorContext(error).to_string(),
    }
}

impl S3Store {
    /// Connects to `bucket` (the bucket must exist).
    pub async fn connect(
        bucket: &str,
        prefix: &str,
        aws: &AwsEndpoint,
        force_path_style: bool,
        request_timeout: std::time::Duration,
    ) -> Result<Self> {
        Ok(Self {
            client: s3_client(aws, force_path_style, request_timeout).await,
            bucket: bucket.to_string(),
            prefix: prefix.trim_matches('/').to_string(),
        })
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn full_key(&self, key: &str) -> String {
        if self.prefix.is_empty() {
            key.to_string()
        } else {
            format!("{}/{key}", self.prefix)
        }
    }

    /// `PutObject` (or a multipart upload), with `If-None-Match: *` when `only_if_absent`.
    /// Returns `false` when the condition failed (412: the key exists).
    async fn put_object(&self, key: &str, bytes: Bytes, only_if_absent: bool) -> Result<bool> {
        let full_key = self.full_key(key);
        let condition = only_if_absent.then(|| "*".to_string());
        if bytes.len() > MULTIPART_THRESHOLD {
            return self.put_multipart(key, &full_key, bytes, condition).await;
        }
        let outcome = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(&full_key)
            .set_if_none_match(condition)
            .body(ByteStream::from(bytes))
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if precondition_failed(&error) => Ok(false),
            Err(error) => Err(s3_error("put", key, error)),
        }
    }

    /// A multipart upload of `bytes` (`condition` as in [`Self::put_object`]), aborted unless it
    /// completes and writes the object.
    async fn put_multipart(
        &self,
        key: &str,
        full_key: &str,
        bytes: Bytes,
        condition: Option<String>,
    ) -> Result<bool> {
        let upload = self.create_multipart_upload(key, full_key).await?;
        let outcome = match upload.upload_parts(&bytes).await {
            Ok(parts) => upload.complete(parts, condition).await,
            Err(error) => Err(error),
        };
        if !matches!(outcome, Ok(true)) {
            upload.abort().await;
        }
        outcome
    }

    /// Starts a multipart upload of `full_key` (`key` names it in errors).
    async fn create_multipart_upload<'a>(
        &'a self,
        key: &'a str,
        full_key: &'a str,
    ) -> Result<MultipartUpload<'a>> {
        let created = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(full_key)
            .send()
            .await
            .map_err(|error| s3_error("create multipart upload", key, error))?;
        Ok(MultipartUpload {
            store: self,
            key,
            full_key,
            upload_id: created
                .upload_id()
                .ok_or_else(|| Error::S3 {
                    operation: "create multipart upload",
                    key: key.to_string(),
                    kind: AwsErrorKind::Unavailable,
                    message: "the answer has no upload id".to_string(),
                })?
                .to_string(),
        })
    }
}

/// A multipart upload in progress: the object becomes visible only when it completes.
struct MultipartUpload<'a> {
    store: &'a S3Store,
    /// The key in the lake, for errors.
    key: &'a str,
    /// The key in the bucket.
    full_key: &'a str,
    upload_id: String,
}

impl MultipartUpload<'_> {
    /// Uploads `bytes` in parts of [`PART_SIZE`], in order; stops at the first part that fails.
    async fn upload_parts(&self, bytes: &Bytes) -> Result<Vec<CompletedPart>> {
        let mut parts = Vec::new();
        for (index, chunk) in bytes.chunks(PART_SIZE).enumerate() {
            let number = index as i32 + 1;
            let part = self
                .store
                .client
                .upload_part()
                .bucket(&self.store.bucket)
                .key(self.full_key)
                .upload_id(&self.upload_id)
                .part_number(number)
                .body(ByteStream::from(bytes.slice_ref(chunk)))
                .send()
                .await
                .map_err(|error| s3_error("upload part", self.key, error))?;
            parts.push(
                CompletedPart::builder()
                    .part_number(number)
                    .set_e_tag(part.e_tag().map(str::to_string))
                    .build(),
            );
        }
        Ok(parts)
    }

    /// Completes the upload from its `parts`; `false` when `condition` failed (412: the key
    /// exists).
    async fn complete(&self, parts: Vec<CompletedPart>, condition: Option<String>) -> Result<bool> {
        let outcome = self
            .store
            .client
            .complete_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.full_key)
            .upload_id(&self.upload_id)
            .set_if_none_match(condition)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
            .await;
        match outcome {
            Ok(_) => Ok(true),
            Err(error) if precondition_failed(&error) => Ok(false),
            Err(error) => Err(s3_error("complete multipart upload", self.key, error)),
        }
    }

    /// Aborts the upload, ignoring failure: leave no billed fragments behind; a lifecycle rule
    /// catches what this misses.
    async fn abort(&self) {
        let _ = self
            .store
            .client
            .abort_multipart_upload()
            .bucket(&self.store.bucket)
            .key(self.full_key)
            .upload_id(&self.upload_id)
            .send()
            .await;
    }
}

/// Whether S3 refused a conditional write because its condition failed (HTTP 412). A 409
/// (another conditional write of the key in flight) stays an error, which the sink retries.
fn precondition_failed<E>(
    error: &aws_sdk_s3::error::SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> bool {
    error
        .raw_response()
        .is_some_and(|response| response.status().as_u16() == 412)
}

#[async_trait::async_trait]
impl LakeStore for S3Store {
    async fn put(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.put_object(key, bytes, false).await.map(|_| ())
    }

    /// S3 conditional write (`If-None-Match: *`, strongly consistent since August 2024). A store
    /// that ignores the header would overwrite silently; see `docs/exactly-once.md`.
    async fn put_if_absent(&self, key: &str, bytes: Bytes) -> Result<bool> {
        self.put_object(key, bytes, true).await
    }

    async fn get(&self, key: &str) -> Result<Bytes> {
        let output = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(output) => output,
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_no_such_key()) =>
            {
                return Err(Error::NotFound {
                    key: key.to_string(),
                });
            }
            Err(error) => return Err(s3_error("get", key, error)),
        };
        let body = output.body.collect().await.map_err(|error| Error::S3 {
            operation: "read",
            key: key.to_string(),
            kind: AwsErrorKind::Unavailable,
            message: DisplayErrorContext(error).to_string(),
        })?;
        Ok(body.into_bytes())
    }

    async fn exists(&self, key: &str) -> Result<bool> {
        match self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
        {
            Ok(_) => Ok(true),
            Err(error)
                if error
                    .as_service_error()
                    .is_some_and(|service| service.is_not_found()) =>
            {
                Ok(false)
            }
            Err(error) => Err(s3_error("head", key, error)),
        }
    }

    async fn list(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let strip = if self.prefix.is_empty() {
            0
        } else {
            self.prefix.len() + 1
        };
        let mut pages = self
            .client
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(self.full_key(prefix))
            .into_paginator()
            .send();
        let mut objects = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|error| s3_error("list", prefix, error))?;
            for object in page.contents() {
                let Some(key) = object.key() else { continue };
                objects.push(ObjectMeta {
                    key: key.get(strip..).unwrap_or_default().to_string(),
                    size: object.size().unwrap_or(0).max(0) as u64,
                    modified: object.last_modified().and_then(|at| {
                        chrono::DateTime::from_timestamp(at.secs(), at.subsec_nanos())
                    }),
                });
            }
        }
        objects.sort();
        Ok(objects)
    }

    async fn delete(&self, key: &str) -> Result<()> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(self.full_key(key))
            .send()
            .await
            .map_err(|error| s3_error("delete", key, error))?;
        Ok(())
    }

    fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }
}
