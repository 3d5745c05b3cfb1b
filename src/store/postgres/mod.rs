//! The shared deployment's ports in PostgreSQL: the catalog ([`PgCatalog`]),
//! the jobs and their leases ([`PgJobs`]), the usage ledger and budget holds
//! ([`PgUsage`]) and the change feed across replicas ([`PgFeed`], `LISTEN` /
//! `NOTIFY`). Same semantics as the embedded SQLite ones in
//! [`crate::store::local`]; the shared port suite runs against both.
//!
//! [`PgStore::connect`] applies the embedded migrations
//! (`migrations/postgres/*.sql`, see [`migrate`]), opens a connection pool
//! and starts the feed's listening connection.
//!
//! The URL is libpq's (`postgres://user:password@host:port/dbname?…`).
//! TLS is used when it asks for it: `sslmode=require`, `verify-ca` or
//! `verify-full` connect over TLS (rustls) and always verify the server's
//! certificate and name against the system's roots plus `sslrootcert=FILE`
//! (PEM) if given; `disable`, `allow`, `prefer` or no `sslmode` connect
//! without TLS. Errors name the server as `host:port/dbname`, never with its
//! credentials.

mod catalog;
mod feed;
mod jobs;
mod migrate;
#[cfg(test)]
mod tests;
mod usage;

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde_json::Value;
use tokio_postgres::config::Host;
use tokio_postgres::{AsyncMessage, Client, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

pub use catalog::PgCatalog;
pub use feed::PgFeed;
pub use jobs::PgJobs;
pub use migrate::{migrate, pending_migrations};
pub use usage::PgUsage;

use super::StoreError;

/// Connections in each replica's pool (the feed's listener is one more).
const POOL_SIZE: usize = 16;
/// How long a connection attempt may take unless the URL says
/// (`connect_timeout`).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an operation waits for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(30);
/// How long [`PgStore::ready`] waits for its round trip.
const READY_TIMEOUT: Duration = Duration::from_secs(3);
/// The connection's name in `pg_stat_activity` unless the URL gives one.
const APPLICATION_NAME: &str = "media-gen";

/// Every port over one PostgreSQL database; several replicas may share it.
#[derive(Clone)]
pub struct PgStore {
    pub catalog: Arc<PgCatalog>,
    pub jobs: Arc<PgJobs>,
    pub usage: Arc<PgUsage>,
    pub feed: Arc<PgFeed>,
    db: Db,
}

impl PgStore {
    /// Connects to the database at `url`, applies pending migrations (safe
    /// when several replicas start at once), opens the pool and starts
    /// listening for changes (published changes reach this replica's
    /// listeners once this returns).
    pub async fn connect(url: &str) -> Result<PgStore, StoreError> {
        let target = Target::parse(url)?;
        migrate::apply(&target).await?;
        let db = Db::open(&target)?;
        let feed = PgFeed::start(db.clone(), target).await?;
        Ok(PgStore {
            catalog: Arc::new(PgCatalog::new(db.clone())),
            jobs: Arc::new(PgJobs::new(db.clone())),
            usage: Arc::new(PgUsage::new(db.clone())),
            feed: Arc::new(feed),
            db,
        })
    }

    /// Whether the database answers: one `SELECT 1` round trip, given a few
    /// seconds (for `/readyz` and `doctor`; the same as the catalog's
    /// [`Catalog::ready`](crate::store::Catalog::ready)).
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.db.ready().await
    }

    /// Where the database is: `host:port/dbname`, without credentials.
    pub fn location(&self) -> &str {
        &self.db.location
    }
}

/// Where the database at `url` is (`host:port/dbname`, no credentials);
/// `None` if `url` is not a database URL.
pub fn location_of(url: &str) -> Option<String> {
    Target::parse(url).ok().map(|t| t.location.to_string())
}

/// The pool every port shares, and where it leads (for errors).
#[derive(Clone)]
pub(crate) struct Db {
    pool: Pool,
    location: Arc<str>,
}

impl Db {
    fn open(target: &Target) -> Result<Self, StoreError> {
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &target.tls {
            Tls::Off => Manager::from_config(target.config.clone(), NoTls, manager_config),
            Tls::On(tls) => {
                Manager::from_config(target.config.clone(), tls.clone(), manager_config)
            }
        };
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(connect_timeout(&target.config)))
            .recycle_timeout(Some(connect_timeout(&target.config)))
            .build()
            .map_err(|e| target.failure(e.to_string()))?;
        Ok(Self {
            pool,
            location: target.location.clone(),
        })
    }

    /// A pooled connection.
    async fn client(&self) -> Result<deadpool_postgres::Object, StoreError> {
        self.pool.get().await.map_err(|e| match e {
            PoolError::Backend(e) => self.error(e),
            PoolError::Timeout(_) => self.failure(format!(
                "no database connection became free or could be made within {} s",
                POOL_WAIT.as_secs()
            )),
            other => self.failure(other.to_string()),
        })
    }

    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        database_error(&self.location, PgError::Postgres(e))
    }

    fn failure(&self, message: String) -> StoreError {
        database_error(&self.location, PgError::Other(message))
    }

    /// One `SELECT 1` round trip through the pool, within [`READY_TIMEOUT`].
    async fn ready(&self) -> Result<(), StoreError> {
        let probe = async {
            let client = self.client().await?;
            client
                .simple_query("SELECT 1")
                .await
                .map_err(|e| self.error(e))?;
            Ok(())
        };
        match tokio::time::timeout(READY_TIMEOUT, probe).await {
            Ok(answer) => answer,
            Err(_) => Err(self.failure(format!("no answer within {} s", READY_TIMEOUT.as_secs()))),
        }
    }
}

fn database_error(location: &str, e: PgError) -> StoreError {
    StoreError::Database {
        location: location.to_owned(),
        source: Box::new(e),
    }
}

/// What went wrong with the database, said whole: tokio-postgres's own
/// message for a server error is only "db error", the server's is in its
/// source.
#[derive(Debug)]
pub(crate) enum PgError {
    Postgres(tokio_postgres::Error),
    Other(String),
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Other(message) => f.write_str(message),
            Self::Postgres(e) => match e.as_db_error() {
                Some(db) => write!(f, "{db}"),
                None => {
                    write!(f, "{e}")?;
                    let mut cause = std::error::Error::source(e);
                    while let Some(c) = cause {
                        write!(f, ": {c}")?;
                        cause = c.source();
                    }
                    Ok(())
                }
            },
        }
    }
}

impl std::error::Error for PgError {}

/// Whether to speak TLS, and how.
#[derive(Clone)]
enum Tls {
    Off,
    On(MakeRustlsConnect),
}

/// A parsed database URL: what to connect to and how, and where it is
/// (for errors and logs).
#[derive(Clone)]
pub(crate) struct Target {
    config: tokio_postgres::Config,
    tls: Tls,
    location: Arc<str>,
}

/// A connection's messages (notifications, notices): polling them drives
/// the connection.
type Messages = BoxStream<'static, Result<AsyncMessage, tokio_postgres::Error>>;

impl Target {
    /// Parses a libpq URL (or `key=value` string). `sslmode` and
    /// `sslrootcert` are read here (tokio-postgres knows neither
    /// `verify-*` nor root certificates); the rest goes to tokio-postgres.
    fn parse(url: &str) -> Result<Self, StoreError> {
        let (rest, ssl) = take_ssl_params(url);
        // Not yet known where: the error cannot name the server (and must
        // not repeat the URL, which may hold a password).
        let mut config = tokio_postgres::Config::from_str(&rest)
            .map_err(|e| database_error("the database URL", PgError::Postgres(e)))?;
        let location: Arc<str> = location(&config).into();
        let fail = |message: String| database_error(&location, PgError::Other(message));
        let mode = match ssl.mode.as_deref() {
            Some(m) => m.to_owned(),
            None => match config.get_ssl_mode() {
                // A key=value string's sslmode, which tokio-postgres read.
                tokio_postgres::config::SslMode::Require => "require".into(),
                _ => "prefer".into(),
            },
        };
        let tls = match mode.as_str() {
            "disable" | "allow" | "prefer" => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Tls::Off
            }
            "require" | "verify-ca" | "verify-full" => {
                config.ssl_mode(tokio_postgres::config::SslMode::Require);
                Tls::On(rustls_connector(ssl.root_cert.as_deref()).map_err(fail)?)
            }
            other => {
                return Err(fail(format!(
                    "sslmode `{}` is not one of disable, allow, prefer, require, verify-ca, verify-full",
                    other.escape_default()
                )));
            }
        };
        if ssl.root_cert.is_some() && matches!(tls, Tls::Off) {
            return Err(fail(
                "sslrootcert is given but sslmode does not ask for TLS; add sslmode=verify-full"
                    .into(),
            ));
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        Ok(Self {
            config,
            tls,
            location,
        })
    }

    fn failure(&self, message: String) -> StoreError {
        database_error(&self.location, PgError::Other(message))
    }

    fn error(&self, e: tokio_postgres::Error) -> StoreError {
        database_error(&self.location, PgError::Postgres(e))
    }

    /// One connection outside the pool, with `config`; the caller polls
    /// its messages (which drives it) for as long as it uses the client.
    async fn connect_with(
        &self,
        config: &tokio_postgres::Config,
    ) -> Result<(Client, Messages), tokio_postgres::Error> {
        fn messages<S, T>(mut conn: tokio_postgres::Connection<S, T>) -> Messages
        where
            S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
            T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        {
            futures::stream::poll_fn(move |cx| conn.poll_message(cx)).boxed()
        }
        match &self.tls {
            Tls::Off => {
                let (client, conn) = config.connect(NoTls).await?;
                Ok((client, messages(conn)))
            }
            Tls::On(tls) => {
                let (client, conn) = config.connect(tls.clone()).await?;
                Ok((client, messages(conn)))
            }
        }
    }

    /// One connection outside the pool, driven by a task of its own until
    /// the client is dropped.
    async fn connect_one(&self) -> Result<Client, StoreError> {
        let (client, mut messages) = self
            .connect_with(&self.config)
            .await
            .map_err(|e| self.error(e))?;
        tokio::spawn(async move {
            while let Some(message) = messages.next().await {
                if let Err(e) = message {
                    tracing::debug!(error = %PgError::Postgres(e), "database connection ended");
                    break;
                }
            }
        });
        Ok(client)
    }
}

fn connect_timeout(config: &tokio_postgres::Config) -> Duration {
    config
        .get_connect_timeout()
        .copied()
        .unwrap_or(CONNECT_TIMEOUT)
}

/// The TLS settings read from a URL's query.
#[derive(Debug, Default, PartialEq)]
struct SslParams {
    mode: Option<String>,
    root_cert: Option<PathBuf>,
}

/// Removes `sslmode` and `sslrootcert` from a URL's query (other
/// parameters are kept exactly as written); a `key=value` string is
/// returned as it is.
fn take_ssl_params(url: &str) -> (String, SslParams) {
    let mut ssl = SslParams::default();
    let is_url = url.starts_with("postgres://") || url.starts_with("postgresql://");
    let Some((base, query)) = url.split_once('?').filter(|_| is_url) else {
        return (url.to_owned(), ssl);
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decoded = || {
            form_urlencoded::parse(format!("v={value}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        match key {
            "sslmode" => ssl.mode = Some(decoded()),
            "sslrootcert" => ssl.root_cert = Some(PathBuf::from(decoded())),
            _ => kept.push(pair),
        }
    }
    let rest = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    (rest, ssl)
}

/// TLS through rustls with the system's roots (and `root_cert`'s), which
/// checks the certificate and the server's name.
fn rustls_connector(root_cert: Option<&std::path::Path>) -> Result<MakeRustlsConnect, String> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let extra: Vec<CertificateDer<'static>> = match root_cert {
        None => Vec::new(),
        Some(path) => CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("sslrootcert `{}`: {e}", path.display()))?,
    };
    if root_cert.is_some() && extra.is_empty() {
        return Err("sslrootcert holds no PEM certificate".into());
    }
    let verifier =
        rustls_platform_verifier::Verifier::new_with_extra_roots(extra, provider.clone())
            .map_err(|e| format!("TLS roots: {e}"))?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(MakeRustlsConnect::new(config))
}

/// `host:port/dbname` (hosts joined by commas), without user or password.
fn location(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports
                .get(i)
                .or_else(|| ports.first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(dir) => format!("{}:{port}", dir.display()),
            }
        })
        .collect();
    let hosts = if hosts.is_empty() {
        config
            .get_hostaddrs()
            .iter()
            .map(|a| format!("{a}:{}", ports.first().copied().unwrap_or(5432)))
            .collect::<Vec<_>>()
            .join(",")
    } else {
        hosts.join(",")
    };
    let db = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("{hosts}/{db}")
}

/// Text as PostgreSQL can store it: it has no NUL character (SQLite does),
/// so one becomes U+FFFD.
fn text(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', "\u{FFFD}"))
    } else {
        Cow::Borrowed(s)
    }
}

fn opt_text(s: Option<&str>) -> Option<String> {
    s.map(|s| text(s).into_owned())
}

/// JSON as `jsonb` can store it: NUL characters in strings (and keys)
/// become U+FFFD, as in [`text`].
fn json(v: &Value) -> Value {
    match v {
        Value::String(s) => Value::String(text(s).into_owned()),
        Value::Array(items) => Value::Array(items.iter().map(json).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (text(k).into_owned(), json(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A time as the catalogs keep it: to the millisecond.
fn millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
