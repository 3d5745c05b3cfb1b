//! CLIProxyAPI's OpenAI-compatible image route: `POST /v1/chat/completions`
//! with `modalities` + `image_config`; images in `choices[].message.images[]`.

use std::borrow::Cow;

use serde::Deserialize;

use crate::backend::wire::{
    decode_base64, excerpt, is_block_reason, push_data_url, split_data_url,
};
use crate::backend::{BackendError, GeneratedImage, ImageRequest};

/// The request body. Built by hand into one buffer so input images are
/// base64-encoded once, straight into place.
pub(super) fn request_body(req: &ImageRequest<'_>) -> Vec<u8> {
    let mut content = String::with_capacity(
        128 + req.prompt.len()
            + req
                .images
                .iter()
                .map(|i| i.data.len() * 4 / 3 + 64)
                .sum::<usize>(),
    );
    content.push_str(r#"[{"type":"text","text":"#);
    content.push_str(&serde_json::Value::from(req.prompt).to_string());
    content.push('}');
    for img in req.images {
        content.push_str(r#",{"type":"image_url","image_url":{"url":""#);
        push_data_url(&mut content, img);
        content.push_str(r#""}}"#);
    }
    content.push(']');
    let mut body = String::with_capacity(content.len() + 256);
    body.push_str(r#"{"model":"#);
    body.push_str(&serde_json::Value::from(req.model).to_string());
    body.push_str(r#","messages":[{"role":"user","content":"#);
    body.push_str(&content);
    body.push_str(r#"}],"modalities":["image","text"],"image_config":{"aspect_ratio":""#);
    body.push_str(req.aspect_ratio.as_str());
    body.push_str(r#"","image_size":""#);
    body.push_str(req.image_size.as_str());
    body.push_str(r#""}}"#);
    body.into_bytes()
}

#[derive(Deserialize)]
struct Response<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    message: Option<Message<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
    #[serde(default)]
    native_finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Message<'a> {
    /// Text, null, or (leniently) an array of parts.
    #[serde(default)]
    content: Option<serde_json::Value>,
    #[serde(borrow, default)]
    images: Option<Vec<Image<'a>>>,
}

#[derive(Deserialize)]
struct Image<'a> {
    #[serde(borrow, default)]
    image_url: Option<ImageUrl<'a>>,
    #[serde(default)]
    thought: Option<bool>,
}

#[derive(Deserialize)]
struct ImageUrl<'a> {
    #[serde(borrow)]
    url: Cow<'a, str>,
}

fn text_of(content: Option<&serde_json::Value>) -> Option<String> {
    match content? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(parts) => {
            let t: Vec<&str> = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(|t| t.as_str()))
                .collect();
            (!t.is_empty()).then(|| t.join("\n"))
        }
        _ => None,
    }
}

/// Parses a chat-completions body: the last non-thought image of the first
/// choice that has one, or the reason there is none.
pub(super) fn parse_response(body: &[u8]) -> Result<GeneratedImage, BackendError> {
    let resp: Response<'_> = serde_json::from_slice(body).map_err(|e| BackendError::Failed {
        status: None,
        message: format!("the backend sent a malformed or truncated response ({e})"),
    })?;
    let choices = resp.choices.unwrap_or_default();
    if choices.is_empty() {
        return Err(BackendError::ContentBlocked {
            reason: "the prompt was blocked (no choices returned)".into(),
        });
    }
    let mut reasons = Vec::new();
    let mut texts = Vec::new();
    for choice in &choices {
        let text = choice
            .message
            .as_ref()
            .and_then(|m| text_of(m.content.as_ref()));
        if let Some(t) = &text {
            texts.push(t.clone());
        }
        let images = choice.message.as_ref().and_then(|m| m.images.as_ref());
        let pick = images.and_then(|imgs| {
            imgs.iter()
                .rev()
                .find(|i| i.thought != Some(true) && i.image_url.is_some())
                .or_else(|| imgs.iter().rev().find(|i| i.image_url.is_some()))
        });
        if let Some(url) = pick.and_then(|i| i.image_url.as_ref()) {
            let (mime, payload) = split_data_url(&url.url).ok_or_else(|| BackendError::Failed {
                status: None,
                message: "the image is not an inline data URL".into(),
            })?;
            return Ok(GeneratedImage {
                data: decode_base64(payload)?,
                mime_type: mime.to_owned(),
                text,
                attempts: 1,
            });
        }
        for r in [&choice.native_finish_reason, &choice.finish_reason]
            .into_iter()
            .flatten()
        {
            reasons.push(r.clone());
        }
    }
    if let Some(r) = reasons.iter().find(|r| is_block_reason(r)) {
        return Err(BackendError::ContentBlocked {
            reason: r.to_ascii_lowercase(),
        });
    }
    let said = texts
        .first()
        .map(|t| format!("; the model said: {}", excerpt(t)))
        .unwrap_or_default();
    Err(BackendError::Failed {
        status: None,
        message: format!("the response contains no image{said}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::InputImage;
    use crate::domain::{AspectRatio, ImageSize};

    // "PNG" bytes are enough for parsing tests.
    const B64: &str = "iVBORw0KGgo=";

    fn ok(body: &str) -> GeneratedImage {
        parse_response(body.as_bytes()).unwrap()
    }

    #[test]
    fn request_body_shape() {
        let imgs = [InputImage {
            mime_type: "image/png".into(),
            data: vec![1, 2, 3].into(),
        }];
        let body = request_body(&ImageRequest {
            model: "gemini-3-pro-image-preview",
            prompt: "say \"hi\"\n",
            aspect_ratio: AspectRatio::R16x9,
            image_size: ImageSize::S2K,
            images: &imgs,
        });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["model"], "gemini-3-pro-image-preview");
        assert_eq!(v["modalities"], serde_json::json!(["image", "text"]));
        assert_eq!(v["image_config"]["aspect_ratio"], "16:9");
        assert_eq!(v["image_config"]["image_size"], "2K");
        let content = &v["messages"][0]["content"];
        assert_eq!(content[0]["text"], "say \"hi\"\n");
        assert_eq!(content[1]["image_url"]["url"], "data:image/png;base64,AQID");
    }

    #[test]
    fn v66_shape() {
        let g = ok(&format!(
            r#"{{"id":"x","object":"chat.completion","created":0,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":null,"reasoning_content":null,"tool_calls":null,"images":[{{"type":"image_url","image_url":{{"url":"data:image/png;base64,{B64}"}},"index":0}}]}},"finish_reason":"stop","native_finish_reason":"stop"}}],"usage":{{"prompt_tokens":1}}}}"#
        ));
        assert_eq!(g.mime_type, "image/png");
        assert_eq!(&g.data[..4], b"\x89PNG");
        assert_eq!(g.text, None);
    }

    #[test]
    fn v65_uppercase_no_index_with_text_and_jpeg() {
        let g = ok(&format!(
            r#"{{"choices":[{{"message":{{"role":"assistant","content":"Here you go","images":[{{"type":"image_url","image_url":{{"url":"data:image/jpeg;base64,{B64}"}}}}]}},"finish_reason":"STOP"}}]}}"#
        ));
        assert_eq!(g.mime_type, "image/jpeg");
        assert_eq!(g.text.as_deref(), Some("Here you go"));
    }

    #[test]
    fn takes_last_non_thought_image() {
        let g = ok(&format!(
            r#"{{"choices":[{{"message":{{"images":[{{"image_url":{{"url":"data:image/png;base64,{B64}"}}}},{{"image_url":{{"url":"data:image/webp;base64,{B64}"}}}},{{"thought":true,"image_url":{{"url":"data:image/gif;base64,{B64}"}}}}]}},"finish_reason":"stop"}}]}}"#
        ));
        assert_eq!(g.mime_type, "image/webp");
    }

    #[test]
    fn content_as_parts_array() {
        let g = ok(&format!(
            r#"{{"choices":[{{"message":{{"content":[{{"type":"text","text":"a"}},{{"type":"text","text":"b"}}],"images":[{{"image_url":{{"url":"data:image/png;base64,{B64}"}}}}]}}}}]}}"#
        ));
        assert_eq!(g.text.as_deref(), Some("a\nb"));
    }

    #[test]
    fn safety_stops_are_blocked() {
        for (fin, native) in [
            ("stop", "image_safety"),
            ("image_safety", "image_safety"),
            ("STOP", "PROHIBITED_CONTENT"),
            ("stop", "no_image"),
            ("content_filter", "SAFETY"),
        ] {
            let body = format!(
                r#"{{"choices":[{{"message":{{"role":"assistant","content":null}},"finish_reason":"{fin}","native_finish_reason":"{native}"}}]}}"#
            );
            assert!(
                matches!(
                    parse_response(body.as_bytes()),
                    Err(BackendError::ContentBlocked { .. })
                ),
                "{native}"
            );
        }
        assert!(matches!(
            parse_response(br#"{"choices":[]}"#),
            Err(BackendError::ContentBlocked { .. })
        ));
        assert!(matches!(
            parse_response(br#"{"id":"x"}"#),
            Err(BackendError::ContentBlocked { .. })
        ));
    }

    #[test]
    fn text_only_is_failed_with_the_text() {
        let e = parse_response(br#"{"choices":[{"message":{"content":"I can only describe it"},"finish_reason":"stop"}]}"#).unwrap_err();
        match e {
            BackendError::Failed { message, .. } => {
                assert!(message.contains("I can only describe it"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_truncated_and_bad_base64() {
        assert!(matches!(
            parse_response(b"<html>502</html>"),
            Err(BackendError::Failed { .. })
        ));
        let full = format!(
            r#"{{"choices":[{{"message":{{"images":[{{"image_url":{{"url":"data:image/png;base64,{B64}"}}}}]}}}}]}}"#
        );
        let cut = &full.as_bytes()[..full.len() / 2];
        match parse_response(cut) {
            Err(BackendError::Failed { message, .. }) => {
                assert!(message.contains("truncated"), "{message}")
            }
            other => panic!("{other:?}"),
        }
        let bad = r#"{"choices":[{"message":{"images":[{"image_url":{"url":"data:image/png;base64,@@@@"}}]}}]}"#;
        assert!(matches!(
            parse_response(bad.as_bytes()),
            Err(BackendError::Failed { .. })
        ));
        let remote = r#"{"choices":[{"message":{"images":[{"image_url":{"url":"https://example.com/x.png"}}]}}]}"#;
        assert!(matches!(
            parse_response(remote.as_bytes()),
            Err(BackendError::Failed { .. })
        ));
    }
}

/// Hostile and well-formed answers: nothing panics, and a valid answer
/// parses to the image it carries.
#[cfg(test)]
mod proptests {
    use base64::Engine;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::parse_response;
    use crate::prop_support::{config, json as any_json};

    fn b64(bytes: &[u8]) -> String {
        base64::engine::general_purpose::STANDARD.encode(bytes)
    }

    /// One entry of `message.images`, as CLIProxyAPI versions send it.
    fn image(mime: &str, data: &[u8], thought: Option<bool>, index: Option<u32>) -> Value {
        let mut v = json!({"type": "image_url", "image_url": {"url": format!("data:{mime};base64,{}", b64(data))}});
        if let Some(t) = thought {
            v["thought"] = json!(t);
        }
        if let Some(i) = index {
            v["index"] = json!(i);
        }
        v
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_response(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(v in any_json()) {
            let _ = parse_response(v.to_string().as_bytes());
            let _ = parse_response(json!({"choices": [{"message": v.clone()}]}).to_string().as_bytes());
            let _ = parse_response(json!({"choices": [{"message": {"images": [v]}}]}).to_string().as_bytes());
        }

        #[test]
        fn a_valid_answer_parses_to_its_last_answer_image(
            data in prop::collection::vec(any::<u8>(), 1..256),
            drafts in prop::collection::vec(prop::collection::vec(any::<u8>(), 1..32), 0..3),
            mime in prop_oneof![Just("image/png"), Just("image/jpeg"), Just("image/webp")],
            index in proptest::option::of(0u32..4),
            content in prop_oneof![Just(Value::Null), any::<String>().prop_map(Value::from)],
            finish in prop_oneof![Just("stop"), Just("STOP")],
            explicit_false in any::<bool>(),
        ) {
            // Thought drafts first (some CLIProxyAPI versions), the answer last.
            let mut images: Vec<Value> = drafts
                .iter()
                .map(|d| image("image/png", d, Some(true), index))
                .collect();
            images.push(image(mime, &data, explicit_false.then_some(false), index));
            let body = json!({
                "id": "x", "object": "chat.completion",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content.clone(), "images": images},
                             "finish_reason": finish}],
            });
            let got = parse_response(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(got.data, data);
            prop_assert_eq!(got.mime_type, mime);
            prop_assert_eq!(got.text, content.as_str().map(str::to_owned));
        }
    }
}
