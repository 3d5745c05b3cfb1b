//! Helpers shared by the integration tests.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

/// The built `media-gen` binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_media-gen"))
}

/// A command with a clean, test-local environment: output in `dir`, no config
/// file from the real home, logs quiet.
pub fn bin_in(dir: &Path) -> Command {
    let mut cmd = bin();
    in_dir(&mut cmd, dir);
    cmd
}

/// The environment [`bin_in`] gives, for a command that runs the binary
/// through another program (`prlimit`).
pub fn in_dir(cmd: &mut Command, dir: &Path) {
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("config"))
        .env("MCP_OUTPUT_DIR", dir.join("out"))
        .env("MEDIA_GEN_LOG", "warn")
        .current_dir(dir);
}

/// A `media-gen emulator ARGS` process on a free port; stopped when dropped.
pub struct EmulatorProcess {
    child: Child,
    /// `http://127.0.0.1:PORT`, as it printed.
    pub url: String,
}

impl EmulatorProcess {
    pub fn start(args: &[&str]) -> Self {
        Self::start_at(0, args)
    }

    /// An emulator on `port` (0: any free port), e.g. again on the port of
    /// one that was killed.
    pub fn start_at(port: u16, args: &[&str]) -> Self {
        let mut child = bin()
            .args(["emulator", "--port", &port.to_string()])
            .args(args)
            .env("MEDIA_GEN_LOG", "error")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut url = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut url)
            .unwrap();
        assert!(url.starts_with("http://"), "{url:?}");
        Self {
            child,
            url: url.trim().to_owned(),
        }
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }
}

impl Drop for EmulatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Names of the media files in an output directory (not sidecars, catalog or temp).
pub fn media_files(out: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(out)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter(|e| e.file_type().map(|t| t.is_file()).unwrap_or(false))
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| !n.starts_with("catalog.sqlite3"))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Rows in the catalog.
pub fn catalog_rows(out: &Path) -> i64 {
    let conn = rusqlite::Connection::open(out.join("catalog.sqlite3")).unwrap();
    conn.query_row("SELECT count(*) FROM media", [], |r| r.get(0))
        .unwrap()
}

/// PNG width and height from the IHDR chunk.
pub fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    (w, h)
}

/// An `initialize` request line (protocol 2025-11-25).
pub const INIT: &str = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#;

/// The emulator's counters (`/emulator/stats`).
pub async fn emulator_stats(emu: &media_gen::emulator::EmulatorHandle) -> serde_json::Value {
    reqwest::get(format!("{}/emulator/stats", emu.base_url()))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// A pseudo-terminal: what a person's shell gives a command. `child` is the
/// terminal end to hand the process (as stdin or stderr); read what the
/// process drew from `master` with [`Pty::drain`], write keys to it.
pub struct Pty {
    pub master: std::fs::File,
    pub child: std::fs::File,
}

impl Pty {
    /// A new terminal, 120 columns wide.
    pub fn open() -> Self {
        use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
        use std::os::unix::fs::OpenOptionsExt;
        let master = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY).unwrap();
        grantpt(&master).unwrap();
        unlockpt(&master).unwrap();
        let name = ptsname(&master, Vec::new()).unwrap();
        let child = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOCTTY)
            .open(name.to_str().unwrap())
            .unwrap();
        rustix::termios::tcsetwinsize(
            &child,
            rustix::termios::Winsize {
                ws_row: 40,
                ws_col: 120,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        )
        .unwrap();
        Self {
            master: std::fs::File::from(master),
            child,
        }
    }

    /// The terminal end, for `Command::stdin`/`stderr`.
    pub fn stdio(&self) -> std::process::Stdio {
        std::process::Stdio::from(self.child.try_clone().unwrap())
    }

    /// Everything written to the terminal until every process holding it
    /// has closed it (our own terminal end is closed here), read on a
    /// thread so the writer never blocks.
    pub fn drain(self) -> std::thread::JoinHandle<String> {
        let Self { mut master, child } = self;
        drop(child);
        std::thread::spawn(move || {
            use std::io::Read;
            let mut out = Vec::new();
            let mut buf = [0u8; 4096];
            // Linux answers EIO once the last terminal end is closed.
            while let Ok(n @ 1..) = master.read(&mut buf) {
                out.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&out).into_owned()
        })
    }
}

/// A raw HTTP/1.1 answer: status, lower-cased headers, body (de-chunked).
pub struct RawReply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawReply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request over a fresh connection (`Connection: close`), for
/// tests that drive processes from plain threads. `Err` when the
/// connection fails or breaks before a whole answer (a killed server).
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> std::io::Result<RawReply> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr)?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(180)))?;
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse_reply(&raw).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("incomplete HTTP answer ({} bytes)", raw.len()),
        )
    })
}

fn parse_reply(raw: &[u8]) -> Option<RawReply> {
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..split]).ok()?;
    let mut lines = head.split("\r\n");
    let status = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        let mut out = Vec::new();
        let mut at = 0;
        loop {
            let line_end = at + rest[at..].windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&rest[at..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            at = line_end + 2;
            if size == 0 {
                break;
            }
            out.extend_from_slice(rest.get(at..at + size)?);
            at += size + 2;
        }
        out
    } else {
        if let Some(len) = headers
            .iter()
            .find(|(k, _)| k == "content-length")
            .and_then(|(_, v)| v.parse::<usize>().ok())
            && rest.len() < len
        {
            return None;
        }
        rest.to_vec()
    };
    Some(RawReply {
        status,
        headers,
        body,
    })
}

/// A `tools/call` over Streamable HTTP at protocol 2026-07-28 (stateless:
/// every request says who it is), with `token` as the bearer if given.
/// Returns the JSON-RPC `result` and the raw answer text; `Err` when the
/// server did not answer (killed, not listening) or answered without a result.
pub fn mcp_tool_call(
    addr: &str,
    token: Option<&str>,
    tool: &str,
    args: &serde_json::Value,
) -> Result<(serde_json::Value, String), String> {
    let id = 7;
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": id, "method": "tools/call",
        "params": {"name": tool, "arguments": args, "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "it", "version": "1"},
            "io.modelcontextprotocol/clientCapabilities": {}
        }}
    })
    .to_string();
    let bearer = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Content-Type", "application/json"),
        ("Accept", "application/json, text/event-stream"),
        ("MCP-Protocol-Version", "2026-07-28"),
        ("Mcp-Method", "tools/call"),
        ("Mcp-Name", tool),
    ];
    if let Some(b) = &bearer {
        headers.push(("Authorization", b));
    }
    let reply =
        http_request(addr, "POST", "/mcp", &headers, body.as_bytes()).map_err(|e| e.to_string())?;
    let text = reply.text();
    let message = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .into_iter()
        .chain(text.lines().filter_map(|l| {
            l.strip_prefix("data:")
                .and_then(|d| serde_json::from_str(d.trim()).ok())
        }))
        .find(|v: &serde_json::Value| v["id"] == id)
        .ok_or_else(|| format!("HTTP {} without an answer: {text:.300}", reply.status))?;
    match message.get("result") {
        Some(result) => Ok((result.clone(), text)),
        None => Err(format!("JSON-RPC error: {message}")),
    }
}

/// `POST url` with a JSON body (the emulator's control), over a fresh connection.
pub fn post_json(base_url: &str, path: &str, body: &serde_json::Value) -> RawReply {
    let addr = base_url.trim_start_matches("http://").trim_end_matches('/');
    http_request(
        addr,
        "POST",
        path,
        &[("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    )
    .unwrap()
}

/// A `media-gen serve --transport http --port 0` process in `dir`, with
/// every line it writes to stderr kept (for tests that read its logs).
pub struct ServeProcess {
    child: Child,
    /// `127.0.0.1:PORT`, as it announced.
    pub addr: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ServeProcess {
    /// Starts the server with `env` over [`bin_in`]'s and waits until it
    /// listens.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let mut cmd = bin_in(dir);
        cmd.args(["serve", "--transport", "http", "--port", "0"])
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let lines = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_owned());
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(std::time::Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => panic!(
                "server did not announce its address; it logged:\n{}",
                log.lock().unwrap().join("\n")
            ),
        };
        Self { child, addr, log }
    }

    /// Every line logged so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a logged line contains `needle`; false after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        false
    }

    /// SIGKILL: no clean-up of any kind.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
