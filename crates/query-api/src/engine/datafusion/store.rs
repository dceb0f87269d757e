//! The lake as an `object_store` for DataFusion: a local directory (read through
//! [`LocalLakeStore`]) or an S3 bucket (with the lake's region, endpoint and path-style
//! settings), both addressed by lake-relative paths.
//!
//! On S3, credentials come from the standard AWS chain through `aws-config` — environment,
//! profile, web identity, the EC2 instance role — exactly as for the other services, adapted to
//! `object_store`'s credential provider.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use object_store::prefix::PrefixStore;
use object_store::{ClientOptions, CredentialProvider, ObjectStore};
use stockstream_common::config::LakeConfig;

use super::local_store::LocalLakeStore;
use crate::error::{Error, Result};

/// The lake's store and its URL (`file:///abs/root/`, `s3://bucket/prefix/`), ending in `/`.
#[derive(Debug, Clone)]
pub struct LakeObjectStore {
    /// Store addressed by lake-relative paths (`quotes/symbol=HSI/year=1987/…parquet`).
    pub store: Arc<dyn ObjectStore>,
    /// The lake's URL, as catalogued locations start.
    pub url: String,
}

/// Opens the lake described by `config` for reading.
pub async fn open_lake(config: &LakeConfig) -> Result<LakeObjectStore> {
    match config {
        LakeConfig::Local { root } => {
            std::fs::create_dir_all(root).map_err(|source| {
                Error::Common(stockstream_common::Error::Io {
                    path: root.clone(),
                    source,
                })
            })?;
            let root = std::fs::canonicalize(root).map_err(|source| {
                Error::Common(stockstream_common::Error::Io {
                    path: root.clone(),
                    source,
                })
            })?;
            let store = LocalLakeStore::new(LocalFileSystem::new_with_prefix(&root)?);
            Ok(LakeObjectStore {
                store: Arc::new(store),
                url: format!("file://{}/", root.display()),
            })
        }
        LakeConfig::S3 {
            bucket,
            prefix,
            aws,
            force_path_style,
            request_timeout,
        } => {
            let sdk = aws.sdk_config().await;
            let region = sdk.region().map(|region| region.to_string()).ok_or_else(|| {
                Error::Common(stockstream_common::Error::config(
                    "lake.region",
                    "no AWS region for the S3 lake: set lake.region, AWS_REGION or a profile's region",
                ))
            })?;
            let credentials = sdk.credentials_provider().ok_or_else(|| {
                Error::Common(stockstream_common::Error::config(
                    "lake.backend",
                    "no AWS credentials provider is configured for the S3 lake",
                ))
            })?;
            let mut builder = AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_region(region)
                .with_virtual_hosted_style_request(!force_path_style)
                .with_credentials(Arc::new(SdkCredentials {
                    chain: credentials,
                    cached: tokio::sync::Mutex::new(None),
                }))
                .with_client_options(ClientOptions::new().with_timeout(*request_timeout));
            if let Some(endpoint) = &aws.endpoint {
                builder = builder
                    .with_endpoint(endpoint)
                    .with_allow_http(endpoint.starts_with("http://"));
            }
            let s3: Arc<dyn ObjectStore> = Arc::new(builder.build()?);
            let (store, url) = if prefix.is_empty() {
                (s3, format!("s3://{bucket}/"))
            } else {
                (
                    Arc::new(PrefixStore::new(s3, prefix.as_str())) as Arc<dyn ObjectStore>,
                    format!("s3://{bucket}/{prefix}/"),
                )
            };
            Ok(LakeObjectStore { store, url })
        }
    }
}

/// Credentials are fetched again this long before they expire.
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

/// The AWS SDK's credential chain as an `object_store` credential provider, cached until shortly
/// before the credentials expire (the chain itself does not cache: an instance role would be
/// asked on every request).
#[derive(Debug)]
struct SdkCredentials {
    chain: aws_credential_types::provider::SharedCredentialsProvider,
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<SystemTime>)>>,
}

#[async_trait::async_trait]
impl CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref() {
            let fresh =
                expiry.is_none_or(|expiry| SystemTime::now() + REFRESH_BEFORE_EXPIRY < expiry);
            if fresh {
                return Ok(credential.clone());
            }
        }
        let credentials = self.chain.provide_credentials().await.map_err(|error| {
            object_store::Error::Generic {
                store: "S3",
                source: Box::new(error),
            }
        })?;
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            token: credentials.session_token().map(str::to_string),
        });
        *cached = Some((credential.clone(), credentials.expiry()));
        Ok(credential)
    }
}
