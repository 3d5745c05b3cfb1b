use std::io::Cursor;
use std::time::Duration;

use serde_json::{Map, json};

use super::*;

fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([9, 8, 7])));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn new_media<'a>(bytes: &'a [u8], prompt: &'a str) -> NewMedia<'a> {
    let mut metadata = Map::new();
    metadata.insert("aspect_ratio".into(), json!("16:9"));
    NewMedia {
        bytes,
        kind: MediaKind::Image,
        extension: "png",
        mime_type: "image/png",
        width: Some(4),
        height: Some(3),
        prompt: Some(prompt),
        model: Some("gemini-3-pro-image-preview"),
        metadata,
        source: None,
    }
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

#[test]
fn save_writes_exact_bytes_sidecar_and_row() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "a cat")).unwrap();
    assert_eq!(std::fs::read(store.path_of(&r.id)).unwrap(), bytes);
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dir.path().join("metadata").join(format!("{}.json", r.id))).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["prompt"], "a cat");
    assert_eq!(sidecar["filename"], r.id.as_str());
    assert_eq!(sidecar["file_size_bytes"], bytes.len());
    assert_eq!(sidecar["aspect_ratio"], "16:9");
    assert_eq!(sidecar["type"], "image");
    let got = store.get(&r.id).unwrap().unwrap();
    assert_eq!(got, r);
    assert!(temps(dir.path()).is_empty());
    assert!(temps(&dir.path().join("metadata")).is_empty());
}

#[test]
fn failed_save_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    // Replace metadata/ by a file: the sidecar cannot be written.
    std::fs::remove_dir(dir.path().join("metadata")).unwrap();
    std::fs::write(dir.path().join("metadata"), b"not a dir").unwrap();
    let bytes = png(4, 3);
    assert!(store.save(new_media(&bytes, "x")).is_err());
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.starts_with("catalog.sqlite3") && n != "metadata")
        .collect();
    assert!(left.is_empty(), "{left:?}");
    assert_eq!(store.catalog().count().unwrap(), 0);
}

#[test]
fn reconcile_adds_drops_and_cleans() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = png(4, 3);
    let kept = store.save(new_media(&bytes, "kept")).unwrap();
    let gone = store.save(new_media(&bytes, "gone")).unwrap();
    std::fs::remove_file(store.path_of(&gone.id)).unwrap();
    // Added by hand, without a sidecar.
    std::fs::write(dir.path().join("holiday.png"), png(40, 30)).unwrap();
    // A dead writer's temp file (PID that cannot exist), a live one's, a stray sidecar.
    std::fs::write(dir.path().join(".tmp-4294967295-abc"), b"partial").unwrap();
    let own = format!(".tmp-{}-live", std::process::id());
    std::fs::write(dir.path().join(&own), b"in progress").unwrap();
    std::fs::write(dir.path().join("metadata/orphan.png.json"), b"{}").unwrap();
    // Not media: left alone and not catalogued.
    std::fs::write(dir.path().join("notes.txt"), b"hello").unwrap();

    let report = store.reconcile(Duration::from_secs(3600)).unwrap();
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
    assert!(store.get(&gone.id).unwrap().is_none());
    assert!(store.get(&kept.id).unwrap().is_some());
    let holiday = store.get(&"holiday.png".parse().unwrap()).unwrap().unwrap();
    assert_eq!(
        (holiday.width, holiday.height, holiday.mime_type.as_str()),
        (Some(40), Some(30), "image/png")
    );
    assert!(dir.path().join("metadata/holiday.png.json").is_file());
    assert_eq!(temps(dir.path()), vec![own.clone()]);
    assert!(dir.path().join("notes.txt").is_file());
    // A second run changes nothing.
    assert_eq!(
        store.reconcile(Duration::from_secs(3600)).unwrap(),
        ReconcileReport::default()
    );
}

#[test]
fn catalog_is_rebuilt_from_files_and_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png(4, 3);
    let r = {
        let store = Store::open(dir.path()).unwrap();
        store.save(new_media(&bytes, "remember me")).unwrap()
    };
    for f in [
        "catalog.sqlite3",
        "catalog.sqlite3-wal",
        "catalog.sqlite3-shm",
    ] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(store.get(&r.id).unwrap().is_none());
    assert_eq!(store.reconcile(Duration::from_secs(3600)).unwrap().added, 1);
    let back = store.get(&r.id).unwrap().unwrap();
    assert_eq!(back.prompt.as_deref(), Some("remember me"));
    assert_eq!(back.model.as_deref(), Some("gemini-3-pro-image-preview"));
    assert_eq!(
        back.created.timestamp_millis(),
        r.created.timestamp_millis()
    );
    assert_eq!(back.metadata["aspect_ratio"], "16:9");
}

#[test]
fn corrupt_catalog_is_moved_aside_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = png(4, 3);
    {
        let store = Store::open(dir.path()).unwrap();
        store.save(new_media(&bytes, "x")).unwrap();
    }
    for f in ["catalog.sqlite3-wal", "catalog.sqlite3-shm"] {
        let _ = std::fs::remove_file(dir.path().join(f));
    }
    std::fs::write(dir.path().join("catalog.sqlite3"), vec![0x42; 8192]).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.reconcile(Duration::from_secs(3600)).unwrap().added, 1);
}

#[test]
fn symlinks_are_not_catalogued() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let canary = outside.path().join("canary.png");
    std::fs::write(&canary, png(4, 3)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    std::os::unix::fs::symlink(&canary, dir.path().join("link.png")).unwrap();
    assert_eq!(store.reconcile(Duration::from_secs(3600)).unwrap().added, 0);
    assert!(canary.is_file());
}

#[test]
fn interrupted_delete_is_finished_by_reconcile() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "half deleted")).unwrap();
    // The first step of a delete happened, then the process died.
    assert!(store.catalog().mark_deleting(&r.id).unwrap());
    assert!(store.get(&r.id).unwrap().is_none(), "hidden while deleting");
    let (listed, total) = store.list(&ListQuery::default()).unwrap();
    assert!(listed.is_empty() && total == 0);
    let report = store.reconcile(Duration::from_secs(3600)).unwrap();
    assert_eq!(report.removed, 1);
    assert!(!store.path_of(&r.id).exists());
    assert!(!dir.path().join(format!("metadata/{}.json", r.id)).exists());
    assert_eq!(store.catalog().count().unwrap(), 0);
}

#[test]
fn delete_removes_everything_and_reports_unknown() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "bye")).unwrap();
    assert!(store.delete(&r.id).unwrap());
    assert!(!store.path_of(&r.id).exists());
    assert!(!store.delete(&r.id).unwrap());
    assert_eq!(store.catalog().count().unwrap(), 0);
}

#[test]
fn cleanup_by_age_then_size_oldest_first() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bytes = png(4, 3);
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(store.save(new_media(&bytes, &format!("n{i}"))).unwrap().id);
        std::thread::sleep(Duration::from_millis(3));
    }
    // Nothing configured: nothing happens.
    assert!(
        store
            .cleanup(None, None, chrono::Utc::now())
            .unwrap()
            .is_empty()
    );
    // By size: keep at most two files' worth; the two oldest go.
    let size = bytes.len() as u64;
    let gone = store
        .cleanup(None, Some(2 * size), chrono::Utc::now())
        .unwrap();
    assert_eq!(gone, ids[..2].to_vec());
    assert!(!store.path_of(&ids[0]).exists() && store.path_of(&ids[2]).exists());
    // By age: "now" a day later, everything older than an hour goes.
    let later = chrono::Utc::now() + chrono::Duration::days(1);
    let gone = store
        .cleanup(Some(Duration::from_secs(3600)), None, later)
        .unwrap();
    assert_eq!(gone, ids[2..].to_vec());
    assert_eq!(store.catalog().count().unwrap(), 0);
}

/// Names of a listing page, in order.
fn page(store: &Store, q: ListQuery) -> (Vec<String>, u64) {
    let (records, total) = store.list(&q).unwrap();
    (
        records
            .iter()
            .map(|r| r.prompt.clone().unwrap_or_default())
            .collect(),
        total,
    )
}

#[test]
fn listing_sorts_pages_filters_and_searches() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
        ids.push(store.save(new_media(&bytes, p)).unwrap().id);
        std::thread::sleep(Duration::from_millis(3));
    }
    let q = |sort, descending| ListQuery {
        sort,
        descending,
        ..ListQuery::default()
    };
    let newest: Vec<String> = prompts.iter().rev().map(|p| (*p).to_owned()).collect();
    assert_eq!(page(&store, q(SortBy::Date, true)), (newest, 4));
    assert_eq!(
        page(&store, q(SortBy::Date, false)).0,
        prompts.map(str::to_owned)
    );
    // Names sort like dates here (names start with the creation time).
    assert_eq!(
        page(&store, q(SortBy::Name, false)).0,
        prompts.map(str::to_owned)
    );
    let sizes: Vec<u64> = store
        .list(&q(SortBy::Size, true))
        .unwrap()
        .0
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
        page(&store, p2),
        (vec!["blue whale".into(), "Red FOX at dawn".into()], 4)
    );
    // Kind filter.
    let videos = ListQuery {
        kind: Some(MediaKind::Video),
        ..ListQuery::default()
    };
    assert_eq!(page(&store, videos), (vec![], 0));

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
        search("fox"),
        (vec!["Red FOX at dawn".into(), "a fox's den".into()], 2)
    );
    assert_eq!(search("ox'"), (vec!["a fox's den".into()], 1));
    assert_eq!(search("0%"), (vec!["100% cotton".into()], 1));
    assert_eq!(search("0% c"), (vec!["100% cotton".into()], 1));
    assert_eq!(search("\"fox"), (vec![], 0));
    assert_eq!(search("WHALE"), (vec!["blue whale".into()], 1));

    // The index follows deletes and re-inserts (reconcile's upsert path).
    assert!(store.delete(&ids[0]).unwrap());
    assert_eq!(search("fox"), (vec!["a fox's den".into()], 1));
    let again = store.get(&ids[2]).unwrap().unwrap();
    store.catalog().insert(&again).unwrap();
    assert_eq!(search("fox"), (vec!["a fox's den".into()], 1));
    assert_eq!(store.catalog().count().unwrap(), 3);
    // Totals (kept by triggers) follow inserts, upserts, marks and deletes.
    let total = |kind| {
        store
            .list(&ListQuery {
                kind,
                ..ListQuery::default()
            })
            .unwrap()
            .1
    };
    assert_eq!((total(None), total(Some(MediaKind::Image))), (3, 3));
    assert!(store.catalog().mark_deleting(&ids[1]).unwrap());
    assert_eq!((total(None), total(Some(MediaKind::Video))), (2, 0));
    let mut as_video = store.get(&ids[3]).unwrap().unwrap();
    as_video.kind = MediaKind::Video;
    store.catalog().insert(&as_video).unwrap();
    assert_eq!(
        (
            total(None),
            total(Some(MediaKind::Image)),
            total(Some(MediaKind::Video))
        ),
        (2, 1, 1)
    );
}

#[test]
fn older_catalog_schema_is_upgraded_and_search_index_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let bytes = png(4, 3);
        store.save(new_media(&bytes, "lighthouse at dusk")).unwrap();
    }
    // Make it look like a version-2 catalog with an empty search index.
    {
        let c = rusqlite::Connection::open(dir.path().join(CATALOG_FILE)).unwrap();
        c.execute_batch(
            "INSERT INTO media_fts(media_fts) VALUES ('delete-all'); PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    let found = store
        .list(&ListQuery {
            text: Some("house".into()),
            ..ListQuery::default()
        })
        .unwrap();
    assert_eq!(found.1, 1);
}

#[test]
fn search_with_many_matches_walks_the_index_and_counts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
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
    store.catalog().insert_many(&records).unwrap();
    let search = |text: &str, offset| {
        store
            .list(&ListQuery {
                text: Some(text.into()),
                offset,
                limit: 3,
                ..ListQuery::default()
            })
            .unwrap()
    };
    let (page, total) = search("common", 0);
    assert_eq!(total, 2500);
    let prompts: Vec<_> = page.iter().map(|r| r.prompt.clone().unwrap()).collect();
    assert_eq!(prompts, ["common 2499", "common 2498", "common 2497"]);
    let (page, total) = search("COMMON", 2497);
    assert_eq!(total, 2500);
    assert_eq!(
        page.last().unwrap().prompt.as_deref(),
        Some("common tenth 0")
    );
    assert_eq!(search("tenth", 0).1, 250);
    // A delete in progress is not counted.
    assert!(store.catalog().mark_deleting(&records[2499].id).unwrap());
    let (page, total) = search("common", 0);
    assert_eq!(total, 2499);
    assert_eq!(page[0].prompt.as_deref(), Some("common 2498"));
}

#[test]
fn changes_are_announced_for_adds_deletes_and_reconcile_only() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut rx = store.watch_changes();
    let bytes = png(4, 3);
    let r = store.save(new_media(&bytes, "watched")).unwrap();
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    // Reads, a delete of an unknown name and a no-op reconcile change nothing.
    store.list(&ListQuery::default()).unwrap();
    assert!(!store.delete(&"image_nope.png".parse().unwrap()).unwrap());
    store.reconcile(Duration::from_secs(3600)).unwrap();
    assert!(!rx.has_changed().unwrap());
    // A file added by hand, found by reconcile.
    std::fs::write(dir.path().join("by_hand.png"), &bytes).unwrap();
    store.reconcile(Duration::from_secs(3600)).unwrap();
    assert!(rx.has_changed().unwrap());
    rx.mark_unchanged();
    assert!(store.delete(&r.id).unwrap());
    assert!(rx.has_changed().unwrap());
}
