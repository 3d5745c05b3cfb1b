#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers fail loudly"
)]
//! Integration tests: one binary, linked once. Real HTTP against the emulator,
//! the MCP surface through an in-memory client, and the built binary as a
//! real process.

mod backend_errors;
mod cli;
mod crash;
mod doctor;
mod edit;
mod fallback;
mod faults;
mod http;
mod http_hardening;
mod library;
mod mcp;
mod shell;
mod spend;
mod support;
mod traversal;
mod video;
mod viewer;
mod web;
