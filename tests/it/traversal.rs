//! A path-traversal corpus (hostile names: `..`, encoded separators,
//! absolute, Windows drive and UNC paths, NUL, overlong names, look-alike
//! dots, links out of the library) run against every place a name or a
//! path enters: the tools, `resources/read`, `/files/{name}`, the gallery
//! routes, uploads, and the shell commands. Each must answer with the
//! contract's error code, and a canary outside the library — a valid PNG,
//! so reading it would *succeed* — must be neither read nor changed.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use media_gen::app::{MakeHandler, Server};
use media_gen::tools::MediaServer;
use rmcp::model::ReadResourceRequestParams;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::mcp::{Harness, call, start, start_with_http_policy, structured};
use crate::support::{bin_in, media_files};

/// A real PNG: if anything read it as an input, the call would succeed.
fn png(w: u32, h: u32) -> Vec<u8> {
    let img =
        image::RgbImage::from_fn(w, h, |x, y| image::Rgb([(x * 9) as u8, (y * 7) as u8, 200]));
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::ImageRgb8(img)
        .write_to(&mut out, image::ImageFormat::Png)
        .unwrap();
    out.into_inner()
}

/// Everything outside the library the test can see, to prove it unchanged:
/// a canary PNG and a secret in a directory of their own, and links to
/// them planted inside the library.
struct Fence {
    dir: tempfile::TempDir,
    canary: PathBuf,
    canary_bytes: Vec<u8>,
    snapshot: BTreeMap<PathBuf, Vec<u8>>,
}

impl Fence {
    /// The outside directory, and links from `library` (the output
    /// directory) to it: `link.png` (the canary), `door` (the directory),
    /// `metadata/link.png.json` (a sidecar slot).
    fn new(library: &Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let canary = dir.path().join("canary.png");
        let canary_bytes = png(16, 16);
        std::fs::write(&canary, &canary_bytes).unwrap();
        std::fs::write(dir.path().join("secret.txt"), b"do not read").unwrap();
        std::fs::create_dir_all(library.join("metadata")).unwrap();
        std::os::unix::fs::symlink(&canary, library.join("link.png")).unwrap();
        std::os::unix::fs::symlink(dir.path(), library.join("door")).unwrap();
        std::os::unix::fs::symlink(
            dir.path().join("secret.txt"),
            library.join("metadata/link.png.json"),
        )
        .unwrap();
        let mut fence = Self {
            dir,
            canary,
            canary_bytes,
            snapshot: BTreeMap::new(),
        };
        fence.snapshot = fence.contents();
        fence
    }

    fn contents(&self) -> BTreeMap<PathBuf, Vec<u8>> {
        std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| {
                let p = e.unwrap().path();
                let bytes = std::fs::read(&p).unwrap();
                (p, bytes)
            })
            .collect()
    }

    /// The canary exists with its bytes, nothing was added, removed or
    /// changed beside it.
    fn assert_untouched(&self, context: &str) {
        assert_eq!(
            std::fs::read(&self.canary).ok().as_deref(),
            Some(&self.canary_bytes[..]),
            "{context}: the canary changed or is gone"
        );
        assert_eq!(
            self.contents(),
            self.snapshot,
            "{context}: outside the library changed"
        );
    }

    /// Whether `bytes` carry the canary (or the secret).
    fn leaked(&self, bytes: &[u8]) -> bool {
        let has = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
        has(&self.canary_bytes[self.canary_bytes.len() - 40..]) || has(b"do not read")
    }

    /// The hostile names and paths, aimed at this fence from `library`.
    fn corpus(&self, library: &Path) -> Vec<String> {
        let canary = self.canary.display().to_string();
        let away = self.dir.path().file_name().unwrap().to_str().unwrap();
        let mut names = vec![
            // Parent directories, plain and encoded.
            "../canary.png".to_owned(),
            format!("../{away}/canary.png"),
            format!("../../{}", canary.trim_start_matches('/')),
            "..".to_owned(),
            ".".to_owned(),
            "..%2fcanary.png".to_owned(),
            "..%2Fcanary.png".to_owned(),
            "%2e%2e%2fcanary.png".to_owned(),
            "%2e%2e/canary.png".to_owned(),
            "..%5ccanary.png".to_owned(),
            "%252e%252e%252fcanary.png".to_owned(),
            "%c0%ae%c0%ae/canary.png".to_owned(),
            "..\\canary.png".to_owned(),
            "..\\..\\canary.png".to_owned(),
            "metadata/../../canary.png".to_owned(),
            "media://files/../canary.png".to_owned(),
            "media://files/..%2fcanary.png".to_owned(),
            "media://files//etc/hostname".to_owned(),
            // Absolute paths, this system's and Windows'.
            canary.clone(),
            format!("{}/../{away}/canary.png", library.display()),
            format!("file://{canary}"),
            "/etc/hostname".to_owned(),
            "C:\\Windows\\win.ini".to_owned(),
            "C:canary.png".to_owned(),
            "c:/canary.png".to_owned(),
            "\\\\server\\share\\canary.png".to_owned(),
            "//server/share/canary.png".to_owned(),
            "\\\\?\\C:\\canary.png".to_owned(),
            "~/canary.png".to_owned(),
            // NUL and control characters.
            "canary.png\0.png".to_owned(),
            "\0".to_owned(),
            "link.png\n".to_owned(),
            "\u{7f}canary.png".to_owned(),
            // Overlong.
            format!("{}.png", "a".repeat(300)),
            format!("{}/canary.png", "../".repeat(200)),
            "a".repeat(5000),
            // Look-alike dots and slashes.
            "\u{FF0E}\u{FF0E}/canary.png".to_owned(),
            "\u{FF0E}\u{FF0E}\u{FF0F}canary.png".to_owned(),
            "\u{2024}\u{2024}/canary.png".to_owned(),
            "..\u{2215}canary.png".to_owned(),
            "..\u{2044}canary.png".to_owned(),
            "\u{FE52}\u{FE52}/canary.png".to_owned(),
            // Links inside the library that point out of it.
            "link.png".to_owned(),
            "door/canary.png".to_owned(),
            "door".to_owned(),
            format!("{}/link.png", library.display()),
            format!("{}/door/canary.png", library.display()),
            format!("{}/metadata/link.png.json", library.display()),
            // Empty and blank.
            String::new(),
            "   ".to_owned(),
        ];
        names.extend(["", "media://files/"].map(|p| format!("{p}.hidden.png")));
        names
    }
}

/// The code a failed tool result carries (panics on a success).
fn error_code(v: &Value, context: &str) -> String {
    assert_eq!(v["success"], false, "{context}: succeeded: {v}");
    v["error"]["code"].as_str().unwrap().to_owned()
}

/// What a `filename` argument must answer, decided here rather than by
/// the code under test: a name that is not a single plain file name
/// (ASCII letters, digits, `.`, `_`, `-`; no leading dot, no `..`, at
/// most 255 bytes; bare or after `media://files/`, blanks around it
/// ignored) is `INVALID_PARAMETER`; a plain name of no library file (a
/// link planted by hand is not one) is `FILE_NOT_FOUND`.
fn filename_code(name: &str) -> &'static str {
    let name = name.trim();
    let name = name.strip_prefix("media://files/").unwrap_or(name);
    let plain = (1..=255).contains(&name.len())
        && !name.starts_with('.')
        && !name.contains("..")
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    match plain {
        true => "FILE_NOT_FOUND",
        false => "INVALID_PARAMETER",
    }
}

#[tokio::test]
async fn tools_and_resources_refuse_every_hostile_name() {
    let h = start(&[]).await;
    let fence = Fence::new(&h.out);
    // A real file, so the library is not empty.
    let made = structured(&call(&h, "generate_image", json!({"prompt": "a kept file"})).await);
    let rows = catalog_rows(&h).await;
    for name in fence.corpus(&h.out) {
        let want = filename_code(&name);
        for (tool, args) in [
            ("get_file_info", json!({"filename": name})),
            ("delete_file", json!({"filename": name, "confirm": true})),
        ] {
            let v = structured(&call(&h, tool, args).await);
            assert_eq!(
                error_code(&v, &format!("{tool} {name:?}")),
                want,
                "{tool} {name:?}: {v}"
            );
            assert!(!fence.leaked(v.to_string().as_bytes()), "{tool} {name:?}");
        }
        let read = h
            .client
            .read_resource(ReadResourceRequestParams::new(format!(
                "media://files/{name}"
            )))
            .await;
        assert!(read.is_err(), "resources/read {name:?} succeeded");
        fence.assert_untouched(&format!("{name:?}"));
    }
    assert_eq!(catalog_rows(&h).await, rows, "nothing deleted");
    assert!(h.out.join(made["filename"].as_str().unwrap()).exists());
    assert!(std::fs::symlink_metadata(h.out.join("link.png")).is_ok());
}

/// Over HTTP, image references may name only the library and the input
/// roots: every parameter that takes an image refuses the corpus, and no
/// backend call is made with the canary.
#[tokio::test]
async fn image_references_over_http_refuse_every_hostile_path() {
    let roots = tempfile::tempdir().unwrap();
    let mine = roots.path().join("mine.png");
    std::fs::write(&mine, png(32, 32)).unwrap();
    let h = start_with_http_policy(&[("MCP_INPUT_ROOTS", roots.path().to_str().unwrap())]).await;
    let fence = Fence::new(&h.out);
    let mine = mine.display().to_string();
    let before = media_files(&h.out);
    for name in fence.corpus(&h.out) {
        let calls = [
            ("edit_image", json!({"image_path": name, "prompt": "x"})),
            (
                "edit_image",
                json!({"image_path": mine, "prompt": "x", "mask_path": name}),
            ),
            (
                "edit_image",
                json!({"image_path": mine, "prompt": "x", "reference_images": [name]}),
            ),
            (
                "inpaint",
                json!({"image_path": mine, "mask_path": name, "prompt": "x"}),
            ),
            (
                "outpaint",
                json!({"image_path": name, "direction": "left", "prompt": "x"}),
            ),
            ("upscale", json!({"image_path": name})),
            (
                "generate_image",
                json!({"prompt": "x", "reference_images": [name]}),
            ),
            (
                "generate_image_batch",
                json!({"prompts": ["x"], "reference_images": [name]}),
            ),
            ("image_to_video", json!({"image_path": name, "prompt": "x"})),
            (
                "image_to_video",
                json!({"image_path": mine, "prompt": "x", "last_frame": name}),
            ),
            (
                "generate_video",
                json!({"prompt": "x", "reference_images": [name]}),
            ),
        ];
        for (tool, args) in calls {
            let optional = args.get("mask_path").is_some() && tool == "edit_image"
                || args.get("last_frame").is_some();
            if optional && name.trim().is_empty() {
                // A blank optional image is documented as "not given".
                continue;
            }
            let v = structured(&call(&h, tool, args.clone()).await);
            // A batch refuses a shared reference as a whole, or per prompt.
            let v = match v["results"].get(0) {
                Some(first) => first.clone(),
                None => v,
            };
            let code = error_code(&v, &format!("{tool} {args}"));
            assert!(
                code == "INVALID_PARAMETER" || code == "FILE_NOT_FOUND",
                "{tool} {args}: {code}: {v}"
            );
            assert!(!fence.leaked(v.to_string().as_bytes()), "{tool} {name:?}");
        }
        fence.assert_untouched(&format!("{name:?}"));
    }
    assert_eq!(media_files(&h.out), before, "no file made or removed");
}

/// An HTTP server (downloads, uploads, gallery, `/mcp`) over a harness.
async fn serve(h: &Harness) -> (String, CancellationToken) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let service = h.service.clone();
    let make: MakeHandler<MediaServer> =
        Arc::new(move |access| MediaServer::new(service.clone(), access));
    let shutdown = CancellationToken::new();
    let server = Server::new(h.service.clone(), &h.settings)
        .http_server_on(listener, make, &shutdown)
        .unwrap();
    let addr = server.local_addr().unwrap().to_string();
    tokio::spawn(server.run(shutdown.clone()));
    (addr, shutdown)
}

/// One request with exactly this request target (no client-side
/// normalisation of `..` or `%2e`): status and body.
async fn raw(addr: &str, method: &str, target: &str) -> (u16, Vec<u8>) {
    let addr = addr.to_owned();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
    );
    tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(&addr).unwrap();
        s.write_all(request.as_bytes()).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        let head_end = answer
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .map_or(answer.len(), |i| i + 4);
        let status = std::str::from_utf8(&answer[..head_end.min(12)])
            .ok()
            .and_then(|l| l.get(9..12))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        (status, answer[head_end..].to_vec())
    })
    .await
    .unwrap()
}

/// Every byte but unreserved ones percent-encoded: the route sees the
/// name exactly after decoding.
fn encode(name: &str) -> String {
    name.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test]
async fn web_routes_refuse_every_hostile_name() {
    let h = start(&[]).await;
    let fence = Fence::new(&h.out);
    let (addr, shutdown) = serve(&h).await;
    let rows = catalog_rows(&h).await;
    for name in fence.corpus(&h.out) {
        let encoded = encode(&name);
        for (method, route) in [
            ("GET", "/files/"),
            ("DELETE", "/files/"),
            ("GET", "/gallery/api/files/"),
            ("GET", "/gallery/thumbs/"),
        ] {
            // Exactly as decoded by the route: the contract's answer.
            let (status, body) = raw(&addr, method, &format!("{route}{encoded}")).await;
            let context = format!("{method} {route}{encoded} ({name:?})");
            assert!(!fence.leaked(&body), "{context}: leaked");
            if name.is_empty() {
                // No name at all: not this route.
                assert!(matches!(status, 404 | 405), "{context}: {status}");
                continue;
            }
            let v: Value = serde_json::from_slice(&body).unwrap_or_else(|_| {
                panic!("{context}: {status} {}", String::from_utf8_lossy(&body))
            });
            let want = filename_code(&name);
            assert_eq!(v["error"]["code"], want, "{context}: {v}");
            assert_eq!(
                status,
                if want == "FILE_NOT_FOUND" { 404 } else { 400 },
                "{context}"
            );
            // As written, where the request line allows it: whatever the
            // router or the URL rules make of it, nothing leaks.
            if name.bytes().all(|b| b.is_ascii_graphic()) {
                let (status, body) = raw(&addr, method, &format!("{route}{name}")).await;
                assert!(!fence.leaked(&body), "{method} {route}{name}: leaked");
                assert!(
                    matches!(status, 400 | 404 | 405),
                    "{method} {route}{name}: {status}"
                );
            }
        }
        fence.assert_untouched(&format!("{name:?}"));
    }
    // Uploads: a hostile original name is kept only as a label; the file
    // gets a library name inside the library.
    let http = reqwest::Client::new();
    let before = media_files(&h.out).len();
    let hostile_uploads = [
        "../../canary.png",
        "/etc/passwd",
        "..\\..\\x.png",
        "a\0b.png",
    ];
    for name in hostile_uploads {
        let r = http
            .post(format!("http://{addr}/files?name={}", encode(name)))
            .header("content-type", "image/png")
            .body(png(8, 8))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{name:?}");
        let v: Value = r.json().await.unwrap();
        let stored = v["filename"].as_str().unwrap();
        assert_eq!(
            filename_code(stored),
            "FILE_NOT_FOUND",
            "{stored} is a plain name"
        );
        assert!(h.out.join(stored).is_file(), "{stored}");
        let boundary = "XbOuNdArY";
        let mut body = format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{}\"\r\nContent-Type: image/png\r\n\r\n",
            name.replace('\0', "")
        )
        .into_bytes();
        body.extend(png(8, 8));
        body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
        let r = http
            .post(format!("http://{addr}/files"))
            .header(
                "content-type",
                format!("multipart/form-data; boundary={boundary}"),
            )
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "multipart {name:?}");
        let v: Value = r.json().await.unwrap();
        assert!(h.out.join(v["filename"].as_str().unwrap()).is_file());
        fence.assert_untouched(&format!("upload {name:?}"));
    }
    assert_eq!(
        media_files(&h.out).len(),
        before + 2 * hostile_uploads.len()
    );
    assert_eq!(
        catalog_rows(&h).await,
        rows + 2 * hostile_uploads.len() as i64
    );
    shutdown.cancel();
}

/// Rows in the harness's catalog (SQLite or the shared database).
async fn catalog_rows(h: &Harness) -> i64 {
    let page = h
        .library
        .list(&media_gen::store::ListQuery::default())
        .await
        .unwrap();
    page.total as i64
}

/// The error code a shell command printed (`error[CODE]: …`).
fn shell_code(stderr: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(stderr);
    let start = text.find("error[")? + "error[".len();
    let end = text[start..].find(']')? + start;
    Some(text[start..end].to_owned())
}

#[test]
fn shell_commands_refuse_every_hostile_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    // One real file, so the library exists with a catalog.
    let made = bin_in(dir.path())
        .args(["generate", "a kept file", "--emulator", "--json"])
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let fence = Fence::new(&out);
    let kept = media_files(&out);
    for name in fence.corpus(&out) {
        if name.contains('\0') {
            // No process argument can carry a NUL.
            continue;
        }
        for args in [
            vec!["info", name.as_str()],
            vec!["rm", "--yes", name.as_str()],
        ] {
            let r = bin_in(dir.path()).args(&args).output().unwrap();
            assert!(!r.status.success(), "{args:?} succeeded");
            let code = shell_code(&r.stderr);
            assert!(
                matches!(
                    code.as_deref(),
                    Some("FILE_NOT_FOUND" | "INVALID_PARAMETER")
                ),
                "{args:?}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            assert!(
                !fence.leaked(&r.stdout) && !fence.leaked(&r.stderr),
                "{args:?}"
            );
        }
        fence.assert_untouched(&format!("{name:?}"));
    }
    // `edit` from a shell reads any path its user can (like any command):
    // a name that is no readable image is refused with its code, and one
    // that reaches the canary only reads it — the result goes into the
    // library, the canary stays as it was.
    for name in [
        "media://files/../canary.png".to_owned(),
        "..%2fcanary.png".to_owned(),
        "\u{FF0E}\u{FF0E}/canary.png".to_owned(),
        "C:\\Windows\\win.ini".to_owned(),
        "door".to_owned(),
        format!("{}/door/secret.txt", out.display()),
        format!("{}/door/canary.png", out.display()),
    ] {
        let r = bin_in(dir.path())
            .args([
                "edit",
                name.as_str(),
                "make it blue",
                "--emulator",
                "--json",
            ])
            .output()
            .unwrap();
        if r.status.success() {
            let v: Value = serde_json::from_slice(&r.stdout).unwrap();
            let path = PathBuf::from(v["image_path"].as_str().unwrap());
            assert_eq!(
                path.parent().unwrap(),
                out.canonicalize().unwrap(),
                "{name:?}"
            );
        } else {
            let v: Value = serde_json::from_slice(&r.stdout).unwrap_or_else(|_| {
                panic!("edit {name:?}: {}", String::from_utf8_lossy(&r.stderr))
            });
            let code = v["error"]["code"].as_str().unwrap();
            assert!(
                matches!(
                    code,
                    "FILE_NOT_FOUND" | "INVALID_PARAMETER" | "INVALID_IMAGE"
                ),
                "edit {name:?}: {v}"
            );
        }
        fence.assert_untouched(&format!("edit {name:?}"));
    }
    for kept_file in &kept {
        assert!(out.join(kept_file).exists(), "{kept_file} kept");
    }
}
