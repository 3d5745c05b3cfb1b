//! `media-gen doctor`: whether media-gen can work as configured, one line
//! per check — the configuration and where its values came from, the
//! output directory, each backend in use and its key, the models it
//! offers, video, the HTTP port — with the fix under each line that needs
//! one.
//!
//! The checks that do I/O run at the same time, each bounded by a few
//! seconds: a refused connection answers at once and a silent host gives up
//! after [`PROBE_TIMEOUT`], never the request timeout. Backends are asked
//! through the clients that generate (their model-list request, one
//! attempt), so a check passes exactly when those clients would get
//! through. The library is opened the way every command opens it (created
//! if missing, a probe file written and removed, the catalog opened).
//!
//! Marks: `✓` works, `✗` does not (exit status 1), `!` works but needs a
//! look, `–` not configured or not in use (nothing is broken).

use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use reqwest::Url;

use super::{AppError, cli};
use crate::backend::cliproxy::ChatCompletions;
use crate::backend::gemini::GenerateContent;
use crate::backend::{Backend, BackendError, HttpImages, ImageProvider, ImageWire, RetryPolicy};
use crate::config::{
    HttpSettings, ImageBackendKind, LibrarySettings, Origin, Provenance, REDACTED, Secret,
    Settings, VideoBackendKind,
};
use crate::domain;
use crate::store::ListQuery;
use crate::store::local::LocalStore;

/// How long one backend check may take.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long the port check waits for `/healthz` of whatever holds the port.
const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(2);
/// Below this much free space saves will soon fail.
const FAIL_BELOW_BYTES: u64 = 100 << 20;
/// Below this much free space, say so.
const WARN_BELOW_BYTES: u64 = 1 << 30;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Works.
    Ok,
    /// Works, but something needs a look.
    Warn,
    /// Does not work: `doctor` exits 1.
    Fail,
    /// Not configured or not in use; nothing is broken.
    Skip,
}

impl Status {
    fn mark(self) -> &'static str {
        match self {
            Self::Ok => "✓",
            Self::Warn => "!",
            Self::Fail => "✗",
            Self::Skip => "–",
        }
    }
}

/// One line of the report, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub status: Status,
    pub text: String,
    /// The next step, printed under the line.
    pub fix: Option<String>,
}

impl Check {
    fn ok(text: impl Into<String>) -> Self {
        Self {
            status: Status::Ok,
            text: text.into(),
            fix: None,
        }
    }

    fn with(status: Status, text: impl Into<String>, fix: impl Into<String>) -> Self {
        Self {
            status,
            text: text.into(),
            fix: Some(fix.into()),
        }
    }
}

/// `media-gen doctor`: prints the checks; an error (exit status 1) if any
/// failed. With `emulator`, the backends are the built-in emulator.
pub async fn run(mut settings: Settings, emulator: bool) -> Result<(), AppError> {
    let _emulator = match emulator {
        true => Some(super::attach_emulator(&mut settings.backend).await?),
        false => None,
    };
    let mut checks = Vec::new();
    if let Some(handle) = &_emulator {
        // The backends' addresses (and the Gemini key, if none was set)
        // now come from `--emulator`.
        let emulated = Origin::Flag("--emulator");
        let prov = &mut settings.provenance;
        if prov.origin("gemini_api_key") == Origin::Default {
            prov.replace(
                "gemini_api_key",
                Some(REDACTED.to_owned()),
                emulated.clone(),
            );
        }
        for key in ["cliproxy_url", "gemini_url"] {
            prov.replace(key, Some(handle.base_url()), emulated.clone());
        }
        checks.push(Check::with(
            Status::Skip,
            format!(
                "backends: the built-in emulator at `{}` (`--emulator`), not CLIProxyAPI or Google",
                handle.base_url()
            ),
            "run without `--emulator` to check the real backends",
        ));
    }
    checks.extend(checks_for(&settings).await);
    cli::print(&render(&checks))?;
    match checks.iter().filter(|c| c.status == Status::Fail).count() {
        0 => Ok(()),
        failed => Err(AppError::ChecksFailed { failed }),
    }
}

/// Every check for `settings`, in the order they are shown.
pub async fn checks_for(settings: &Settings) -> Vec<Check> {
    let prov = &settings.provenance;
    let shared = &settings.library.shared;
    let local_needed = shared.storage_url.is_none() || shared.database_url.is_none();
    let (library, storage, database, backends, port) = tokio::join!(
        async {
            match local_needed {
                true => Some(output_dir(&settings.library, prov).await),
                false => None,
            }
        },
        object_storage(&settings.library),
        database(&settings.library),
        backends(settings),
        http_port(settings),
    );
    let mut checks = configuration(settings);
    checks.extend(library);
    checks.extend(storage);
    checks.extend(database);
    checks.extend(backends);
    checks.push(port);
    checks.extend(exposure(settings));
    checks
}

/// The report as printed: a line per check, the fix indented under it,
/// and a summary.
pub fn render(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(out, "{} {}", c.status.mark(), c.text);
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "  → {fix}");
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    let (failed, warned) = (count(Status::Fail), count(Status::Warn));
    let _ = match (failed, warned) {
        (0, 0) => writeln!(out, "all checks passed"),
        (0, w) => writeln!(out, "all checks passed ({w} to look at: `!`)"),
        (f, _) => writeln!(
            out,
            "{f} {} failed (`✗`): fix {} and run `media-gen doctor` again",
            plural(f, "check", "checks"),
            plural(f, "it", "them")
        ),
    };
    out
}

fn plural<'a>(n: usize, one: &'a str, many: &'a str) -> &'a str {
    if n == 1 { one } else { many }
}

/// The configuration loaded (it would not have otherwise: `doctor` never
/// runs on a refused one), what set it, and values accepted with a correction.
fn configuration(settings: &Settings) -> Vec<Check> {
    let prov = &settings.provenance;
    let (mut env, mut flags) = (Vec::new(), Vec::new());
    for s in &prov.settings {
        let (list, name) = match s.origin {
            Origin::Env(var) => (&mut env, var),
            Origin::Flag(flag) => (&mut flags, flag),
            Origin::Default | Origin::File(_) => continue,
        };
        let name = format!("`{name}`");
        if !list.contains(&name) {
            list.push(name);
        }
    }
    let mut parts = vec![match &prov.file {
        Some(f) => format!("config file `{}`", f.display()),
        None => "no config file".to_owned(),
    }];
    for (label, list) in [("environment", env), ("flags", flags)] {
        if !list.is_empty() {
            parts.push(format!("from the {label}: {}", list.join(", ")));
        }
    }
    let mut checks = vec![Check::ok(format!(
        "configuration: valid ({}); `media-gen config` shows every value and its origin",
        parts.join("; ")
    ))];
    checks.extend(prov.notes.iter().map(|n| {
        Check::with(
            Status::Warn,
            n.message.clone(),
            format!("set {} to `{}`", prov.where_to_set(n.setting), n.value),
        )
    }));
    checks
}

/// The object store of `MCP_STORAGE_URL` answers and takes a write (the
/// probe object every replica's `/readyz` writes); `None` when the files
/// are in the output directory.
async fn object_storage(settings: &LibrarySettings) -> Option<Check> {
    let url = settings.shared.storage_url.as_ref()?;
    let endpoint = settings.shared.storage_endpoint.as_ref().map(Url::as_str);
    let named = match endpoint {
        Some(e) => format!("object storage `{url}` at `{e}`"),
        None => format!("object storage `{url}`"),
    };
    let fix = "check `MCP_STORAGE_URL` (the bucket must exist), `MCP_STORAGE_ENDPOINT` for an S3-compatible server, and the credentials (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`); see docs/deploy.md";
    let media = match crate::store::object::ObjectMedia::from_url(url.as_str(), endpoint) {
        Ok(m) => m,
        Err(e) => return Some(Check::with(Status::Fail, format!("{named}: {e}"), fix)),
    };
    let checked = tokio::time::timeout(
        crate::store::object::READY_TIMEOUT + Duration::from_secs(1),
        crate::store::MediaStore::ready(&media),
    )
    .await;
    Some(match checked {
        Ok(Ok(())) => Check::ok(format!("{named}: reachable and writable")),
        Ok(Err(e)) => Check::with(Status::Fail, format!("{named}: {e}"), fix),
        Err(_) => Check::with(
            Status::Fail,
            format!(
                "{named}: no answer within {} s",
                crate::store::object::READY_TIMEOUT.as_secs() + 1
            ),
            fix,
        ),
    })
}

/// The database of `MCP_DATABASE_URL` answers and its schema is current;
/// `None` when the catalog is SQLite in the output directory.
async fn database(settings: &LibrarySettings) -> Option<Check> {
    use crate::store::postgres;
    let url = settings.shared.database_url.as_ref()?;
    let fix = "check `MCP_DATABASE_URL` (postgres://user:password@host:5432/db), that the server runs and takes connections from here, and the user's rights; see docs/deploy.md";
    let named = postgres::location_of(url.expose())
        .map(|l| format!("database `{l}`"))
        .unwrap_or_else(|| "database (`MCP_DATABASE_URL`)".to_owned());
    // A connection, and the schema's version read through it.
    let probe = postgres::pending_migrations(url.expose());
    Some(match tokio::time::timeout(PROBE_TIMEOUT * 3, probe).await {
        Err(_) => Check::with(
            Status::Fail,
            format!(
                "{named}: no answer within {} s",
                PROBE_TIMEOUT.as_secs() * 3
            ),
            fix,
        ),
        Ok(Err(e)) => Check::with(Status::Fail, format!("{named}: {e}"), fix),
        Ok(Ok(pending)) if pending.is_empty() => {
            Check::ok(format!("{named}: answers, schema up to date"))
        }
        Ok(Ok(pending)) => Check::with(
            Status::Warn,
            format!(
                "{named}: answers; {} migration(s) to apply ({})",
                pending.len(),
                pending.join(", ")
            ),
            "run `media-gen migrate` (servers also apply them at start)",
        ),
    })
}

/// The output directory opens as every command opens it, has room, and
/// its catalog answers.
async fn output_dir(settings: &LibrarySettings, prov: &Provenance) -> Check {
    let dir = settings.output_dir.clone();
    let named = format!(
        "output directory `{}` ({})",
        dir.display(),
        settings.output_dir_origin
    );
    let fix = || {
        format!(
            "make `{}` a directory you can write, or set {} to one",
            dir.display(),
            prov.where_to_set("output_dir")
        )
    };
    let opened = tokio::task::spawn_blocking({
        let dir = dir.clone();
        move || {
            let existed = dir.is_dir();
            LocalStore::open(&dir).map(|store| (store, existed, free_bytes(&dir)))
        }
    })
    .await;
    let (store, existed, free) = match opened {
        Ok(Ok(opened)) => opened,
        Ok(Err(e)) => return Check::with(Status::Fail, format!("{named}: {e}"), fix()),
        Err(e) => return Check::with(Status::Fail, format!("{named}: {e}"), fix()),
    };
    let catalog = match store
        .library()
        .list(&ListQuery {
            limit: 1,
            ..ListQuery::default()
        })
        .await
    {
        Ok(page) => format!(
            "catalog opens ({} {})",
            page.total,
            plural(page.total as usize, "file", "files")
        ),
        Err(e) => {
            return Check::with(
                Status::Fail,
                format!("{named}: the catalog does not answer: {e}"),
                format!(
                    "move `{}` aside (it is rebuilt from the files at the next start)",
                    dir.join(crate::store::local::CATALOG_FILE).display()
                ),
            );
        }
    };
    let created = if existed { "" } else { "created, " };
    let Some(free) = free else {
        return Check::ok(format!(
            "{named}: {created}writable, {catalog}; free space unknown"
        ));
    };
    let text = format!(
        "{named}: {created}writable, {} free, {catalog}",
        gigabytes(free)
    );
    match free {
        f if f < FAIL_BELOW_BYTES => Check::with(
            Status::Fail,
            text,
            "free some space there (a 4K image is about 20 MB, a video 10–50 MB), or point the library elsewhere",
        ),
        f if f < WARN_BELOW_BYTES => Check::with(
            Status::Warn,
            text,
            "little room left: free some space, or set `MCP_CLEANUP_MAX_TOTAL_BYTES` to keep the library smaller",
        ),
        _ => Check::ok(text),
    }
}

/// Bytes an unprivileged user may still write on the file system of `dir`.
fn free_bytes(dir: &Path) -> Option<u64> {
    let st = rustix::fs::statvfs(dir).ok()?;
    st.f_bavail.checked_mul(st.f_frsize)
}

fn gigabytes(bytes: u64) -> String {
    format!("{:.1} GB", bytes as f64 / 1e9)
}

/// A backend asked for its model list: the answer, or why there is none.
struct Probe {
    backend: Backend,
    url: Url,
    result: Result<Vec<String>, BackendError>,
}

impl Probe {
    fn name(&self) -> &'static str {
        match self.backend {
            Backend::CliProxy => "CLIProxyAPI",
            Backend::Gemini => "Gemini API",
        }
    }

    /// The settings of its URL and key.
    fn settings(&self) -> (&'static str, &'static str) {
        match self.backend {
            Backend::CliProxy => ("cliproxy_url", "cliproxy_api_key"),
            Backend::Gemini => ("gemini_url", "gemini_api_key"),
        }
    }
}

/// Asks the backend at `url` for its model list, through the client that
/// generates, once, within [`PROBE_TIMEOUT`].
async fn probe<W: ImageWire>(url: &Url, key: &Option<Secret>) -> Result<Vec<String>, BackendError> {
    let config = super::endpoint_config(
        url,
        key,
        PROBE_TIMEOUT,
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        },
    );
    HttpImages::<W>::new(config, crate::backend::http_client())
        .list_models()
        .await
}

/// The backends in use: reachable, the key accepted, the models media-gen
/// needs offered; and video.
async fn backends(settings: &Settings) -> Vec<Check> {
    let b = &settings.backend;
    let prov = &settings.provenance;
    let uses_cliproxy = b.image_backend == ImageBackendKind::CliProxy
        || b.video_backend == VideoBackendKind::CliProxy;
    let uses_gemini =
        b.image_backend == ImageBackendKind::Gemini || b.video_backend == VideoBackendKind::Gemini;
    let cliproxy = async {
        match uses_cliproxy {
            true => Some(Probe {
                backend: Backend::CliProxy,
                url: b.cliproxy_url.clone(),
                result: probe::<ChatCompletions>(&b.cliproxy_url, &b.cliproxy_api_key).await,
            }),
            false => None,
        }
    };
    // Without a key the Gemini API is not asked: it would refuse.
    let gemini = async {
        match (uses_gemini, &b.gemini_api_key) {
            (true, Some(_)) => Some(Probe {
                backend: Backend::Gemini,
                url: b.gemini_url.clone(),
                result: probe::<GenerateContent>(&b.gemini_url, &b.gemini_api_key).await,
            }),
            _ => None,
        }
    };
    let (cliproxy, gemini) = tokio::join!(cliproxy, gemini);
    let mut checks = Vec::new();
    if !uses_cliproxy {
        checks.push(Check {
            status: Status::Skip,
            text: "CLIProxyAPI: not in use (images and video both go to the Gemini API)".into(),
            fix: None,
        });
    }
    for p in [&cliproxy, &gemini].into_iter().flatten() {
        checks.push(reachable(p, prov));
    }
    let image_probe = match b.image_backend {
        ImageBackendKind::CliProxy => cliproxy.as_ref(),
        ImageBackendKind::Gemini => gemini.as_ref(),
    };
    match image_probe {
        Some(p) => checks.extend(image_models(p, settings)),
        None => checks.push(Check::with(
            Status::Fail,
            "images: `image_backend` is `gemini` but no Gemini API key is set",
            format!(
                "set {} to a Google AI Studio key, or {} to `cliproxy`",
                prov.where_to_set("gemini_api_key"),
                prov.where_to_set("image_backend")
            ),
        )),
    }
    let video_probe = match b.video_backend {
        VideoBackendKind::CliProxy => cliproxy.as_ref(),
        VideoBackendKind::Gemini => gemini.as_ref(),
    };
    checks.extend(video(video_probe, settings));
    checks
}

/// Whether the backend answered and took the key; the fix when not.
fn reachable(p: &Probe, prov: &Provenance) -> Check {
    let name = p.name();
    let url = p.url.as_str().trim_end_matches('/');
    let (url_setting, key_setting) = p.settings();
    let at = format!("{name} at `{url}` ({})", prov.origin(url_setting));
    let set_url = prov.where_to_set(url_setting);
    let set_key = prov.where_to_set(key_setting);
    let key_from = match prov.origin(key_setting) {
        Origin::Default => "the default key".to_owned(),
        origin => format!("the key from {origin}"),
    };
    let (start, example, new_key) = match p.backend {
        Backend::CliProxy => (
            "start CLIProxyAPI (it listens on `http://127.0.0.1:8317` by default)",
            "http://127.0.0.1:8317",
            format!("set {set_key} to one of the `api-keys` in CLIProxyAPI's `config.yaml`"),
        ),
        Backend::Gemini => (
            "check the network",
            "https://generativelanguage.googleapis.com",
            format!("set {set_key} to a valid Gemini API key from Google AI Studio"),
        ),
    };
    match &p.result {
        Ok(_) => Check::ok(format!("{at}: answers, {key_from} accepted")),
        Err(BackendError::Unavailable { reason, .. }) => Check::with(
            Status::Fail,
            format!("{at}: cannot connect ({reason})"),
            format!(
                "{start}, or set {set_url} to where it listens; `media-gen doctor --emulator` checks the rest offline"
            ),
        ),
        Err(BackendError::Timeout { .. }) => Check::with(
            Status::Fail,
            format!("{at}: no answer within {} s", PROBE_TIMEOUT.as_secs()),
            format!("check that {set_url} points at {name} and that it is not stuck"),
        ),
        Err(BackendError::AuthFailed { status, message }) => Check::with(
            Status::Fail,
            format!("{at} refused {key_from}: HTTP {status}: {message}"),
            new_key,
        ),
        Err(e)
            if e.http_status() == Some(404) || matches!(e, BackendError::InvalidModel { .. }) =>
        {
            Check::with(
                Status::Fail,
                format!("{at}: no model list there (HTTP 404): not a {name} base URL"),
                format!("set {set_url} to the server's address without a path, e.g. `{example}`"),
            )
        }
        Err(e) => Check::with(
            Status::Fail,
            format!("{at}: {e}"),
            format!("check that {set_url} points at {name} and look at its log"),
        ),
    }
}

/// Which of media-gen's image models the image backend offers, and
/// whether the default is among them.
fn image_models(p: &Probe, settings: &Settings) -> Option<Check> {
    let listed = p.result.as_ref().ok()?;
    let offered: Vec<&str> = domain::IMAGE_MODELS
        .iter()
        .map(|m| m.id)
        .filter(|id| listed.iter().any(|l| l == id))
        .collect();
    let default = settings.generation.default_model;
    let prov = &settings.provenance;
    Some(if offered.is_empty() {
        Check::with(
            Status::Fail,
            format!(
                "image models: {} offers none of media-gen's ({})",
                p.name(),
                domain::image_model_ids().join(", ")
            ),
            match p.backend {
                Backend::CliProxy => {
                    "give CLIProxyAPI a Gemini account (log in through it) or a Gemini API key, then run `media-gen doctor` again"
                }
                Backend::Gemini => "use a Gemini API key with access to the image models",
            },
        )
    } else if !offered.contains(&default) {
        Check::with(
            Status::Fail,
            format!(
                "image models: {} offers {}, but not the default `{default}` ({})",
                p.name(),
                offered.join(", "),
                prov.origin("default_model")
            ),
            format!(
                "set {} to one of: {}",
                prov.where_to_set("default_model"),
                offered.join(", ")
            ),
        )
    } else {
        Check::ok(format!(
            "image models: {} offers {} (default `{default}`)",
            p.name(),
            offered.join(", ")
        ))
    })
}

/// Whether videos can be made: the video backend answered (its failure is
/// already a line of its own) and offers a video model; or, for Veo without
/// a key, that video is simply not set up.
fn video(p: Option<&Probe>, settings: &Settings) -> Option<Check> {
    let prov = &settings.provenance;
    let default = settings.video.default_model;
    match (settings.backend.video_backend, p) {
        (VideoBackendKind::Gemini, None) => {
            // Chosen on purpose, a missing key is a failure; by default,
            // video is just not set up and images work without it.
            let chosen = prov.origin("video_backend") != Origin::Default;
            let status = if chosen { Status::Fail } else { Status::Skip };
            Some(Check::with(
                status,
                "video: no Gemini API key, so the video tools are unavailable (images work without it)",
                format!(
                    "to make videos, set {} to a Google AI Studio key with Veo access, or {} to `cliproxy`",
                    prov.where_to_set("gemini_api_key"),
                    prov.where_to_set("video_backend")
                ),
            ))
        }
        (VideoBackendKind::Gemini, Some(p)) => p.result.as_ref().ok().map(|_| {
            Check::ok(format!(
                "video: Veo through the Gemini API (default model `{default}`; Veo needs a paid tier, which only a video call shows)"
            ))
        }),
        (VideoBackendKind::CliProxy, p) => {
            let listed = p?.result.as_ref().ok()?;
            let offered: Vec<&str> = domain::VIDEO_MODELS
                .iter()
                .filter(|m| m.provider == domain::VideoProvider::CliProxy)
                .map(|m| m.id)
                .filter(|id| listed.iter().any(|l| l == id))
                .collect();
            Some(match offered.is_empty() {
                true => Check::with(
                    Status::Fail,
                    "video: `video_backend` is `cliproxy` but CLIProxyAPI offers no video model media-gen knows (`grok-imagine-video`)",
                    format!(
                        "give CLIProxyAPI an xAI (Grok) account, or set {} to `gemini` with a Gemini API key",
                        prov.where_to_set("video_backend")
                    ),
                ),
                false => Check::ok(format!("video: CLIProxyAPI offers {}", offered.join(", "))),
            })
        }
    }
}

/// Whether `serve` could listen on the HTTP address. A port held by a
/// running media-gen is fine (that is the server); held by anything else,
/// it fails when `serve` would use HTTP and is a warning otherwise.
async fn http_port(settings: &Settings) -> Check {
    let http = &settings.http;
    let prov = &settings.provenance;
    let addr = SocketAddr::new(http.host, http.port);
    let uses_http = settings.server.transport.uses_http();
    let (bad, unused) = match uses_http {
        true => (Status::Fail, ""),
        false => (
            Status::Warn,
            " (only `serve --transport http|sse|dual` listens there)",
        ),
    };
    let set_port = prov.where_to_set("http_port");
    let set_host = prov.where_to_set("http_host");
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            Check::ok(match http.port {
                0 => format!("HTTP `{}`: any free port will do{unused}", http.host),
                _ => format!("HTTP port `{addr}`: free{unused}"),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => match healthz(http).await {
            Some(version) => Check::ok(format!(
                "HTTP port `{addr}`: a media-gen {version} is serving there"
            )),
            None => Check::with(
                bad,
                format!("HTTP port `{addr}`: in use by another program{unused}"),
                format!("set {set_port} to a free port, or stop what holds `{addr}`"),
            ),
        },
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => Check::with(
            bad,
            format!("HTTP port `{addr}`: not allowed to listen there ({e}){unused}"),
            format!("set {set_port} to a port above 1023"),
        ),
        Err(e) if e.kind() == std::io::ErrorKind::AddrNotAvailable => Check::with(
            bad,
            format!(
                "HTTP host `{}`: not an address of this machine ({e}){unused}",
                http.host
            ),
            format!(
                "set {set_host} to `127.0.0.1` (this machine only) or `0.0.0.0` (every interface, with `MCP_HTTP_TOKEN`)"
            ),
        ),
        Err(e) => Check::with(
            bad,
            format!("HTTP `{addr}`: cannot listen ({e}){unused}"),
            format!("set {set_host} and {set_port} to an address and port this machine can use"),
        ),
    }
}

/// The version of the media-gen answering `/healthz` on the HTTP address,
/// if one does.
async fn healthz(http: &HttpSettings) -> Option<String> {
    let host = match http.host {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
        other => other,
    };
    let url = format!("http://{}/healthz", SocketAddr::new(host, http.port));
    let client = reqwest::Client::builder()
        .timeout(HEALTHZ_TIMEOUT)
        .build()
        .ok()?;
    let body: serde_json::Value = client.get(url).send().await.ok()?.json().await.ok()?;
    (body["service"] == "media-gen").then(|| body["version"].as_str().unwrap_or("").to_owned())
}

/// An HTTP server open beyond this machine without a token.
fn exposure(settings: &Settings) -> Option<Check> {
    let http = &settings.http;
    let open =
        settings.server.transport.uses_http() && !http.host.is_loopback() && http.token.is_none();
    open.then(|| {
        Check::with(
            Status::Warn,
            format!(
                "HTTP listens on `{}` without a token: anyone who reaches the port can generate with your keys",
                http.host
            ),
            format!(
                "set {} (e.g. `openssl rand -hex 32`), or {} to `127.0.0.1`",
                settings.provenance.where_to_set("http_token"),
                settings.provenance.where_to_set("http_host")
            ),
        )
    })
}
