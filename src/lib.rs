//! media-gen: an MCP server that generates and edits images (Gemini through
//! CLIProxyAPI or the Gemini API), makes videos (Veo) and keeps a library of
//! what it made.
//!
//! Modules, each with one job:
//! - [`config`]: raw configuration (defaults, TOML, `MCP_*` environment, flags)
//!   validated once into [`config::Settings`].
//! - [`domain`]: value types shared by every layer (aspect ratios, sizes, the
//!   model registry and the Gemini output-size table).
//! - [`backend`]: HTTP clients for the image providers, their wire formats,
//!   retries and error classification. Knows nothing of MCP.
//! - [`media`]: reading image headers, decoding within limits, previews.
//! - [`store`]: media files, JSON sidecars and the SQLite catalog; atomic writes
//!   and start-up reconcile.
//! - [`service`]: the operations (generate, batch) over backend + media + store,
//!   and the one mapping from internal errors to the contract's error codes.
//! - [`tools`]: the MCP surface (rmcp): parameters → service → results.
//! - [`transport`]: stdio serving.
//! - [`app`]: wiring settings into a running service; the `serve` and
//!   `generate` commands.
//! - [`emulator`]: the offline backend emulator used by `--emulator` and tests.

pub mod app;
pub mod backend;
pub mod config;
pub mod domain;
pub mod emulator;
pub mod media;
pub mod service;
pub mod store;
pub mod tools;
pub mod transport;
