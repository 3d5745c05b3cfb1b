//! [`MediaStore`] over object storage (S3 and S3-compatible servers, Google
//! Cloud Storage, Azure Blob Storage) through the `object_store` crate.
//!
//! The layout under the key prefix mirrors the local directory's: media at
//! `<prefix>/<name>`, sidecars at `<prefix>/metadata/<name>.json`, renditions
//! beside them (`<prefix>/metadata/<name>.thumb`). Sidecars stay the truth.
//!
//! New media and sidecars are conditional creates (`PutMode::Create`: S3's
//! `If-None-Match: *`), so two writers of one name never overwrite each
//! other: exactly one wins. Every put is one request and atomic (no
//! multipart upload), so there are no unfinished objects to sweep. Reads of
//! a range use ranged GETs. With presigning on, [`MediaStore::download_url`]
//! hands out a presigned GET URL, so clients can fetch a file straight from
//! the store.
//!
//! The client retries briefly (a few attempts within seconds), so an
//! unreachable store makes a call fail in seconds rather than minutes, and
//! [`MediaStore::ready`] answers within [`READY_TIMEOUT`] whatever the
//! network does.

#[cfg(test)]
mod tests;

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ClientConfigKey, GetOptions, GetRange,
    ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
};

use super::local::METADATA_DIR;
use super::{MediaId, MediaStore, ObjectMeta, Rendition, StoreError};

/// The setting that names the store (for messages).
const URL_SETTING: &str = "MCP_STORAGE_URL";
/// The setting that overrides the store's endpoint (for messages).
const ENDPOINT_SETTING: &str = "MCP_STORAGE_ENDPOINT";
/// What [`URL_SETTING`] accepts, for messages.
const ACCEPTED: &str = "s3://BUCKET[/PREFIX], gs://BUCKET[/PREFIX] or az://CONTAINER[/PREFIX]";

/// How long [`MediaStore::ready`] waits for the store before saying it is
/// not ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Name of the object [`MediaStore::ready`] writes and removes under the
/// prefix. Not a valid media name (it starts with a dot), so listings never
/// take it for a file.
const PROBE: &str = ".media-gen-ready";

/// How many sidecars [`MediaStore::put_sidecars`] writes at once.
const CONCURRENCY: usize = 16;

/// Media bytes and sidecars as objects under a key prefix. Cheap to clone.
#[derive(Clone)]
pub struct ObjectMedia {
    store: Arc<dyn ObjectStore>,
    /// Makes presigned URLs, when the store can (the ones [`Self::from_url`] builds).
    signer: Option<Arc<dyn Signer>>,
    /// Whether [`MediaStore::download_url`] hands out presigned URLs.
    presign: bool,
    /// Media are `prefix/<name>`.
    prefix: Path,
    /// `prefix/metadata`: sidecars and renditions.
    meta: Path,
}

impl std::fmt::Debug for ObjectMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectMedia")
            .field("store", &self.store.to_string())
            .field("prefix", &self.prefix.as_ref())
            .field("presign", &self.presign)
            .finish()
    }
}

/// Errors of the URL or endpoint settings.
fn setting(setting: &'static str, problem: impl Into<String>) -> StoreError {
    StoreError::Setting {
        setting,
        problem: problem.into(),
    }
}

/// The error of an object operation on `key`. A missing bucket or container
/// answers 404 like a missing object; it is not "no such file" (every name
/// would be missing), so it is not reported as [`object_store::Error::NotFound`].
fn object_err(key: &Path) -> impl FnOnce(object_store::Error) -> StoreError + '_ {
    move |source| {
        let source = match source {
            object_store::Error::NotFound { path, source }
                if ["NoSuchBucket", "ContainerNotFound"]
                    .iter()
                    .any(|code| source.to_string().contains(code)) =>
            {
                // The answer without its XML body: the request and the status.
                let chain = error_chain(source.as_ref());
                let answer = chain
                    .split("<?xml")
                    .next()
                    .unwrap_or_default()
                    .trim_end_matches([':', ' ', '\n']);
                object_store::Error::Generic {
                    store: "object storage",
                    source: format!(
                        "the bucket or container of `{path}` does not exist ({answer})"
                    )
                    .into(),
                }
            }
            other => other,
        };
        StoreError::Object {
            key: key.to_string(),
            source,
        }
    }
}

/// An error and its causes, as one line. Many errors already show their
/// source in their own message: a cause is added only when it says
/// something new (the refused connection under "error sending request").
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        let text = s.to_string();
        if !out.contains(&text) {
            let _ = write!(out, ": {text}");
        }
        next = s.source();
    }
    out
}

/// How the store is configured: from the process environment (the usual
/// variables of each cloud), or from explicit options (tests, embedders).
enum Config<'a> {
    Env,
    Options(&'a [(&'a str, &'a str)]),
}

impl Config<'_> {
    /// Applies explicit options with `with_config`; an unknown key is an error.
    fn apply<B, K: std::str::FromStr>(
        &self,
        from_env: impl FnOnce() -> B,
        new: impl FnOnce() -> B,
        with: impl Fn(B, K, &str) -> B,
    ) -> Result<B, StoreError> {
        match self {
            Self::Env => Ok(from_env()),
            Self::Options(options) => options.iter().try_fold(new(), |b, (key, value)| {
                let k = key
                    .to_ascii_lowercase()
                    .parse::<K>()
                    .map_err(|_| setting(URL_SETTING, format!("unknown storage option `{key}`")))?;
                Ok(with(b, k, value))
            }),
        }
    }
}

/// Retries: a few, quickly. object_store's default (10 retries, backoff up
/// to 15 s, 3 minutes in all) would hold a save for minutes when the store
/// is down; this gives up within seconds and says why.
fn retry_config() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            base: 2.0,
        },
        max_retries: 4,
        retry_timeout: Duration::from_secs(20),
    }
}

/// The MIME type a stored object is served with (presigned downloads), from
/// the name's extension.
fn content_type(name: &str) -> &'static str {
    let ext = name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        "mov" => "video/quicktime",
        "json" => "application/json",
        _ => "application/octet-stream",
    }
}

impl ObjectMedia {
    /// Media under `prefix` (`""` for the bucket's top) in `store`. Without
    /// a signer: [`MediaStore::download_url`] gives `None`.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Result<Self, StoreError> {
        let prefix = Path::parse(prefix.trim_matches('/'))
            .map_err(|e| setting(URL_SETTING, format!("the key prefix is not valid: {e}")))?;
        Ok(Self::at(store, None, prefix))
    }

    fn at(store: Arc<dyn ObjectStore>, signer: Option<Arc<dyn Signer>>, prefix: Path) -> Self {
        let meta = prefix.clone().join(METADATA_DIR);
        Self {
            store,
            signer,
            presign: false,
            prefix,
            meta,
        }
    }

    /// The store named by `url` (`s3://bucket/prefix`, `gs://bucket/prefix`,
    /// `az://container/prefix`), with credentials, region and the rest from
    /// the usual environment variables of each cloud (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, `AWS_REGION`,
    /// `AWS_ENDPOINT_URL`, `AWS_TIMEOUT` …; `GOOGLE_SERVICE_ACCOUNT` …;
    /// `AZURE_STORAGE_ACCOUNT_NAME`, `AZURE_STORAGE_ACCOUNT_KEY` …).
    ///
    /// `endpoint` (an S3-compatible server, an emulator) overrides the
    /// endpoint; with it, S3 requests are path-style (`endpoint/bucket/key`)
    /// and a plain `http://` endpoint is allowed. Makes no request.
    pub fn from_url(url: &str, endpoint: Option<&str>) -> Result<Self, StoreError> {
        Self::build(url, endpoint, &Config::Env)
    }

    /// [`Self::from_url`] with the store's options given as `(key, value)`
    /// pairs (the environment variables' names, or the crate's own keys such
    /// as `aws_access_key_id`) instead of read from the environment.
    pub fn from_url_opts(
        url: &str,
        endpoint: Option<&str>,
        options: &[(&str, &str)],
    ) -> Result<Self, StoreError> {
        Self::build(url, endpoint, &Config::Options(options))
    }

    /// Hands out presigned download URLs ([`MediaStore::download_url`]) when
    /// `on` and the store can sign.
    pub fn with_presigned(mut self, on: bool) -> Self {
        self.presign = on;
        self
    }

    /// Where the media are, as `store/prefix` (no credential), for messages.
    pub fn location(&self) -> String {
        format!("{}/{}", self.store, self.prefix)
    }

    fn build(url: &str, endpoint: Option<&str>, config: &Config<'_>) -> Result<Self, StoreError> {
        let parsed = url::Url::parse(url).map_err(|e| {
            setting(
                URL_SETTING,
                format!("is not a storage URL ({e}); use {ACCEPTED}"),
            )
        })?;
        if !parsed.password().unwrap_or_default().is_empty() || parsed.query().is_some() {
            return Err(setting(
                URL_SETTING,
                "carries credentials or options; give credentials in the environment \
                 (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, GOOGLE_SERVICE_ACCOUNT, \
                 AZURE_STORAGE_ACCOUNT_KEY …)",
            ));
        }
        let scheme = parsed.scheme();
        if !matches!(scheme, "s3" | "gs" | "az") {
            return Err(setting(
                URL_SETTING,
                format!("the scheme `{scheme}` is not supported; use {ACCEPTED}"),
            ));
        }
        if parsed.host_str().is_none_or(str::is_empty) {
            return Err(setting(
                URL_SETTING,
                format!("names no bucket or container; use {ACCEPTED}"),
            ));
        }
        if scheme != "az" && !parsed.username().is_empty() {
            return Err(setting(
                URL_SETTING,
                "carries a user name; give credentials in the environment",
            ));
        }
        let prefix = Path::from_url_path(parsed.path().trim_end_matches('/'))
            .map_err(|e| setting(URL_SETTING, format!("the key prefix is not valid: {e}")))?;
        let endpoint = endpoint
            .map(|e| {
                let u = url::Url::parse(e).map_err(|err| {
                    setting(
                        ENDPOINT_SETTING,
                        format!("is not a URL ({err}); use http(s)://HOST[:PORT]"),
                    )
                })?;
                if !matches!(u.scheme(), "http" | "https") || !u.username().is_empty() {
                    return Err(setting(
                        ENDPOINT_SETTING,
                        "must be http(s)://HOST[:PORT], without credentials",
                    ));
                }
                Ok((e.trim_end_matches('/').to_owned(), u.scheme() == "http"))
            })
            .transpose()?;
        let bad = |e: object_store::Error| {
            setting(
                URL_SETTING,
                format!("cannot use the store: {}", error_chain(&e)),
            )
        };
        let (store, signer): (Arc<dyn ObjectStore>, Arc<dyn Signer>) = match scheme {
            "s3" => {
                use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
                let mut b = config.apply(
                    AmazonS3Builder::from_env,
                    AmazonS3Builder::new,
                    |b, k: AmazonS3ConfigKey, v| b.with_config(k, v),
                )?;
                b = b.with_url(url).with_retry(retry_config());
                if let Some((endpoint, http)) = &endpoint {
                    b = b
                        .with_endpoint(endpoint)
                        .with_virtual_hosted_style_request(false)
                        .with_allow_http(*http);
                }
                let s3 = Arc::new(b.build().map_err(bad)?);
                (s3.clone(), s3)
            }
            "gs" => {
                use object_store::gcp::{GoogleCloudStorageBuilder, GoogleConfigKey};
                let mut b = config.apply(
                    GoogleCloudStorageBuilder::from_env,
                    GoogleCloudStorageBuilder::new,
                    |b, k: GoogleConfigKey, v| b.with_config(k, v),
                )?;
                b = b.with_url(url).with_retry(retry_config());
                if let Some((endpoint, http)) = &endpoint {
                    b = b.with_base_url(endpoint);
                    if *http {
                        b = b.with_config(
                            GoogleConfigKey::Client(ClientConfigKey::AllowHttp),
                            "true",
                        );
                    }
                }
                let gcs = Arc::new(b.build().map_err(bad)?);
                (gcs.clone(), gcs)
            }
            _ => {
                use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
                let mut b = config.apply(
                    MicrosoftAzureBuilder::from_env,
                    MicrosoftAzureBuilder::new,
                    |b, k: AzureConfigKey, v| b.with_config(k, v),
                )?;
                b = b.with_url(url).with_retry(retry_config());
                if let Some((endpoint, http)) = &endpoint {
                    b = b.with_endpoint(endpoint.clone()).with_allow_http(*http);
                }
                let azure = Arc::new(b.build().map_err(bad)?);
                (azure.clone(), azure)
            }
        };
        Ok(Self::at(store, Some(signer), prefix))
    }

    fn file(&self, id: &MediaId) -> Path {
        self.prefix.clone().join(id.as_str())
    }

    fn sidecar(&self, id: &MediaId) -> Path {
        self.meta.clone().join(format!("{}.json", id.as_str()))
    }

    fn rendition(&self, id: &MediaId, kind: Rendition) -> Path {
        self.meta
            .clone()
            .join(format!("{}.{}", id.as_str(), kind.suffix()))
    }

    /// Creates `key` unless it exists. A create that finds `key` holding
    /// exactly `bytes` reports success: that is this write, landed by an
    /// attempt whose answer was lost before the client retried it (the retry
    /// then meets its own object); the name is unique, so no other writer
    /// made those bytes.
    async fn create(&self, key: &Path, bytes: Bytes) -> Result<bool, StoreError> {
        let mut attributes = Attributes::new();
        attributes.insert(
            Attribute::ContentType,
            AttributeValue::from(content_type(key.filename().unwrap_or_default())),
        );
        let opts = PutOptions {
            mode: PutMode::Create,
            attributes,
            ..PutOptions::default()
        };
        match self
            .store
            .put_opts(key, PutPayload::from_bytes(bytes.clone()), opts)
            .await
        {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => {
                match self.read_if_there(key).await? {
                    Some(there) => Ok(there == bytes),
                    // Removed since: still not ours to write now.
                    None => Ok(false),
                }
            }
            Err(e) => Err(object_err(key)(e)),
        }
    }

    /// Writes (or replaces) `key`.
    async fn overwrite(&self, key: &Path, bytes: Bytes) -> Result<(), StoreError> {
        self.store
            .put_opts(key, PutPayload::from_bytes(bytes), PutOptions::default())
            .await
            .map(drop)
            .map_err(object_err(key))
    }

    async fn read_if_there(&self, key: &Path) -> Result<Option<Bytes>, StoreError> {
        let got = match self.store.get(key).await.map_err(object_err(key)) {
            Ok(got) => got,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e),
        };
        got.bytes().await.map(Some).map_err(object_err(key))
    }

    /// Removes `key`; a missing one is fine.
    async fn remove(&self, key: &Path) -> Result<(), StoreError> {
        match self.store.delete(key).await.map_err(object_err(key)) {
            Err(e) if !e.is_not_found() => Err(e),
            _ => Ok(()),
        }
    }

    /// The objects directly under `dir` (not under its sub-prefixes).
    async fn list_in(&self, dir: &Path) -> Result<Vec<object_store::ObjectMeta>, StoreError> {
        let listed = self
            .store
            .list_with_delimiter(Some(dir))
            .await
            .map_err(object_err(dir))?;
        Ok(listed.objects)
    }

    /// Size and time of `key`, or `None`. (A HEAD answer has no body, so
    /// here a missing bucket looks like a missing object; [`MediaStore::ready`]
    /// and every read tell them apart.)
    async fn head_key(&self, key: &Path) -> Result<Option<object_store::ObjectMeta>, StoreError> {
        match self.store.head(key).await.map_err(object_err(key)) {
            Ok(meta) => Ok(Some(meta)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn not_found(key: &Path) -> StoreError {
        StoreError::Object {
            key: key.to_string(),
            source: object_store::Error::NotFound {
                path: key.to_string(),
                source: "no such object".into(),
            },
        }
    }

    async fn probe(&self) -> Result<(), StoreError> {
        let key = self.prefix.clone().join(PROBE);
        self.overwrite(&key, Bytes::from_static(b"ready?")).await?;
        self.remove(&key).await
    }
}

#[async_trait]
impl MediaStore for ObjectMedia {
    async fn put_if_absent(&self, id: &MediaId, bytes: Bytes) -> Result<bool, StoreError> {
        self.create(&self.file(id), bytes).await
    }

    async fn get(&self, id: &MediaId) -> Result<Bytes, StoreError> {
        let key = self.file(id);
        self.read_if_there(&key)
            .await?
            .ok_or_else(|| Self::not_found(&key))
    }

    async fn get_range(&self, id: &MediaId, range: Range<u64>) -> Result<Bytes, StoreError> {
        let key = self.file(id);
        if range.start >= range.end {
            // No bytes asked for (and no valid HTTP range to ask them with):
            // empty, if there is such a file.
            return match self.head_key(&key).await? {
                Some(_) => Ok(Bytes::new()),
                None => Err(Self::not_found(&key)),
            };
        }
        let opts = GetOptions {
            range: Some(GetRange::Bounded(range.clone())),
            ..GetOptions::default()
        };
        let got = match self.store.get_opts(&key, opts).await {
            Ok(got) => got.bytes().await,
            Err(e) => Err(e),
        };
        match got {
            Ok(bytes) => Ok(bytes),
            Err(e @ object_store::Error::NotFound { .. }) => Err(object_err(&key)(e)),
            // A range that starts at or past the end is refused (416):
            // there, the file simply has no more bytes.
            Err(e) => match self.head_key(&key).await? {
                Some(meta) if meta.size <= range.start => Ok(Bytes::new()),
                _ => Err(object_err(&key)(e)),
            },
        }
    }

    async fn head(&self, id: &MediaId) -> Result<Option<ObjectMeta>, StoreError> {
        Ok(self.head_key(&self.file(id)).await?.map(|m| ObjectMeta {
            id: id.clone(),
            size: m.size,
            modified: m.last_modified,
        }))
    }

    async fn delete(&self, id: &MediaId) -> Result<(), StoreError> {
        self.remove(&self.file(id)).await
    }

    async fn list(&self) -> Result<Vec<ObjectMeta>, StoreError> {
        Ok(self
            .list_in(&self.prefix)
            .await?
            .into_iter()
            .filter_map(|m| {
                let id = m.location.filename()?.parse::<MediaId>().ok()?;
                Some(ObjectMeta {
                    id,
                    size: m.size,
                    modified: m.last_modified,
                })
            })
            .collect())
    }

    async fn put_sidecar_if_absent(&self, id: &MediaId, json: Bytes) -> Result<bool, StoreError> {
        self.create(&self.sidecar(id), json).await
    }

    async fn put_sidecars(&self, items: Vec<(MediaId, Bytes)>) -> Result<(), StoreError> {
        futures::stream::iter(items)
            .map(|(id, json)| async move { self.overwrite(&self.sidecar(&id), json).await })
            .buffer_unordered(CONCURRENCY)
            .try_collect()
            .await
    }

    async fn get_sidecar(&self, id: &MediaId) -> Result<Option<Bytes>, StoreError> {
        self.read_if_there(&self.sidecar(id)).await
    }

    async fn delete_sidecar(&self, id: &MediaId) -> Result<(), StoreError> {
        for kind in Rendition::ALL {
            self.remove(&self.rendition(id, kind)).await?;
        }
        self.remove(&self.sidecar(id)).await
    }

    async fn put_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
        bytes: Bytes,
    ) -> Result<(), StoreError> {
        self.overwrite(&self.rendition(id, kind), bytes).await
    }

    async fn get_rendition(
        &self,
        id: &MediaId,
        kind: Rendition,
    ) -> Result<Option<Bytes>, StoreError> {
        self.read_if_there(&self.rendition(id, kind)).await
    }

    async fn list_sidecars(&self) -> Result<Vec<MediaId>, StoreError> {
        Ok(self
            .list_in(&self.meta)
            .await?
            .into_iter()
            .filter_map(|m| {
                m.location
                    .filename()?
                    .strip_suffix(".json")?
                    .parse::<MediaId>()
                    .ok()
            })
            .collect())
    }

    /// Nothing to sweep: every object is written by one atomic put (no
    /// multipart uploads), so a writer that dies leaves either the whole
    /// object or none of it. A sidecar whose file never came is an orphan
    /// that reconcile removes by name, not an unfinished write.
    async fn sweep_incomplete(&self, _stale_after: Duration) -> Result<usize, StoreError> {
        Ok(0)
    }

    async fn download_url(
        &self,
        id: &MediaId,
        ttl: Duration,
    ) -> Result<Option<String>, StoreError> {
        let Some(signer) = self.signer.as_ref().filter(|_| self.presign) else {
            return Ok(None);
        };
        let key = self.file(id);
        let url = signer
            .signed_url(reqwest::Method::GET, &key, ttl)
            .await
            .map_err(object_err(&key))?;
        Ok(Some(url.into()))
    }

    /// Writes and removes a small probe object under the prefix: the store
    /// answers, the bucket exists and the credentials may write. Gives up
    /// after [`READY_TIMEOUT`].
    async fn ready(&self) -> Result<(), StoreError> {
        match tokio::time::timeout(READY_TIMEOUT, self.probe()).await {
            Ok(result) => result,
            Err(_) => {
                let key = self.prefix.clone().join(PROBE);
                Err(StoreError::Object {
                    key: key.to_string(),
                    source: object_store::Error::Generic {
                        store: "object storage",
                        source: format!("no answer within {} s", READY_TIMEOUT.as_secs()).into(),
                    },
                })
            }
        }
    }
}
