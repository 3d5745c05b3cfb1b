//! A process killed in the middle of a generation leaves no partial file and
//! no catalog row, and the next start is clean.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;
use std::time::Duration;

use crate::support::{bin_in, catalog_rows, media_files};

#[test]
fn killed_during_slow_generation_leaves_nothing_and_next_start_is_clean() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mut child = bin_in(dir.path())
        .args(["serve", "--emulator"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let init = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"crash-test","version":"1"}}}"#;
    writeln!(stdin, "{init}").unwrap();
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert!(line.contains("\"id\":1"), "{line}");
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","method":"notifications/initialized"}}"#
    )
    .unwrap();
    let call = r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"generate_image","arguments":{"prompt":"a slow one [emulator:slow]"}}}"#;
    writeln!(stdin, "{call}").unwrap();
    stdin.flush().unwrap();
    // Let the request reach the (slow) backend, then kill -9.
    std::thread::sleep(Duration::from_millis(700));
    child.kill().unwrap();
    child.wait().unwrap();

    assert!(media_files(&out).is_empty(), "{:?}", media_files(&out));
    assert_eq!(catalog_rows(&out), 0);
    assert_eq!(std::fs::read_dir(out.join("metadata")).unwrap().count(), 0);

    // The next start works and leaves exactly one image, its sidecar and row.
    let status = bin_in(dir.path())
        .args(["generate", "after the crash", "--emulator"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let files = media_files(&out);
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(
        out.join("metadata")
            .join(format!("{}.json", files[0]))
            .is_file()
    );
    assert_eq!(catalog_rows(&out), 1);
}
