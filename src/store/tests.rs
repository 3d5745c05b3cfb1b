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
    let names: std::collections::HashSet<_> =
        (0..10_000).map(|_| new_name("image", t0, "png")).collect();
    assert_eq!(names.len(), 10_000);
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
