//! Gemini's native image route: `POST /v1beta/models/{model}:generateContent`
//! with `generationConfig.imageConfig`; images in
//! `candidates[].content.parts[].inlineData`.

use std::borrow::Cow;

use serde::Deserialize;

use crate::backend::wire::{decode_base64, excerpt, is_block_reason};
use crate::backend::{BackendError, GeneratedImage, ImageRequest};

pub(super) fn request_body(req: &ImageRequest<'_>) -> Vec<u8> {
    use base64::Engine;
    let mut parts = String::with_capacity(
        64 + req.prompt.len()
            + req
                .images
                .iter()
                .map(|i| i.data.len() * 4 / 3 + 64)
                .sum::<usize>(),
    );
    parts.push_str(r#"[{"text":"#);
    parts.push_str(&serde_json::Value::from(req.prompt).to_string());
    parts.push('}');
    for img in req.images {
        parts.push_str(r#",{"inlineData":{"mimeType":"#);
        parts.push_str(&serde_json::Value::from(img.mime_type.as_str()).to_string());
        parts.push_str(r#","data":""#);
        base64::engine::general_purpose::STANDARD.encode_string(&img.data, &mut parts);
        parts.push_str(r#""}}"#);
    }
    parts.push(']');
    let mut body = String::with_capacity(parts.len() + 200);
    body.push_str(r#"{"contents":[{"role":"user","parts":"#);
    body.push_str(&parts);
    body.push_str(r#"}],"generationConfig":{"responseModalities":["TEXT","IMAGE"],"imageConfig":{"aspectRatio":""#);
    body.push_str(req.aspect_ratio.as_str());
    body.push_str(r#"","imageSize":""#);
    body.push_str(req.image_size.as_str());
    body.push_str(r#""}}}"#);
    body.into_bytes()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Response<'a> {
    #[serde(borrow, default)]
    candidates: Option<Vec<Candidate<'a>>>,
    #[serde(default)]
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(default)]
    block_reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate<'a> {
    #[serde(borrow, default)]
    content: Option<Content<'a>>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content<'a> {
    #[serde(borrow, default)]
    parts: Vec<Part<'a>>,
}

#[derive(Deserialize)]
struct Part<'a> {
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    thought: Option<bool>,
    #[serde(borrow, default, rename = "inlineData", alias = "inline_data")]
    inline_data: Option<InlineData<'a>>,
}

#[derive(Deserialize)]
struct InlineData<'a> {
    #[serde(default, rename = "mimeType", alias = "mime_type")]
    mime_type: Option<String>,
    #[serde(borrow)]
    data: Cow<'a, str>,
}

pub(super) fn parse_response(body: &[u8]) -> Result<GeneratedImage, BackendError> {
    let resp: Response<'_> = serde_json::from_slice(body).map_err(|e| BackendError::Failed {
        status: None,
        message: format!("the backend sent a malformed or truncated response ({e})"),
    })?;
    let candidates = resp.candidates.unwrap_or_default();
    if candidates.is_empty() {
        let reason = resp
            .prompt_feedback
            .and_then(|f| f.block_reason)
            .unwrap_or_else(|| "no candidates returned".into());
        return Err(BackendError::ContentBlocked {
            reason: reason.to_ascii_lowercase(),
        });
    }
    let mut texts = Vec::new();
    let mut reasons = Vec::new();
    for cand in &candidates {
        let parts = cand
            .content
            .as_ref()
            .map(|c| c.parts.as_slice())
            .unwrap_or_default();
        let text: Vec<&str> = parts
            .iter()
            .filter(|p| p.thought != Some(true))
            .filter_map(|p| p.text.as_deref())
            .collect();
        let text = (!text.is_empty()).then(|| text.join("\n"));
        let pick = parts
            .iter()
            .rev()
            .find(|p| p.thought != Some(true) && p.inline_data.is_some())
            .or_else(|| parts.iter().rev().find(|p| p.inline_data.is_some()));
        if let Some(inline) = pick.and_then(|p| p.inline_data.as_ref()) {
            return Ok(GeneratedImage {
                data: decode_base64(&inline.data)?,
                mime_type: inline
                    .mime_type
                    .clone()
                    .unwrap_or_else(|| "image/png".into()),
                text,
                attempts: 1,
            });
        }
        if let Some(t) = text {
            texts.push(t);
        }
        if let Some(r) = &cand.finish_reason {
            reasons.push(r.clone());
        }
    }
    if let Some(r) = reasons
        .iter()
        .find(|r| is_block_reason(r) || r.starts_with("IMAGE_"))
    {
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

    const B64: &str = "iVBORw0KGgo=";

    #[test]
    fn request_body_shape() {
        let imgs = [InputImage {
            mime_type: "image/jpeg".into(),
            data: vec![1, 2, 3].into(),
        }];
        let body = request_body(&ImageRequest {
            model: "m",
            prompt: "A cat",
            aspect_ratio: AspectRatio::R21x9,
            image_size: ImageSize::S4K,
            images: &imgs,
        });
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["contents"][0]["parts"][0]["text"], "A cat");
        assert_eq!(
            v["contents"][0]["parts"][1]["inlineData"]["mimeType"],
            "image/jpeg"
        );
        assert_eq!(v["contents"][0]["parts"][1]["inlineData"]["data"], "AQID");
        let cfg = &v["generationConfig"];
        assert_eq!(
            cfg["responseModalities"],
            serde_json::json!(["TEXT", "IMAGE"])
        );
        assert_eq!(cfg["imageConfig"]["aspectRatio"], "21:9");
        assert_eq!(cfg["imageConfig"]["imageSize"], "4K");
    }

    #[test]
    fn image_with_text_and_thoughts() {
        let body = format!(
            r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":"thinking","thought":true}},{{"inlineData":{{"mimeType":"image/png","data":"{B64}"}},"thought":true}},{{"text":"Here"}},{{"inlineData":{{"mimeType":"image/webp","data":"{B64}"}}}}]}},"finishReason":"STOP","index":0}}],"usageMetadata":{{"promptTokenCount":1}},"modelVersion":"x","responseId":"y"}}"#
        );
        let g = parse_response(body.as_bytes()).unwrap();
        assert_eq!(g.mime_type, "image/webp");
        assert_eq!(g.text.as_deref(), Some("Here"));
        assert_eq!(&g.data[..4], b"\x89PNG");
    }

    #[test]
    fn snake_case_inline_data() {
        let body = format!(
            r#"{{"candidates":[{{"content":{{"parts":[{{"inline_data":{{"mime_type":"image/png","data":"{B64}"}}}}]}}}}]}}"#
        );
        assert_eq!(
            parse_response(body.as_bytes()).unwrap().mime_type,
            "image/png"
        );
    }

    #[test]
    fn blocks() {
        let prompt = br#"{"promptFeedback":{"blockReason":"SAFETY"}}"#;
        assert!(
            matches!(parse_response(prompt), Err(BackendError::ContentBlocked { ref reason }) if reason == "safety")
        );
        for r in [
            "SAFETY",
            "IMAGE_SAFETY",
            "PROHIBITED_CONTENT",
            "IMAGE_PROHIBITED_CONTENT",
            "NO_IMAGE",
            "IMAGE_RECITATION",
            "IMAGE_OTHER",
        ] {
            let body =
                format!(r#"{{"candidates":[{{"content":{{"parts":[]}},"finishReason":"{r}"}}]}}"#);
            assert!(
                matches!(
                    parse_response(body.as_bytes()),
                    Err(BackendError::ContentBlocked { .. })
                ),
                "{r}"
            );
        }
    }

    #[test]
    fn text_only_and_malformed() {
        let body = br#"{"candidates":[{"content":{"parts":[{"text":"no picture today"}]},"finishReason":"STOP"}]}"#;
        assert!(
            matches!(parse_response(body), Err(BackendError::Failed { ref message, .. }) if message.contains("no picture today"))
        );
        assert!(matches!(
            parse_response(b"{\"candidates\":[{\"content\""),
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

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_response(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(v in any_json()) {
            let _ = parse_response(v.to_string().as_bytes());
            let _ = parse_response(json!({"candidates": [{"content": v.clone()}]}).to_string().as_bytes());
            let _ = parse_response(json!({"candidates": [{"content": {"parts": [v]}}]}).to_string().as_bytes());
        }

        #[test]
        fn a_valid_answer_parses_to_its_last_answer_image(
            data in prop::collection::vec(any::<u8>(), 1..256),
            thought in proptest::option::of(prop::collection::vec(any::<u8>(), 1..32)),
            mime in prop_oneof![Just("image/png"), Just("image/jpeg"), Just("image/webp")],
            text in proptest::option::of("[^\u{0}]{1,40}"),
            snake in any::<bool>(),
        ) {
            let inline = |mime: &str, bytes: &[u8]| if snake {
                json!({"inline_data": {"mime_type": mime, "data": b64(bytes)}})
            } else {
                json!({"inlineData": {"mimeType": mime, "data": b64(bytes)}})
            };
            let mut parts: Vec<Value> = Vec::new();
            if let Some(t) = &thought {
                let mut p = inline("image/png", t);
                p["thought"] = json!(true);
                parts.push(p);
            }
            if let Some(t) = &text {
                parts.push(json!({"text": t}));
            }
            parts.push(inline(mime, &data));
            let body = json!({
                "candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 1},
            });
            let got = parse_response(body.to_string().as_bytes()).unwrap();
            prop_assert_eq!(got.data, data);
            prop_assert_eq!(got.mime_type, mime);
            prop_assert_eq!(got.text, text);
        }
    }
}
