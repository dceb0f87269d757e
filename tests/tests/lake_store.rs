//! One conformance suite for every lake backend: the local directory and S3 (on moto).

use std::sync::Arc;

use anyhow::Result;
use bytes::Bytes;
use stockstream_common::Error;
use stockstream_common::config::{AwsEndpoint, LakeConfig};
use stockstream_common::lake::{LakeStore, MULTIPART_THRESHOLD, open_store};
use stockstream_e2e::Moto;

/// What every `LakeStore` must do.
async fn conformance(store: Arc<dyn LakeStore>) -> Result<()> {
    // Missing objects.
    assert!(!store.exists("quotes/a/missing.parquet").await?);
    assert!(matches!(
        store.get("quotes/a/missing.parquet").await,
        Err(Error::NotFound { .. })
    ));
    store.delete("quotes/a/missing.parquet").await?;

    // Put, get, exists, overwrite.
    store
        .put(
            "quotes/symbol=HSI/year=1987/one.parquet",
            Bytes::from_static(b"first"),
        )
        .await?;
    assert!(
        store
            .exists("quotes/symbol=HSI/year=1987/one.parquet")
            .await?
    );
    assert_eq!(
        store.get("quotes/symbol=HSI/year=1987/one.parquet").await?,
        Bytes::from_static(b"first")
    );
    store
        .put(
            "quotes/symbol=HSI/year=1987/one.parquet",
            Bytes::from_static(b"second"),
        )
        .await?;
    assert_eq!(
        store.get("quotes/symbol=HSI/year=1987/one.parquet").await?,
        Bytes::from_static(b"second")
    );

    // Listing: by prefix, sorted, with sizes, keys relative to the lake.
    store
        .put(
            "quotes/symbol=HSI/year=1988/two.parquet",
            Bytes::from_static(b"22"),
        )
        .await?;
    store
        .put(
            "quotes/symbol=N225/year=1988/three.parquet",
            Bytes::from_static(b"333"),
        )
        .await?;
    store
        .put(
            "_stockstream/sink/quotes/0/x.json",
            Bytes::from_static(b"{}"),
        )
        .await?;
    let listed: Vec<(String, u64)> = store
        .list("quotes/symbol=HSI/")
        .await?
        .into_iter()
        .map(|object| (object.key, object.size))
        .collect();
    assert_eq!(
        listed,
        [
            ("quotes/symbol=HSI/year=1987/one.parquet".to_string(), 6),
            ("quotes/symbol=HSI/year=1988/two.parquet".to_string(), 2),
        ]
    );
    assert_eq!(store.list("quotes/").await?.len(), 3);
    assert!(store.list("nothing/").await?.is_empty());

    // A large object (multipart on S3) arrives whole.
    let large: Vec<u8> = (0..MULTIPART_THRESHOLD + 3 * 1024 * 1024)
        .map(|index| (index % 251) as u8)
        .collect();
    store
        .put(
            "quotes/symbol=HSI/year=1989/large.parquet",
            Bytes::from(large.clone()),
        )
        .await?;
    assert_eq!(
        store
            .get("quotes/symbol=HSI/year=1989/large.parquet")
            .await?,
        Bytes::from(large)
    );

    // Conditional create: of many concurrent claims of one key exactly one wins, and the
    // object holds the winner's bytes; an existing key is never overwritten.
    let claims = (0..8u8).map(|writer| {
        let store = store.clone();
        tokio::spawn(async move {
            let won = store
                .put_if_absent("_stockstream/claims/42.json", Bytes::from(vec![writer; 64]))
                .await?;
            Ok::<_, Error>((writer, won))
        })
    });
    let mut winners = Vec::new();
    for claim in claims {
        let (writer, won) = claim.await??;
        if won {
            winners.push(writer);
        }
    }
    assert_eq!(winners.len(), 1, "exactly one claim wins: {winners:?}");
    assert_eq!(
        store.get("_stockstream/claims/42.json").await?,
        Bytes::from(vec![winners[0]; 64])
    );
    store.delete("_stockstream/claims/42.json").await?;
    assert!(
        store
            .put_if_absent("_stockstream/claims/42.json", Bytes::from_static(b"again"))
            .await?,
        "a deleted key can be claimed again"
    );
    let large_claim: Vec<u8> = vec![7; MULTIPART_THRESHOLD + 1024];
    assert!(
        !store
            .put_if_absent(
                "quotes/symbol=HSI/year=1989/large.parquet",
                Bytes::from(large_claim)
            )
            .await?,
        "a multipart upload does not replace an existing object either"
    );
    assert_eq!(
        store
            .get("quotes/symbol=HSI/year=1989/large.parquet")
            .await?
            .len(),
        MULTIPART_THRESHOLD + 3 * 1024 * 1024
    );

    // Delete.
    store
        .delete("quotes/symbol=HSI/year=1988/two.parquet")
        .await?;
    assert!(
        !store
            .exists("quotes/symbol=HSI/year=1988/two.parquet")
            .await?
    );
    assert_eq!(store.list("quotes/symbol=HSI/").await?.len(), 2);
    Ok(())
}

#[tokio::test]
async fn the_local_store_conforms() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let store = open_store(&LakeConfig::Local {
        root: dir.path().join("lake"),
    })
    .await?;
    conformance(store.clone()).await?;
    assert!(store.url().starts_with("file://"), "{}", store.url());
    // Keys cannot escape the lake.
    assert!(store.put("../outside", Bytes::new()).await.is_err());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_s3_store_conforms_on_moto() -> Result<()> {
    let moto = Moto::start()?;
    let aws = AwsEndpoint {
        region: Some("us-east-1".into()),
        endpoint: Some(moto.endpoint.clone()),
    };
    let sdk = aws.sdk_config().await;
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(true)
            .build(),
    );
    s3.create_bucket().bucket("conformance").send().await?;
    let store = open_store(&LakeConfig::S3 {
        bucket: "conformance".into(),
        prefix: "lake/v1".into(),
        aws,
        force_path_style: true,
        request_timeout: std::time::Duration::from_secs(10),
    })
    .await?;
    conformance(store.clone()).await?;
    assert_eq!(store.url(), "s3://conformance/lake/v1");
    // Objects live under the prefix in the bucket.
    let raw = s3
        .list_objects_v2()
        .bucket("conformance")
        .prefix("lake/v1/quotes/")
        .send()
        .await?;
    assert_eq!(raw.contents().len(), 3);
    Ok(())
}
