//! media-gen: an MCP server that generates and edits images (Gemini through
//! CLIProxyAPI or the Gemini API), makes videos (Veo) and keeps a library of
//! what it made.
//!
//! Modules, each with one job, from the core outwards (a module uses only
//! those listed before it, and `contract`):
//! - [`domain`]: value types shared by every layer (aspect ratios, sizes, the
//!   model registry and the Gemini output-size table).
//! - [`config`]: layered settings (defaults < TOML < `MCP_*` environment <
//!   flags) validated once into [`config::Settings`], grouped per owner.
//! - [`media`]: pixels — reading headers, decoding within limits, previews.
//! - [`store`]: the library's ports (`MediaStore`, `Catalog`, `JobStore`,
//!   `ChangeFeed`), the protocols written once over them ([`store::Library`]:
//!   atomic save, crash-safe delete, reconcile, clean-up), and the local
//!   implementation (a directory + SQLite).
//! - [`backend`]: the provider ports (`ImageProvider`), the CLIProxyAPI and
//!   Gemini wire formats, retries and failure classification.
//! - [`contract`]: the error codes and output shapes tools and the CLI share,
//!   and the steps messages point to (named as each surface takes them).
//! - [`service`]: the operations over the ports, a file per capability, the
//!   save pipeline, and the one mapping from failures to error codes.
//! - [`tools`]: the MCP surface (rmcp): parameters → service → results, and
//!   the MCP App viewer page hosts with MCP Apps show results in.
//! - [`transport`]: stdio, Streamable HTTP and legacy SSE for any MCP
//!   handler, with the HTTP security checks.
//! - [`web`]: the HTTP routes beside MCP over the service — downloads and
//!   uploads (`/files`) and the web gallery (`/gallery`).
//! - [`app`]: the composition root — builds the ports from settings, runs
//!   `serve` and the shell commands, and `doctor`, which checks a setup.
//! - [`emulator`]: the offline backend emulator used by `--emulator` and tests.
//! - `fuzzing` (hidden): the wire-format readers, re-exported for the fuzz
//!   targets in `fuzz/` and the property tests.
//!
//! The core (`domain` … `service`) knows nothing of MCP; the MCP layer
//! knows nothing of wire formats.

pub mod app;
pub mod backend;
pub mod config;
pub mod contract;
pub mod domain;
pub mod emulator;
#[doc(hidden)]
pub mod fuzzing;
pub mod media;
#[cfg(test)]
mod prop_support;
pub mod service;
pub mod store;
pub mod tools;
pub mod transport;
pub mod web;
