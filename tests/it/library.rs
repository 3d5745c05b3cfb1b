//! The media library tools and resources through a real MCP client, and path
//! safety: nothing outside the output directory is ever read or deleted.

use std::io::Cursor;

use bytes::Bytes;
use media_gen::store::{MediaKind, NewMedia};
use rmcp::model::{PaginatedRequestParams, ReadResourceRequestParams, ResourceContents};
use serde_json::{Map, Value, json};

use crate::mcp::{call, start, structured};

fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(w, h, image::Rgb([1, 2, 3])));
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Adds a file straight through the library (fast; no backend).
async fn add(
    h: &crate::mcp::Harness,
    prompt: &str,
    w: u32,
    source: Option<&media_gen::store::MediaId>,
) -> String {
    h.library
        .save(NewMedia {
            bytes: Bytes::from(png(w, w)),
            kind: MediaKind::Image,
            extension: "png".into(),
            mime_type: "image/png".into(),
            width: Some(w),
            height: Some(w),
            prompt: Some(prompt.into()),
            model: Some("gemini-3-pro-image-preview".into()),
            metadata: Map::new(),
            source: source.cloned(),
        })
        .await
        .unwrap()
        .id
        .to_string()
}

fn names(v: &Value) -> Vec<String> {
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["filename"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn list_models_marks_availability_and_never_fails() {
    let h = start(&[]).await;
    let v = structured(&call(&h, "list_models", json!({})).await);
    let models = v["models"].as_array().unwrap();
    let by_id = |id: &str| models.iter().find(|m| m["id"] == id).unwrap().clone();
    assert_eq!(by_id("gemini-3-pro-image-preview")["available"], true);
    assert_eq!(by_id("gemini-3-pro-image-preview")["default"], true);
    assert_eq!(
        by_id("gemini-2.5-flash-image")["image_sizes"],
        json!(["1K"])
    );
    assert_eq!(
        by_id("veo-3.1-generate-preview")["durations"],
        json!([4, 6, 8])
    );
    assert_eq!(by_id("veo-2.0-generate-001")["type"], "video");
    assert!(by_id("veo-3.0-generate-001")["available"].is_null());
    let v = structured(&call(&h, "list_models", json!({"type": "image"})).await);
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["type"] == "image")
    );
    let r = call(&h, "list_models", json!({"type": "audio"})).await;
    assert_eq!(structured(&r)["error"]["code"], "INVALID_PARAMETER");

    // Backend down: still answers from the registry.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let h2 = crate::mcp::start_with_backend_url(&url).await;
    let r = call(&h2, "list_models", json!({})).await;
    assert_eq!(r.is_error, Some(false));
    let v = structured(&r);
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["type"] == "image" || m["id"].as_str().unwrap().starts_with("veo"))
            .all(|m| m["available"].is_null())
    );
    // The video backend here is Veo: CLIProxyAPI's video model is not usable.
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["id"] == "grok-imagine-video")
            .all(|m| m["available"] == false)
    );
    assert!(
        v["note"]
            .as_str()
            .unwrap()
            .contains(&format!("127.0.0.1:{port}"))
    );
}

#[tokio::test]
async fn list_generated_sorts_pages_filters_and_counts() {
    let h = start(&[]).await;
    let a = add(&h, "alpha cat", 30, None).await;
    let b = add(&h, "beta dog", 90, None).await;
    let c = add(&h, "gamma CAT", 60, None).await;
    let v = structured(&call(&h, "list_generated", json!({})).await);
    assert_eq!(names(&v), [c.clone(), b.clone(), a.clone()], "newest first");
    assert_eq!(v["total"], 3);
    assert!(v.get("next_offset").is_none());
    let f = &v["files"][0];
    assert_eq!(f["path"], h.out.join(&c).display().to_string());
    assert_eq!(f["type"], "image");
    assert_eq!(f["prompt"], "gamma CAT");
    assert_eq!(f["uri"], format!("media://files/{c}"));

    let v = structured(&call(&h, "list_generated", json!({"sort_by": "size"})).await);
    assert_eq!(names(&v)[0], b, "largest first");
    let v = structured(&call(&h, "list_generated", json!({"sort_by": "name"})).await);
    let mut sorted = vec![a.clone(), b.clone(), c.clone()];
    sorted.sort();
    assert_eq!(names(&v), sorted, "A–Z");
    let v = structured(
        &call(
            &h,
            "list_generated",
            json!({"sort_by": "date", "order": "asc"}),
        )
        .await,
    );
    assert_eq!(names(&v), [a.clone(), b.clone(), c.clone()]);

    let v = structured(&call(&h, "list_generated", json!({"limit": 2})).await);
    assert_eq!(names(&v), [c.clone(), b.clone()]);
    assert_eq!(
        (v["total"].as_u64(), v["next_offset"].as_u64()),
        (Some(3), Some(2))
    );
    let v = structured(&call(&h, "list_generated", json!({"limit": 2, "offset": 2})).await);
    assert_eq!(names(&v), std::slice::from_ref(&a));
    assert!(v.get("next_offset").is_none());

    let v = structured(&call(&h, "list_generated", json!({"query": "cat"})).await);
    assert_eq!(
        names(&v),
        [c.clone(), a.clone()],
        "case-insensitive prompt match"
    );
    assert_eq!(v["total"], 2);
    let v = structured(&call(&h, "list_generated", json!({"query": "100%_"})).await);
    assert_eq!(v["total"], 0, "LIKE wildcards are literal");
    let v = structured(&call(&h, "list_generated", json!({"type": "video"})).await);
    assert_eq!(v["total"], 0);

    for args in [
        json!({"limit": 0}),
        json!({"limit": 1001}),
        json!({"offset": -1}),
        json!({"sort_by": "color"}),
        json!({"order": "up"}),
    ] {
        let r = call(&h, "list_generated", args.clone()).await;
        assert_eq!(
            structured(&r)["error"]["code"],
            "INVALID_PARAMETER",
            "{args}"
        );
    }
}

#[tokio::test]
async fn get_file_info_reads_the_file_and_lineage() {
    let h = start(&[]).await;
    let r = call(
        &h,
        "generate_image",
        json!({"prompt": "a source image", "aspect_ratio": "4:3"}),
    )
    .await;
    let src = structured(&r)["filename"].as_str().unwrap().to_owned();
    let src_id: media_gen::store::MediaId = src.parse().unwrap();
    let child = add(&h, "an edit", 20, Some(&src_id)).await;
    let v = structured(&call(&h, "get_file_info", json!({"filename": src})).await);
    assert_eq!(v["filename"], src);
    assert_eq!(
        (v["width"].as_u64(), v["height"].as_u64()),
        (Some(1200), Some(896))
    );
    assert_eq!(v["mime_type"], "image/png");
    assert_eq!(
        v["size_bytes"].as_u64(),
        Some(std::fs::metadata(h.out.join(&src)).unwrap().len())
    );
    assert_eq!(v["metadata"]["prompt"], "a source image");
    assert_eq!(v["metadata"]["aspect_ratio"], "4:3");
    assert_eq!(v["lineage"]["derived"], json!([child.clone()]));
    assert!(v["lineage"]["source"].is_null());
    let v = structured(
        &call(
            &h,
            "get_file_info",
            json!({"filename": format!("media://files/{child}")}),
        )
        .await,
    );
    assert_eq!(v["lineage"]["source"], src);

    let r = call(
        &h,
        "get_file_info",
        json!({"filename": "image_20990101_000000_000_zzzzzz.png"}),
    )
    .await;
    assert_eq!(structured(&r)["error"]["code"], "FILE_NOT_FOUND");
}

#[tokio::test]
async fn delete_needs_confirm_and_removes_file_sidecar_and_row() {
    let h = start(&[]).await;
    let name = add(&h, "doomed", 10, None).await;
    let sidecar = h.out.join("metadata").join(format!("{name}.json"));
    let r = call(&h, "delete_file", json!({"filename": name})).await;
    assert_eq!(structured(&r)["error"]["code"], "CONFIRMATION_REQUIRED");
    let r = call(
        &h,
        "delete_file",
        json!({"filename": name, "confirm": false}),
    )
    .await;
    assert_eq!(structured(&r)["error"]["code"], "CONFIRMATION_REQUIRED");
    assert!(h.out.join(&name).is_file() && sidecar.is_file());

    let r = call(
        &h,
        "delete_file",
        json!({"filename": name, "confirm": true}),
    )
    .await;
    assert_eq!(structured(&r), json!({"success": true, "deleted": name}));
    assert!(!h.out.join(&name).exists() && !sidecar.exists());
    assert_eq!(crate::support::catalog_rows(&h.out), 0);
    let r = call(
        &h,
        "delete_file",
        json!({"filename": name, "confirm": true}),
    )
    .await;
    assert_eq!(structured(&r)["error"]["code"], "FILE_NOT_FOUND");
}

#[tokio::test]
async fn path_tricks_never_touch_anything_outside() {
    let h = start(&[]).await;
    // A canary beside the output directory and one deeper outside it.
    let canary = h.out.parent().unwrap().join("canary.png");
    std::fs::write(&canary, png(4, 4)).unwrap();
    let canary_bytes = std::fs::read(&canary).unwrap();
    let abs = canary.display().to_string();
    let tricks = [
        "../canary.png".to_owned(),
        "..".to_owned(),
        abs.clone(),
        "%2e%2e%2fcanary.png".to_owned(),
        "..%2Fcanary.png".to_owned(),
        "canary.png\0.png".to_owned(),
        "metadata/../../canary.png".to_owned(),
        "media://files/../canary.png".to_owned(),
        "".to_owned(),
    ];
    for t in &tricks {
        for (tool, args) in [
            ("get_file_info", json!({"filename": t})),
            ("delete_file", json!({"filename": t, "confirm": true})),
        ] {
            let r = call(&h, tool, args).await;
            let code = structured(&r)["error"]["code"].as_str().unwrap().to_owned();
            assert!(
                code == "INVALID_PARAMETER" || code == "FILE_NOT_FOUND",
                "{tool} {t:?}: {code}"
            );
        }
        let read = h
            .client
            .read_resource(ReadResourceRequestParams::new(format!("media://files/{t}")))
            .await;
        assert!(read.is_err(), "resource read of {t:?} succeeded");
    }
    // A link inside the directory that points out: catalogued by hand (as a
    // race could leave it); reading refuses it, deleting removes only the link.
    let link = h.out.join("link.png");
    std::os::unix::fs::symlink(&canary, &link).unwrap();
    let report = h
        .library
        .reconcile(std::time::Duration::from_secs(3600))
        .await
        .unwrap();
    assert_eq!(report.added, 0, "links are not catalogued");
    let real = add(&h, "real", 4, None).await;
    std::fs::remove_file(h.out.join(&real)).unwrap();
    std::os::unix::fs::symlink(&canary, h.out.join(&real)).unwrap();
    let r = call(&h, "get_file_info", json!({"filename": real})).await;
    assert_eq!(
        structured(&r)["error"]["code"],
        "FILE_NOT_FOUND",
        "a link is not followed"
    );
    assert!(
        h.client
            .read_resource(ReadResourceRequestParams::new(format!(
                "media://files/{real}"
            )))
            .await
            .is_err()
    );
    let r = call(
        &h,
        "delete_file",
        json!({"filename": real, "confirm": true}),
    )
    .await;
    assert_eq!(structured(&r)["success"], true);
    assert!(
        std::fs::symlink_metadata(h.out.join(&real)).is_err(),
        "the link is gone"
    );
    assert_eq!(
        std::fs::read(&canary).unwrap(),
        canary_bytes,
        "the canary is untouched"
    );
}

#[tokio::test]
async fn resources_list_pages_read_and_template() {
    let h = start(&[]).await;
    let mut made = Vec::new();
    for i in 0..105 {
        made.push(add(&h, &format!("resource {i}"), 4, None).await);
    }
    let first = h.client.list_resources(None).await.unwrap();
    assert_eq!(first.resources.len(), 100);
    let cursor = first.next_cursor.clone().expect("a second page");
    let second = h
        .client
        .list_resources(Some(
            PaginatedRequestParams::default().with_cursor(Some(cursor)),
        ))
        .await
        .unwrap();
    assert_eq!(second.resources.len(), 5);
    assert!(second.next_cursor.is_none());
    let mut listed: Vec<String> = first
        .resources
        .iter()
        .chain(&second.resources)
        .map(|r| r.name.clone())
        .collect();
    listed.sort();
    made.sort();
    assert_eq!(listed, made);
    let res = &first.resources[0];
    assert!(res.uri.starts_with("media://files/"));
    assert_eq!(res.mime_type.as_deref(), Some("image/png"));
    assert!(res.title.as_deref().unwrap().starts_with("resource "));
    assert!(res.size.unwrap() > 0);

    let read = h
        .client
        .read_resource(ReadResourceRequestParams::new(res.uri.clone()))
        .await
        .unwrap();
    let ResourceContents::BlobResourceContents {
        blob,
        mime_type,
        uri,
        ..
    } = &read.contents[0]
    else {
        panic!("expected a blob")
    };
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(blob)
        .unwrap();
    assert_eq!(bytes, std::fs::read(h.out.join(&res.name)).unwrap());
    assert_eq!(
        (mime_type.as_deref(), uri.as_str()),
        (Some("image/png"), res.uri.as_str())
    );

    let templates = h.client.list_resource_templates(None).await.unwrap();
    assert_eq!(
        templates.resource_templates[0].uri_template,
        "media://files/{filename}"
    );

    let missing = h
        .client
        .read_resource(ReadResourceRequestParams::new(
            "media://files/image_20990101_000000_000_zzzzzz.png",
        ))
        .await
        .unwrap_err();
    assert!(
        missing.to_string().contains("-32002")
            || missing.to_string().to_lowercase().contains("not found"),
        "{missing}"
    );
}
