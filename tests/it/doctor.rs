//! `media-gen doctor` and `media-gen config` as real processes, against the
//! emulator (itself a `media-gen emulator` process), a dead port, wrong
//! keys, bad output directories, a `/v1` base URL and held HTTP ports.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::http::Server;
use crate::support::{EmulatorProcess, bin_in};

/// A `media-gen emulator` process requiring `key`.
fn emulator(key: &str) -> EmulatorProcess {
    EmulatorProcess::start(&["--api-key", key])
}

/// A loopback port nothing listens on.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// What a run printed.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

impl Run {
    /// The report lines that start with `mark`.
    fn lines(&self, mark: &str) -> Vec<&str> {
        self.stdout
            .lines()
            .filter(|l| l.starts_with(mark))
            .collect()
    }

    /// The one line starting with `mark` that contains `text`, and the fix
    /// under it.
    fn check(&self, mark: &str, text: &str) -> (&str, Option<&str>) {
        let lines: Vec<&str> = self.stdout.lines().collect();
        let found: Vec<usize> = (0..lines.len())
            .filter(|&i| lines[i].starts_with(mark) && lines[i].contains(text))
            .collect();
        let [i] = found[..] else {
            panic!("one `{mark}` line with {text:?} expected:\n{}", self.stdout)
        };
        let fix = lines.get(i + 1).and_then(|l| l.strip_prefix("  → "));
        (lines[i], fix)
    }
}

/// Runs `media-gen ARGS` in `dir` with `env` (and a test-local environment).
fn run(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let started = Instant::now();
    let out = bin_in(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        took: started.elapsed(),
    }
}

/// Settings for a doctor against `emu` with `key` for both backends, and
/// an HTTP port nothing holds.
fn against(emu: &EmulatorProcess, key: &str, port: &str) -> Vec<(&'static str, String)> {
    vec![
        ("MCP_CLIPROXY_URL", emu.url.clone()),
        ("MCP_CLIPROXY_API_KEY", key.to_owned()),
        ("MCP_GEMINI_URL", emu.url.clone()),
        ("MCP_GEMINI_API_KEY", key.to_owned()),
        ("MCP_SSE_PORT", port.to_owned()),
    ]
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn doctor_passes_against_the_emulator() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator("the-key");
    let port = free_port().to_string();
    let env = against(&emu, "the-key", &port);
    let r = run(dir.path(), &["doctor"], &pairs(&env));
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(
        r.lines("✗").is_empty() && r.lines("!").is_empty(),
        "{}",
        r.stdout
    );
    let (line, _) = r.check("✓", "configuration: valid");
    assert!(line.contains("`MCP_CLIPROXY_URL`"), "{line}");
    let out = dir.path().join("out");
    let (line, _) = r.check("✓", "output directory");
    assert!(
        line.contains(out.to_str().unwrap())
            && line.contains("environment variable `MCP_OUTPUT_DIR`")
            && line.contains("created, writable")
            && line.contains("GB free")
            && line.contains("catalog opens (0 files)"),
        "{line}"
    );
    r.check("✓", &format!("CLIProxyAPI at `{}`", emu.url));
    r.check("✓", &format!("Gemini API at `{}`", emu.url));
    let (line, _) = r.check("✓", "image models: CLIProxyAPI offers");
    assert!(
        line.contains("(default `gemini-3-pro-image-preview`)"),
        "{line}"
    );
    r.check("✓", "video: Veo through the Gemini API");
    r.check("✓", &format!("HTTP port `127.0.0.1:{port}`: free"));
    assert!(r.stdout.ends_with("all checks passed\n"), "{}", r.stdout);
    assert!(!r.stdout.contains("the-key") && !r.stderr.contains("the-key"));
    // The second time the library is there, with its catalog.
    let r = run(dir.path(), &["doctor"], &pairs(&env));
    let (line, _) = r.check("✓", "output directory");
    assert!(!line.contains("created"), "{line}");

    // `--emulator` needs nothing configured: it checks everything else offline.
    let r = run(dir.path(), &["doctor", "--emulator", "--port", &port], &[]);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    assert!(r.lines("✗").is_empty(), "{}", r.stdout);
    r.check("–", "the built-in emulator");
    r.check("✓", "CLIProxyAPI at `http://127.0.0.1:");
}

#[test]
fn a_dead_port_fails_at_once_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{}", free_port());
    let port = free_port().to_string();
    let r = run(
        dir.path(),
        &["doctor"],
        &[("MCP_CLIPROXY_URL", &url), ("MCP_SSE_PORT", &port)],
    );
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    assert!(r.took < Duration::from_secs(4), "took {:?}", r.took);
    let (line, fix) = r.check("✗", &format!("CLIProxyAPI at `{url}`"));
    assert!(
        line.contains("environment variable `MCP_CLIPROXY_URL`") && line.contains("cannot connect"),
        "{line}"
    );
    let fix = fix.unwrap();
    assert!(
        fix.contains("start CLIProxyAPI")
            && fix.contains("`MCP_CLIPROXY_URL`")
            && fix.contains("--emulator"),
        "{fix}"
    );
    // The other checks still ran; the models need an answer, so no line.
    r.check("✓", "output directory");
    r.check("✓", "HTTP port");
    assert!(r.lines("✓ image models").is_empty(), "{}", r.stdout);
    assert!(r.stdout.contains("1 check failed"), "{}", r.stdout);
    assert_eq!(r.stderr.trim(), "error: doctor: 1 check failed");
}

#[test]
fn wrong_keys_are_named_with_their_variable_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator("right-key");
    let port = free_port().to_string();
    let mut env = against(&emu, "right-key", &port);
    env[1].1 = "wrong-cliproxy-sekrit".into();
    let r = run(dir.path(), &["doctor"], &pairs(&env));
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let (line, fix) = r.check("✗", "CLIProxyAPI at");
    assert!(
        line.contains("refused the key from environment variable `MCP_CLIPROXY_API_KEY`")
            && line.contains("HTTP 401"),
        "{line}"
    );
    assert!(
        fix.unwrap()
            .contains("set `MCP_CLIPROXY_API_KEY` to one of the `api-keys`")
    );
    r.check("✓", "Gemini API at");
    assert!(!r.stdout.contains("sekrit") && !r.stderr.contains("sekrit"));

    // The Gemini key, set through the fallback variable.
    let mut env = against(&emu, "right-key", &port);
    env.retain(|(k, _)| *k != "MCP_GEMINI_API_KEY");
    env.push(("GEMINI_API_KEY", "wrong-gemini-sekrit".into()));
    let r = run(dir.path(), &["doctor"], &pairs(&env));
    assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
    let (line, fix) = r.check("✗", "Gemini API at");
    assert!(line.contains("`GEMINI_API_KEY`"), "{line}");
    assert!(
        fix.unwrap()
            .contains("set `GEMINI_API_KEY` to a valid Gemini API key")
    );
    r.check("✓", "CLIProxyAPI at");
    assert!(
        r.lines("✓ video").is_empty(),
        "no video line over a refused key"
    );
    assert!(!r.stdout.contains("sekrit") && !r.stderr.contains("sekrit"));
}

#[test]
fn a_bad_output_directory_fails_with_the_fix_and_the_rest_still_runs() {
    let dir = tempfile::tempdir().unwrap();
    let blocker = dir.path().join("a-file");
    std::fs::write(&blocker, b"x").unwrap();
    let port = free_port().to_string();
    for out in [blocker.join("sub"), blocker.clone()] {
        let r = run(
            dir.path(),
            &["doctor", "--emulator"],
            &[
                ("MCP_OUTPUT_DIR", out.to_str().unwrap()),
                ("MCP_SSE_PORT", &port),
            ],
        );
        assert_eq!(r.code, Some(1), "{}\n{}", r.stdout, r.stderr);
        let (line, fix) = r.check("✗", "output directory");
        assert!(line.contains(out.to_str().unwrap()), "{line}");
        let fix = fix.unwrap();
        assert!(fix.contains("set `MCP_OUTPUT_DIR` to"), "{fix}");
        r.check("✓", "CLIProxyAPI at");
        r.check("✓", "HTTP port");
    }
    // Set by a flag: the fix names the flag.
    let r = run(
        dir.path(),
        &[
            "doctor",
            "--emulator",
            "--output-dir",
            blocker.to_str().unwrap(),
        ],
        &[("MCP_SSE_PORT", &port)],
    );
    let (_, fix) = r.check("✗", "output directory");
    assert!(fix.unwrap().contains("set `--output-dir` to"));
}

#[test]
fn a_base_url_ending_in_v1_is_understood_and_named() {
    let dir = tempfile::tempdir().unwrap();
    let emu = emulator("k");
    let port = free_port().to_string();
    let v1 = format!("{}/v1", emu.url);
    let env = [
        ("MCP_CLIPROXY_URL", v1.as_str()),
        ("MCP_CLIPROXY_API_KEY", "k"),
        ("MCP_SSE_PORT", &port),
    ];
    let r = run(dir.path(), &["doctor"], &env);
    assert_eq!(r.code, Some(0), "{}\n{}", r.stdout, r.stderr);
    let (line, fix) = r.check("!", "`cliproxy_url`");
    assert!(line.contains(&v1) && line.contains("`/v1`"), "{line}");
    assert_eq!(
        fix,
        Some(format!("set `MCP_CLIPROXY_URL` to `{}`", emu.url).as_str())
    );
    r.check("✓", &format!("CLIProxyAPI at `{}` ", emu.url));
    // Without a Gemini key video is not set up, which is no failure…
    let (_, fix) = r.check("–", "video: no Gemini API key");
    assert!(
        fix.unwrap()
            .contains("`MCP_GEMINI_API_KEY` (or `GEMINI_API_KEY`)")
    );
    assert!(
        r.stdout
            .ends_with("all checks passed (1 to look at: `!`)\n"),
        "{}",
        r.stdout
    );

    // … unless Gemini video was asked for.
    let mut asked = env.to_vec();
    asked.push(("MCP_VIDEO_BACKEND", "gemini"));
    let r = run(dir.path(), &["doctor"], &asked);
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    r.check("✗", "video: no Gemini API key");

    // The images themselves go to the right place, with a warning.
    let r = run(dir.path(), &["generate", "a lighthouse"], &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(r.stdout.contains("1024x1024"), "{}", r.stdout);
    assert!(
        r.stderr.contains("ends in the API version `/v1`") && r.stderr.contains("MCP_CLIPROXY_URL"),
        "{}",
        r.stderr
    );

    // The Gemini API base, with `/v1beta`.
    let v1beta = format!("{}/v1beta", emu.url);
    let r = run(
        dir.path(),
        &["doctor"],
        &[
            ("MCP_CLIPROXY_URL", emu.url.as_str()),
            ("MCP_CLIPROXY_API_KEY", "k"),
            ("MCP_GEMINI_URL", &v1beta),
            ("MCP_GEMINI_API_KEY", "k"),
            ("MCP_SSE_PORT", &port),
        ],
    );
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let (_, fix) = r.check("!", "`gemini_url`");
    assert_eq!(
        fix,
        Some(format!("set `MCP_GEMINI_URL` to `{}`", emu.url).as_str())
    );
    r.check("✓", "video: Veo");
}

#[test]
fn the_http_port_held_by_another_program_or_by_media_gen() {
    let dir = tempfile::tempdir().unwrap();
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port().to_string();
    // `serve` would listen there: a failure.
    let r = run(
        dir.path(),
        &[
            "doctor",
            "--emulator",
            "--transport",
            "http",
            "--port",
            &port,
        ],
        &[],
    );
    assert_eq!(r.code, Some(1), "{}", r.stdout);
    let (line, fix) = r.check("✗", "HTTP port");
    assert!(line.contains("in use by another program"), "{line}");
    assert!(fix.unwrap().contains("set `--port` to a free port"));
    // stdio only: worth a look, no failure.
    let r = run(
        dir.path(),
        &["doctor", "--emulator"],
        &[("MCP_SSE_PORT", &port)],
    );
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    let (line, fix) = r.check("!", "HTTP port");
    assert!(
        line.contains("only `serve --transport http|sse|dual`"),
        "{line}"
    );
    assert!(fix.unwrap().contains("`MCP_SSE_PORT`"));
    drop(held);

    // Held by a running media-gen: that is the server.
    let server = Server::start(dir.path(), "http", &[]);
    let port = server.addr.rsplit(':').next().unwrap().to_owned();
    let r = run(
        dir.path(),
        &["doctor", "--emulator"],
        &[("MCP_SSE_PORT", &port), ("MCP_TRANSPORT", "http")],
    );
    assert_eq!(r.code, Some(0), "{}", r.stdout);
    r.check("✓", "a media-gen");
}

#[test]
fn a_refused_setting_still_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    for cmd in ["doctor", "config"] {
        let r = run(dir.path(), &[cmd], &[("MCP_SSE_PORT", "99999")]);
        assert_eq!(r.code, Some(2), "{cmd}");
        assert!(
            r.stderr.contains("`http_port`") && r.stderr.contains("MCP_SSE_PORT"),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn config_names_every_origin_and_redacts_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("media-gen.toml");
    std::fs::write(
        &file,
        "batch_concurrency = 2\nhttp_token = \"file-sekrit\"\n",
    )
    .unwrap();
    let file_arg = file.to_str().unwrap();
    let env = [
        ("MCP_CLIPROXY_API_KEY", "env-sekrit"),
        ("GEMINI_API_KEY", "gemini-sekrit"),
        ("MCP_CLIPROXY_URL", "http://127.0.0.1:8317/v1"),
    ];
    let args = ["config", "--config", file_arg, "--port", "9000"];
    let r = run(dir.path(), &args, &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(
        !r.stdout.contains("sekrit") && !r.stderr.contains("sekrit"),
        "{}",
        r.stdout
    );
    let row = |key: &str| -> Vec<String> {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no row {key}:\n{}", r.stdout));
        line.split_whitespace().skip(1).map(str::to_owned).collect()
    };
    assert_eq!(
        row("cliproxy_api_key"),
        ["<redacted>", "env", "MCP_CLIPROXY_API_KEY"]
    );
    assert_eq!(
        row("gemini_api_key"),
        ["<redacted>", "env", "GEMINI_API_KEY"]
    );
    assert_eq!(row("http_token"), ["<redacted>", "file", file_arg]);
    assert_eq!(row("batch_concurrency"), ["2", "file", file_arg]);
    assert_eq!(row("http_port"), ["9000", "flag", "--port"]);
    assert_eq!(row("request_timeout"), ["120s", "default"]);
    assert_eq!(
        row("cliproxy_url"),
        ["http://127.0.0.1:8317", "env", "MCP_CLIPROXY_URL"]
    );
    let out = dir.path().join("out");
    assert_eq!(
        row("output_dir"),
        [out.to_str().unwrap(), "env", "MCP_OUTPUT_DIR"]
    );
    assert!(
        r.stdout.contains(&format!("config file: {file_arg}\n")),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("note: `cliproxy_url`"), "{}", r.stdout);
    assert!(!out.exists(), "`config` does not create the library");

    // The same as JSON.
    let mut json_args = args.to_vec();
    json_args.push("--json");
    let r = run(dir.path(), &json_args, &env);
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert!(!r.stdout.contains("sekrit"), "{}", r.stdout);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["config_file"], file_arg);
    let setting = |key: &str| {
        v["settings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap()
            .clone()
    };
    assert_eq!(
        setting("gemini_api_key"),
        serde_json::json!({"key": "gemini_api_key", "value": "<redacted>", "source": "env",
            "origin": "GEMINI_API_KEY", "env": ["MCP_GEMINI_API_KEY", "GEMINI_API_KEY"]})
    );
    assert_eq!(setting("http_port")["source"], "flag");
    assert_eq!(setting("http_token")["origin"], file_arg);
    assert_eq!(setting("input_roots")["value"], serde_json::Value::Null);
    assert_eq!(setting("request_timeout")["source"], "default");
    assert_eq!(v["notes"][0]["setting"], "cliproxy_url");
    assert_eq!(v["notes"][0]["value"], "http://127.0.0.1:8317");
}
