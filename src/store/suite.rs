//! What every implementation of a port must do, written against the traits
//! alone: the local store's tests run it today, and an object store or a
//! PostgreSQL catalog runs the same functions on its own instance. Each
//! function expects a fresh, empty instance.

use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, json};

use super::*;

fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

fn spec(prefix: &'static str, extension: &str) -> NameSpec {
    NameSpec {
        prefix,
        created: Utc::now(),
        extension: extension.into(),
    }
}

/// Bytes by name: no overwrite, whole and ranged reads, sidecars, listing,
/// idempotent deletes, unknown names.
pub async fn media_store(store: &dyn MediaStore) {
    let body = Bytes::from_static(b"0123456789 pretend this is a picture");
    let a = store
        .put_new(body.clone(), &spec("image", "png"))
        .await
        .unwrap();
    assert!(
        a.as_str().starts_with("image_") && a.as_str().ends_with(".png"),
        "{a}"
    );
    let b = store
        .put_new(Bytes::from_static(b"second"), &spec("image", "png"))
        .await
        .unwrap();
    assert_ne!(a, b, "a new file never takes an existing name");
    assert_eq!(
        store.get(&a).await.unwrap(),
        body,
        "the first file is intact"
    );
    assert_eq!(store.get_range(&a, 0..4).await.unwrap(), &body[..4]);
    assert_eq!(store.get_range(&a, 2..10_000).await.unwrap(), &body[2..]);
    assert!(store.get_range(&a, 100..200).await.unwrap().is_empty());
    let meta = store.head(&a).await.unwrap().unwrap();
    assert_eq!((meta.id.clone(), meta.size), (a.clone(), body.len() as u64));
    let mut listed: Vec<_> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    listed.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(listed, want);

    // Sidecars: written, replaced, listed, in batches.
    assert_eq!(store.get_sidecar(&a).await.unwrap(), None);
    store
        .put_sidecar(&a, Bytes::from_static(b"{\"v\":1}"))
        .await
        .unwrap();
    store
        .put_sidecar(&a, Bytes::from_static(b"{\"v\":2}"))
        .await
        .unwrap();
    assert_eq!(
        store.get_sidecar(&a).await.unwrap().unwrap(),
        &b"{\"v\":2}"[..]
    );
    store
        .put_sidecars(vec![(b.clone(), Bytes::from_static(b"{}"))])
        .await
        .unwrap();
    store.put_sidecars(Vec::new()).await.unwrap();
    let mut sidecars = store.list_sidecars().await.unwrap();
    sidecars.sort();
    assert_eq!(sidecars, want);

    // Unfinished-write sweeping never touches finished files.
    store.sweep_incomplete(Duration::ZERO).await.unwrap();
    assert_eq!(store.list().await.unwrap().len(), 2);

    // Deletes are idempotent; a deleted name is not found.
    store.delete(&a).await.unwrap();
    store.delete(&a).await.unwrap();
    store.delete_sidecar(&a).await.unwrap();
    store.delete_sidecar(&a).await.unwrap();
    assert!(store.get(&a).await.unwrap_err().is_not_found());
    assert_eq!(store.head(&a).await.unwrap(), None);
    assert_eq!(store.get_sidecar(&a).await.unwrap(), None);
    let left: Vec<_> = store
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.id)
        .collect();
    assert_eq!(left, vec![b.clone()]);
    assert_eq!(store.list_sidecars().await.unwrap(), vec![b]);
    let unknown: MediaId = "image_unknown.png".parse().unwrap();
    assert!(store.get(&unknown).await.unwrap_err().is_not_found());
}

fn record(
    name: &str,
    prompt: &str,
    kind: MediaKind,
    size: u64,
    created: DateTime<Utc>,
) -> MediaRecord {
    let mut extra = Map::new();
    extra.insert("aspect_ratio".into(), json!("1:1"));
    MediaRecord {
        id: name.parse().unwrap(),
        kind,
        mime_type: if kind == MediaKind::Video {
            "video/mp4"
        } else {
            "image/png"
        }
        .into(),
        size_bytes: size,
        width: Some(8),
        height: Some(8),
        created: millis(created),
        prompt: Some(prompt.into()),
        model: Some("m".into()),
        source: None,
        metadata: Map::new(),
    }
    .with_sidecar(extra)
}

fn names(page: &Page) -> Vec<&str> {
    page.records.iter().map(|r| r.id.as_str()).collect()
}

/// Records: insert and read back, sort, page, filter, search, lineage, the
/// two-step delete, upserts.
pub async fn catalog(catalog: &dyn Catalog) {
    let t0 = Utc::now();
    let at = |ms| t0 + chrono::Duration::milliseconds(ms);
    let a = record("a.png", "Red FOX at dawn", MediaKind::Image, 30, at(0));
    let b = record("b.png", "blue whale", MediaKind::Image, 10, at(1));
    let mut c = record("c.mp4", "a fox's den", MediaKind::Video, 20, at(2));
    c.source = Some(a.id.clone());
    catalog.insert(&a).await.unwrap();
    catalog
        .insert_many(vec![b.clone(), c.clone()])
        .await
        .unwrap();
    catalog.insert_many(Vec::new()).await.unwrap();
    assert_eq!(catalog.get(&a.id).await.unwrap().as_ref(), Some(&a));
    assert_eq!(
        catalog.get(&c.id).await.unwrap().unwrap().source,
        Some(a.id.clone())
    );

    let q = |sort, descending| ListQuery {
        sort,
        descending,
        ..ListQuery::default()
    };
    let page = catalog.list(&q(SortBy::Date, true)).await.unwrap();
    assert_eq!(
        (names(&page), page.total),
        (vec!["c.mp4", "b.png", "a.png"], 3)
    );
    let page = catalog.list(&q(SortBy::Size, true)).await.unwrap();
    assert_eq!(names(&page), ["a.png", "c.mp4", "b.png"]);
    let page = catalog.list(&q(SortBy::Name, false)).await.unwrap();
    assert_eq!(names(&page), ["a.png", "b.png", "c.mp4"]);
    let paged = ListQuery {
        limit: 1,
        offset: 1,
        ..q(SortBy::Name, false)
    };
    let page = catalog.list(&paged).await.unwrap();
    assert_eq!((names(&page), page.total), (vec!["b.png"], 3));
    let videos = ListQuery {
        kind: Some(MediaKind::Video),
        ..ListQuery::default()
    };
    let page = catalog.list(&videos).await.unwrap();
    assert_eq!((names(&page), page.total), (vec!["c.mp4"], 1));
    for (text, want) in [
        ("fox", vec!["a.png", "c.mp4"]),
        ("WHALE", vec!["b.png"]),
        ("ox", vec!["a.png", "c.mp4"]),
    ] {
        let search = ListQuery {
            text: Some(text.into()),
            ..q(SortBy::Name, false)
        };
        let page = catalog.list(&search).await.unwrap();
        assert_eq!(
            (names(&page), page.total),
            (want.clone(), want.len() as u64),
            "{text}"
        );
    }
    assert_eq!(
        catalog.derived_from(&a.id).await.unwrap(),
        vec![c.id.clone()]
    );
    let mut oldest = catalog.oldest_first().await.unwrap().into_iter();
    assert_eq!(
        oldest.next(),
        Some((a.id.clone(), 30, a.created.timestamp_millis()))
    );

    // The two-step delete: hidden at once, finished later.
    assert!(catalog.mark_deleting(&a.id).await.unwrap());
    assert!(
        !catalog.mark_deleting(&a.id).await.unwrap(),
        "already marked"
    );
    assert_eq!(catalog.get(&a.id).await.unwrap(), None);
    assert_eq!(catalog.list(&ListQuery::default()).await.unwrap().total, 2);
    assert_eq!(catalog.deleting().await.unwrap(), vec![a.id.clone()]);
    assert_eq!(catalog.oldest_first().await.unwrap().len(), 2);
    assert_eq!(
        catalog.all_ids().await.unwrap().len(),
        3,
        "a marked row is still a row"
    );
    catalog.remove(&a.id).await.unwrap();
    assert!(catalog.deleting().await.unwrap().is_empty());
    let mut ids = catalog.all_ids().await.unwrap();
    ids.sort();
    assert_eq!(ids, vec![b.id.clone(), c.id.clone()]);
    assert!(!catalog.mark_deleting(&a.id).await.unwrap(), "unknown name");

    // An insert of a known name replaces it (reconcile's upsert).
    let mut b2 = b.clone();
    b2.prompt = Some("grey whale".into());
    catalog.insert(&b2).await.unwrap();
    assert_eq!(
        catalog.get(&b.id).await.unwrap().unwrap().prompt.as_deref(),
        Some("grey whale")
    );
    let search = ListQuery {
        text: Some("blue".into()),
        ..ListQuery::default()
    };
    assert_eq!(
        catalog.list(&search).await.unwrap().total,
        0,
        "the search follows the upsert"
    );
    assert_eq!(catalog.list(&ListQuery::default()).await.unwrap().total, 2);
}

fn job(at: DateTime<Utc>) -> Job {
    let at = millis(at);
    let mut params = Map::new();
    params.insert("prompt".into(), json!("a wave"));
    Job {
        id: JobId::new(at),
        operation: "generate_video".into(),
        provider: "gemini".into(),
        model: "veo-3.1-generate-preview".into(),
        state: JobState::Queued,
        params,
        provider_ref: None,
        progress: None,
        attempts: 0,
        error: None,
        result: None,
        sample_uri: None,
        created: at,
        updated: at,
        deadline: at + chrono::Duration::minutes(20),
    }
}

/// Jobs: create once, read back, update, the active and recent views.
pub async fn job_store(jobs: &dyn JobStore) {
    let t0 = Utc::now();
    let first = job(t0);
    let second = job(t0 + chrono::Duration::milliseconds(5));
    jobs.create(&first).await.unwrap();
    jobs.create(&second).await.unwrap();
    assert!(matches!(
        jobs.create(&first).await,
        Err(StoreError::JobExists(_))
    ));
    assert_eq!(jobs.get(&first.id).await.unwrap().as_ref(), Some(&first));
    let unknown: JobId = "job_unknown".parse().unwrap();
    assert_eq!(jobs.get(&unknown).await.unwrap(), None);

    let mut running = first.clone();
    running.state = JobState::Running;
    running.provider_ref = Some("models/veo/operations/abc".into());
    running.attempts = 3;
    running.progress = Some(0.5);
    assert!(jobs.update(&running).await.unwrap());
    assert_eq!(jobs.get(&first.id).await.unwrap().as_ref(), Some(&running));
    let active: Vec<_> = jobs
        .active()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        active,
        vec![first.id.clone(), second.id.clone()],
        "oldest first"
    );

    let mut done = running.clone();
    done.state = JobState::Succeeded;
    done.result = Some("video_x.mp4".parse().unwrap());
    assert!(jobs.update(&done).await.unwrap());
    let active: Vec<_> = jobs
        .active()
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(active, vec![second.id.clone()]);
    let recent: Vec<_> = jobs
        .recent(10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(
        recent,
        vec![second.id.clone(), first.id.clone()],
        "newest first"
    );
    assert_eq!(jobs.recent(1).await.unwrap().len(), 1);
    let mut ghost = job(t0);
    ghost.id = unknown;
    assert!(
        !jobs.update(&ghost).await.unwrap(),
        "an unknown job is not created by update"
    );
}

/// Changes reach every listener, in order; bursts can be drained.
pub async fn change_feed(feed: &dyn ChangeFeed) {
    let mut one = feed.subscribe();
    let mut two = feed.subscribe();
    let id: MediaId = "image_a.png".parse().unwrap();
    feed.publish(Change::Added(id.clone())).await;
    feed.publish(Change::Removed(id.clone())).await;
    assert_eq!(one.next().await, Some(Change::Added(id.clone())));
    assert_eq!(one.next().await, Some(Change::Removed(id.clone())));
    assert_eq!(two.next().await, Some(Change::Added(id.clone())));
    assert!(two.drain(), "the removal was waiting");
    assert!(!two.drain(), "nothing is left");
    let mut late = feed.subscribe();
    assert!(
        !late.drain(),
        "a new listener hears only what comes after it"
    );
}

fn image(prompt: &str) -> NewMedia {
    let mut metadata = Map::new();
    metadata.insert("aspect_ratio".into(), json!("1:1"));
    NewMedia {
        bytes: Bytes::from(crate::media::tests_support::png(6, 4)),
        kind: MediaKind::Image,
        extension: "png".into(),
        mime_type: "image/png".into(),
        width: Some(6),
        height: Some(4),
        prompt: Some(prompt.into()),
        model: Some("m".into()),
        metadata,
        source: None,
    }
}

/// The library's protocols over a store's ports: save → get → list →
/// delete → reconcile (a file stored behind the catalog's back is found,
/// a row whose file vanished is dropped).
pub async fn library(lib: &Library, media: &dyn MediaStore) {
    let mut changes = lib.subscribe();
    let saved = lib.save(image("a lighthouse")).await.unwrap();
    assert_eq!(changes.next().await, Some(Change::Added(saved.id.clone())));
    assert_eq!(saved.metadata["aspect_ratio"], "1:1");
    assert_eq!(saved.metadata["filename"], saved.id.as_str());
    assert_eq!(lib.get(&saved.id).await.unwrap().as_ref(), Some(&saved));
    let sidecar: serde_json::Value =
        serde_json::from_slice(&media.get_sidecar(&saved.id).await.unwrap().unwrap()).unwrap();
    assert_eq!(sidecar["prompt"], "a lighthouse");
    let bytes = lib.read(&saved.id).await.unwrap();
    assert_eq!(crate::media::probe(&bytes).unwrap().width, 6);
    assert_eq!(lib.read_head(&saved.id, 8).await.unwrap(), &bytes[..8]);
    assert_eq!(
        lib.stat(&saved.id).await.unwrap().unwrap().size,
        bytes.len() as u64
    );
    let page = lib.list(&ListQuery::default()).await.unwrap();
    assert_eq!((page.records.len(), page.total), (1, 1));

    let mut derived = image("the lighthouse at night");
    derived.source = Some(saved.id.clone());
    let night = lib.save(derived).await.unwrap();
    assert_eq!(
        lib.derived_from(&saved.id).await.unwrap(),
        vec![night.id.clone()]
    );

    assert!(lib.delete(&night.id).await.unwrap());
    assert!(!lib.delete(&night.id).await.unwrap(), "gone already");
    assert_eq!(media.head(&night.id).await.unwrap(), None);
    assert_eq!(media.get_sidecar(&night.id).await.unwrap(), None);
    assert_eq!(lib.get(&night.id).await.unwrap(), None);

    // Behind the catalog's back: one file stored without a row, one file
    // of a row removed.
    let stray = media
        .put_new(
            Bytes::from(crate::media::tests_support::png(3, 2)),
            &spec("image", "png"),
        )
        .await
        .unwrap();
    media.delete(&saved.id).await.unwrap();
    changes.drain();
    let report = lib.reconcile(Duration::from_secs(3600)).await.unwrap();
    assert_eq!((report.added, report.removed), (1, 1));
    assert_eq!(changes.next().await, Some(Change::Rescanned));
    let found = lib.get(&stray).await.unwrap().unwrap();
    assert_eq!(
        (found.width, found.height, found.prompt),
        (Some(3), Some(2), None)
    );
    assert_eq!(found.metadata["added_by_hand"], true);
    assert_eq!(lib.get(&saved.id).await.unwrap(), None);
    assert_eq!(media.get_sidecar(&saved.id).await.unwrap(), None);
    assert_eq!(
        lib.reconcile(Duration::from_secs(3600)).await.unwrap(),
        ReconcileReport::default()
    );
}
