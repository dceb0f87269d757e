//! The lake's section (`[lake]`): where the Parquet files are kept — a local directory or an S3
//! bucket and prefix — validated from [`LakeSection`] into [`LakeConfig`].

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::parse_duration;
use crate::{Error, Result};

/// Where the lake is kept (`lake.backend`).
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LakeBackend {
    /// A directory on a local filesystem (`lake.root`).
    Local,
    /// Amazon S3 or an S3-compatible store (`lake.bucket`, `lake.prefix`, …).
    S3,
}

/// Raw lake section (`[lake]`).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LakeSection {
    /// `local` (a directory) or `s3` (Amazon S3 or an S3-compatible store).
    pub backend: LakeBackend,
    /// Root directory of the local lake.
    pub root: PathBuf,
    /// S3: the bucket.
    #[serde(default)]
    pub bucket: Option<String>,
    /// S3: key prefix of the lake inside the bucket (no leading or trailing `/`).
    #[serde(default)]
    pub prefix: String,
    /// AWS region; the standard chain (`AWS_REGION`, profile) when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// Endpoint override for S3-compatible stores (MinIO, moto, LocalStack).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Path-style addressing (`endpoint/bucket/key`), which most S3-compatible stores need.
    #[serde(default)]
    pub force_path_style: bool,
    /// S3: how long one attempt of a request may take before it is retried (default 10s).
    #[serde(default)]
    pub request_timeout: Option<String>,
    /// Compaction of small files (`[lake.compaction]`, used by the catalog service).
    #[serde(default)]
    pub compaction: crate::lake::CompactionSection,
    /// Retention of old partitions (`[lake.retention]`, used by the catalog service).
    #[serde(default)]
    pub retention: crate::lake::RetentionSection,
}

/// Where and how to reach an AWS API: region and optional endpoint override. Credentials always
/// come from the standard AWS chain (environment, profile, web identity, instance role).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AwsEndpoint {
    /// Region; the standard chain decides when absent.
    pub region: Option<String>,
    /// Endpoint override.
    pub endpoint: Option<String>,
}

impl AwsEndpoint {
    /// Loads the AWS SDK configuration: the standard credential and region chain, then the
    /// region and endpoint given here.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(region) = &self.region {
            loader = loader.region(aws_config::Region::new(region.clone()));
        }
        if let Some(endpoint) = &self.endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        loader.load().await
    }
}

/// Where the lake lives.
#[derive(Debug, Clone, PartialEq)]
pub enum LakeConfig {
    /// A directory on local disk; objects are files, written atomically by rename.
    Local {
        /// Root directory of the lake.
        root: PathBuf,
    },
    /// An S3 bucket (objects appear whole when their upload completes).
    S3 {
        /// Bucket.
        bucket: String,
        /// Key prefix of the lake (may be empty).
        prefix: String,
        /// Region and endpoint.
        aws: AwsEndpoint,
        /// Path-style addressing.
        force_path_style: bool,
        /// How long one attempt of a request may take.
        request_timeout: Duration,
    },
}

impl LakeSection {
    /// Validates the raw section into a [`LakeConfig`].
    pub fn validate(self) -> Result<LakeConfig> {
        match self.backend {
            LakeBackend::Local => {
                if self.root.as_os_str().is_empty() {
                    return Err(Error::config("lake.root", "must not be empty"));
                }
                Ok(LakeConfig::Local { root: self.root })
            }
            LakeBackend::S3 => {
                let bucket = self
                    .bucket
                    .filter(|bucket| !bucket.is_empty())
                    .ok_or_else(|| Error::config("lake.bucket", "is required with backend s3"))?;
                let prefix = self.prefix.trim_matches('/').to_string();
                Ok(LakeConfig::S3 {
                    bucket,
                    prefix,
                    aws: AwsEndpoint {
                        region: self.region,
                        endpoint: self.endpoint,
                    },
                    force_path_style: self.force_path_style,
                    request_timeout: match self.request_timeout.as_deref() {
                        Some(text) if !text.is_empty() => {
                            parse_duration("lake.request_timeout", text)?
                        }
                        _ => Duration::from_secs(10),
                    },
                })
            }
        }
    }
}
