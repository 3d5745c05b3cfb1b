//! The command line as a person meets it: each command's help (snapshots),
//! the one error line of common mistakes and the exit statuses
//! (snapshot), messages that name `media-gen` commands, files named by the
//! path `generate` printed, commands that only look creating nothing,
//! local times, the terminal (banner, progress) and shell completions.

use std::io::Write;
use std::process::{Output, Stdio};

use media_gen::contract::{Step, Surface};
use serde_json::json;

use crate::support::{INIT, Pty, bin_in, media_files};

/// Every command `media-gen --help` lists (bar `help`).
const COMMANDS: [&str; 17] = [
    "serve",
    "generate",
    "edit",
    "inpaint",
    "outpaint",
    "upscale",
    "video",
    "jobs",
    "emulator",
    "models",
    "list",
    "info",
    "rm",
    "usage",
    "completions",
    "doctor",
    "config",
];

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn run(dir: &std::path::Path, args: &[&str]) -> Output {
    bin_in(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The help of `media-gen` and of every command, as a reviewed diff. Each
/// command shows its own options: backend flags only where a backend is
/// called, settings flags only where settings are read.
#[test]
fn help_texts() {
    let dir = tempfile::tempdir().unwrap();
    let top = run(dir.path(), &["--help"]);
    assert!(top.status.success());
    let top = text(&top.stdout);
    for command in COMMANDS {
        assert!(top.contains(&format!("\n  {command} ")), "{command}");
    }
    insta::assert_snapshot!("help", top);
    let backend = [
        "generate", "edit", "inpaint", "outpaint", "upscale", "video", "serve", "jobs", "models",
        "doctor", "config",
    ];
    let settings = [&backend[..], &["list", "info", "rm", "usage"]].concat();
    let mut all = String::new();
    for command in COMMANDS {
        let out = run(dir.path(), &[command, "--help"]);
        assert!(out.status.success(), "{command}");
        let help = text(&out.stdout);
        assert_eq!(
            help.contains("--emulator"),
            backend.contains(&command),
            "{command}"
        );
        assert_eq!(
            help.contains("--cliproxy-url"),
            backend.contains(&command),
            "{command}"
        );
        assert_eq!(
            help.contains("--output-dir"),
            settings.contains(&command),
            "{command}"
        );
        // `doctor` and `config` take `serve`'s flags, to check what it would do.
        assert_eq!(
            help.contains("--preview"),
            ["serve", "doctor", "config"].contains(&command),
            "{command}"
        );
        all.push_str(&format!("$ media-gen {command} --help\n{help}\n"));
    }
    insta::assert_snapshot!("help_commands", all);
    assert!(
        dir.path().read_dir().unwrap().next().is_none(),
        "help wrote nothing"
    );
}

/// The help names every MCP tool the server lists, so `--help` says what
/// exists today.
#[tokio::test]
async fn help_names_every_tool() {
    let dir = tempfile::tempdir().unwrap();
    let help = text(&run(dir.path(), &["--help"]).stdout);
    let h = crate::mcp::start(&[]).await;
    let tools = h.client.list_all_tools().await.unwrap();
    assert!(!tools.is_empty());
    for tool in tools {
        assert!(
            help.contains(tool.name.as_ref()),
            "{} missing from --help",
            tool.name
        );
    }
}

/// The flags that once went before the command still work there (and bare
/// `media-gen` still takes them), though no help shows them.
#[test]
fn flags_before_the_command_still_work() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = dir.path().join("elsewhere");
    let out = run(
        dir.path(),
        &[
            "--emulator",
            "--output-dir",
            elsewhere.to_str().unwrap(),
            "generate",
            "early flags",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(media_files(&elsewhere).len(), 1);
}

/// A closed local port: a backend that is not there.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A mistake: what it is, the arguments, extra environment.
type Mistake<'a> = (&'a str, Vec<&'a str>, Vec<(&'a str, &'a str)>);

/// The common mistakes, each with its exit status and stderr: one line,
/// `error[CODE]:` with the next step, or clap's usage error. Deterministic:
/// a fresh directory, the dead backend's port replaced.
#[test]
fn error_lines_of_common_mistakes() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port().to_string();
    let dead = format!("http://127.0.0.1:{port}");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_port = taken.local_addr().unwrap().port().to_string();
    let redact = |t: &str| t.replace(&port, "PORT").replace(&taken_port, "PORT");
    let plain = |what, args: &[&'static str]| (what, args.to_vec(), Vec::new());
    let cases: Vec<Mistake> = vec![
        plain(
            "unknown model",
            &["generate", "a cat", "--model", "dall-e-3"],
        ),
        plain("bad ratio", &["generate", "a cat", "--aspect-ratio", "7:5"]),
        plain(
            "a ratio of another model",
            &["generate", "a cat", "--aspect-ratio", "1:8"],
        ),
        plain("bad size", &["generate", "a cat", "--image-size", "8K"]),
        plain("empty prompt", &["generate", " "]),
        plain(
            "rm of a missing file",
            &["rm", "image_missing.png", "--yes"],
        ),
        plain(
            "info of a path outside the library",
            &["info", "/etc/hostname"],
        ),
        (
            "dead backend",
            vec![
                "generate",
                "a cat",
                "--cliproxy-url",
                &dead,
                "--request-timeout",
                "1",
            ],
            Vec::new(),
        ),
        plain("video without a key", &["video", "waves"]),
        plain("unknown flag", &["generate", "a cat", "--colour", "red"]),
        (
            "bad setting",
            vec!["list"],
            vec![("MCP_REQUEST_TIMEOUT", "soon")],
        ),
        (
            "port in use",
            vec!["serve", "--transport", "http", "--port", &taken_port],
            Vec::new(),
        ),
    ];
    let mut all = String::new();
    for (what, args, env) in cases {
        let out = bin_in(dir.path())
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = redact(&text(&out.stderr));
        assert!(out.stdout.is_empty(), "{what}: {}", text(&out.stdout));
        let lines: Vec<&str> = stderr.lines().collect();
        if what != "unknown flag" {
            assert_eq!(lines.len(), 1, "{what}: one line\n{stderr}");
            assert!(lines[0].starts_with("error"), "{what}: {stderr}");
        }
        let shown_env: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
        all.push_str(&format!(
            "# {what}\n$ {shown_env}media-gen {}\nexit status {}\n{stderr}\n",
            args.iter()
                .map(|a| if a.contains(' ') || a.trim().is_empty() {
                    format!("{a:?}")
                } else {
                    redact(a)
                })
                .collect::<Vec<_>>()
                .join(" "),
            out.status.code().unwrap_or(-1)
        ));
    }
    insta::assert_snapshot!("error_lines", all);
}

/// A failed `generate` is one `error[CODE]:` line (no log record); a batch
/// names each failed prompt, then the count; exit status 1.
#[test]
fn generate_failures_are_error_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        dir.path(),
        &["generate", "x [emulator:blocked]", "--emulator"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.starts_with("warning: using the built-in EMULATOR"))
        .collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        errors[0].starts_with("error[CONTENT_BLOCKED]: "),
        "{stderr}"
    );
    assert!(errors[0].contains("; rephrase the prompt"), "{stderr}");
    let out = run(
        dir.path(),
        &["generate", "one", "two [emulator:blocked]", "--emulator"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("error[CONTENT_BLOCKED]: prompt 2 of 2 (\"two [emulator:blocked]\"): "),
        "{stderr}"
    );
    assert!(
        stderr.contains("error: 1 of 2 images failed; the others were saved"),
        "{stderr}"
    );
    assert!(!stderr.contains(" ERROR "), "no log records: {stderr}");
    // Plain progress lines when stderr is not a terminal.
    assert!(stderr.contains("media-gen: 2/2 images done"), "{stderr}");
    assert_eq!(text(&out.stdout).lines().count(), 1);
}

/// Messages at the shell name commands; the same failure through a tool
/// names tools. Every step a message can point to is a real command.
#[tokio::test]
async fn messages_name_commands_at_the_shell_and_tools_in_results() {
    let dir = tempfile::tempdir().unwrap();
    let shell = text(&run(dir.path(), &["info", "image_missing.png"]).stderr);
    assert!(shell.contains("run `media-gen list`"), "{shell}");
    assert!(!shell.contains("list_generated"), "{shell}");
    let h = crate::mcp::start(&[]).await;
    let r = crate::mcp::call(
        &h,
        "get_file_info",
        json!({"filename": "image_missing.png"}),
    )
    .await;
    let v = crate::mcp::structured(&r);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("call `list_generated`"), "{message}");
    assert!(!message.contains("media-gen list"), "{message}");
    for step in Step::ALL {
        let name = step.name(Surface::Cli).trim_matches('`');
        let Some(command) = name.strip_prefix("media-gen ") else {
            continue;
        };
        // The command's words (before flags and placeholders), and `--help`.
        let words: Vec<&str> = command
            .split(' ')
            .take_while(|w| !w.starts_with('-') && w.chars().any(|c| c.is_lowercase()))
            .collect();
        let out = run(dir.path(), &[&words[..], &["--help"]].concat());
        assert!(out.status.success(), "{step:?}: `{name}` is not a command");
    }
}

/// `info` and `rm` take the path `generate` printed (absolute or relative),
/// not only the bare name; `rm` checks the file before asking, and without
/// a terminal it needs `--yes`.
#[test]
fn info_and_rm_take_the_printed_path() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let made = run(dir.path(), &["generate", "a harbour", "--emulator"]);
    assert!(made.status.success(), "{}", text(&made.stderr));
    let stdout = text(&made.stdout);
    let path = stdout.split('\t').next().unwrap();
    let name = std::path::Path::new(path)
        .file_name()
        .unwrap()
        .to_str()
        .unwrap();
    let relative = format!("out/{name}");
    for file in [path, relative.as_str(), name] {
        let info = run(dir.path(), &["info", file, "--json"]);
        assert!(info.status.success(), "{file}: {}", text(&info.stderr));
        let v: serde_json::Value = serde_json::from_slice(&info.stdout).unwrap();
        assert_eq!(v["filename"], name);
    }
    let refused = run(dir.path(), &["rm", path]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = text(&refused.stderr);
    assert!(
        stderr.starts_with("error[CONFIRMATION_REQUIRED]: "),
        "{stderr}"
    );
    assert!(stderr.contains("`--yes`"), "{stderr}");
    assert_eq!(media_files(&out).len(), 1);
    let deleted = run(dir.path(), &["rm", path, "--yes"]);
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    assert_eq!(text(&deleted.stdout), format!("deleted {name}\n"));
    assert!(media_files(&out).is_empty());
    // Gone now: the same path is a missing file, before any question.
    let again = run(dir.path(), &["rm", path]);
    assert_eq!(again.status.code(), Some(1));
    assert!(text(&again.stderr).starts_with("error[FILE_NOT_FOUND]: "));
}

/// Runs `command` with a terminal for stdin, `type_keys` typing on it;
/// stdout and stderr are captured.
fn at_a_terminal(
    command: &mut std::process::Command,
    type_keys: impl FnOnce(&mut std::fs::File),
) -> Output {
    let pty = Pty::open();
    let mut keys = pty.master.try_clone().unwrap();
    let child = command
        .stdin(pty.stdio())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The command keeps what it was given: take the terminal back from it,
    // so only the child holds it and the drain ends with the child.
    command.stdin(Stdio::null());
    let screen = pty.drain();
    type_keys(&mut keys);
    let out = child.wait_with_output().unwrap();
    drop(keys);
    let _ = screen.join();
    out
}

/// On a terminal, `rm` checks the name before it asks, and asks before it
/// deletes.
#[test]
fn rm_on_a_terminal_checks_then_asks() {
    let dir = tempfile::tempdir().unwrap();
    let made = run(dir.path(), &["generate", "a harbour", "--emulator"]);
    assert!(made.status.success());
    let stdout = text(&made.stdout);
    let path = stdout.split('\t').next().unwrap().to_owned();
    let ask = |file: &str, answer: &str| {
        let out = at_a_terminal(bin_in(dir.path()).args(["rm", file]), |keys| {
            keys.write_all(answer.as_bytes()).unwrap();
        });
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, _, stderr) = ask("image_missing.png", "y\n");
    assert_eq!(code, Some(1));
    assert!(stderr.starts_with("error[FILE_NOT_FOUND]"), "{stderr}");
    assert!(
        !stderr.contains("delete `"),
        "asked about a missing file: {stderr}"
    );
    let (code, _, stderr) = ask(&path, "n\n");
    assert_eq!(code, Some(1));
    assert!(stderr.contains("? [y/N] "), "{stderr}");
    assert!(stderr.contains("was not deleted"), "{stderr}");
    assert_eq!(media_files(&dir.path().join("out")).len(), 1);
    let (code, stdout, stderr) = ask(&path, "y\n");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with("deleted image_"), "{stdout}");
    assert!(media_files(&dir.path().join("out")).is_empty());
}

/// `list`, `info`, `models`, `jobs` and `rm` create no library where there
/// is none; `list` says which directory it read.
#[test]
fn commands_that_only_look_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let list = run(dir.path(), &["list"]);
    assert!(list.status.success());
    assert!(
        text(&list.stdout).starts_with(&format!("no files in {}", out.display())),
        "{}",
        text(&list.stdout)
    );
    let json = run(dir.path(), &["list", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        (v["success"].clone(), v["total"].clone()),
        (json!(true), json!(0))
    );
    assert!(text(&run(dir.path(), &["jobs"]).stdout).starts_with("no video jobs yet"));
    let usage = run(dir.path(), &["usage", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&usage.stdout).unwrap();
    assert_eq!(
        (v["success"].clone(), v["total_usd"].clone()),
        (json!(true), json!(0.0))
    );
    assert!(text(&run(dir.path(), &["usage"]).stdout).starts_with("nothing spent"));
    assert_eq!(
        run(dir.path(), &["info", "image_x.png"]).status.code(),
        Some(1)
    );
    assert_eq!(
        run(dir.path(), &["rm", "image_x.png", "-y"]).status.code(),
        Some(1)
    );
    let models = run(
        dir.path(),
        &[
            "models",
            "--request-timeout",
            "1",
            "--cliproxy-url",
            &format!("http://127.0.0.1:{}", dead_port()),
        ],
    );
    assert!(models.status.success(), "{}", text(&models.stderr));
    assert!(
        !out.exists(),
        "a command that only looks created {}",
        out.display()
    );
}

/// Tables show local time with its offset; JSON keeps RFC 3339 in UTC.
#[test]
fn tables_show_local_time_json_keeps_utc() {
    let dir = tempfile::tempdir().unwrap();
    assert!(
        run(dir.path(), &["generate", "a clock", "--emulator"])
            .status
            .success()
    );
    // Three hours east of UTC, as a POSIX TZ rule (no zone database needed).
    let list = bin_in(dir.path())
        .args(["list"])
        .env("TZ", "XYZ-3")
        .output()
        .unwrap();
    let table = text(&list.stdout);
    assert!(
        table.lines().nth(1).unwrap().contains(" +03:00 "),
        "{table}"
    );
    let json = bin_in(dir.path())
        .args(["list", "--json"])
        .env("TZ", "XYZ-3")
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let created = v["files"][0]["created"].as_str().unwrap();
    assert!(created.ends_with('Z'), "{created}");
    // The same instant: the table's hour is the UTC hour plus three.
    let utc_hour: u32 = created[11..13].parse().unwrap();
    let row = table.lines().nth(1).unwrap();
    let shown = row.split_whitespace().nth(2).unwrap();
    let shown_hour: u32 = shown[..2].parse().unwrap();
    assert_eq!(shown_hour, (utc_hour + 3) % 24, "{row} vs {created}");
    let info = bin_in(dir.path())
        .args(["info", v["files"][0]["filename"].as_str().unwrap()])
        .env("TZ", "XYZ-3")
        .output()
        .unwrap();
    assert!(
        text(&info.stdout).contains(" +03:00\n"),
        "{}",
        text(&info.stdout)
    );
}

/// `models` shows only the video models a backend is set up for, and what
/// the others need; without a video backend it says what to set instead.
#[test]
fn models_say_what_is_set_up() {
    let dir = tempfile::tempdir().unwrap();
    let port = dead_port();
    let without = run(
        dir.path(),
        &[
            "models",
            "--cliproxy-url",
            &format!("http://127.0.0.1:{port}"),
        ],
    );
    assert!(without.status.success());
    let table = text(&without.stdout);
    assert!(table.contains("gemini-3-pro-image-preview *"), "{table}");
    assert!(table.contains("Video models: none set up"), "{table}");
    assert!(table.contains("MCP_GEMINI_API_KEY"), "{table}");
    assert!(
        !table.contains("veo-"),
        "no video model offered without a video backend: {table}"
    );
    let with = run(dir.path(), &["models", "--emulator"]);
    let table = text(&with.stdout);
    assert!(
        table.contains("Video models, from the Gemini API at http://127.0.0.1:"),
        "{table}"
    );
    assert!(table.contains("veo-3.1-generate-preview *"), "{table}");
    assert!(
        table.contains("grok-imagine-video needs `MCP_VIDEO_BACKEND=cliproxy`"),
        "{table}"
    );
    let json = run(dir.path(), &["models", "--json", "--emulator"]);
    let v: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert!(
        v["models"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "video")
    );
}

/// Bare `media-gen` in a terminal says what it is and how to try it, on
/// stderr, and keeps serving: a request typed afterwards is answered; Ctrl-D
/// ends it cleanly. With stdin not a terminal it says nothing.
#[test]
fn bare_media_gen_on_a_terminal_explains_and_keeps_serving() {
    let dir = tempfile::tempdir().unwrap();
    let out = at_a_terminal(&mut bin_in(dir.path()), |keys| {
        writeln!(keys, "{INIT}").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(500));
        keys.write_all(b"\x04").unwrap();
    });
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.starts_with("media-gen is an MCP server"), "{stderr}");
    assert!(
        stderr.contains("media-gen generate \"a lighthouse at dusk\" --emulator"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    let answer: serde_json::Value = serde_json::from_str(stdout.lines().next().unwrap()).unwrap();
    assert_eq!(answer["id"], 1, "{stdout}");
    // A client: stdin a pipe, not a word besides the protocol.
    let mut child = bin_in(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    writeln!(child.stdin.as_mut().unwrap(), "{INIT}").unwrap();
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(
        !text(&out.stderr).contains("MCP server"),
        "{}",
        text(&out.stderr)
    );
    for line in text(&out.stdout).lines() {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["jsonrpc"], "2.0");
    }
}

/// On a terminal, batches draw a bar, edits a spinner and video waits a
/// bar; the results on stdout are the same lines as without one.
#[test]
fn progress_on_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let drawn = |args: &[&str]| {
        let pty = Pty::open();
        let child = bin_in(dir.path())
            .args(args)
            .arg("--emulator")
            .env("TERM", "xterm")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(pty.stdio())
            .spawn()
            .unwrap();
        let screen = pty.drain();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}");
        (text(&out.stdout), screen.join().unwrap())
    };
    let (stdout, screen) = drawn(&["generate", "one", "two", "three"]);
    assert_eq!(stdout.lines().count(), 3);
    assert!(screen.contains("/3 images"), "{screen:?}");
    assert!(screen.contains("\r"), "redrawn in place: {screen:?}");
    assert!(
        !screen.contains("images done"),
        "no plain lines: {screen:?}"
    );
    let path = stdout.split('\t').next().unwrap().to_owned();
    let (stdout, screen) = drawn(&["upscale", &path]);
    assert!(stdout.contains("\t2048x2048\t"), "{stdout}");
    assert!(screen.contains("upscaling"), "{screen:?}");
    let (stdout, screen) = drawn(&["video", "waves", "--duration", "4s"]);
    assert!(stdout.contains("\tvideo/mp4"), "{stdout}");
    assert!(screen.contains("media-gen: waiting for job_"), "{screen:?}");
    assert!(
        screen.contains("video running") || screen.contains("% video"),
        "{screen:?}"
    );
}

/// `media-gen completions SHELL` prints a script that knows the commands.
#[test]
fn shell_completions() {
    let dir = tempfile::tempdir().unwrap();
    for (shell, marker) in [
        ("bash", "complete -F _media__gen"),
        ("zsh", "#compdef media-gen"),
        ("fish", "complete -c media-gen"),
    ] {
        let out = run(dir.path(), &["completions", shell]);
        assert!(out.status.success(), "{shell}");
        let script = text(&out.stdout);
        assert!(script.contains(marker), "{shell}");
        for command in ["generate", "models", "rm"] {
            assert!(script.contains(command), "{shell}: {command}");
        }
    }
    let out = run(dir.path(), &["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    // Bash, for real: `media-gen gen<Tab>` completes to `generate`.
    let script = dir.path().join("media-gen.bash");
    std::fs::write(&script, run(dir.path(), &["completions", "bash"]).stdout).unwrap();
    let completed = std::process::Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source {}; COMP_WORDS=(media-gen gen); COMP_CWORD=1; _media__gen media-gen gen media-gen; echo \"${{COMPREPLY[@]}}\"",
            script.display()
        ))
        .output()
        .unwrap();
    assert_eq!(
        text(&completed.stdout).trim(),
        "generate",
        "{}",
        text(&completed.stderr)
    );
}
