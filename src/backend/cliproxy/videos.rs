//! CLIProxyAPI's OpenAI-style video routes (serving xAI's
//! `grok-imagine-video`): `POST /openai/v1/videos` starts a job, `GET
//! /openai/v1/videos/{id}` polls it (`queued`, `in_progress`, `completed`,
//! `failed`), `GET /openai/v1/videos/{id}/content` streams the MP4.
//! (CLIProxyAPI's plain `/v1/videos` passes xAI's own shapes through; the
//! OpenAI-style ones live under `/openai/v1`.)

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::Url;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::backend::http::{Endpoint, HttpClient, KeyStyle};
use crate::backend::wire::{malformed, push_data_url};
use crate::backend::{
    Backend, BackendConfig, BackendError, VideoPoll, VideoProvider, VideoRequest, VideoSample,
};

/// Videos through CLIProxyAPI's `/openai/v1/videos`.
#[derive(Debug, Clone)]
pub struct CliProxyVideos {
    endpoint: Endpoint,
}

impl CliProxyVideos {
    pub fn new(cfg: BackendConfig, http: impl Into<HttpClient>) -> Self {
        Self {
            endpoint: Endpoint::new(cfg, KeyStyle::Bearer, http.into()),
        }
    }
}

const CALL_CAP: Duration = Duration::from_secs(60);
const DOWNLOAD_CAP: Duration = Duration::from_secs(300);

/// The create body (OpenAI's video fields as CLIProxyAPI reads them).
pub(super) fn request_body(req: &VideoRequest<'_>) -> Value {
    let mut body = Map::new();
    body.insert("model".into(), json!(req.model));
    body.insert("prompt".into(), json!(req.prompt));
    body.insert("seconds".into(), json!(req.duration_seconds.to_string()));
    let size = match req.aspect_ratio {
        "9:16" => "720x1280",
        _ => "1280x720",
    };
    body.insert("size".into(), json!(size));
    if req.aspect_ratio == "1:1" {
        body.insert("aspect_ratio".into(), json!("1:1"));
    }
    if let Some(r) = req.resolution {
        body.insert("resolution".into(), json!(r));
    }
    if let Some(img) = req.image {
        let mut url = String::new();
        push_data_url(&mut url, img);
        body.insert("image".into(), json!(url));
    }
    if !req.reference_images.is_empty() {
        let refs: Vec<Value> = req
            .reference_images
            .iter()
            .map(|i| {
                let mut url = String::new();
                push_data_url(&mut url, i);
                json!({"url": url})
            })
            .collect();
        body.insert("reference_images".into(), Value::Array(refs));
    }
    Value::Object(body)
}

#[derive(Deserialize)]
struct Video {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    progress: Option<f64>,
    #[serde(default)]
    error: Option<VideoError>,
}

#[derive(Deserialize)]
struct VideoError {
    #[serde(default)]
    code: Option<Value>,
    #[serde(default)]
    message: Option<String>,
}

/// Reads a polled video object; `content` is where its bytes will be.
pub(crate) fn parse_video(body: &[u8], content: Url) -> Result<VideoPoll, BackendError> {
    let v: Video = serde_json::from_slice(body).map_err(|e| malformed("video", e))?;
    let failed = |e: Option<VideoError>| {
        let e = e.unwrap_or(VideoError {
            code: None,
            message: None,
        });
        let message = e.message.unwrap_or_else(|| "no message".into());
        let code = e
            .code
            .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_owned));
        match code.as_deref() {
            Some(c)
                if c.contains("moderation")
                    || c.contains("safety")
                    || c.contains("content_policy") =>
            {
                VideoPoll::Filtered {
                    reasons: vec![message],
                }
            }
            Some(c) => VideoPoll::Failed {
                message: format!("{message} ({c})"),
            },
            None => VideoPoll::Failed { message },
        }
    };
    Ok(match v.status.as_deref() {
        Some("completed") => VideoPoll::Done(VideoSample::Uri(content.to_string())),
        Some("failed") => failed(v.error),
        _ if v.error.is_some() => failed(v.error),
        _ => VideoPoll::Running {
            progress: v.progress.map(|p| if p > 1.0 { p / 100.0 } else { p }),
        },
    })
}

impl CliProxyVideos {
    /// A video id from a client or the provider, checked to be one path
    /// segment.
    fn video_url(&self, id: &str, suffix: &str) -> Result<Url, BackendError> {
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(malformed("video id", id));
        }
        self.endpoint.url(&format!("openai/v1/videos/{id}{suffix}"))
    }
}

#[async_trait]
impl VideoProvider for CliProxyVideos {
    fn backend(&self) -> Backend {
        Backend::CliProxy
    }

    fn base_url(&self) -> &Url {
        self.endpoint.base_url()
    }

    async fn submit(&self, req: &VideoRequest<'_>) -> Result<String, BackendError> {
        let url = self.endpoint.url("openai/v1/videos")?;
        let body = serde_json::to_vec(&request_body(req)).map_err(|e| malformed("request", e))?;
        let (answer, _) = self.endpoint.post_json(&url, body.into()).await?;
        let v: Video = serde_json::from_slice(&answer).map_err(|e| malformed("video", e))?;
        if v.status.as_deref() == Some("failed") {
            let message = v.error.and_then(|e| e.message).unwrap_or_default();
            return Err(BackendError::Failed {
                status: None,
                message: format!("the video was refused: {message}"),
            });
        }
        v.id.filter(|i| !i.is_empty())
            .ok_or_else(|| malformed("video", "no id"))
    }

    async fn poll(&self, operation: &str) -> Result<VideoPoll, BackendError> {
        let url = self.video_url(operation, "")?;
        let body = self.endpoint.get(&url, CALL_CAP).await?;
        parse_video(&body, self.video_url(operation, "/content")?)
    }

    async fn fetch(&self, sample: &VideoSample) -> Result<Bytes, BackendError> {
        self.endpoint.fetch_sample(sample, DOWNLOAD_CAP).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::InputImage;

    #[test]
    fn request_and_status_shapes() {
        let img = InputImage {
            mime_type: "image/png".into(),
            data: Bytes::from_static(&[1, 2, 3]),
        };
        let v = request_body(&VideoRequest {
            model: "grok-imagine-video",
            prompt: "a wave",
            aspect_ratio: "9:16",
            duration_seconds: 6,
            resolution: None,
            negative_prompt: None,
            image: Some(&img),
            last_frame: None,
            reference_images: &[],
            extend: None,
        });
        assert_eq!(
            (v["seconds"].as_str(), v["size"].as_str()),
            (Some("6"), Some("720x1280"))
        );
        assert_eq!(v["image"], "data:image/png;base64,AQID");
        let content = Url::parse("http://h/openai/v1/videos/v1/content").unwrap();
        let queued = br#"{"object":"video","id":"v1","status":"queued","progress":0}"#;
        assert_eq!(
            parse_video(queued, content.clone()).unwrap(),
            VideoPoll::Running {
                progress: Some(0.0)
            }
        );
        let going = br#"{"object":"video","id":"v1","status":"in_progress","progress":40}"#;
        assert_eq!(
            parse_video(going, content.clone()).unwrap(),
            VideoPoll::Running {
                progress: Some(0.4)
            }
        );
        let done = br#"{"object":"video","id":"v1","status":"completed","progress":100,"video_url":"https://vidgen.x.ai/a.mp4"}"#;
        assert_eq!(
            parse_video(done, content.clone()).unwrap(),
            VideoPoll::Done(VideoSample::Uri(content.to_string()))
        );
        let failed = br#"{"object":"video","id":"v1","status":"failed","error":{"code":"video_generation_failed","message":"upstream broke"}}"#;
        assert!(
            matches!(parse_video(failed, content.clone()).unwrap(), VideoPoll::Failed { message } if message.contains("upstream broke"))
        );
        let moderated =
            br#"{"status":"failed","error":{"code":"moderation_blocked","message":"not allowed"}}"#;
        assert!(matches!(
            parse_video(moderated, content).unwrap(),
            VideoPoll::Filtered { .. }
        ));
    }
}

/// Hostile video objects never panic; a status reads as what it says.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;
    use serde_json::json;

    use super::parse_video;
    use crate::backend::VideoPoll;
    use crate::prop_support::{config, json as any_json};

    fn content() -> reqwest::Url {
        reqwest::Url::parse("http://127.0.0.1:1/v1/videos/v/content").unwrap()
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_input_never_panics(
            body in prop::collection::vec(any::<u8>(), 0..512),
            v in any_json(),
            status in prop_oneof![Just("queued"), Just("in_progress"), Just("completed"), Just("failed")],
        ) {
            let _ = parse_video(&body, content());
            let _ = parse_video(v.to_string().as_bytes(), content());
            let wrapped = json!({"id": "v", "object": "video", "status": status, "error": v.clone(), "progress": v});
            let _ = parse_video(wrapped.to_string().as_bytes(), content());
        }

        #[test]
        fn progress_is_a_fraction(percent in 0u32..=100) {
            let v = json!({"id": "v", "status": "in_progress", "progress": percent});
            match parse_video(v.to_string().as_bytes(), content()).unwrap() {
                VideoPoll::Running { progress: Some(p) } => prop_assert!((0.0..=1.0).contains(&p), "{p}"),
                other => prop_assert!(false, "{other:?}"),
            }
        }
    }
}
