//! A moto server for the AWS tests: S3, Glue, Athena and CloudFormation in memory on a free port.

use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Result, bail};

use crate::{TestProcess, free_port, python, wait_for_port};

/// A moto server (S3, Glue and the other AWS APIs, in memory) on a free port, killed on drop.
///
/// The AWS SDK takes credentials from the standard chain; `make test` exports dummy
/// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` and `AWS_REGION`, so no test can reach real AWS.
#[derive(Debug)]
pub struct Moto {
    process: TestProcess,
    /// `http://127.0.0.1:port`.
    pub endpoint: String,
    /// The server's address.
    pub address: SocketAddr,
}

impl Moto {
    /// Starts moto and waits until it answers.
    pub fn start() -> Result<Self> {
        for variable in ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"] {
            if std::env::var_os(variable).is_none() {
                bail!(
                    "{variable} is not set: run the tests with `make test` (it sets dummy AWS credentials for moto)"
                );
            }
        }
        let port = free_port();
        let process = TestProcess::spawn(
            "moto (install it with `make tools`)",
            Command::new(python())
                .args([
                    "-m",
                    "moto.server",
                    "-H",
                    "127.0.0.1",
                    "-p",
                    &port.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null()),
        )?;
        let address: SocketAddr = format!("127.0.0.1:{port}").parse()?;
        wait_for_port("moto", address, Duration::from_secs(30))?;
        Ok(Self {
            process,
            endpoint: format!("http://{address}"),
            address,
        })
    }
}

impl Moto {
    /// Queues one canned result for the next Athena query: `columns` (name, Athena type) and `rows`, header first.
    pub async fn queue_athena_result(
        &self,
        columns: &[(&str, &str)],
        rows: &[Vec<Option<&str>>],
    ) -> Result<()> {
        let header: Vec<serde_json::Value> = columns
            .iter()
            .map(|(name, _)| serde_json::json!({"VarCharValue": name}))
            .collect();
        let mut all = vec![serde_json::json!({"Data": header})];
        for row in rows {
            let data: Vec<serde_json::Value> = row
                .iter()
                .map(|value| match value {
                    Some(text) => serde_json::json!({"VarCharValue": text}),
                    None => serde_json::json!({}),
                })
                .collect();
            all.push(serde_json::json!({"Data": data}));
        }
        let column_info: Vec<serde_json::Value> = columns
            .iter()
            .map(|(name, data_type)| serde_json::json!({"Name": name, "Type": data_type, "Label": name}))
            .collect();
        let body = serde_json::json!({
            "account_id": "123456789012",
            "region": "us-east-1",
            "results": [{"rows": all, "column_info": column_info}],
        });
        let answer = crate::http::http_post_json(
            self.address,
            "/moto-api/static/athena/query-results",
            &body,
            "*/*",
        )
        .await?;
        anyhow::ensure!(answer.status == 201, "queueing a result: {}", answer.text());
        Ok(())
    }

    /// Region and endpoint of this server.
    pub fn aws(&self) -> stockstream_common::config::AwsEndpoint {
        stockstream_common::config::AwsEndpoint {
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint.clone()),
        }
    }

    /// Creates `bucket` and returns a lake in it under `prefix`, with the given request timeout.
    pub async fn lake(
        &self,
        bucket: &str,
        prefix: &str,
        request_timeout: Duration,
    ) -> Result<stockstream_common::config::LakeConfig> {
        let sdk = self.aws().sdk_config().await;
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::config::Builder::from(&sdk)
                .force_path_style(true)
                .build(),
        )
        .create_bucket()
        .bucket(bucket)
        .send()
        .await?;
        Ok(stockstream_common::config::LakeConfig::S3 {
            bucket: bucket.into(),
            prefix: prefix.into(),
            aws: self.aws(),
            force_path_style: true,
            request_timeout,
        })
    }

    /// Sends `signal` (e.g. `STOP`, `CONT`) to the server process: an outage without losing
    /// moto's in-memory state. Dropping the server kills it, stopped or not.
    pub fn signal(&self, signal: &str) -> Result<()> {
        self.process.signal(signal)
    }
}
