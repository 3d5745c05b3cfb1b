//! The PostgreSQL ports against a real server: the shared port suite, then
//! what is particular to a database several replicas share (two
//! `PgStore`s on one database are two replicas), migrations, the feed's
//! reconnection, listings identical to SQLite's, and URLs.
//!
//! The server comes from `scripts/services start DIR` (run by
//! `scripts/test.sh` and `.ci/run`), which exports
//! `MEDIA_GEN_TEST_DATABASE_URL`; each test makes its own database.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Map, json};

use super::*;
use crate::store::local::{LocalMedia, SqliteCatalog};
use crate::store::{
    Cap, Catalog, Change, ChangeFeed, Job, JobStore, Library, ListQuery, MediaKind, MediaRecord,
    SortBy, UsageLedger, suite,
};

/// How long a test waits for a notification before it fails.
const HEAR_WITHIN: Duration = Duration::from_secs(30);

fn server_url() -> String {
    std::env::var("MEDIA_GEN_TEST_DATABASE_URL").unwrap_or_else(|_| {
        panic!(
            "MEDIA_GEN_TEST_DATABASE_URL is not set: the PostgreSQL tests need a real server. \
             Start a throwaway one in this shell with `D=$(mktemp -d); eval \"$(scripts/services start $D)\"` \
             (and `scripts/services stop $D` afterwards), or run everything with `.ci/run`."
        )
    })
}

/// `url` with its database name replaced by `db`.
fn with_dbname(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let authority_end = base.find("://").map(|i| i + 3).unwrap_or(0);
    let root = match base[authority_end..].find('/') {
        Some(i) => &base[..authority_end + i],
        None => base,
    };
    match query {
        Some(q) => format!("{root}/{db}?{q}"),
        None => format!("{root}/{db}"),
    }
}

/// A database of its own for one test, dropped at the end of it.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> Self {
        Self::with("").await
    }

    /// A fresh database made with `options` (`CREATE DATABASE … options`).
    async fn with(options: &str) -> Self {
        let name = format!("t_{:016x}", rand::random::<u64>());
        admin(&format!("CREATE DATABASE {name} {options}")).await;
        let url = with_dbname(&server_url(), &name);
        Self { name, url }
    }

    async fn connect(&self) -> PgStore {
        PgStore::connect(&self.url).await.unwrap()
    }

    /// A plain connection to this database (as the test's own tool).
    async fn client(&self) -> Client {
        let target = Target::parse(&self.url).unwrap();
        target.connect_one().await.unwrap()
    }

    async fn drop(self) {
        admin(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ))
        .await;
    }
}

/// Runs `sql` in the server's `postgres` database.
async fn admin(sql: &str) {
    let target = Target::parse(&server_url()).unwrap();
    let client = target.connect_one().await.unwrap();
    client.batch_execute(sql).await.unwrap();
}

#[tokio::test]
async fn postgres_ports_honour_the_shared_contracts() {
    let db = TestDb::new().await;
    let store = db.connect().await;
    store.ready().await.unwrap();
    suite::catalog(store.catalog.as_ref()).await;
    suite::job_store(store.jobs.as_ref()).await;
    suite::change_feed(store.feed.as_ref()).await;
    suite::usage_ledger(store.usage.as_ref()).await;
    drop(store);
    db.drop().await;

    let db = TestDb::new().await;
    let store = db.connect().await;
    suite::job_leases(store.jobs.as_ref()).await;
    drop(store);
    db.drop().await;

    let db = TestDb::new().await;
    let store = db.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let media = Arc::new(LocalMedia::open(dir.path()).unwrap());
    let lib = Library::new(media.clone(), store.catalog.clone(), store.feed.clone());
    suite::library(&lib, media.as_ref()).await;
    drop(store);
    db.drop().await;

    let db = TestDb::new().await;
    let store = db.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let media = Arc::new(LocalMedia::open(dir.path()).unwrap());
    suite::save_crash_points(media, store.catalog.clone(), store.feed.clone()).await;
    drop(store);
    db.drop().await;
}

/// The next change a listener hears, or a failure after [`HEAR_WITHIN`].
async fn hear(sub: &mut crate::store::Subscription) -> Change {
    tokio::time::timeout(HEAR_WITHIN, sub.next())
        .await
        .expect("no change was heard in time")
        .expect("the feed is gone")
}

#[tokio::test]
async fn a_change_published_on_one_replica_reaches_the_listeners_of_both() {
    let db = TestDb::new().await;
    let (a, b) = (db.connect().await, db.connect().await);
    let mut on_a = a.feed.subscribe();
    let mut on_b = b.feed.subscribe();
    let id: crate::store::MediaId = "image_20260101_120000_000_abcdef.png".parse().unwrap();
    a.feed.publish(Change::Added(id.clone())).await;
    b.feed.publish(Change::Removed(id.clone())).await;
    a.feed.publish(Change::Rescanned).await;
    for sub in [&mut on_a, &mut on_b] {
        assert_eq!(hear(sub).await, Change::Added(id.clone()));
        assert_eq!(hear(sub).await, Change::Removed(id.clone()));
        assert_eq!(hear(sub).await, Change::Rescanned);
    }
    // A save through one replica's library is announced on the other's.
    let dir = tempfile::tempdir().unwrap();
    let media = Arc::new(LocalMedia::open(dir.path()).unwrap());
    let lib_a = Library::new(media.clone(), a.catalog.clone(), a.feed.clone());
    let lib_b = Library::new(media, b.catalog.clone(), b.feed.clone());
    let mut changes_b = lib_b.subscribe();
    let saved = lib_a.save(image("seen from b")).await.unwrap();
    assert_eq!(hear(&mut changes_b).await, Change::Added(saved.id.clone()));
    assert_eq!(lib_b.get(&saved.id).await.unwrap().unwrap(), saved);
    assert!(lib_b.delete(&saved.id).await.unwrap());
    assert!(lib_a.get(&saved.id).await.unwrap().is_none());
    drop((a, b));
    db.drop().await;
}

fn image(prompt: &str) -> crate::store::NewMedia {
    crate::store::NewMedia {
        bytes: bytes::Bytes::from(crate::media::tests_support::png(6, 4)),
        kind: MediaKind::Image,
        extension: "png".into(),
        mime_type: "image/png".into(),
        width: Some(6),
        height: Some(4),
        prompt: Some(prompt.into()),
        model: Some("m".into()),
        metadata: Map::new(),
        source: None,
    }
}

#[tokio::test]
async fn the_feed_reconnects_after_its_connection_is_killed_and_says_rescanned() {
    let db = TestDb::new().await;
    let store = db.connect().await;
    let mut sub = store.feed.subscribe();
    let killer = db.client().await;
    let killed = killer
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
             WHERE datname = current_database() AND application_name = $1",
            &[&feed::LISTENER_NAME],
        )
        .await
        .unwrap();
    assert_eq!(killed, 1, "one listening connection");
    assert_eq!(
        hear(&mut sub).await,
        Change::Rescanned,
        "listeners learn they may have missed changes"
    );
    // Listening again: a change published now is heard.
    let id: crate::store::MediaId = "image_after.png".parse().unwrap();
    store.feed.publish(Change::Added(id.clone())).await;
    assert_eq!(hear(&mut sub).await, Change::Added(id));
    drop(store);
    db.drop().await;
}

fn job(at: DateTime<Utc>, prompt: &str) -> Job {
    crate::store::suite::job_at(at, prompt)
}

#[tokio::test]
async fn concurrent_claims_from_two_replicas_never_hand_out_a_job_twice() {
    let db = TestDb::new().await;
    let (a, b) = (db.connect().await, db.connect().await);
    let t0 = Utc::now() - chrono::Duration::seconds(60);
    let mut all = HashSet::new();
    for i in 0..60 {
        let j = job(t0 + chrono::Duration::milliseconds(i), "a wave");
        all.insert(j.id.clone());
        a.jobs.create(&j).await.unwrap();
    }
    let until = Utc::now() + chrono::Duration::minutes(5);
    // Sixteen claimers (eight per replica), each taking three at a time
    // until nothing is left.
    let mut claimers = Vec::new();
    for n in 0..16 {
        let jobs: Arc<dyn JobStore> = if n % 2 == 0 {
            a.jobs.clone()
        } else {
            b.jobs.clone()
        };
        claimers.push(tokio::spawn(async move {
            let owner = format!("replica-{n}");
            let mut mine = Vec::new();
            loop {
                let got = jobs.claim(&owner, until, 3).await.unwrap();
                if got.is_empty() {
                    return (owner, mine);
                }
                mine.extend(got.into_iter().map(|j| j.id));
            }
        }));
    }
    let mut seen = HashSet::new();
    for c in claimers {
        let (owner, mine) = c.await.unwrap();
        for id in mine {
            assert!(seen.insert(id.clone()), "{id} was handed out twice");
            assert!(
                b.jobs.renew(&id, &owner, until).await.unwrap(),
                "{owner} holds {id}"
            );
        }
    }
    assert_eq!(seen, all, "every job was claimed once");
    drop((a, b));
    db.drop().await;
}

#[tokio::test]
async fn concurrent_holds_from_two_replicas_never_pass_a_cap() {
    let db = TestDb::new().await;
    let (a, b) = (db.connect().await, db.connect().await);
    let caps = [Cap {
        since: Utc::now() - chrono::Duration::hours(1),
        limit_usd: 1.0,
    }];
    let soon = Utc::now() + chrono::Duration::minutes(5);
    let mut tries = Vec::new();
    for n in 0..40 {
        let ledger: Arc<dyn UsageLedger> = if n % 2 == 0 {
            a.usage.clone()
        } else {
            b.usage.clone()
        };
        tries.push(tokio::spawn(async move {
            ledger.hold(0.05, &caps, soon).await.unwrap().is_ok()
        }));
    }
    let mut passed = 0;
    for t in tries {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(passed, 20, "0.05 × 20 = the cap of 1.0");
    assert!((a.usage.held(Utc::now()).await.unwrap() - 1.0).abs() < 1e-9);
    drop((a, b));
    db.drop().await;
}

/// Batches of both kinds written at once from two replicas, over
/// overlapping names, with deletes between: the counters behind `total`
/// stay exact and never deadlock.
#[tokio::test]
async fn totals_stay_exact_under_concurrent_batches_from_two_replicas() {
    let db = TestDb::new().await;
    let (a, b) = (db.connect().await, db.connect().await);
    let records = varied_records(2400);
    let mut writers = Vec::new();
    for n in 0..8usize {
        let catalog: Arc<dyn Catalog> = if n % 2 == 0 {
            a.catalog.clone()
        } else {
            b.catalog.clone()
        };
        // Each writer covers a window that overlaps its neighbours'.
        let mine: Vec<MediaRecord> = records[n * 250..(n * 250 + 500).min(records.len())].to_vec();
        writers.push(tokio::spawn(async move {
            for batch in mine.chunks(50) {
                catalog.insert_many(batch.to_vec()).await.unwrap();
                catalog.mark_deleting(&batch[0].id).await.unwrap();
                catalog.remove(&batch[1].id).await.unwrap();
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let client = db.client().await;
    for kind in [None, Some(MediaKind::Image), Some(MediaKind::Video)] {
        let counted: i64 = client
            .query_one(
                "SELECT count(*) FROM media WHERE state = 'ready' AND ($1::text IS NULL OR kind = $1)",
                &[&kind.map(MediaKind::as_str)],
            )
            .await
            .unwrap()
            .get(0);
        let q = ListQuery {
            kind,
            ..ListQuery::default()
        };
        assert_eq!(
            a.catalog.list(&q).await.unwrap().total,
            counted as u64,
            "{kind:?}"
        );
    }
    drop((a, b));
    db.drop().await;
}

#[tokio::test]
async fn migrations_are_listed_applied_once_under_concurrency_and_then_none_pend() {
    let db = TestDb::new().await;
    let all: Vec<String> = migrate::MIGRATIONS
        .iter()
        .map(|m| m.name.to_owned())
        .collect();
    assert_eq!(all.first().map(String::as_str), Some("0001_init"));
    assert_eq!(pending_migrations(&db.url).await.unwrap(), all);
    assert_eq!(
        pending_migrations(&db.url).await.unwrap(),
        all,
        "a dry run changes nothing"
    );
    // Four replicas start at once: two through `migrate`, two through
    // `connect`.
    let (m1, m2, s1, s2) = tokio::join!(
        migrate(&db.url),
        migrate(&db.url),
        PgStore::connect(&db.url),
        PgStore::connect(&db.url)
    );
    let (m1, m2) = (m1.unwrap(), m2.unwrap());
    let (s1, s2) = (s1.unwrap(), s2.unwrap());
    assert!(
        (m1 == all && m2.is_empty())
            || (m1.is_empty() && m2 == all)
            || m1.is_empty() && m2.is_empty(),
        "{m1:?} {m2:?}"
    );
    let client = db.client().await;
    let rows = client
        .query(
            "SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version",
            &[],
        )
        .await
        .unwrap();
    let counts: Vec<(i32, i64)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        counts,
        (1..=all.len() as i32).map(|v| (v, 1)).collect::<Vec<_>>()
    );
    assert!(pending_migrations(&db.url).await.unwrap().is_empty());
    assert!(migrate(&db.url).await.unwrap().is_empty());
    s1.ready().await.unwrap();
    s2.ready().await.unwrap();
    drop((s1, s2));
    db.drop().await;
}

/// Records meant to find differences: names that sort differently by
/// byte and by language (case, `-`, `_`, `.`), creation times and sizes
/// with many ties, both kinds, prompts with `%`, `_`, `\`, quotes, mixed
/// case, non-ASCII letters, and none.
fn varied_records(n: usize) -> Vec<MediaRecord> {
    let t0 = Utc::now() - chrono::Duration::days(1);
    let stems = ["a", "A", "b", "B", "a-", "a_", "a.", "Z", "z", "0", "_"];
    let prompts = [
        "Red FOX at dawn",
        "a fox's den",
        "100% cotton",
        "snake_case names",
        "back\\slash",
        "\"quoted\" fox",
        "ÉCLAIR au café",
        "éclair",
        "x",
        "Whale",
    ];
    (0..n)
        .map(|i| {
            let stem = stems[i % stems.len()];
            let id = format!("{stem}{}.{}", i / 3, if i % 3 == 0 { "mp4" } else { "png" });
            let kind = if i % 3 == 0 {
                MediaKind::Video
            } else {
                MediaKind::Image
            };
            let created = t0 + chrono::Duration::milliseconds((i % 400) as i64);
            let prompt =
                (i % 13 != 0).then(|| format!("{} {}", prompts[i % prompts.len()], i % 50));
            let mut metadata = Map::new();
            metadata.insert("n".into(), json!(i));
            MediaRecord {
                id: id.parse().unwrap(),
                kind,
                mime_type: if kind == MediaKind::Video {
                    "video/mp4"
                } else {
                    "image/png"
                }
                .into(),
                size_bytes: (i % 37) as u64 * 1000,
                width: Some(8),
                height: None,
                created,
                prompt,
                model: Some("m".into()),
                source: None,
                metadata,
            }
        })
        .collect()
}

#[tokio::test]
async fn listings_are_identical_to_sqlite_for_the_same_rows() {
    // A database whose own collation sorts like a dictionary ("a-1" beside
    // "a1", "B" beside "b"): names must still sort byte by byte, as in
    // SQLite (Debian's server is built with ICU).
    let icu = "TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'";
    let db = TestDb::with(icu).await;
    let store = db.connect().await;
    let dir = tempfile::tempdir().unwrap();
    let local = crate::store::local::LocalStore::open(dir.path()).unwrap();
    let sqlite: &SqliteCatalog = &local.catalog;
    let records = varied_records(3000);
    // In several batches, with a few names given again (the last wins).
    let mut again = records[10..20].to_vec();
    for r in &mut again {
        r.prompt = Some(format!("replaced {}", r.id));
    }
    for cat in [store.catalog.as_ref() as &dyn Catalog, sqlite] {
        cat.insert_many(records[..1200].to_vec()).await.unwrap();
        cat.insert_many(records[1200..].to_vec()).await.unwrap();
        cat.insert_many(again.clone()).await.unwrap();
        for r in records.iter().step_by(61) {
            assert!(cat.mark_deleting(&r.id).await.unwrap());
        }
    }
    let texts: [Option<&str>; 14] = [
        None,
        Some("fox"),
        Some("FOX"),
        Some("o"),
        Some("ox"),
        Some("%"),
        Some("_"),
        Some("\\"),
        Some("0% c"),
        Some("\"quoted"),
        Some("replaced"),
        Some("éclair"),
        Some("whale 4"),
        Some("nothing like it"),
    ];
    let mut compared = 0;
    for kind in [None, Some(MediaKind::Image), Some(MediaKind::Video)] {
        for sort in [SortBy::Date, SortBy::Size, SortBy::Name] {
            for descending in [true, false] {
                for (limit, offset) in [(20, 0), (7, 13), (50, 2950), (100, 500)] {
                    for text in texts {
                        let q = ListQuery {
                            kind,
                            sort,
                            descending,
                            limit,
                            offset,
                            text: text.map(str::to_owned),
                        };
                        let (pg, lite) = (
                            store.catalog.list(&q).await.unwrap(),
                            sqlite.list(&q).await.unwrap(),
                        );
                        let ids = |p: &crate::store::Page| {
                            p.records.iter().map(|r| r.id.clone()).collect::<Vec<_>>()
                        };
                        assert_eq!((ids(&pg), pg.total), (ids(&lite), lite.total), "{q:?}");
                        assert_eq!(pg.records, lite.records, "{q:?}");
                        if kind.is_none() && offset == 0 && limit == 20 {
                            // Every search but the last finds something.
                            assert_eq!(pg.total == 0, text == Some("nothing like it"), "{q:?}");
                        }
                        compared += 1;
                    }
                }
            }
        }
    }
    assert_eq!(compared, 3 * 3 * 2 * 4 * texts.len());

    // Totals (kept by counters in both) follow kind changes, removals,
    // marks and re-inserts of rows being deleted.
    for cat in [store.catalog.as_ref() as &dyn Catalog, sqlite] {
        let mut changed: Vec<MediaRecord> = records[100..160].to_vec();
        for r in &mut changed {
            r.kind = match r.kind {
                MediaKind::Image => MediaKind::Video,
                MediaKind::Video => MediaKind::Image,
            };
        }
        cat.insert_many(changed).await.unwrap();
        for r in &records[200..230] {
            cat.remove(&r.id).await.unwrap();
        }
        for r in records.iter().step_by(61).take(10) {
            cat.insert(r).await.unwrap();
        }
        for r in &records[300..320] {
            cat.mark_deleting(&r.id).await.unwrap();
            cat.remove(&r.id).await.unwrap();
        }
    }
    for kind in [None, Some(MediaKind::Image), Some(MediaKind::Video)] {
        let q = ListQuery {
            kind,
            ..ListQuery::default()
        };
        let (pg, lite) = (
            store.catalog.list(&q).await.unwrap(),
            sqlite.list(&q).await.unwrap(),
        );
        assert_eq!((pg.total, pg.records), (lite.total, lite.records), "{q:?}");
    }
    let (mut pg_ids, mut lite_ids) = (
        store.catalog.all_ids().await.unwrap(),
        sqlite.all_ids().await.unwrap(),
    );
    pg_ids.sort();
    lite_ids.sort();
    assert_eq!(pg_ids, lite_ids);
    let mut pg_deleting = store.catalog.deleting().await.unwrap();
    let mut lite_deleting = sqlite.deleting().await.unwrap();
    pg_deleting.sort();
    lite_deleting.sort();
    assert_eq!(pg_deleting, lite_deleting);
    assert_eq!(
        store.catalog.oldest_first().await.unwrap(),
        sqlite.oldest_first().await.unwrap()
    );
    drop(store);
    db.drop().await;
}

/// PostgreSQL text cannot hold NUL, SQLite's can: a prompt with one is
/// stored (as U+FFFD), found by search, and a job with one is kept.
#[tokio::test]
async fn text_with_nul_characters_is_kept_as_replacement_characters() {
    let db = TestDb::new().await;
    let store = db.connect().await;
    let mut r = varied_records(1).remove(0);
    r.prompt = Some("before\0after".into());
    r.metadata.insert("prompt".into(), json!("before\0after"));
    store.catalog.insert(&r).await.unwrap();
    let back = store.catalog.get(&r.id).await.unwrap().unwrap();
    assert_eq!(back.prompt.as_deref(), Some("before\u{FFFD}after"));
    assert_eq!(back.metadata["prompt"], "before\u{FFFD}after");
    let found = store
        .catalog
        .list(&ListQuery {
            text: Some("e\0a".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1);
    let j = job(Utc::now(), "a\0wave");
    store.jobs.create(&j).await.unwrap();
    let kept = store.jobs.get(&j.id).await.unwrap().unwrap();
    assert_eq!(kept.params["prompt"], "a\u{FFFD}wave");
    drop(store);
    db.drop().await;
}

/// Errors name the server as host:port/dbname and never carry the password.
#[tokio::test]
async fn errors_name_the_server_without_credentials() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("postgres://someone:s3cret-pw@127.0.0.1:{port}/library?connect_timeout=5");
    let Err(e) = PgStore::connect(&url).await else {
        panic!("connected to a closed port");
    };
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("s3cret-pw"), "{shown}");
    assert!(!shown.contains("someone"), "{shown}");
    match &e {
        StoreError::Database { location, .. } => {
            assert_eq!(location, &format!("127.0.0.1:{port}/library"));
        }
        other => panic!("{other:?}"),
    }
    for bad in [
        format!("postgres://someone:s3cret-pw@127.0.0.1:{port}/library?sslmode=sometimes"),
        "postgres://someone:s3cret-pw@[::1/x".to_owned(),
        format!("postgres://someone:s3cret-pw@127.0.0.1:{port}/library?nonsense=1"),
    ] {
        let Err(e) = PgStore::connect(&bad).await else {
            panic!("{bad} was accepted");
        };
        let shown = format!("{e} {e:?}");
        assert!(!shown.contains("s3cret-pw"), "{shown}");
    }
    let e = pending_migrations(&format!("postgres://u:s3cret-pw@127.0.0.1:{port}/x"))
        .await
        .unwrap_err();
    assert!(!format!("{e} {e:?}").contains("s3cret-pw"), "{e}");
}

/// Runs `openssl` (Debian's PostgreSQL depends on it, through ssl-cert).
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir`:
/// `ca.pem`, `server.crt`, `server.key`.
fn make_certificates(dir: &std::path::Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=media-gen test CA",
    ];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-subj", "/CN=127.0.0.1"];
    csr.extend(ec);
    csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "server.ext",
            "-out",
            "server.crt",
        ],
    );
}

/// TLS when the URL asks for it: `require` never falls back to plain text
/// (the server has no TLS at first); once the server has a certificate,
/// `verify-full` with its CA as `sslrootcert` connects over TLS, while
/// `require` without that CA and a name the certificate does not carry
/// are refused (the certificate is always verified).
#[tokio::test]
async fn tls_is_used_when_asked_and_the_certificate_is_verified() {
    let db = TestDb::new().await;
    let require = format!("{}?sslmode=require", db.url);
    let Err(e) = PgStore::connect(&require).await else {
        panic!("connected without TLS although sslmode=require");
    };
    assert!(e.to_string().contains("TLS"), "{e}");
    for mode in ["disable", "prefer"] {
        let store = PgStore::connect(&format!("{}?sslmode={mode}", db.url))
            .await
            .unwrap();
        store.ready().await.unwrap();
    }

    // The server gets a certificate (and keeps it only for this test).
    let certs = tempfile::tempdir().unwrap();
    make_certificates(certs.path());
    let server = Target::parse(&server_url())
        .unwrap()
        .connect_one()
        .await
        .unwrap();
    let data: String = server
        .query_one("SHOW data_directory", &[])
        .await
        .unwrap()
        .get(0);
    // The server's user must own its key (as root, the cluster runs as
    // another user).
    let owner = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(&data).unwrap());
    for entry in [certs.path().to_owned()]
        .into_iter()
        .chain(["server.crt", "server.key", "ca.pem"].map(|f| certs.path().join(f)))
    {
        std::os::unix::fs::chown(&entry, Some(owner), None).unwrap();
    }
    std::fs::set_permissions(
        certs.path().join("server.key"),
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .unwrap();
    let path = |f: &str| {
        certs
            .path()
            .join(f)
            .display()
            .to_string()
            .replace('\'', "''")
    };
    // One statement at a time: ALTER SYSTEM refuses a transaction block.
    let configure = async |statements: &[String]| {
        for sql in statements {
            server.batch_execute(sql).await.unwrap();
        }
    };
    configure(&[
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", path("server.crt")),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", path("server.key")),
        "ALTER SYSTEM SET ssl = on".into(),
        "SELECT pg_reload_conf()".into(),
    ])
    .await;
    let outcome = async {
        let ca = path("ca.pem");
        let verified = format!("{}?sslmode=verify-full&sslrootcert={ca}", db.url);
        // The reload is asynchronous: wait until the server speaks TLS.
        let mut store = None;
        for _ in 0..50 {
            match PgStore::connect(&verified).await {
                Ok(s) => {
                    store = Some(s);
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
        let store = store.expect("no TLS connection with the CA given");
        store.ready().await.unwrap();
        let client = store.db.client().await.unwrap();
        let ssl: bool = client
            .query_one(
                "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(ssl, "the pooled connection speaks TLS");
        suite::change_feed(store.feed.as_ref()).await;
        // Without the CA, the certificate is not trusted, `require` or not.
        let Err(e) = PgStore::connect(&require).await else {
            panic!("an unknown CA was trusted");
        };
        assert!(e.to_string().contains("certificate"), "{e}");
        // A name the certificate does not carry.
        let by_name = with_dbname(&server_url(), &db.name).replace("127.0.0.1", "localhost");
        let Err(e) =
            PgStore::connect(&format!("{by_name}?sslmode=verify-full&sslrootcert={ca}")).await
        else {
            panic!("a certificate for 127.0.0.1 was accepted for localhost");
        };
        assert!(e.to_string().contains("certificate"), "{e}");
    };
    let outcome = futures::FutureExt::catch_unwind(std::panic::AssertUnwindSafe(outcome)).await;
    configure(&[
        "ALTER SYSTEM RESET ssl".into(),
        "ALTER SYSTEM RESET ssl_cert_file".into(),
        "ALTER SYSTEM RESET ssl_key_file".into(),
        "SELECT pg_reload_conf()".into(),
    ])
    .await;
    db.drop().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

#[test]
fn ssl_parameters_are_read_and_the_rest_is_kept_as_written() {
    let (rest, ssl) = take_ssl_params(
        "postgres://u:p@h:5/db?options=-c%20search_path%3Dx&sslmode=verify-full&sslrootcert=%2Fetc%2Fca.pem&application_name=a+b",
    );
    assert_eq!(
        rest,
        "postgres://u:p@h:5/db?options=-c%20search_path%3Dx&application_name=a+b"
    );
    assert_eq!(
        ssl,
        SslParams {
            mode: Some("verify-full".into()),
            root_cert: Some("/etc/ca.pem".into()),
        }
    );
    let (rest, ssl) = take_ssl_params("postgresql://h/db?sslmode=require");
    assert_eq!(
        (rest.as_str(), ssl.mode.as_deref()),
        ("postgresql://h/db", Some("require"))
    );
    let kv = "host=h dbname=db sslmode=require";
    assert_eq!(take_ssl_params(kv), (kv.to_owned(), SslParams::default()));
    let target = Target::parse("postgres://u:p@h:5/db?sslmode=verify-ca").unwrap();
    assert!(matches!(target.tls, Tls::On(_)));
    let target = Target::parse("host=h dbname=db sslmode=require").unwrap();
    assert!(matches!(target.tls, Tls::On(_)));
    let target = Target::parse("postgres://u:p@h/db").unwrap();
    assert!(matches!(target.tls, Tls::Off));
    let e = Target::parse("postgres://h/db?sslrootcert=/nonexistent/ca.pem&sslmode=verify-full")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
    let e = Target::parse("postgres://h/db?sslrootcert=/x.pem")
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("sslmode"), "{e}");
}

#[test]
fn locations_never_show_credentials() {
    let loc = |url: &str| Target::parse(url).unwrap().location.to_string();
    assert_eq!(
        loc("postgres://u:pw@db.example:6543/lib"),
        "db.example:6543/lib"
    );
    assert_eq!(loc("postgres://u:pw@db.example/lib"), "db.example:5432/lib");
    assert_eq!(loc("postgres://u:pw@[::1]:7/lib"), "[::1]:7/lib");
    assert_eq!(loc("postgres://u:pw@a:1,b:2/lib"), "a:1,b:2/lib");
    assert_eq!(loc("postgres://mediagen@h"), "h:5432/mediagen");
    assert_eq!(
        loc("host=/run/postgresql user=u password=pw dbname=x"),
        "/run/postgresql:5432/x"
    );
}

/// `ready` fails (naming the server) when the database stops answering.
#[tokio::test]
async fn ready_fails_when_the_database_refuses_connections() {
    let db = TestDb::new().await;
    let store = db.connect().await;
    store.ready().await.unwrap();
    admin(&format!(
        "ALTER DATABASE {0} ALLOW_CONNECTIONS false; \
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{0}'",
        db.name
    ))
    .await;
    // The pool may hand out a connection the server just closed before its
    // driver noticed: the first attempt can fail either way.
    let mut failed = false;
    for _ in 0..3 {
        if let Err(e) = store.ready().await {
            assert!(e.to_string().contains(&db.name), "{e}");
            failed = true;
            break;
        }
    }
    assert!(failed, "ready kept saying yes");
    drop(store);
    admin(&format!(
        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
        db.name
    ))
    .await;
    db.drop().await;
}

/// Work that must run in one replica at a time (reconcile): while one holds
/// the lock the other is told no; dropping the guard (or the holder dying:
/// its session ends) frees it. Another name is another lock.
#[tokio::test]
async fn a_library_wide_lock_is_held_by_one_replica_at_a_time() {
    let db = TestDb::new().await;
    let (a, b) = (db.connect().await, db.connect().await);
    let held = a.catalog.try_exclusive("reconcile").await.unwrap();
    assert!(held.is_some());
    assert!(
        b.catalog
            .try_exclusive("reconcile")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        a.catalog
            .try_exclusive("reconcile")
            .await
            .unwrap()
            .is_none(),
        "not even twice by one replica: it is one lock per library"
    );
    assert!(b.catalog.try_exclusive("cleanup").await.unwrap().is_some());
    drop(held);
    // The holder's session ends as the guard drops; the server notices at
    // once, but give it a moment on a loaded machine.
    let mut freed = None;
    for _ in 0..50 {
        freed = b.catalog.try_exclusive("reconcile").await.unwrap();
        if freed.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(freed.is_some(), "the lock is free once its holder lets go");
    drop(freed);
    // Reconcile through a Library: the one that gets the lock does the work.
    let dir = tempfile::tempdir().unwrap();
    let media: Arc<dyn crate::store::MediaStore> =
        Arc::new(crate::store::local::LocalMedia::open(dir.path()).unwrap());
    let lib = crate::store::Library::new(media, a.catalog.clone(), a.feed.clone())
        .shared_with_other_processes();
    let _busy = b.catalog.try_exclusive("reconcile").await.unwrap().unwrap();
    std::fs::write(
        dir.path().join("by-hand.png"),
        crate::media::tests_support::png(3, 2),
    )
    .unwrap();
    let skipped = lib
        .reconcile(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(skipped.added, 0, "another replica is reconciling");
    drop(_busy);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let done = lib
        .reconcile(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(done.added, 1);
    // The clean-up likewise: while another replica cleans, this one skips
    // (both counting the size and deleting down to it would delete twice).
    let stop = tokio_util::sync::CancellationToken::new();
    let all = Some(std::time::Duration::ZERO);
    let later = Utc::now() + chrono::Duration::seconds(5);
    let cleaning = b.catalog.try_exclusive("cleanup").await.unwrap().unwrap();
    assert!(
        lib.cleanup(all, None, later, &stop)
            .await
            .unwrap()
            .is_empty()
    );
    drop(cleaning);
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    assert_eq!(lib.cleanup(all, None, later, &stop).await.unwrap().len(), 1);
    db.drop().await;
}
