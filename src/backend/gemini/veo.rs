//! Veo through the Gemini API: `POST /v1beta/models/{model}:predictLongRunning`
//! starts an operation, `GET /v1beta/{name}` polls it until `done`, and the
//! finished sample is downloaded from its `video.uri` (with the key,
//! following redirects) or decoded from `encodedVideo`.

use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use bytes::Bytes;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::backend::http::{Endpoint, HttpClient, KeyStyle};
use crate::backend::wire::{decode_base64, excerpt, malformed};
use crate::backend::{
    Backend, BackendConfig, BackendError, InputImage, VideoPoll, VideoProvider, VideoRequest,
    VideoSample,
};

/// Videos through Veo's long-running operations.
#[derive(Debug, Clone)]
pub struct VeoVideos {
    endpoint: Endpoint,
}

impl VeoVideos {
    pub fn new(cfg: BackendConfig, http: impl Into<HttpClient>) -> Self {
        Self {
            endpoint: Endpoint::new(cfg, KeyStyle::GoogApiKey, http.into()),
        }
    }
}

/// How long one poll or download may take at most (the job has its own,
/// much longer deadline).
const CALL_CAP: Duration = Duration::from_secs(60);
/// Downloads get longer: a 4K clip is large.
const DOWNLOAD_CAP: Duration = Duration::from_secs(300);

fn image_json(img: &InputImage) -> Value {
    json!({
        "bytesBase64Encoded": base64::engine::general_purpose::STANDARD.encode(&img.data),
        "mimeType": img.mime_type,
    })
}

/// The `predictLongRunning` body.
pub(super) fn request_body(req: &VideoRequest<'_>) -> Value {
    let mut instance = Map::new();
    // Image-to-video may go without one.
    if !req.prompt.is_empty() {
        instance.insert("prompt".into(), json!(req.prompt));
    }
    if let Some(img) = req.image {
        instance.insert("image".into(), image_json(img));
    }
    if let Some(img) = req.last_frame {
        instance.insert("lastFrame".into(), image_json(img));
    }
    if !req.reference_images.is_empty() {
        let refs: Vec<Value> = req
            .reference_images
            .iter()
            .map(|i| json!({"image": image_json(i), "referenceType": "asset"}))
            .collect();
        instance.insert("referenceImages".into(), Value::Array(refs));
    }
    if let Some(uri) = req.extend {
        instance.insert("video".into(), json!({"uri": uri}));
    }
    let mut parameters = Map::new();
    parameters.insert("aspectRatio".into(), json!(req.aspect_ratio));
    // An extension's length is the model's own step, not a choice.
    if req.extend.is_none() {
        parameters.insert("durationSeconds".into(), json!(req.duration_seconds));
    }
    parameters.insert("sampleCount".into(), json!(1));
    if let Some(r) = req.resolution {
        parameters.insert("resolution".into(), json!(r));
    }
    if let Some(n) = req.negative_prompt {
        parameters.insert("negativePrompt".into(), json!(n));
    }
    json!({"instances": [instance], "parameters": parameters})
}

#[derive(Deserialize)]
struct Started {
    #[serde(default)]
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Operation {
    #[serde(default)]
    done: bool,
    #[serde(default)]
    error: Option<OperationError>,
    #[serde(default)]
    response: Option<OperationResponse>,
    #[serde(default)]
    metadata: Option<Value>,
}

#[derive(Deserialize)]
struct OperationError {
    #[serde(default)]
    code: Option<i64>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OperationResponse {
    #[serde(default)]
    generate_video_response: Option<VideoResponse>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct VideoResponse {
    #[serde(default)]
    generated_samples: Vec<Sample>,
    #[serde(default)]
    rai_media_filtered_count: Option<u32>,
    #[serde(default)]
    rai_media_filtered_reasons: Vec<String>,
}

#[derive(Deserialize)]
struct Sample {
    #[serde(default)]
    video: Option<SampleVideo>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SampleVideo {
    #[serde(default)]
    uri: Option<String>,
    #[serde(default)]
    encoded_video: Option<String>,
}

/// Reads a polled operation.
pub(crate) fn parse_operation(body: &[u8]) -> Result<VideoPoll, BackendError> {
    let op: Operation = serde_json::from_slice(body).map_err(|e| malformed("operation", e))?;
    if let Some(e) = op.error {
        let message = e.message.unwrap_or_else(|| "no message".into());
        return Ok(VideoPoll::Failed {
            message: match e.code {
                Some(c) => format!("{message} (code {c})"),
                None => message,
            },
        });
    }
    if !op.done {
        let progress = op
            .metadata
            .as_ref()
            .and_then(|m| m.get("progressPercent").or_else(|| m.get("progress")))
            .and_then(Value::as_f64)
            .map(|p| if p > 1.0 { p / 100.0 } else { p });
        return Ok(VideoPoll::Running { progress });
    }
    let response = op
        .response
        .and_then(|r| r.generate_video_response)
        .ok_or_else(|| malformed("finished operation", "no generateVideoResponse"))?;
    if let Some(sample) = response.generated_samples.into_iter().find_map(|s| s.video) {
        if let Some(uri) = sample.uri {
            return Ok(VideoPoll::Done(VideoSample::Uri(uri)));
        }
        if let Some(data) = sample.encoded_video {
            return Ok(VideoPoll::Done(VideoSample::Inline(Bytes::from(
                decode_base64(&data)?,
            ))));
        }
    }
    if response.rai_media_filtered_count.unwrap_or(0) > 0
        || !response.rai_media_filtered_reasons.is_empty()
    {
        return Ok(VideoPoll::Filtered {
            reasons: response
                .rai_media_filtered_reasons
                .iter()
                .map(|r| excerpt(r))
                .collect(),
        });
    }
    Err(malformed("finished operation", "no video sample"))
}

#[async_trait]
impl VideoProvider for VeoVideos {
    fn backend(&self) -> Backend {
        Backend::Gemini
    }

    fn base_url(&self) -> &Url {
        self.endpoint.base_url()
    }

    async fn submit(&self, req: &VideoRequest<'_>) -> Result<String, BackendError> {
        let url = self
            .endpoint
            .url(&format!("v1beta/models/{}:predictLongRunning", req.model))?;
        let body = serde_json::to_vec(&request_body(req)).map_err(|e| malformed("request", e))?;
        let (answer, _) = self.endpoint.post_json(&url, body.into()).await?;
        let started: Started =
            serde_json::from_slice(&answer).map_err(|e| malformed("operation", e))?;
        started
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| malformed("operation", "no operation name"))
    }

    async fn poll(&self, operation: &str) -> Result<VideoPoll, BackendError> {
        // The name is the provider's (`models/…/operations/…`); a name that
        // would leave the API's path is refused.
        if operation.contains("..") || operation.starts_with('/') || operation.contains("://") {
            return Err(malformed("operation name", operation));
        }
        let url = self.endpoint.url(&format!("v1beta/{operation}"))?;
        let body = self.endpoint.get(&url, CALL_CAP).await?;
        parse_operation(&body)
    }

    async fn fetch(&self, sample: &VideoSample) -> Result<Bytes, BackendError> {
        self.endpoint.fetch_sample(sample, DOWNLOAD_CAP).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_shape_with_every_extra() {
        let img = InputImage {
            mime_type: "image/png".into(),
            data: Bytes::from_static(&[1, 2, 3]),
        };
        let req = VideoRequest {
            model: "veo-3.1-generate-preview",
            prompt: "a wave",
            aspect_ratio: "9:16",
            duration_seconds: 8,
            resolution: Some("1080p"),
            negative_prompt: Some("people"),
            image: Some(&img),
            last_frame: Some(&img),
            reference_images: &[],
            extend: None,
        };
        let v = request_body(&req);
        assert_eq!(v["instances"][0]["prompt"], "a wave");
        assert_eq!(v["instances"][0]["image"]["bytesBase64Encoded"], "AQID");
        assert_eq!(v["instances"][0]["lastFrame"]["mimeType"], "image/png");
        let p = &v["parameters"];
        assert_eq!(
            (p["aspectRatio"].as_str(), p["durationSeconds"].as_u64()),
            (Some("9:16"), Some(8))
        );
        assert_eq!(
            (p["resolution"].as_str(), p["negativePrompt"].as_str()),
            (Some("1080p"), Some("people"))
        );
        let refs = [img.clone()];
        let v = request_body(&VideoRequest {
            reference_images: &refs,
            image: None,
            last_frame: None,
            extend: Some("https://x/v1beta/files/abc:download?alt=media"),
            resolution: None,
            negative_prompt: None,
            ..req
        });
        assert_eq!(
            v["instances"][0]["referenceImages"][0]["referenceType"],
            "asset"
        );
        assert_eq!(
            v["instances"][0]["video"]["uri"],
            "https://x/v1beta/files/abc:download?alt=media"
        );
        assert!(v["parameters"].get("resolution").is_none());
    }

    #[test]
    fn operations_as_google_sends_them() {
        let running = br#"{"name":"models/veo-3.0-fast-generate-001/operations/321kvdcepmcg"}"#;
        assert_eq!(
            parse_operation(running).unwrap(),
            VideoPoll::Running { progress: None }
        );
        let halfway = br#"{"name":"x","done":false,"metadata":{"progressPercent":50}}"#;
        assert_eq!(
            parse_operation(halfway).unwrap(),
            VideoPoll::Running {
                progress: Some(0.5)
            }
        );
        let done = br#"{"name":"x","done":true,"response":{"@type":"type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse","generateVideoResponse":{"generatedSamples":[{"video":{"uri":"https://generativelanguage.googleapis.com/v1beta/files/ID:download?alt=media"}}]}}}"#;
        assert_eq!(
            parse_operation(done).unwrap(),
            VideoPoll::Done(VideoSample::Uri(
                "https://generativelanguage.googleapis.com/v1beta/files/ID:download?alt=media"
                    .into()
            ))
        );
        let inline = br#"{"done":true,"response":{"generateVideoResponse":{"generatedSamples":[{"video":{"encodedVideo":"AAAAGGZ0eXA=","encoding":"video/mp4"}}]}}}"#;
        assert!(
            matches!(parse_operation(inline).unwrap(), VideoPoll::Done(VideoSample::Inline(b)) if &b[4..8] == b"ftyp")
        );
        let filtered = br#"{"done":true,"response":{"generateVideoResponse":{"raiMediaFilteredCount":1,"raiMediaFilteredReasons":["Unable to generate videos because of a policy."]}}}"#;
        assert!(
            matches!(parse_operation(filtered).unwrap(), VideoPoll::Filtered { reasons } if reasons[0].contains("policy"))
        );
        let failed = br#"{"name":"x","done":true,"error":{"code":13,"message":"Internal error"}}"#;
        assert_eq!(
            parse_operation(failed).unwrap(),
            VideoPoll::Failed {
                message: "Internal error (code 13)".into()
            }
        );
        assert!(parse_operation(br#"{"done":true"#).is_err());
        assert!(
            parse_operation(br#"{"done":true,"response":{"generateVideoResponse":{}}}"#).is_err()
        );
    }
}

/// Hostile and well-formed operations: nothing panics, a finished
/// operation yields its sample, progress is a fraction.
#[cfg(test)]
mod proptests {
    use base64::Engine;
    use proptest::prelude::*;
    use serde_json::json;

    use super::parse_operation;
    use crate::backend::{VideoPoll, VideoSample};
    use crate::prop_support::{config, json as any_json};

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..512)) {
            let _ = parse_operation(&body);
        }

        #[test]
        fn arbitrary_json_never_panics(v in any_json(), done in any::<bool>()) {
            let _ = parse_operation(v.to_string().as_bytes());
            let wrapped = json!({"name": "models/veo/operations/x", "done": done, "metadata": v.clone(),
                                 "response": {"generateVideoResponse": v}});
            let _ = parse_operation(wrapped.to_string().as_bytes());
        }

        #[test]
        fn a_finished_operation_yields_its_sample(
            uri in "https://[a-z.]{1,20}/v1beta/files/[a-z0-9]{1,12}:download\\?alt=media",
            inline in proptest::option::of(prop::collection::vec(any::<u8>(), 0..128)),
        ) {
            let video = match &inline {
                Some(b) => json!({"encodedVideo": base64::engine::general_purpose::STANDARD.encode(b)}),
                None => json!({"uri": uri}),
            };
            let op = json!({"name": "models/veo-3.1/operations/abc", "done": true,
                            "response": {"@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse",
                                         "generateVideoResponse": {"generatedSamples": [{"video": video}]}}});
            let want = match inline {
                Some(b) => VideoSample::Inline(b.into()),
                None => VideoSample::Uri(uri),
            };
            prop_assert_eq!(parse_operation(op.to_string().as_bytes()).unwrap(), VideoPoll::Done(want));
        }

        #[test]
        fn progress_is_a_fraction(percent in 0u32..=100) {
            let op = json!({"name": "x", "done": false, "metadata": {"progressPercent": percent}});
            match parse_operation(op.to_string().as_bytes()).unwrap() {
                VideoPoll::Running { progress: Some(p) } => prop_assert!((0.0..=1.0).contains(&p), "{p}"),
                other => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
