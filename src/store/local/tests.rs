//! The local store: the shared port contracts, then what is particular to
//! a directory + SQLite (atomic files, links, temporary files, corrupt
//! catalogs, schema upgrades, the search plans).

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{Map, json};

use super::*;
use crate::media::tests_support::png;
use crate::store::{
    Catalog, Change, Library, ListQuery, MediaId, MediaKind, MediaRecord, MediaStore, NewMedia,
    Page, ReconcileReport, SortBy, new_name, suite,
};
use crate::store::{JobStore, UsageLedger};

fn new_media(bytes: &[u8], prompt: &str) -> NewMedia {
    let mut metadata = Map::new();
    metadata.insert("aspect_ratio".into(), json!("16:9"));
    NewMedia {
        bytes: Bytes::copy_from_slice(bytes),
        kind: MediaKind::Image,
        extension: "png".into(),
        mime_type: "image/png".into(),
        width: Some(4),
        height: Some(3),
        prompt: Some(prompt.into()),
        model: Some("gemini-3-pro-image-preview".into()),
        metadata,
        source: None,
    }
}

fn open(dir: &Path) -> (LocalStore, Library) {
    let local = LocalStore::open(dir).unwrap();
    let lib = local.library();
    (local, lib)
}

fn path_of(local: &LocalStore, id: &MediaId) -> PathBuf {
    local.media.local_path(id).unwrap()
}

/// Rows in the catalog, whatever their state.
async fn rows(local: &LocalStore) -> usize {
    local.catalog.all_ids().await.unwrap().len()
}

#[tokio::test]
async fn local_ports_honour_the_shared_contracts() {
    let dir = tempfile::tempdir().unwrap();
    let local = LocalStore::open(dir.path()).unwrap();
    suite::media_store(local.media.as_ref()).await;
    suite::catalog(local.catalog.as_ref()).await;
    suite::job_store(local.jobs.as_ref()).await;
    suite::change_feed(local.feed.as_ref()).await;
    let fresh = tempfile::tempdir().unwrap();
    let local = LocalStore::open(fresh.path()).unwrap();
    suite::library(&local.library(), local.media.as_ref()).await;
    let fresh = tempfile::tempdir().unwrap();
    let local = LocalStore::open(fresh.path()).unwrap();
    suite::save_crash_points(
        local.media.clone(),
        local.catalog.clone(),
        local.feed.clone(),
    )
    .await;
    let fresh = tempfile::tempdir().unwrap();
    let local = LocalStore::open(fresh.path()).unwrap();
    suite::job_leases(local.jobs.as_ref()).await;
    suite::usage_ledger(local.usage.as_ref()).await;
}

/// Ready while the directory takes files; not once it is gone; no
/// download URLs (the `/files` route serves local files).
#[tokio::test]
async fn ready_while_the_directory_takes_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("lib");
    let local = LocalStore::open(&root).unwrap();
    local.media.ready().await.unwrap();
    assert!(temps(&root).is_empty(), "the probe is removed");
    let id: MediaId = "image_a.png".parse().unwrap();
    assert_eq!(
        local
            .media
            .download_url(&id, Duration::from_secs(60))
            .await
            .unwrap(),
        None
    );
    std::fs::remove_dir_all(&root).unwrap();
    let err = local.media.ready().await.unwrap_err();
    assert!(err.to_string().contains("lib"), "{err}");
}

/// Opening for a look creates nothing where there is no library, and finds
/// the one `open` made.
#[tokio::test]
async fn open_existing_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("never-used");
    assert!(LocalStore::open_existing(&missing).unwrap().is_none());
    assert!(!missing.exists());
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert!(LocalStore::open_existing(&empty).unwrap().is_none());
    assert_eq!(std::fs::read_dir(&empty).unwrap().count(), 0);
    let (_, lib) = open(&empty);
    let saved = lib.save(new_media(&png(4, 3), "kept")).await.unwrap();
    let again = LocalStore::open_existing(&empty).unwrap().unwrap();
    assert!(again.library().get(&saved.id).await.unwrap().is_some());
}

fn temps(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect()
}

#[test]
fn media_id_accepts_names_and_refuses_tricks() {
    for ok in [
        "image_20260101_120000_000_abcdef.png",
        "a.png",
        "x-y_z.1.webp",
        "A",
    ] {
        assert!(ok.parse::<MediaId>().is_ok(), "{ok}");
    }
    let long = "a".repeat(256);
    for bad in [
        "",
        "..",
        "../x.png",
        "a/b.png",
        "a\\b",
        "/etc/passwd",
        ".hidden",
        "%2e%2e%2fx",
        "a\0b",
        "a b.png",
        "x..png",
        "é.png",
        "a\nb",
        long.as_str(),
    ] {
        assert!(bad.parse::<MediaId>().is_err(), "{bad:?} accepted");
    }
    let e = "../x".parse::<MediaId>().unwrap_err().to_string();
    assert!(e.contains("path separator") || e.contains(".."), "{e}");
}

#[test]
fn names_are_unique_and_time_sortable() {
    let t0 = chrono::Utc::now();
    // 30 random bits per millisecond: in 10,000 names made in the same
    // millisecond a collision or two can happen (the store's no-clobber
    // rename retries then); more than a handful means the suffix is broken.
    let names: std::collections::HashSet<_> =
        (0..10_000).map(|_| new_name("image", t0, "png")).collect();
    assert!(names.len() >= 9_990, "{} unique of 10000", names.len());
    let later = new_name("image", t0 + chrono::Duration::milliseconds(1), "png");
    let earlier = new_name("image", t0, "png");
    assert!(earlier.as_str()[..26] < later.as_str()[..26]);
    assert!(earlier.as_str().starts_with("image_") && earlier.as_str().ends_with(".png"));
    assert!(earlier.as_str().parse::<MediaId>().is_ok());
}

#[tokio::test]
async fn save_writes_exact_bytes_sidecar_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "a cat")).await.unwrap();
    assert_eq!(std::fs::read(path_of(&local, &r.id)).unwrap(), bytes);
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("metadata").join(format!("{}.json", r.id))).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["prompt"], "a cat");
    assert_eq!(sidecar["filename"], r.id.as_str());
    assert_eq!(sidecar["file_size_bytes"], bytes.len());
    assert_eq!(sidecar["aspect_ratio"], "16:9");
    assert_eq!(sidecar["type"], "image");
    let got = store.get(&r.id).await.unwrap().unwrap();
    assert_eq!(got, r);
    assert!(temps(dir.path()).is_empty());
    assert!(temps(&dir.path().join("metadata")).is_empty());
}

#[tokio::test]
async fn failed_save_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    // Replace metadata/ by a file: the sidecar cannot be written.
    std::fs::remove_dir(dir.path().join("metadata")).unwrap();
    std::fs::write(dir.path().join("metadata"), b"not a dir").unwrap();
    let bytes = png(4, 3);
    assert!(store.save(new_media(&bytes, "x")).await.is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("catalog.sqlite3") && n != "metadata")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(rows(&local).await, 0);
}

#[tokio::test]
async fn reconcile_adds_drops_and_cleans() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let bytes = png(4, 3);
    let kept = store.save(new_media(&bytes, "kept")).await.unwrap();
    let gone = store.save(new_media(&bytes, "gone")).await.unwrap();
    std::fs::remove_file(path_of(&local, &gone.id)).unwrap();
    // Added by hand, without a sidecar.
    std::fs::write(dir.path().join("holiday.png"), png(40, 30)).unwrap();
    // A dead writer's temp file (PID that cannot exist), a live one's, a stray sidecar.
    std::fs::write(dir.path().join(".tmp-4294967295-abc"), b"partial").unwrap();
    let own = format!(".tmp-{}-live", std::process::id());
    std::fs::write(dir.path().join(&own), b"in progress").unwrap();
    std::fs::write(dir.path().join("metadata/orphan.png.json"), b"{}").unwrap();
    // Not media: left alone and not catalogued.
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();

    let report = store.reconcile(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(
        report,
        ReconcileReport {
            added: 1,
            removed: 1,
            temp_removed: 1,
            sidecars_removed: 1
        }
    );
    assert!(
        !dir.path()
            .join(format!("metadata/{}.json", gone.id))
            .exists(),
        "the vanished file's sidecar goes with its row"
    );
    assert!(!dir.path().join("metadata/orphan.png.json").exists());
    assert!(store.get(&gone.id).await.unwrap().is_none());
    assert!(store.get(&kept.id).await.unwrap().is_some());
    let holiday = store
        .get(&"holiday.png".parse().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (holiday.width, holiday.height, holiday.mime_type.as_str()),
        (Some(40), Some(30), "image/png")
    );
    assert!(dir.path().join("metadata/holiday.png.json").is_file());
    assert_eq!(temps(dir.path()), vec![own.clone()]);
    assert!(dir.path().join("notes.txt").is_file());
    // A second run changes nothing.
    assert_eq!(
        store.reconcile(Duration::from_secs(3600)).await.unwrap(),
        ReconcileReport::default()
    );
}

#[tokio::test]
async fn catalog_is_rebuilt_from_files_and_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png(4, 3);
    let r = {
        let (_local, store) = open(dir.path());
        store.save(new_media(&bytes, "remember me")).await.unwrap()
    };
    for f in [
        "catalog.sqlite3",
        "catalog.sqlite3-wal",
        "catalog.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let (_local, store) = open(dir.path());
    assert!(store.get(&r.id).await.unwrap().is_none());
    assert_eq!(
        store
            .reconcile(Duration::from_secs(3600))
            .await
            .unwrap()
            .added,
        1
    );
    let back = store.get(&r.id).await.unwrap().unwrap();
    assert_eq!(back.prompt.as_deref(), Some("remember me"));
    assert_eq!(back.model.as_deref(), Some("gemini-3-pro-image-preview"));
    assert_eq!(
        back.created.timestamp_millis(),
        r.created.timestamp_millis()
    );
    assert_eq!(back.metadata["aspect_ratio"], "16:9");
}

#[tokio::test]
async fn corrupt_catalog_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png(4, 3);
    {
        let (_local, store) = open(dir.path());
        store.save(new_media(&bytes, "x")).await.unwrap();
    }
    for f in ["catalog.sqlite3-wal", "catalog.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::write(dir.path().join("catalog.sqlite3"), vec![0x42; 8192]).unwrap();
    let (_local, store) = open(dir.path());
    assert_eq!(
        store
            .reconcile(Duration::from_secs(3600))
            .await
            .unwrap()
            .added,
        1
    );
}

#[tokio::test]
async fn symlinks_are_not_catalogued() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary.png");
    std::fs::write(&canary, png(4, 3)).unwrap();
    let (_local, store) = open(dir.path());
    std::os::unix::fs::symlink(&canary, dir.path().join("link.png")).unwrap();
    assert_eq!(
        store
            .reconcile(Duration::from_secs(3600))
            .await
            .unwrap()
            .added,
        0
    );
    assert!(canary.is_file());
}

#[tokio::test]
async fn interrupted_delete_is_finished_by_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "half deleted")).await.unwrap();
    // The first step of a delete happened, then the process died.
    assert!(local.catalog.mark_deleting(&r.id).await.unwrap());
    assert!(
        store.get(&r.id).await.unwrap().is_none(),
        "hidden while deleting"
    );
    let listed = store.list(&ListQuery::default()).await.unwrap();
    assert!(listed.records.is_empty() && listed.total == 0);
    let report = store.reconcile(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(report.removed, 1);
    assert!(!path_of(&local, &r.id).exists());
    assert!(!dir.path().join(format!("metadata/{}.json", r.id)).exists());
    assert_eq!(rows(&local).await, 0);
}

#[tokio::test]
async fn delete_removes_everything_and_reports_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "bye")).await.unwrap();
    assert!(store.delete(&r.id).await.unwrap());
    assert!(!path_of(&local, &r.id).exists());
    assert!(!store.delete(&r.id).await.unwrap());
    assert_eq!(rows(&local).await, 0);
}

#[tokio::test]
async fn cleanup_by_age_then_size_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let bytes = png(4, 3);
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            store
                .save(new_media(&bytes, &format!("n{i}")))
                .await
                .unwrap()
                .id,
        );
        std::thread::sleep(Duration::from_millis(3));
    }
    // Nothing configured: nothing happens.
    assert!(
        store
            .cleanup(None, None, chrono::Utc::now(), &Default::default())
            .await
            .unwrap()
            .is_empty()
    );
    // By size: keep at most two files' worth; the two oldest go.
    let size = bytes.len() as u64;
    let gone = store
        .cleanup(
            None,
            Some(2 * size),
            chrono::Utc::now(),
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(gone, ids[..2].to_vec());
    assert!(!path_of(&local, &ids[0]).exists() && path_of(&local, &ids[2]).exists());
    // By age: "now" a day later, everything older than an hour goes.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let gone = store
        .cleanup(
            Some(Duration::from_secs(3600)),
            None,
            later,
            &Default::default(),
        )
        .await
        .unwrap();
    assert_eq!(gone, ids[2..].to_vec());
    assert_eq!(rows(&local).await, 0);
}

/// How many ready files of `kind` the catalog counts.
async fn total(store: &Library, kind: Option<MediaKind>) -> u64 {
    store
        .list(&ListQuery {
            kind,
            ..ListQuery::default()
        })
        .await
        .unwrap()
        .total
}

/// Names of a listing page, in order.
async fn page(store: &Library, q: ListQuery) -> (Vec<String>, u64) {
    let Page { records, total } = store.list(&q).await.unwrap();
    (
        records
            .iter()
            .map(|r| r.prompt.clone().unwrap_or_default())
            .collect(),
        total,
    )
}

#[tokio::test]
async fn listing_sorts_pages_filters_and_searches() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    // Different sizes; created in this order, a few ms apart.
    let prompts = [
        "Red FOX at dawn",
        "blue whale",
        "a fox's den",
        "100% cotton",
    ];
    let mut ids = Vec::new();
    for (i, p) in prompts.iter().enumerate() {
        let bytes = png(4 + i as u32 * 40, 3);
        ids.push(store.save(new_media(&bytes, p)).await.unwrap().id);
        std::thread::sleep(Duration::from_millis(3));
    }
    let q = |sort, descending| ListQuery {
        sort,
        descending,
        ..ListQuery::default()
    };
    let newest: Vec<String> = prompts.iter().rev().map(|p| (*p).to_owned()).collect();
    assert_eq!(page(&store, q(SortBy::Date, true)).await, (newest, 4));
    assert_eq!(
        page(&store, q(SortBy::Date, false)).await.0,
        prompts.map(str::to_owned)
    );
    // Names sort like dates here (names start with the creation time).
    assert_eq!(
        page(&store, q(SortBy::Name, false)).await.0,
        prompts.map(str::to_owned)
    );
    let sizes: Vec<u64> = store
        .list(&q(SortBy::Size, true))
        .await
        .unwrap()
        .records
        .iter()
        .map(|r| r.size_bytes)
        .collect();
    assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "{sizes:?}");

    // Paging: offset + limit, total counts every match.
    let p2 = ListQuery {
        limit: 2,
        offset: 2,
        ..q(SortBy::Date, true)
    };
    assert_eq!(
        page(&store, p2).await,
        (vec!["blue whale".into(), "Red FOX at dawn".into()], 4)
    );
    // Kind filter.
    let videos = ListQuery {
        kind: Some(MediaKind::Video),
        ..ListQuery::default()
    };
    assert_eq!(page(&store, videos).await, (vec![], 0));

    // Search: substring, case-insensitive, through the trigram index (≥ 3
    // characters) and the short-query scan; quotes and % are literal.
    let search = |text: &str| {
        page(
            &store,
            ListQuery {
                text: Some(text.into()),
                ..q(SortBy::Date, false)
            },
        )
    };
    assert_eq!(
        search("fox").await,
        (vec!["Red FOX at dawn".into(), "a fox's den".into()], 2)
    );
    assert_eq!(search("ox'").await, (vec!["a fox's den".into()], 1));
    assert_eq!(search("0%").await, (vec!["100% cotton".into()], 1));
    assert_eq!(search("0% c").await, (vec!["100% cotton".into()], 1));
    assert_eq!(search("\"fox").await, (vec![], 0));
    assert_eq!(search("WHALE").await, (vec!["blue whale".into()], 1));

    // The index follows deletes and re-inserts (reconcile's upsert path).
    assert!(store.delete(&ids[0]).await.unwrap());
    assert_eq!(search("fox").await, (vec!["a fox's den".into()], 1));
    let again = store.get(&ids[2]).await.unwrap().unwrap();
    local.catalog.insert(&again).await.unwrap();
    assert_eq!(search("fox").await, (vec!["a fox's den".into()], 1));
    assert_eq!(rows(&local).await, 3);
    // Totals (kept by triggers) follow inserts, upserts, marks and deletes.
    assert_eq!(
        (
            total(&store, None).await,
            total(&store, Some(MediaKind::Image)).await
        ),
        (3, 3)
    );
    assert!(local.catalog.mark_deleting(&ids[1]).await.unwrap());
    assert_eq!(
        (
            total(&store, None).await,
            total(&store, Some(MediaKind::Video)).await
        ),
        (2, 0)
    );
    let mut as_video = store.get(&ids[3]).await.unwrap().unwrap();
    as_video.kind = MediaKind::Video;
    local.catalog.insert(&as_video).await.unwrap();
    assert_eq!(
        (
            total(&store, None).await,
            total(&store, Some(MediaKind::Image)).await,
            total(&store, Some(MediaKind::Video)).await
        ),
        (2, 1, 1)
    );
}

#[tokio::test]
async fn older_catalog_schema_is_upgraded_and_search_index_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let (_local, store) = open(dir.path());
        let bytes = png(4, 3);
        store
            .save(new_media(&bytes, "lighthouse at dusk"))
            .await
            .unwrap();
    }
    // Make it look like a version-2 catalog with an empty search index.
    {
        let c = rusqlite::Connection::open(dir.path().join(CATALOG_FILE)).unwrap();
        c.execute_batch(
            "INSERT INTO media_fts(media_fts) VALUES ('delete-all'); PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let (_local, store) = open(dir.path());
    let found = store
        .list(&ListQuery {
            text: Some("house".into()),
            ..ListQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(found.total, 1);
}

/// A version-5 catalog (no leases, no holds) with an active job opens as
/// version 6 and the job can be claimed.
#[tokio::test]
async fn a_version_5_catalog_gains_job_leases_and_budget_holds() {
    let dir = tempfile::tempdir().unwrap();
    let at = chrono::Utc::now();
    let job = crate::store::Job {
        id: crate::store::JobId::new(at),
        operation: "generate_video".into(),
        provider: "gemini".into(),
        model: "veo-3.1-generate-preview".into(),
        state: crate::store::JobState::Running,
        params: serde_json::Map::new(),
        provider_ref: Some("models/veo/operations/x".into()),
        progress: None,
        attempts: 2,
        error: None,
        result: None,
        sample_uri: None,
        created: at,
        updated: at,
        deadline: at + chrono::Duration::minutes(20),
    };
    {
        let c = rusqlite::Connection::open(dir.path().join(CATALOG_FILE)).unwrap();
        c.execute_batch(
            "CREATE TABLE jobs (id TEXT PRIMARY KEY, state TEXT NOT NULL, created_ms INTEGER NOT NULL, body TEXT NOT NULL);
             PRAGMA user_version = 5;",
        )
        .unwrap();
        c.execute(
            "INSERT INTO jobs VALUES (?1, 'running', ?2, ?3)",
            rusqlite::params![
                job.id.as_str(),
                at.timestamp_millis(),
                serde_json::to_string(&job).unwrap()
            ],
        )
        .unwrap();
    }
    let local = LocalStore::open(dir.path()).unwrap();
    let soon = chrono::Utc::now() + chrono::Duration::minutes(1);
    let claimed = local.jobs.claim("me", soon, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, job.id);
    let cap = crate::store::Cap {
        since: at - chrono::Duration::days(1),
        limit_usd: 1.0,
    };
    assert!(local.usage.hold(0.5, &[cap], soon).await.unwrap().is_ok());
    // Opening again (already version 6) keeps the lease and the hold.
    drop(local);
    let again = LocalStore::open(dir.path()).unwrap();
    assert!(
        again
            .jobs
            .claim("other", soon, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert!((again.usage.held(chrono::Utc::now()).await.unwrap() - 0.5).abs() < 1e-9);
}

#[tokio::test]
async fn search_with_many_matches_walks_the_index_and_counts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let t0 = chrono::Utc::now();
    // 2,500 rows (more than the by-rowid plan takes): every one matches
    // "common", every tenth also "tenth".
    let records: Vec<MediaRecord> = (0..2500)
        .map(|i| {
            let created = t0 + chrono::Duration::milliseconds(i);
            MediaRecord {
                id: new_name("image", created, "png"),
                kind: MediaKind::Image,
                mime_type: "image/png".into(),
                size_bytes: 10,
                width: None,
                height: None,
                created,
                prompt: Some(if i % 10 == 0 {
                    format!("common tenth {i}")
                } else {
                    format!("common {i}")
                }),
                model: None,
                source: None,
                metadata: Map::new(),
            }
        })
        .collect();
    local.catalog.insert_many(records.clone()).await.unwrap();
    let search = async |text: &str, offset| {
        let Page { records, total } = store
            .list(&ListQuery {
                text: Some(text.into()),
                offset,
                limit: 3,
                ..ListQuery::default()
            })
            .await
            .unwrap();
        (records, total)
    };
    let (page, total) = search("common", 0).await;
    assert_eq!(total, 2500);
    let prompts: Vec<_> = page.iter().map(|r| r.prompt.clone().unwrap()).collect();
    assert_eq!(prompts, ["common 2499", "common 2498", "common 2497"]);
    let (page, total) = search("COMMON", 2497).await;
    assert_eq!(total, 2500);
    assert_eq!(
        page.last().unwrap().prompt.as_deref(),
        Some("common tenth 0")
    );
    assert_eq!(search("tenth", 0).await.1, 250);
    // A delete in progress is not counted.
    assert!(
        local
            .catalog
            .mark_deleting(&records[2499].id)
            .await
            .unwrap()
    );
    let (page, total) = search("common", 0).await;
    assert_eq!(total, 2499);
    assert_eq!(page[0].prompt.as_deref(), Some("common 2498"));
}

#[tokio::test]
async fn changes_are_announced_for_adds_deletes_and_reconcile_only() {
    let dir = tempfile::tempdir().unwrap();
    let (_local, store) = open(dir.path());
    let mut rx = store.subscribe();
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "watched")).await.unwrap();
    assert_eq!(rx.next().await, Some(Change::Added(r.id.clone())));
    // Reads, a delete of an unknown name and a no-op reconcile change nothing.
    store.list(&ListQuery::default()).await.unwrap();
    assert!(
        !store
            .delete(&"image_nope.png".parse().unwrap())
            .await
            .unwrap()
    );
    store.reconcile(Duration::from_secs(3600)).await.unwrap();
    assert!(!rx.drain());
    // A file added by hand, found by reconcile.
    std::fs::write(dir.path().join("by_hand.png"), &bytes).unwrap();
    store.reconcile(Duration::from_secs(3600)).await.unwrap();
    assert_eq!(rx.next().await, Some(Change::Rescanned));
    assert!(store.delete(&r.id).await.unwrap());
    assert_eq!(rx.next().await, Some(Change::Removed(r.id)));
}

/// A caller that stops waiting cannot leave half a save: the save finishes
/// (or never started), and `settle` waits for what is under way.
#[tokio::test]
async fn abandoned_saves_finish_and_settle_waits_for_them() {
    let dir = tempfile::tempdir().unwrap();
    let (local, store) = open(dir.path());
    let bytes = png(64, 64);
    let mut callers = Vec::new();
    for i in 0..8 {
        let lib = store.clone();
        let m = new_media(&bytes, &format!("abandoned {i}"));
        callers.push(tokio::spawn(async move { lib.save(m).await }));
    }
    tokio::task::yield_now().await;
    for c in &callers {
        c.abort();
    }
    store.settle().await;
    let files = local.media.list().await.unwrap().len();
    assert_eq!(files, rows(&local).await, "every stored file has its row");
    assert_eq!(local.media.list_sidecars().await.unwrap().len(), files);
    // Still usable after settling.
    store.save(new_media(&bytes, "after")).await.unwrap();
}
