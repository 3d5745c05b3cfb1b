//! The MCP App viewer's server side through a real MCP client: the
//! extension declared, the tools that link the page, the page read as an
//! app, and nothing else changed for hosts without Apps.

use media_gen::tools::viewer::{APP_MIME_TYPE, UI_EXTENSION_ID, VIEWER_URI};
use rmcp::model::{ReadResourceRequestParams, ResourceContents};
use serde_json::json;

use crate::mcp::{call, start, structured};

/// The tools whose results the viewer shows.
const LINKED: [&str; 10] = [
    "edit_image",
    "extend_video",
    "generate_image",
    "generate_image_batch",
    "generate_video",
    "get_video_status",
    "image_to_video",
    "inpaint",
    "outpaint",
    "upscale",
];

#[tokio::test]
async fn the_server_declares_the_apps_extension() {
    let h = start(&[]).await;
    let info = h.client.peer_info().expect("initialized");
    let extensions = info.capabilities.extensions.as_ref().expect("extensions");
    assert_eq!(
        serde_json::to_value(&extensions[UI_EXTENSION_ID]).unwrap(),
        json!({"mimeTypes": [APP_MIME_TYPE]})
    );
}

#[tokio::test]
async fn result_tools_link_the_viewer_and_the_others_do_not() {
    let h = start(&[]).await;
    let tools = h.client.list_all_tools().await.unwrap();
    let mut linked = Vec::new();
    for tool in &tools {
        let Some(meta) = &tool.meta else { continue };
        assert_eq!(
            serde_json::to_value(meta).unwrap(),
            json!({"ui": {"resourceUri": VIEWER_URI}, "ui/resourceUri": VIEWER_URI}),
            "{}",
            tool.name
        );
        linked.push(tool.name.to_string());
    }
    linked.sort();
    assert_eq!(linked, LINKED);
}

#[tokio::test]
async fn the_viewer_is_read_as_an_mcp_app_and_not_listed() {
    let h = start(&[]).await;
    let read = h
        .client
        .read_resource(ReadResourceRequestParams::new(VIEWER_URI))
        .await
        .unwrap();
    let [
        ResourceContents::TextResourceContents {
            uri,
            mime_type,
            text,
            meta,
        },
    ] = read.contents.as_slice()
    else {
        panic!("one text content: {read:?}");
    };
    assert_eq!(uri, VIEWER_URI);
    assert_eq!(mime_type.as_deref(), Some(APP_MIME_TYPE));
    assert!(text.starts_with("<!DOCTYPE html>"));
    assert!(text.contains(&format!("version: \"{}\"", env!("CARGO_PKG_VERSION"))));
    // The App side of the protocol is in the page.
    for method in [
        "ui/initialize",
        "ui/notifications/initialized",
        "ui/notifications/tool-result",
        "ui/notifications/size-changed",
        "resources/read",
        "tools/call",
    ] {
        assert!(text.contains(method), "the page lacks `{method}`");
    }
    // No CSP declared: the host's restrictive default is all the page needs.
    let ui = &meta.as_ref().unwrap().0["ui"];
    assert_eq!(ui["prefersBorder"], true);
    assert!(ui.get("csp").is_none());

    let err = h
        .client
        .read_resource(ReadResourceRequestParams::new("ui://media-gen/gallery"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains(VIEWER_URI), "{err}");

    // The listing stays the library's files; results are as they were.
    let r = call(&h, "generate_image", json!({"prompt": "listed alone"})).await;
    let out = structured(&r);
    assert!(r.meta.is_none());
    let listed = h.client.list_resources(None).await.unwrap();
    let uris: Vec<&str> = listed.resources.iter().map(|r| r.uri.as_str()).collect();
    assert_eq!(uris, [out["uri"].as_str().unwrap()]);
}
