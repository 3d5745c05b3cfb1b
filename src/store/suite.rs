//! What every implementation of a port must do, written against the traits
//! alone: the local store's tests run it today, and an object store or a
//! PostgreSQL catalog runs the same functions on its own instance. Each
//! function expects a fresh, empty instance.

use std::sync::Arc;
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

/// A new name for a file, as a save makes it.
fn fresh(prefix: &'static str, extension: &str) -> MediaId {
    spec(prefix, extension).candidate()
}

/// Bytes by name: put-if-absent, whole and ranged reads, sidecars, listing,
/// idempotent deletes, unknown names.
pub async fn media_store(store: &dyn MediaStore) {
    let body = Bytes::from_static(b"0123456789 pretend this is a picture");
    let a = fresh("image", "png");
    assert!(
        a.as_str().starts_with("image_") && a.as_str().ends_with(".png"),
        "{a}"
    );
    assert!(store.put_if_absent(&a, body.clone()).await.unwrap());
    assert!(
        !store
            .put_if_absent(&a, Bytes::from_static(b"second"))
            .await
            .unwrap(),
        "a file never replaces one of the same name"
    );
    let b = fresh("image", "png");
    assert_ne!(a, b);
    assert!(
        store
            .put_if_absent(&b, Bytes::from_static(b"second"))
            .await
            .unwrap()
    );
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

    // Sidecars: created if absent, replaced in batches, listed.
    assert_eq!(store.get_sidecar(&a).await.unwrap(), None);
    assert!(
        store
            .put_sidecar_if_absent(&a, Bytes::from_static(b"{\"v\":1}"))
            .await
            .unwrap()
    );
    assert!(
        !store
            .put_sidecar_if_absent(&a, Bytes::from_static(b"{\"v\":2}"))
            .await
            .unwrap(),
        "a sidecar is created once"
    );
    assert_eq!(
        store.get_sidecar(&a).await.unwrap().unwrap(),
        &b"{\"v\":1}"[..]
    );
    store
        .put_sidecars(vec![(a.clone(), Bytes::from_static(b"{\"v\":2}"))])
        .await
        .unwrap();
    assert_eq!(
        store.get_sidecar(&a).await.unwrap().unwrap(),
        &b"{\"v\":2}"[..]
    );
    // A sidecar alone (a name reserved by a save) is not a media file.
    let reserved = fresh("image", "png");
    assert!(
        store
            .put_sidecar_if_absent(&reserved, Bytes::from_static(b"{}"))
            .await
            .unwrap()
    );
    assert_eq!(store.list().await.unwrap().len(), 2);
    assert_eq!(store.head(&reserved).await.unwrap(), None);
    store.delete_sidecar(&reserved).await.unwrap();
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
    job_at(at, "a wave")
}

/// A queued video job created at `at` (to the millisecond) for `prompt`.
pub fn job_at(at: DateTime<Utc>, prompt: &str) -> Job {
    let at = millis(at);
    let mut params = Map::new();
    params.insert("prompt".into(), json!(prompt));
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

fn ids(jobs: &[Job]) -> Vec<JobId> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

/// Leases: one process drives a job at a time; an expired or released
/// lease lets another take it over; ended jobs are never handed out.
pub async fn job_leases(jobs: &dyn JobStore) {
    let t0 = Utc::now() - chrono::Duration::seconds(10);
    let first = job(t0);
    let second = job(t0 + chrono::Duration::milliseconds(5));
    let mut ended = job(t0 + chrono::Duration::milliseconds(10));
    ended.state = JobState::Failed;
    for j in [&first, &second, &ended] {
        jobs.create(j).await.unwrap();
    }
    let soon = Utc::now() + chrono::Duration::seconds(60);
    assert_eq!(
        ids(&jobs.claim("a", soon, 10).await.unwrap()),
        vec![first.id.clone(), second.id.clone()],
        "every free active job, oldest first; never an ended one"
    );
    assert!(
        jobs.claim("b", soon, 10).await.unwrap().is_empty(),
        "leased jobs are not handed out twice"
    );
    assert!(
        jobs.claim("a", soon, 10).await.unwrap().is_empty(),
        "nor again to their holder"
    );
    assert!(jobs.renew(&first.id, "a", soon).await.unwrap());
    assert!(
        !jobs.renew(&first.id, "b", soon).await.unwrap(),
        "only the holder renews"
    );

    // An update (a poll's progress) keeps the lease.
    let mut polled = first.clone();
    polled.state = JobState::Running;
    polled.attempts = 1;
    assert!(jobs.update(&polled).await.unwrap());
    assert!(jobs.claim("b", soon, 10).await.unwrap().is_empty());

    // A release by someone else changes nothing; the holder's frees it.
    jobs.release(&first.id, "b").await.unwrap();
    assert!(jobs.claim("b", soon, 10).await.unwrap().is_empty());
    jobs.release(&first.id, "a").await.unwrap();
    let taken = jobs.claim("b", soon, 10).await.unwrap();
    assert_eq!(ids(&taken), vec![first.id.clone()]);
    assert_eq!(taken[0], polled, "the claimed job is the stored one");
    assert!(
        !jobs.renew(&first.id, "a", soon).await.unwrap(),
        "the old holder learns it lost the job"
    );

    // A lease that ran out (its process died) is taken over.
    assert!(
        jobs.renew(&second.id, "a", Utc::now() - chrono::Duration::seconds(1))
            .await
            .unwrap()
    );
    assert_eq!(
        ids(&jobs.claim("c", soon, 10).await.unwrap()),
        vec![second.id.clone()]
    );

    // `limit` caps a claim; a job that ends is not handed out again.
    let third = job(t0 + chrono::Duration::milliseconds(20));
    let fourth = job(t0 + chrono::Duration::milliseconds(30));
    jobs.create(&third).await.unwrap();
    jobs.create(&fourth).await.unwrap();
    assert_eq!(
        ids(&jobs.claim("d", soon, 1).await.unwrap()),
        vec![third.id.clone()]
    );
    let mut done = fourth.clone();
    done.state = JobState::Succeeded;
    assert!(jobs.update(&done).await.unwrap());
    assert!(jobs.claim("e", soon, 10).await.unwrap().is_empty());
    assert_eq!(
        jobs.active().await.unwrap().len(),
        3,
        "leases do not change what is active"
    );
}

fn usage(time: DateTime<Utc>, cost: f64, outcome: Outcome, job_id: Option<&str>) -> UsageEntry {
    UsageEntry {
        time: millis(time),
        model: "gemini-3-pro-image-preview".into(),
        operation: "generate".into(),
        kind: "image".into(),
        size: Some("1K".into()),
        seconds: None,
        estimate_usd: Some(cost),
        cost_usd: cost,
        outcome,
        error: None,
        job_id: job_id.map(str::to_owned),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// The ledger: rows in and out by time, spend sums, settling a video
/// job's row, and holds that never let concurrent calls pass a cap.
pub async fn usage_ledger(ledger: &dyn UsageLedger) {
    let now = Utc::now();
    let yesterday = now - chrono::Duration::days(1);
    let old = usage(yesterday, 0.5, Outcome::Succeeded, None);
    let blocked = UsageEntry {
        error: Some("CONTENT_BLOCKED".into()),
        ..usage(
            now - chrono::Duration::seconds(5),
            0.0,
            Outcome::Blocked,
            None,
        )
    };
    let video = UsageEntry {
        kind: "video".into(),
        operation: "generate_video".into(),
        seconds: Some(8.0),
        ..usage(
            now - chrono::Duration::seconds(4),
            3.2,
            Outcome::Running,
            Some("job_1"),
        )
    };
    for e in [&old, &blocked, &video] {
        ledger.record(e).await.unwrap();
    }
    let today = now - chrono::Duration::hours(1);
    let later = now + chrono::Duration::hours(1);
    assert_eq!(
        ledger.entries(today, later).await.unwrap(),
        vec![blocked.clone(), video.clone()],
        "rows in the range, oldest first, as written"
    );
    assert_eq!(ledger.entries(yesterday, today).await.unwrap(), vec![old]);
    assert!(close(ledger.spent_since(today).await.unwrap(), 3.2));
    assert!(close(ledger.spent_since(yesterday).await.unwrap(), 3.7));
    assert!(
        ledger
            .settle_job("job_1", Outcome::Succeeded, 2.4, Some(6.0), None)
            .await
            .unwrap()
    );
    assert!(
        !ledger
            .settle_job("job_unknown", Outcome::Failed, 0.0, None, None)
            .await
            .unwrap()
    );
    let settled = &ledger.entries(today, later).await.unwrap()[1];
    assert_eq!(
        (settled.outcome, settled.cost_usd, settled.seconds),
        (Outcome::Succeeded, 2.4, Some(6.0))
    );
    assert!(close(ledger.spent_since(today).await.unwrap(), 2.4));

    // Holds, against a cap of 3.4 today (2.4 spent): 1.0 is left.
    let caps = [
        Cap {
            since: today,
            limit_usd: 3.4,
        },
        Cap {
            since: yesterday,
            limit_usd: 100.0,
        },
    ];
    let soon = Utc::now() + chrono::Duration::minutes(5);
    // A hold whose process died (expired) does not count.
    ledger
        .hold(0.9, &caps, Utc::now() - chrono::Duration::seconds(1))
        .await
        .unwrap()
        .unwrap();
    assert!(close(ledger.held(Utc::now()).await.unwrap(), 0.0));
    let batch = ledger.hold(0.6, &caps, soon).await.unwrap().unwrap();
    let refused = ledger.hold(0.6, &caps, soon).await.unwrap().unwrap_err();
    assert_eq!(refused.cap, 0);
    assert!(close(refused.committed_usd, 3.0), "{refused:?}");
    assert!(close(ledger.held(Utc::now()).await.unwrap(), 0.6));
    // One image of the batch: its share moves from held to spent at once.
    ledger
        .settle(
            &batch,
            0.2,
            Some(&usage(Utc::now(), 0.2, Outcome::Succeeded, None)),
        )
        .await
        .unwrap();
    assert!(close(ledger.held(Utc::now()).await.unwrap(), 0.4));
    assert!(close(ledger.spent_since(today).await.unwrap(), 2.6));
    // The rest of the batch was not made: released without a row.
    ledger.settle(&batch, 0.4, None).await.unwrap();
    assert!(close(ledger.held(Utc::now()).await.unwrap(), 0.0));
    // Exactly up to the cap passes (0.8 left), a cent more does not.
    assert!(ledger.hold(0.81, &caps, soon).await.unwrap().is_err());
    let full = ledger.hold(0.8, &caps, soon).await.unwrap().unwrap();
    ledger.settle(&full, 0.8, None).await.unwrap();
    // An unknown key still records its entry.
    ledger
        .settle(
            &HoldKey::new(),
            1.0,
            Some(&usage(Utc::now(), 0.3, Outcome::Succeeded, None)),
        )
        .await
        .unwrap();
    assert!(close(ledger.spent_since(today).await.unwrap(), 2.9));

    // Twenty concurrent holds of 0.05 against 0.5 left: exactly ten pass.
    let tries: Vec<_> = (0..20).map(|_| ledger.hold(0.05, &caps, soon)).collect();
    let passed = futures::future::join_all(tries)
        .await
        .into_iter()
        .filter(|r| matches!(r, Ok(Ok(_))))
        .count();
    assert_eq!(passed, 10);
    assert!(close(ledger.held(Utc::now()).await.unwrap(), 0.5));
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
    let stray = fresh("image", "png");
    assert!(
        media
            .put_if_absent(&stray, Bytes::from(crate::media::tests_support::png(3, 2)))
            .await
            .unwrap()
    );
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

    // An idempotent save (a job run twice, or by two processes at once):
    // one file under the one name, one record — the first writer's.
    let name: MediaId = "video_20261126_101010_000_abcdef.png".parse().unwrap();
    let before = lib.list(&ListQuery::default()).await.unwrap().total;
    let (a, b) = tokio::join!(
        lib.save_once(name.clone(), image("one video")),
        lib.save_once(name.clone(), image("one video"))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!((a.id.clone(), b.id.clone()), (name.clone(), name.clone()));
    let again = lib
        .save_once(name.clone(), image("one video"))
        .await
        .unwrap();
    let stored = lib.get(&name).await.unwrap().unwrap();
    assert_eq!(again, stored, "later runs find the record that was saved");
    assert!(
        stored == a || stored == b,
        "the record is one of the runs', whole"
    );
    assert_eq!(
        lib.list(&ListQuery::default()).await.unwrap().total,
        before + 1
    );
    assert_eq!(
        media
            .list()
            .await
            .unwrap()
            .iter()
            .filter(|m| m.id == name)
            .count(),
        1
    );
}

/// A store that stops after `writes` changes, as a process killed there
/// would: every later call fails and nothing more reaches `inner` (not even
/// the clean-up of the save that was under way).
struct StopsAfter {
    inner: Arc<dyn MediaStore>,
    writes_left: std::sync::atomic::AtomicUsize,
}

impl StopsAfter {
    fn new(inner: Arc<dyn MediaStore>, writes: usize) -> Self {
        Self {
            inner,
            writes_left: writes.into(),
        }
    }

    fn stopped() -> StoreError {
        StoreError::Task("the process was killed here".into())
    }

    /// Lets one change through, if any are left.
    fn write(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        self.writes_left
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .map(drop)
            .map_err(|_| Self::stopped())
    }

    fn read(&self) -> Result<(), StoreError> {
        use std::sync::atomic::Ordering;
        if self.writes_left.load(Ordering::SeqCst) == 0 {
            return Err(Self::stopped());
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl MediaStore for StopsAfter {
    async fn put_if_absent(&self, id: &MediaId, bytes: Bytes) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.put_if_absent(id, bytes).await
    }
    async fn get(&self, id: &MediaId) -> Result<Bytes, StoreError> {
        self.read()?;
        self.inner.get(id).await
    }
    async fn get_range(
        &self,
        id: &MediaId,
        range: std::ops::Range<u64>,
    ) -> Result<Bytes, StoreError> {
        self.read()?;
        self.inner.get_range(id, range).await
    }
    async fn head(&self, id: &MediaId) -> Result<Option<ObjectMeta>, StoreError> {
        self.read()?;
        self.inner.head(id).await
    }
    async fn delete(&self, id: &MediaId) -> Result<(), StoreError> {
        self.write()?;
        self.inner.delete(id).await
    }
    async fn list(&self) -> Result<Vec<ObjectMeta>, StoreError> {
        self.read()?;
        self.inner.list().await
    }
    async fn put_sidecar_if_absent(&self, id: &MediaId, json: Bytes) -> Result<bool, StoreError> {
        self.write()?;
        self.inner.put_sidecar_if_absent(id, json).await
    }
    async fn put_sidecars(&self, items: Vec<(MediaId, Bytes)>) -> Result<(), StoreError> {
        self.write()?;
        self.inner.put_sidecars(items).await
    }
    async fn get_sidecar(&self, id: &MediaId) -> Result<Option<Bytes>, StoreError> {
        self.read()?;
        self.inner.get_sidecar(id).await
    }
    async fn delete_sidecar(&self, id: &MediaId) -> Result<(), StoreError> {
        self.write()?;
        self.inner.delete_sidecar(id).await
    }
    async fn put_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        self.write()?;
        self.inner.put_rendition(id, kind, bytes).await
    }
    async fn get_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
    ) -> Result<Option<Bytes>, StoreError> {
        self.read()?;
        self.inner.get_rendition(id, kind).await
    }
    async fn list_sidecars(&self) -> Result<Vec<MediaId>, StoreError> {
        self.read()?;
        self.inner.list_sidecars().await
    }
    async fn sweep_incomplete(&self, stale_after: Duration) -> Result<usize, StoreError> {
        self.write()?;
        self.inner.sweep_incomplete(stale_after).await
    }
}

/// A save killed after any of its writes leaves no file without its
/// metadata (the sidecar goes first), and the next reconcile leaves the
/// library as if the save never started: no file "added by hand" without
/// its prompt, no orphan sidecar.
pub async fn save_crash_points(
    media: Arc<dyn MediaStore>,
    catalog: Arc<dyn Catalog>,
    feed: Arc<dyn ChangeFeed>,
) {
    for writes in 0..10 {
        let prompt = format!("killed after {writes} writes");
        let stopping = Arc::new(StopsAfter::new(media.clone(), writes));
        let saved = Library::new(stopping, catalog.clone(), feed.clone())
            .save(image(&prompt))
            .await;
        for file in media.list().await.unwrap() {
            let sidecar = media.get_sidecar(&file.id).await.unwrap();
            let sidecar: serde_json::Value =
                serde_json::from_slice(&sidecar.unwrap_or_else(|| {
                    panic!("killed after {writes} writes: `{}` has no sidecar", file.id)
                }))
                .unwrap();
            assert_eq!(sidecar["prompt"], prompt.as_str(), "{}", file.id);
        }
        // The next start.
        let lib = Library::new(media.clone(), catalog.clone(), feed.clone());
        let report = lib.reconcile(Duration::from_secs(3600)).await.unwrap();
        assert_eq!(report.added, 0, "killed after {writes} writes: {report:?}");
        let files = media.list().await.unwrap();
        let mut sidecars = media.list_sidecars().await.unwrap();
        sidecars.sort();
        let mut names: Vec<MediaId> = files.into_iter().map(|f| f.id).collect();
        names.sort();
        assert_eq!(sidecars, names, "killed after {writes} writes");
        match saved {
            Ok(record) => {
                assert_eq!(names, vec![record.id.clone()]);
                let row = lib.get(&record.id).await.unwrap().unwrap();
                assert_eq!(row.prompt.as_deref(), Some(prompt.as_str()));
                return;
            }
            Err(_) => {
                assert!(names.is_empty(), "killed after {writes} writes: {names:?}");
                assert!(catalog.all_ids().await.unwrap().is_empty());
            }
        }
    }
    panic!("a save that may write freely never succeeded");
}
