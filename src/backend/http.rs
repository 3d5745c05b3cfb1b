//! One provider endpoint over HTTP: URLs under its base (keeping any path
//! prefix), its way of sending the key, and calls through the retry loop.

use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use reqwest::Url;
use reqwest::header::HeaderValue;

use super::retry::{self, Attempt};
use super::{BackendConfig, BackendError};

/// Idle keep-alive connections kept per provider host. reqwest keeps every
/// one by default: after a burst of 200 concurrent generations that is ~100
/// idle connections (sockets, buffers, TLS state) held for a minute and a
/// half. A few cover the steady state (one agent's calls, a batch's
/// concurrency); a burst opens what it needs.
pub const POOL_MAX_IDLE_PER_HOST: usize = 4;
/// How long an idle connection is kept: long enough to reuse it between
/// the calls of one task, short enough that a burst's connections go soon
/// (reqwest's default is 90 s).
pub const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(15);

/// The HTTP client for provider calls, with a small, short-lived
/// connection pool: the process's one shared client (every provider uses
/// it), built when first needed — by [`warm`] in the background once the
/// server has answered its first request, or else by the first call.
/// Building it loads the system's TLS roots (every file in
/// `/etc/ssl/certs`, about 8 ms of CPU), which is nothing `initialize`
/// needs.
pub fn client() -> HttpClient {
    HttpClient(None)
}

/// Builds the shared client on a background thread if it is not built
/// yet, so the first provider call does not wait for it.
pub fn warm() {
    if SHARED.get().is_some() {
        return;
    }
    let started = std::thread::Builder::new()
        .name("http-client".into())
        .spawn(|| {
            shared();
        });
    // Without a thread the first call builds it.
    drop(started);
}

static SHARED: OnceLock<reqwest::Client> = OnceLock::new();

fn shared() -> &'static reqwest::Client {
    SHARED.get_or_init(build)
}

fn build() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(POOL_MAX_IDLE_PER_HOST)
        .pool_idle_timeout(POOL_IDLE_TIMEOUT)
        .build()
        // Fails only if the TLS backend cannot start: `Client::default()`
        // (what every provider used before) then stops with that cause.
        .unwrap_or_default()
}

/// A provider's HTTP client: the shared one ([`client`]) or one the caller
/// built. Cheap to clone.
#[derive(Debug, Clone)]
pub struct HttpClient(Option<reqwest::Client>);

impl HttpClient {
    /// The client, built now if it is the shared one and not built yet.
    pub fn get(&self) -> &reqwest::Client {
        self.0.as_ref().unwrap_or_else(|| shared())
    }
}

/// A client built by the caller (tests pass their own).
impl From<reqwest::Client> for HttpClient {
    fn from(client: reqwest::Client) -> Self {
        Self(Some(client))
    }
}

/// How a provider expects its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyStyle {
    /// `Authorization: Bearer KEY` (CLIProxyAPI, OpenAI style).
    Bearer,
    /// `x-goog-api-key: KEY` (Gemini API).
    GoogApiKey,
}

/// A provider's base URL, key, limits and HTTP client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Endpoint {
    cfg: BackendConfig,
    key_style: KeyStyle,
    http: HttpClient,
}

impl Endpoint {
    pub(super) fn new(cfg: BackendConfig, key_style: KeyStyle, http: HttpClient) -> Self {
        Self {
            cfg,
            key_style,
            http,
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.cfg.base_url
    }

    /// `path` under the base URL.
    pub(super) fn url(&self, path: &str) -> Result<Url, BackendError> {
        let base = &self.cfg.base_url;
        // Keep any path prefix of the base URL (e.g. a reverse proxy mount).
        let joined = format!("{}/{path}", base.as_str().trim_end_matches('/'));
        Url::parse(&joined).map_err(|e| BackendError::Failed {
            status: None,
            message: format!("cannot build request URL from `{base}`: {e}"),
        })
    }

    /// POSTs a JSON body, retrying within the timeout; the response body
    /// and the number of attempts.
    pub(super) async fn post_json(
        &self,
        url: &Url,
        body: Bytes,
    ) -> Result<(Bytes, u32), BackendError> {
        retry::run(
            &self.cfg.retry,
            self.cfg.timeout,
            &self.cfg.base_url,
            || {
                let rb = self
                    .http
                    .get()
                    .post(url.clone())
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(body.clone());
                self.send(rb)
            },
        )
        .await
        .map_err(|e| e.redacted(self.cfg.api_key.as_deref()))
    }

    /// GETs, retrying within `min(timeout, cap)`.
    pub(super) async fn get(&self, url: &Url, cap: Duration) -> Result<Bytes, BackendError> {
        let timeout = self.cfg.timeout.min(cap);
        let (body, _) = retry::run(&self.cfg.retry, timeout, &self.cfg.base_url, || {
            self.send(self.http.get().get(url.clone()))
        })
        .await
        .map_err(|e| e.redacted(self.cfg.api_key.as_deref()))?;
        Ok(body)
    }

    /// A finished video's bytes: in the answer already, or downloaded.
    pub(super) async fn fetch_sample(
        &self,
        sample: &super::VideoSample,
        cap: Duration,
    ) -> Result<Bytes, BackendError> {
        match sample {
            super::VideoSample::Inline(bytes) => Ok(bytes.clone()),
            super::VideoSample::Uri(uri) => {
                let url = Url::parse(uri).map_err(|e| super::wire::malformed("video uri", e))?;
                self.download(&url, cap).await
            }
        }
    }

    /// GETs a file the provider pointed to (a video sample), retrying
    /// within `min(timeout, cap)` and following redirects. The key goes only
    /// to the provider's own host: a URL elsewhere gets no credentials.
    pub(super) async fn download(&self, url: &Url, cap: Duration) -> Result<Bytes, BackendError> {
        let base = &self.cfg.base_url;
        let own = url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default();
        let timeout = self.cfg.timeout.min(cap);
        let (body, _) = retry::run(&self.cfg.retry, timeout, base, || {
            self.send_as(self.http.get().get(url.clone()), own)
        })
        .await
        .map_err(|e| match e {
            // A missing file is not an unknown model.
            BackendError::InvalidModel { message, .. } => BackendError::Failed {
                status: Some(404),
                message,
            },
            e => e,
        })
        .map_err(|e| e.redacted(self.cfg.api_key.as_deref()))?;
        Ok(body)
    }

    async fn send(&self, rb: reqwest::RequestBuilder) -> Result<Bytes, Attempt> {
        self.send_as(rb, true).await
    }

    /// Sends `rb`, with the key when `with_key`.
    async fn send_as(&self, rb: reqwest::RequestBuilder, with_key: bool) -> Result<Bytes, Attempt> {
        let rb = match (&self.cfg.api_key, self.key_style, with_key) {
            (Some(k), KeyStyle::Bearer, true) => rb.bearer_auth(k),
            (Some(k), KeyStyle::GoogApiKey, true) => match HeaderValue::from_str(k) {
                // Sensitive, as `bearer_auth` makes its header: never shown
                // in a request's debug output.
                Ok(mut v) => {
                    v.set_sensitive(true);
                    rb.header("x-goog-api-key", v)
                }
                Err(_) => rb.header("x-goog-api-key", k),
            },
            _ => rb,
        };
        retry::send(rb).await
    }
}
