//! The `media-gen` command line as a real process.

use std::io::Write;
use std::process::Stdio;

use crate::support::{INIT, bin_in, catalog_rows, media_files, png_size};

#[test]
fn generate_with_emulator_writes_the_gemini_size_and_a_sidecar() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let output = bin_in(dir.path())
        .args([
            "generate",
            "a lighthouse at dusk",
            "--aspect-ratio",
            "16:9",
            "--emulator",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let path = stdout.split('\t').next().unwrap();
    assert!(path.starts_with(out.to_str().unwrap()), "{stdout}");
    assert!(stdout.contains("1376x768"), "{stdout}");
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(png_size(&bytes), (1376, 768));
    let name = std::path::Path::new(path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let sidecar: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("metadata").join(format!("{name}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(sidecar["prompt"], "a lighthouse at dusk");
    assert_eq!(sidecar["aspect_ratio"], "16:9");
    assert_eq!(catalog_rows(&out), 1);
}

#[test]
fn generate_json_batch_reports_each_prompt() {
    let dir = tempfile::tempdir().unwrap();
    let output = bin_in(dir.path())
        .args([
            "generate",
            "one",
            "two [emulator:blocked]",
            "--json",
            "--emulator",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "one prompt failed");
    let v: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(v["succeeded"], 1);
    assert_eq!(v["failed"], 1);
    assert_eq!(v["results"][1]["error"]["code"], "CONTENT_BLOCKED");
    assert_eq!(media_files(&dir.path().join("out")).len(), 1);
}

#[test]
fn bad_config_exits_2_with_one_line_naming_setting_and_value() {
    let dir = tempfile::tempdir().unwrap();
    for (var, value, setting) in [
        ("MCP_CLIPROXY_URL", "not-a-url", "cliproxy_url"),
        ("MCP_TRANSPORT", "pigeon", "transport"),
        ("MCP_REQUEST_TIMEOUT", "soon", "request_timeout"),
    ] {
        let output = bin_in(dir.path())
            .arg("serve")
            .env(var, value)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{var}");
        let stderr = String::from_utf8(output.stderr).unwrap();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0].contains(setting) && lines[0].contains(value) && lines[0].contains(var),
            "{stderr}"
        );
    }
    // An output directory that cannot be created.
    let blocker = dir.path().join("file");
    std::fs::write(&blocker, b"x").unwrap();
    let output = bin_in(dir.path())
        .arg("serve")
        .env("MCP_OUTPUT_DIR", blocker.join("sub"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("output_dir"));
}

#[test]
fn default_output_dir_is_under_xdg_data_home_not_cwd() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let output = bin_in(dir.path())
        .env_remove("MCP_OUTPUT_DIR")
        .env("XDG_DATA_HOME", &data)
        .args(["generate", "where am I", "--emulator"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with(data.join("media-gen/generated").to_str().unwrap()),
        "{stdout}"
    );
}

#[test]
fn cleanup_runs_at_start_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let status = bin_in(dir.path())
        .args(["generate", "old one", "old two", "--emulator"])
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(media_files(&out).len(), 2);
    // Not configured: a server start deletes nothing.
    let mut child = serve_initialized(dir.path(), &[]);
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(child.stdin.take());
    child.wait().unwrap();
    assert_eq!(media_files(&out).len(), 2);
    // A 1-byte budget: everything goes, oldest first, at start (once the
    // handshake is answered: maintenance never delays the first answer).
    let mut child = serve_initialized(dir.path(), &[("MCP_CLEANUP_MAX_TOTAL_BYTES", "1")]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !media_files(&out).is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(child.stdin.take());
    child.wait().unwrap();
    assert!(media_files(&out).is_empty());
    assert_eq!(catalog_rows(&out), 0);
    assert_eq!(std::fs::read_dir(out.join("metadata")).unwrap().count(), 0);
}

/// `media-gen serve` over stdio with the handshake sent (maintenance starts
/// once it is answered); stdin stays open until the caller drops it.
fn serve_initialized(dir: &std::path::Path, env: &[(&str, &str)]) -> std::process::Child {
    let mut child = bin_in(dir)
        .arg("serve")
        .envs(env.iter().copied())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    writeln!(child.stdin.as_mut().unwrap(), "{INIT}").unwrap();
    child
}

/// The edit commands from the shell print like `generate`: a line per
/// file, or with `--json` the tool's result; a bad input exits non-zero.
#[test]
fn edit_commands_print_like_generate() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let generated = bin_in(dir.path())
        .args(["generate", "a harbour", "--emulator"])
        .output()
        .unwrap();
    assert!(generated.status.success());
    let path = String::from_utf8(generated.stdout).unwrap();
    let path = path.split('\t').next().unwrap().to_owned();
    let run = |args: &[&str]| {
        let o = bin_in(dir.path())
            .args(args)
            .arg("--emulator")
            .output()
            .unwrap();
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            String::from_utf8_lossy(&o.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = run(&["upscale", &path, "--scale-factor", "2"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.contains("\t2048x2048\timage/png"), "{stdout}");
    let (code, stdout, _) = run(&[
        "outpaint",
        &path,
        "down",
        "more harbour",
        "--extend-pixels",
        "64",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (
            v["metadata"]["width"].as_u64(),
            v["metadata"]["height"].as_u64()
        ),
        (Some(1024), Some(1088))
    );
    let name = std::path::Path::new(&path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        v["metadata"]["source"], name,
        "a path in the library is the library file"
    );
    let (code, _, stderr) = run(&["edit", "missing.png", "x"]);
    assert_eq!(code, Some(1));
    assert!(stderr.contains("FILE_NOT_FOUND"), "{stderr}");
    assert_eq!(media_files(&out).len(), 3);
}
