//! The object store against a real S3-compatible server (moto, started by
//! `scripts/services start DIR`, which prints `MEDIA_GEN_TEST_S3_ENDPOINT`):
//! the shared port contracts, then what is particular to object storage
//! (conditional creates, presigned URLs, readiness, URLs, prefixes).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures::TryStreamExt;

use super::*;
use crate::store::local::LocalStore;
use crate::store::{Library, MediaId, NameSpec, suite};

/// Dummy credentials: moto takes any.
const CREDENTIALS: [(&str, &str); 3] = [
    ("AWS_ACCESS_KEY_ID", "testing"),
    ("AWS_SECRET_ACCESS_KEY", "testing-secret"),
    ("AWS_REGION", "us-east-1"),
];

/// The test server's endpoint. Fails (never skips) without one.
fn endpoint() -> String {
    std::env::var("MEDIA_GEN_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MEDIA_GEN_TEST_S3_ENDPOINT is not set: the object storage tests need an \
             S3-compatible server. Run `D=$(mktemp -d); eval \"$(scripts/services start $D)\"` \
             in this shell first (`scripts/services stop $D` after), or run .ci/run"
        )
    })
}

/// A bucket name no other test uses.
fn unique_bucket() -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "mg-{}-{}-{}",
        std::process::id(),
        chrono::Utc::now().timestamp_millis(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Makes a new, empty bucket (moto takes an unsigned `PUT /<bucket>`).
async fn new_bucket() -> String {
    let bucket = unique_bucket();
    let res = reqwest::Client::new()
        .put(format!("{}/{bucket}", endpoint()))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "creating {bucket}: {res:?}");
    bucket
}

/// A store in `bucket` under `prefix`, built from its URL as a deployment
/// builds it.
fn open(bucket: &str, prefix: &str) -> ObjectMedia {
    ObjectMedia::from_url_opts(
        &format!("s3://{bucket}/{prefix}"),
        Some(&endpoint()),
        &CREDENTIALS,
    )
    .unwrap()
}

/// A store in a new bucket.
async fn fresh() -> ObjectMedia {
    open(&new_bucket().await, "media/lib")
}

/// Every key in the bucket, sorted (the raw view, under any prefix).
async fn keys(media: &ObjectMedia) -> Vec<String> {
    let mut all: Vec<String> = media
        .store
        .list(None)
        .map_ok(|m| m.location.to_string())
        .try_collect()
        .await
        .unwrap();
    all.sort();
    all
}

fn name(extension: &str) -> MediaId {
    NameSpec {
        prefix: "image",
        created: chrono::Utc::now(),
        extension: extension.into(),
    }
    .candidate()
}

#[tokio::test]
async fn object_ports_honour_the_shared_contracts() {
    suite::media_store(&fresh().await).await;

    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).unwrap();
    let media = Arc::new(fresh().await);
    let lib = Library::new(media.clone(), local.catalog.clone(), local.feed.clone());
    suite::library(&lib, media.as_ref()).await;

    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).unwrap();
    suite::save_crash_points(
        Arc::new(fresh().await),
        local.catalog.clone(),
        local.feed.clone(),
    )
    .await;
}

/// The local directory's layout, under the prefix: media at the top,
/// sidecars and renditions in `metadata/`; nothing else is written.
#[tokio::test]
async fn layout_mirrors_the_local_directory() {
    let media = fresh().await;
    let id = name("png");
    assert!(
        media
            .put_sidecar_if_absent(&id, Bytes::from_static(b"{}"))
            .await
            .unwrap()
    );
    assert!(
        media
            .put_if_absent(&id, Bytes::from_static(b"png"))
            .await
            .unwrap()
    );
    media
        .put_rendition(&id, Rendition::Thumbnail, Bytes::from_static(b"small"))
        .await
        .unwrap();
    assert_eq!(
        media
            .get_rendition(&id, Rendition::Thumbnail)
            .await
            .unwrap()
            .unwrap(),
        &b"small"[..]
    );
    assert_eq!(
        keys(&media).await,
        vec![
            format!("media/lib/{id}"),
            format!("media/lib/metadata/{id}.json"),
            format!("media/lib/metadata/{id}.thumb"),
        ]
    );
    // The sidecar's removal takes the renditions with it.
    media.delete_sidecar(&id).await.unwrap();
    assert_eq!(keys(&media).await, vec![format!("media/lib/{id}")]);
    assert_eq!(
        media
            .get_rendition(&id, Rendition::Thumbnail)
            .await
            .unwrap(),
        None
    );
}

/// Writers racing for one name: the server's conditional create lets
/// exactly one win, and its bytes are the ones stored.
#[tokio::test]
async fn concurrent_creates_of_one_name_have_one_winner() {
    let media = Arc::new(fresh().await);
    for round in 0..3 {
        let id = name("png");
        let racers: Vec<_> = (0..8)
            .map(|i| {
                let media = media.clone();
                let id = id.clone();
                tokio::spawn(async move {
                    let bytes = Bytes::from(format!("writer {i} of round {round}"));
                    let file = media.put_if_absent(&id, bytes.clone()).await.unwrap();
                    let sidecar = media
                        .put_sidecar_if_absent(&id, bytes.clone())
                        .await
                        .unwrap();
                    (file, sidecar, bytes)
                })
            })
            .collect();
        let mut file_winners = Vec::new();
        let mut sidecar_winners = Vec::new();
        for racer in racers {
            let (file, sidecar, bytes) = racer.await.unwrap();
            if file {
                file_winners.push(bytes.clone());
            }
            if sidecar {
                sidecar_winners.push(bytes);
            }
        }
        assert_eq!(file_winners.len(), 1, "round {round}: {file_winners:?}");
        assert_eq!(
            sidecar_winners.len(),
            1,
            "round {round}: {sidecar_winners:?}"
        );
        assert_eq!(media.get(&id).await.unwrap(), file_winners[0]);
        assert_eq!(
            media.get_sidecar(&id).await.unwrap().unwrap(),
            sidecar_winners[0]
        );
    }
}

/// A create that finds its own bytes already there (its first attempt
/// landed, the answer was lost, the client tried again) has succeeded;
/// other bytes under the name are another writer's.
#[tokio::test]
async fn a_create_that_finds_its_own_bytes_succeeded() {
    let media = fresh().await;
    let id = name("png");
    let mine = Bytes::from_static(b"mine");
    assert!(media.put_if_absent(&id, mine.clone()).await.unwrap());
    assert!(media.put_if_absent(&id, mine.clone()).await.unwrap());
    assert!(
        !media
            .put_if_absent(&id, Bytes::from_static(b"theirs"))
            .await
            .unwrap()
    );
    assert_eq!(media.get(&id).await.unwrap(), mine);
}

/// With presigning on, a plain HTTP client with no credentials downloads
/// the file (with its type) from the URL; with it off, or a store that
/// cannot sign, there is no URL.
#[tokio::test]
async fn presigned_url_serves_the_bytes() {
    let plain = fresh().await;
    let id = name("png");
    let bytes = Bytes::from(crate::media::tests_support::png(5, 3));
    assert!(plain.put_if_absent(&id, bytes.clone()).await.unwrap());
    assert_eq!(
        plain
            .download_url(&id, Duration::from_secs(60))
            .await
            .unwrap(),
        None,
        "presigning is off unless asked for"
    );
    let signing = plain.with_presigned(true);
    let url = signing
        .download_url(&id, Duration::from_secs(300))
        .await
        .unwrap()
        .unwrap();
    assert!(url.starts_with(&endpoint()), "{url}");
    assert!(url.contains("X-Amz-Signature="), "{url}");
    assert!(
        !url.contains("testing-secret"),
        "the secret key is not in the URL"
    );
    let res = reqwest::get(&url).await.unwrap();
    assert!(res.status().is_success(), "{res:?}");
    assert_eq!(
        res.headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok()),
        Some("image/png")
    );
    assert_eq!(res.bytes().await.unwrap(), bytes);

    // A store made from a bare object store cannot sign.
    let bare = ObjectMedia::new(signing.store.clone(), "media/lib")
        .unwrap()
        .with_presigned(true);
    assert_eq!(bare.get(&id).await.unwrap(), bytes);
    assert_eq!(
        bare.download_url(&id, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
}

/// `ready` writes and removes a probe: fine on a good bucket (and leaves
/// nothing), a clear error on a missing bucket or a dead endpoint, and no
/// long wait.
#[tokio::test]
async fn ready_checks_the_store_for_real() {
    let media = fresh().await;
    media.ready().await.unwrap();
    assert!(keys(&media).await.is_empty(), "the probe is removed");

    let missing = open(&unique_bucket(), "p");
    let err = missing.ready().await.unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("does not exist"), "{msg}");
    assert!(msg.contains(PROBE), "{msg}");
    assert!(!msg.contains("testing-secret"), "{msg}");
    // Every name of a missing bucket is missing: that is not "no such file".
    let err = missing.get(&name("png")).await.unwrap_err();
    assert!(!err.is_not_found(), "{err}");

    // A port nothing listens on: refused at once, a few quick retries.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = ObjectMedia::from_url_opts(
        "s3://bucket/p",
        Some(&format!("http://127.0.0.1:{port}")),
        &CREDENTIALS,
    )
    .unwrap();
    // A generous bound so a regression fails instead of hanging the suite;
    // how fast it gives up is for the benchmarks.
    let err = tokio::time::timeout(Duration::from_secs(60), dead.ready())
        .await
        .expect("ready() against a dead endpoint gave up")
        .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains(PROBE) && msg.contains("127.0.0.1") && msg.contains("refused"),
        "{msg}"
    );
    let err = tokio::time::timeout(Duration::from_secs(60), dead.list())
        .await
        .expect("list() against a dead endpoint gave up")
        .unwrap_err();
    assert!(!err.is_not_found(), "{err}");
}

/// Two libraries in one bucket under different prefixes (one a string
/// prefix of the other, one nested in the other) see only their own files.
#[tokio::test]
async fn prefixes_keep_libraries_apart() {
    let bucket = new_bucket().await;
    let stores = [
        open(&bucket, "team/a"),
        open(&bucket, "team/ab"),
        open(&bucket, "team"),
        open(&bucket, ""),
    ];
    let id = name("png");
    for (i, store) in stores.iter().enumerate() {
        let bytes = Bytes::from(format!("library {i}"));
        assert!(store.put_if_absent(&id, bytes.clone()).await.unwrap());
        assert!(store.put_sidecar_if_absent(&id, bytes).await.unwrap());
    }
    for (i, store) in stores.iter().enumerate() {
        let listed: Vec<_> = store
            .list()
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        assert_eq!(listed, vec![id.clone()], "library {i}");
        assert_eq!(store.list_sidecars().await.unwrap(), vec![id.clone()]);
        assert_eq!(
            store.get(&id).await.unwrap(),
            Bytes::from(format!("library {i}"))
        );
    }
    stores[0].delete(&id).await.unwrap();
    stores[0].delete_sidecar(&id).await.unwrap();
    assert!(stores[0].list().await.unwrap().is_empty());
    for store in &stores[1..] {
        assert_eq!(store.list().await.unwrap().len(), 1);
        assert!(store.get_sidecar(&id).await.unwrap().is_some());
    }
}

/// Ranges past the end and empty ranges read as the local store reads
/// them; a missing file is "not found" whatever the range.
#[tokio::test]
async fn ranges_at_and_past_the_end() {
    let media = fresh().await;
    let id = name("png");
    let body = Bytes::from_static(b"0123456789");
    assert!(media.put_if_absent(&id, body.clone()).await.unwrap());
    assert_eq!(media.get_range(&id, 9..10).await.unwrap(), &b"9"[..]);
    assert_eq!(media.get_range(&id, 0..u64::MAX).await.unwrap(), body);
    assert!(media.get_range(&id, 10..20).await.unwrap().is_empty());
    assert!(media.get_range(&id, 4..4).await.unwrap().is_empty());
    let missing = name("png");
    for range in [0..4, 4..4, 100..200] {
        let err = media.get_range(&missing, range.clone()).await.unwrap_err();
        assert!(err.is_not_found(), "{range:?}: {err}");
    }
}

/// The settings are checked before anything is asked of a server, and
/// their errors name the setting and the accepted forms, never a secret.
#[test]
fn bad_settings_are_named() {
    for url in [
        "",
        "bucket/prefix",
        "/var/lib/media",
        "ftp://bucket/prefix",
        "file:///tmp/media",
        "s3://",
        "s3:///prefix",
    ] {
        let err = ObjectMedia::from_url(url, None).unwrap_err().to_string();
        assert!(err.starts_with("MCP_STORAGE_URL "), "{url:?}: {err}");
        assert!(err.contains("s3://BUCKET[/PREFIX]"), "{url:?}: {err}");
    }
    for url in [
        "s3://AKIAEXAMPLE:hunter2secret@bucket/prefix",
        "s3://bucket/prefix?secret_access_key=hunter2secret",
    ] {
        let err = ObjectMedia::from_url(url, None).unwrap_err().to_string();
        assert!(err.starts_with("MCP_STORAGE_URL "), "{err}");
        assert!(err.contains("environment"), "{err}");
        assert!(!err.contains("hunter2secret"), "{err}");
    }
    for endpoint in [
        "localhost:9000",
        "ftp://host",
        "not a url",
        "http://user:pw@host",
    ] {
        let err = ObjectMedia::from_url("s3://bucket/p", Some(endpoint))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("MCP_STORAGE_ENDPOINT "),
            "{endpoint:?}: {err}"
        );
        assert!(!err.contains("pw@"), "{err}");
    }
    let err = ObjectMedia::from_url_opts("s3://bucket/p", None, &[("no_such_option", "1")])
        .unwrap_err()
        .to_string();
    assert!(err.contains("no_such_option"), "{err}");
    let err = ObjectMedia::new(Arc::new(object_store::memory::InMemory::new()), "a/../b")
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("MCP_STORAGE_URL "), "{err}");
}

/// A store's options, as `from_url_opts` takes them.
type Options<'a> = &'a [(&'a str, &'a str)];

/// Every accepted form builds its store (no request is made).
#[test]
fn accepted_urls_build_their_stores() {
    let cases: [(&str, Option<&str>, Options, &str); 5] = [
        ("s3://bucket", None, &CREDENTIALS, ""),
        (
            "s3://bucket/a/b/",
            Some("http://127.0.0.1:9000"),
            &CREDENTIALS,
            "a/b",
        ),
        ("gs://bucket/media", None, &[], "media"),
        (
            "az://container/media",
            None,
            &[
                ("AZURE_STORAGE_ACCOUNT_NAME", "devstoreaccount1"),
                ("AZURE_STORAGE_ACCOUNT_KEY", "a2V5"),
            ],
            "media",
        ),
        (
            "az://container@account.blob.core.windows.net/media",
            Some("http://127.0.0.1:10000/account"),
            &[("AZURE_STORAGE_ACCOUNT_KEY", "a2V5")],
            "media",
        ),
    ];
    for (url, endpoint, options, prefix) in cases {
        let media = ObjectMedia::from_url_opts(url, endpoint, options)
            .unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(media.prefix.as_ref(), prefix, "{url}");
        assert!(media.signer.is_some(), "{url}");
    }
    // The environment's variant builds too (its credentials are read lazily).
    ObjectMedia::from_url("s3://bucket/p", Some("http://127.0.0.1:9000")).unwrap();
}
