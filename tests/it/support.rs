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
        let mut child = bin()
            .args(["emulator", "--port", "0"])
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
