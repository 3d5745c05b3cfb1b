//! Every backend failure, over real HTTP against the emulator, maps to the
//! contract's error code.

use std::time::Duration;

use media_gen::backend::cliproxy::CliProxyImages;
use media_gen::backend::gemini::GeminiImages;
use media_gen::backend::{BackendConfig, GeneratedImage, ImageProvider, ImageRequest, RetryPolicy};
use media_gen::config::ImageBackendKind as BackendKind;
use media_gen::contract::ErrorCode;
use media_gen::domain::{AspectRatio, ImageSize};
use media_gen::emulator::{self, EmulatorHandle, EmulatorOptions};
use media_gen::service::ServiceError;
use serde_json::json;

const KEY: &str = "test-key";

async fn emulator() -> EmulatorHandle {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    emulator::start(
        listener,
        EmulatorOptions {
            api_key: Some(KEY.into()),
            latency: Duration::ZERO,
        },
    )
    .await
    .unwrap()
}

fn backend(
    kind: BackendKind,
    url: &str,
    key: Option<&str>,
    timeout: Duration,
) -> Box<dyn ImageProvider> {
    let cfg = BackendConfig {
        base_url: reqwest::Url::parse(url).unwrap(),
        api_key: key.map(str::to_owned),
        timeout,
        retry: RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(20),
            max_delay: Duration::from_millis(200),
        },
    };
    match kind {
        BackendKind::CliProxy => Box::new(CliProxyImages::new(cfg, reqwest::Client::new())),
        BackendKind::Gemini => Box::new(GeminiImages::new(cfg, reqwest::Client::new())),
    }
}

/// One image, with a failure mapped as the service maps it.
async fn generate(b: &dyn ImageProvider, prompt: &str) -> Result<GeneratedImage, ServiceError> {
    generate_with(b, "gemini-3-pro-image-preview", prompt).await
}

async fn generate_with(
    b: &dyn ImageProvider,
    model: &str,
    prompt: &str,
) -> Result<GeneratedImage, ServiceError> {
    b.generate(&ImageRequest {
        model,
        prompt,
        aspect_ratio: AspectRatio::R16x9,
        image_size: ImageSize::S1K,
        images: &[],
    })
    .await
    .map_err(|e| ServiceError::image(b.backend(), e))
}

fn code(e: ServiceError) -> ErrorCode {
    e.code()
}

async fn control(emu: &EmulatorHandle, body: serde_json::Value) {
    let r = reqwest::Client::new()
        .post(format!("{}/emulator/control", emu.base_url()))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
}

async fn stats(emu: &EmulatorHandle) -> serde_json::Value {
    crate::support::emulator_stats(emu).await
}

#[tokio::test]
async fn both_wire_formats_return_the_real_gemini_size() {
    let emu = emulator().await;
    for kind in [BackendKind::CliProxy, BackendKind::Gemini] {
        let b = backend(kind, &emu.base_url(), Some(KEY), Duration::from_secs(30));
        let img = generate(b.as_ref(), "a lighthouse").await.unwrap();
        assert_eq!(img.mime_type, "image/png");
        assert_eq!(crate::support::png_size(&img.data), (1376, 768));
        assert_eq!(img.attempts, 1);
    }
}

#[tokio::test]
async fn each_failure_maps_to_its_code() {
    let emu = emulator().await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let cases = [
        ("blocked", ErrorCode::ContentBlocked),
        ("empty_choices", ErrorCode::ContentBlocked),
        ("no_image", ErrorCode::GenerationFailed),
        ("truncated", ErrorCode::GenerationFailed),
        ("malformed", ErrorCode::GenerationFailed),
        ("auth", ErrorCode::AuthFailed),
        ("forbidden", ErrorCode::AuthFailed),
        ("unknown_model", ErrorCode::InvalidModel),
    ];
    for (mode, want) in cases {
        let err = generate(b.as_ref(), &format!("x [emulator:{mode}]"))
            .await
            .unwrap_err();
        assert_eq!(code(err), want, "{mode}");
    }
    // The Gemini-native format classifies the same way.
    let g = backend(
        BackendKind::Gemini,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    for (mode, want) in [
        ("blocked", ErrorCode::ContentBlocked),
        ("malformed", ErrorCode::GenerationFailed),
        ("auth", ErrorCode::AuthFailed),
    ] {
        let err = generate(g.as_ref(), &format!("x [emulator:{mode}]"))
            .await
            .unwrap_err();
        assert_eq!(code(err), want, "gemini {mode}");
    }
}

#[tokio::test]
async fn wrong_key_is_auth_failed_and_not_retried() {
    let emu = emulator().await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some("wrong"),
        Duration::from_secs(10),
    );
    let err = generate(b.as_ref(), "x").await.unwrap_err();
    assert_eq!(code(err), ErrorCode::AuthFailed);
    assert_eq!(stats(&emu).await["generate_requests"], 1);
}

#[tokio::test]
async fn unknown_model_from_the_backend_is_invalid_model() {
    let emu = emulator().await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let err = generate_with(b.as_ref(), "gemini-9-imaginary", "x")
        .await
        .unwrap_err();
    assert_eq!(code(err), ErrorCode::InvalidModel);
}

#[tokio::test]
async fn rate_limit_is_retried_then_succeeds() {
    let emu = emulator().await;
    control(
        &emu,
        json!({"fail": "rate_limit", "times": 2, "retry_after": 0}),
    )
    .await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let img = generate(b.as_ref(), "persistent").await.unwrap();
    assert_eq!(img.attempts, 3);
    assert_eq!(stats(&emu).await["generate_requests"], 3);
}

#[tokio::test]
async fn rate_limit_after_retries_is_rate_limited() {
    let emu = emulator().await;
    control(
        &emu,
        json!({"fail": "rate_limit", "times": 100, "retry_after": 0}),
    )
    .await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let err = generate(b.as_ref(), "x").await.unwrap_err();
    assert_eq!(code(err), ErrorCode::RateLimited);
    assert_eq!(stats(&emu).await["generate_requests"], 4);
}

#[tokio::test]
async fn server_errors_are_retried() {
    let emu = emulator().await;
    control(&emu, json!({"fail": "server_error", "times": 1})).await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let img = generate(b.as_ref(), "x").await.unwrap();
    assert_eq!(img.attempts, 2);
    control(&emu, json!({"fail": "server_error", "times": 100})).await;
    let err = generate(b.as_ref(), "x").await.unwrap_err();
    assert_eq!(code(err), ErrorCode::GenerationFailed);
}

#[tokio::test]
async fn slow_backend_times_out() {
    let emu = emulator().await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_millis(500),
    );
    let err = generate(b.as_ref(), "x [emulator:slow]").await.unwrap_err();
    // The time and the next step, joined once: not "…0.5s Retry".
    let msg = err.message();
    assert!(msg.contains("within 0.5 s; retry"), "{msg}");
    assert_eq!(code(err), ErrorCode::GenerationTimeout);
}

#[tokio::test]
async fn refused_connection_is_cliproxy_unavailable_naming_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}");
    let b = backend(
        BackendKind::CliProxy,
        &url,
        Some(KEY),
        Duration::from_secs(5),
    );
    let e = generate(b.as_ref(), "x").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::CliproxyUnavailable);
    let msg = e.message();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(msg.contains("--emulator"), "{msg}");
    assert!(!msg.contains(KEY), "{msg}");
}

/// The Gemini API out of reach is not CLIProxyAPI out of reach: the code and
/// the advice name what is really missing.
#[tokio::test]
async fn refused_gemini_connection_is_not_cliproxy_unavailable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = format!("http://127.0.0.1:{port}");
    let b = backend(BackendKind::Gemini, &url, Some(KEY), Duration::from_secs(5));
    let e = generate(b.as_ref(), "x").await.unwrap_err();
    assert_eq!(e.code(), ErrorCode::GenerationFailed);
    let msg = e.message();
    assert!(msg.contains(&format!("127.0.0.1:{port}")), "{msg}");
    assert!(
        msg.contains("MCP_GEMINI_URL") && !msg.contains("CLIProxyAPI"),
        "{msg}"
    );
    assert_eq!(e.details()["backend"], "gemini");
    assert!(!msg.contains(KEY), "{msg}");
}

/// A connection that breaks mid-answer is not CLIProxyAPI being down: the
/// answer was lost, so the generation failed (retryable) and was retried;
/// the advice is not "start CLIProxyAPI".
#[tokio::test]
async fn broken_answer_is_generation_failed_and_retried() {
    let emu = emulator().await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let e = generate(b.as_ref(), "x [emulator:broken]")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::GenerationFailed);
    assert!(e.is_retryable());
    let msg = e.message();
    assert!(msg.contains("broke"), "{msg}");
    assert!(
        !msg.contains("start CLIProxyAPI") && !msg.contains("cannot reach"),
        "{msg}"
    );
    assert_eq!(stats(&emu).await["generate_requests"], 4, "retried");
    // Once, then a whole answer: the retry gets the image.
    control(&emu, json!({"fail": "broken", "times": 1})).await;
    let img = generate(b.as_ref(), "x").await.unwrap();
    assert_eq!(img.attempts, 2);
}

/// CLIProxyAPI's 503 `auth_not_found` means nobody is logged in through it:
/// a credentials problem with the way to log in, not "try another model",
/// and not retried.
#[tokio::test]
async fn no_login_behind_cliproxy_says_how_to_log_in() {
    let emu = emulator().await;
    let b = backend(
        BackendKind::CliProxy,
        &emu.base_url(),
        Some(KEY),
        Duration::from_secs(10),
    );
    let e = generate(b.as_ref(), "x [emulator:unavailable]")
        .await
        .unwrap_err();
    assert_eq!(e.code(), ErrorCode::AuthFailed);
    let msg = e.message();
    assert!(msg.contains("no logged-in account"), "{msg}");
    assert!(msg.contains("`--login`"), "{msg}");
    assert!(!msg.contains("another model"), "{msg}");
    assert_eq!(e.details()["http_status"], 503);
    assert_eq!(stats(&emu).await["generate_requests"], 1, "not retried");
}

/// `media-gen serve` over stdio with `env`, logging at `trace`: the answer
/// line to each `tools/call` of `calls` (name, arguments), and the whole log.
fn stdio_session(
    env: &[(&str, &str)],
    calls: &[(&str, serde_json::Value)],
) -> (Vec<serde_json::Value>, String) {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let mut child = crate::support::bin_in(dir.path())
        .args(["serve"])
        .envs(env.iter().copied())
        .env("MEDIA_GEN_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = std::thread::spawn(move || {
        let mut s = String::new();
        stderr.read_to_string(&mut s).unwrap();
        s
    });
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "{}", crate::support::INIT).unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    let mut answers = Vec::new();
    for (id, (name, arguments)) in calls.iter().enumerate() {
        let call = json!({"jsonrpc": "2.0", "id": id + 2, "method": "tools/call",
            "params": {"name": name, "arguments": arguments}});
        writeln!(stdin, "{call}").unwrap();
        stdin.flush().unwrap();
        // Notifications (a changed resource list …) may come first.
        let answer = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "no answer");
            let message: serde_json::Value = serde_json::from_str(&line).unwrap();
            if message["id"] == json!(id + 2) {
                break message;
            }
        };
        answers.push(answer);
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    (answers, log.join().unwrap())
}

/// A backend that repeats the request's credentials in its error (as
/// careless proxies do): the key reaches neither the tool result (text and
/// `structuredContent`) nor the server's log, even at `trace`.
#[test]
fn an_echoed_key_reaches_neither_result_nor_log() {
    let key = "sk-echo-7f3a9c1e5b2d4086-distinctive";
    let emu = crate::support::EmulatorProcess::start(&[]);
    let (answers, log) = stdio_session(
        &[
            ("MCP_CLIPROXY_URL", emu.url.as_str()),
            ("MCP_CLIPROXY_API_KEY", key),
        ],
        &[(
            "generate_image",
            json!({"prompt": "a lighthouse [emulator:echo_auth]"}),
        )],
    );
    let result = &answers[0]["result"];
    assert_eq!(result["isError"], true, "{result}");
    let error = &result["structuredContent"]["error"];
    assert_eq!(error["code"], "AUTH_FAILED", "{result}");
    // The backend's answer is there, without what it echoed.
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("Bearer [redacted]"), "{message}");
    let text = result["content"][0]["text"].as_str().unwrap();
    assert!(text.contains("Bearer [redacted]"), "{text}");
    assert!(
        !result.to_string().contains(key),
        "the key is in the result: {result}"
    );
    assert!(
        log.contains("TRACE"),
        "the log ran at trace level: {log:.2000}"
    );
    assert!(!log.contains(key), "the key is in the log");
    assert!(
        !log.contains("7f3a9c1e5b2d4086"),
        "part of the key is in the log"
    );
}

/// At `trace`, a generation's log (rmcp logs every message it sends, the
/// preview image included) has no line over a few KiB and no image data.
#[test]
fn trace_log_lines_are_bounded_and_carry_no_image_data() {
    let emu = crate::support::EmulatorProcess::start(&[]);
    let (answers, log) = stdio_session(
        &[("MCP_CLIPROXY_URL", emu.url.as_str())],
        &[("generate_image", json!({"prompt": "a lighthouse"}))],
    );
    let result = &answers[0]["result"];
    assert_eq!(result["structuredContent"]["success"], true, "{result}");
    let preview = result["content"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|c| c["data"].as_str())
        .expect("an inline preview");
    assert!(log.contains("response message"), "rmcp logged the answer");
    let longest = log.lines().map(str::len).max().unwrap_or(0);
    assert!(longest < 8 * 1024, "a log line of {longest} bytes");
    assert!(
        !log.contains(&preview[..64]) && !log.contains(&preview[preview.len() / 2..][..64]),
        "the preview's base64 is in the log"
    );
}

/// After a burst of concurrent calls, the provider client keeps only a few
/// idle connections (reqwest alone keeps every one, for 90 s): the others
/// are closed as their calls end.
#[tokio::test]
async fn a_burst_leaves_only_a_few_idle_connections() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const BURST: usize = 24;
    // A keep-alive HTTP/1.1 server that counts its open connections and
    // holds each answer a moment, so the calls overlap.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let open = Arc::new(AtomicUsize::new(0));
    let counted = open.clone();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            let open = counted.clone();
            open.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                while let Ok(n @ 1..) = socket.read(&mut chunk).await {
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        let body = r#"{"object":"list","data":[{"id":"m"}]}"#;
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if socket.write_all(answer.as_bytes()).await.is_err() {
                            break;
                        }
                    }
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    let cfg = BackendConfig {
        base_url: reqwest::Url::parse(&url).unwrap(),
        api_key: None,
        timeout: Duration::from_secs(10),
        retry: RetryPolicy::default(),
    };
    let b = Arc::new(CliProxyImages::new(cfg, media_gen::backend::http_client()));
    let calls: Vec<_> = (0..BURST)
        .map(|_| {
            let b = b.clone();
            tokio::spawn(async move { b.list_models().await })
        })
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap(), ["m"]);
    }
    let peak = open.load(Ordering::SeqCst);
    assert!(
        peak > media_gen::backend::POOL_MAX_IDLE_PER_HOST,
        "the calls overlapped: {peak}"
    );
    // The client closes what it does not keep as soon as each call ends;
    // give the server a moment to see the closes.
    let mut left = peak;
    for _ in 0..50 {
        left = open.load(Ordering::SeqCst);
        if left <= media_gen::backend::POOL_MAX_IDLE_PER_HOST {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        left <= media_gen::backend::POOL_MAX_IDLE_PER_HOST,
        "{left} idle connections kept after a burst of {BURST}"
    );
    drop(b);
}

/// The Gemini API serves `generateContent` under its stable `v1` as well as
/// `v1beta`, and google-genai clients set to `v1` (nanobanana-mcp-server,
/// which the peers bench runs against the emulator) call it there: the
/// emulator answers both the same way.
#[tokio::test]
async fn the_emulator_serves_generate_content_under_v1_too() {
    let emu = emulator().await;
    let body = json!({"contents": [{"role": "user", "parts": [{"text": "a v1 call"}]}],
        "generationConfig": {"responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": "1:1", "imageSize": "1K"}}});
    let http = reqwest::Client::new();
    for version in ["v1", "v1beta"] {
        let r = http
            .post(format!(
                "{}/{version}/models/gemini-3-pro-image-preview:generateContent",
                emu.base_url()
            ))
            .header("x-goog-api-key", KEY)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{version}");
        let v: serde_json::Value = r.json().await.unwrap();
        let parts = &v["candidates"][0]["content"]["parts"];
        assert!(
            parts
                .as_array()
                .unwrap()
                .iter()
                .any(|p| p["inlineData"]["data"].is_string()),
            "{version}: {v}"
        );
    }
}
