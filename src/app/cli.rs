//! The shell commands (`generate`, `models`, `list`, `info`, `rm`): the
//! same service calls the tools make, printed as a table or line for people
//! or, with `--json`, as the contract's JSON; and `config`, the effective
//! settings and where each came from.

use std::io::Write;
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::AppError;
use crate::config::{Origin, Settings};
use crate::contract::FileInfoOutput;
use crate::service::{
    BatchInput, EditInput, GenerateInput, Generated, ListInput, MAX_WAIT_SECONDS, OutpaintInput,
    Service, ServiceError, UpscaleInput, VideoInput, VideoOperation,
};

/// A command failed with a contract error.
fn failed(e: &ServiceError) -> AppError {
    AppError::Command(format!("{}: {}", e.code().as_str(), e.message()))
}

/// Prints `text` on stdout as it is.
pub(super) fn print(text: &str) -> Result<(), AppError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(AppError::Stdout)
}

/// Prints one line on stdout.
pub(super) fn print_line(text: &str) -> Result<(), AppError> {
    print(&format!("{text}\n"))
}

fn print_json(value: &impl Serialize) -> Result<(), AppError> {
    let value = serde_json::to_value(value).map_err(|e| AppError::Command(e.to_string()))?;
    print(&format!("{value:#}\n"))
}

/// Renders rows as an aligned text table for people.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let parts: Vec<String> = cells
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(parts.join("  ").trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied(), &mut out);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        format!("{}…", s.chars().take(max - 1).collect::<String>())
    }
}

/// `media-gen generate`: one or more prompts, printed as paths
/// (`PATH<TAB>WxH<TAB>MIME`) or, with `json`, as the tool's result (one
/// image, or the batch). Fails if any prompt failed. `cancel` (the
/// interrupt signal) stops what is still running; nothing half-made stays.
pub async fn generate(
    service: Arc<Service>,
    input: BatchInput,
    json: bool,
    cancel: CancellationToken,
) -> Result<(), AppError> {
    let single = input.prompts.len() == 1;
    let policy = super::stdio_policy();
    let outcomes: Vec<(String, Result<_, ServiceError>)> = if single {
        let one = GenerateInput {
            prompt: input.prompts[0].clone(),
            model: input.model.clone(),
            aspect_ratio: input.aspect_ratio.clone(),
            image_size: input.image_size.clone(),
            reference_images: input.reference_images.clone(),
        };
        vec![(
            one.prompt.clone(),
            service.generate_image(&one, &policy, &cancel).await,
        )]
    } else {
        let batch = match service
            .generate_batch(&input, &policy, &cancel, |done, total| {
                tracing::info!("{done}/{total} done");
            })
            .await
        {
            Ok(batch) => batch,
            Err(e) => {
                if json {
                    print_json(&e.output())?;
                }
                return Err(failed(&e));
            }
        };
        if json {
            print_json(&batch.output())?;
        }
        batch.items
    };
    let total = outcomes.len();
    let failures = outcomes.iter().filter(|(_, o)| o.is_err()).count();
    if single && json {
        match &outcomes[0].1 {
            Ok(g) => print_json(&g.output)?,
            Err(e) => print_json(&e.output())?,
        }
    }
    if !json {
        let mut lines = String::new();
        for (prompt, outcome) in &outcomes {
            match outcome {
                Ok(g) => lines.push_str(&result_line(g)),
                Err(e) => tracing::error!("{}: {prompt:?}: {}", e.code().as_str(), e.message()),
            }
        }
        print(&lines)?;
    }
    if failures > 0 {
        return Err(AppError::GenerateFailed {
            failed: failures,
            total,
        });
    }
    Ok(())
}

/// `PATH<TAB>WxH<TAB>MIME` for a saved image.
fn result_line(g: &Generated) -> String {
    let m = &g.output.metadata;
    format!(
        "{}\t{}x{}\t{}\n",
        g.output.image_path, m.width, m.height, m.mime_type
    )
}

/// Which edit a shell command asks for.
#[derive(Debug, Clone)]
pub enum Edit {
    Edit(EditInput),
    Inpaint(EditInput),
    Outpaint(OutpaintInput),
    Upscale(UpscaleInput),
}

/// `media-gen edit|inpaint|outpaint|upscale`: prints like `generate` (a
/// line, or with `json` the tool's result). Input paths are read as over
/// stdio: any readable path, relative ones from the working directory.
pub async fn edit(
    service: Arc<Service>,
    edit: Edit,
    json: bool,
    cancel: CancellationToken,
) -> Result<(), AppError> {
    let policy = super::stdio_policy();
    let outcome = match &edit {
        Edit::Edit(i) => service.edit_image(i, &policy, &cancel).await,
        Edit::Inpaint(i) => service.inpaint(i, &policy, &cancel).await,
        Edit::Outpaint(i) => service.outpaint(i, &policy, &cancel).await,
        Edit::Upscale(i) => service.upscale(i, &policy, &cancel).await,
    };
    match (outcome, json) {
        (Ok(g), true) => print_json(&g.output),
        (Ok(g), false) => print(&result_line(&g)),
        (Err(e), true) => {
            print_json(&e.output())?;
            Err(failed(&e))
        }
        (Err(e), false) => Err(failed(&e)),
    }
}

/// `media-gen models`.
pub async fn models(service: Arc<Service>, json: bool) -> Result<(), AppError> {
    let report = service.list_models(None).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&report);
    }
    let rows: Vec<Vec<String>> = report
        .models
        .iter()
        .map(|m| {
            let options = if m.kind == "image" {
                m.image_sizes.join(",")
            } else {
                let d: Vec<String> = m.durations.iter().map(|d| format!("{d}s")).collect();
                format!("{} {}", d.join(","), m.resolutions.join(","))
            };
            vec![
                format!("{}{}", m.id, if m.default { " *" } else { "" }),
                m.kind.clone(),
                match m.available {
                    Some(true) => "yes".into(),
                    Some(false) => "no".into(),
                    None => "?".into(),
                },
                options,
                m.aspect_ratios.join(" "),
            ]
        })
        .collect();
    let mut text = table(
        &[
            "MODEL (* default)",
            "TYPE",
            "AVAILABLE",
            "SIZES / DURATIONS",
            "ASPECT RATIOS",
        ],
        &rows,
    );
    if let Some(note) = report.note {
        text.push_str(&format!("\n{note}\n"));
    }
    print(&text)
}

/// `media-gen list`.
pub async fn list(service: Arc<Service>, input: ListInput, json: bool) -> Result<(), AppError> {
    let page = service.list_files(&input).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&page);
    }
    let rows: Vec<Vec<String>> = page
        .files
        .iter()
        .map(|f| {
            vec![
                f.filename.clone(),
                // `2026-01-14T12:00:00.000Z` → `2026-01-14 12:00`
                f.created.get(..16).unwrap_or_default().replace('T', " "),
                format!("{:.1} MB", f.size_bytes as f64 / 1e6),
                match (f.width, f.height) {
                    (Some(w), Some(h)) => format!("{w}x{h}"),
                    _ => "-".into(),
                },
                shorten(f.prompt.as_deref().unwrap_or("-"), 48),
            ]
        })
        .collect();
    let mut text = table(&["FILE", "CREATED", "SIZE", "PIXELS", "PROMPT"], &rows);
    text.push_str(&format!("{} of {} shown\n", page.files.len(), page.total));
    print(&text)
}

/// `media-gen info FILE`.
pub async fn info(service: Arc<Service>, file: &str, json: bool) -> Result<(), AppError> {
    let info: FileInfoOutput = service.file_info(file).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&info);
    }
    let value = serde_json::to_value(&info).map_err(|e| AppError::Command(e.to_string()))?;
    let mut text = String::new();
    let shown = |v: &serde_json::Value| v.as_str().map_or_else(|| v.to_string(), str::to_owned);
    for key in [
        "filename",
        "path",
        "type",
        "mime_type",
        "width",
        "height",
        "size_bytes",
        "created",
        "uri",
    ] {
        text.push_str(&format!("{key:<13} {}\n", shown(&value[key])));
    }
    for key in [
        "prompt",
        "model",
        "aspect_ratio",
        "image_size",
        "duration_seconds",
        "resolution",
        "operation",
        "job_id",
    ] {
        if let Some(v) = info.metadata.get(key).filter(|v| !v.is_null()) {
            text.push_str(&format!("{key:<13} {}\n", shown(v)));
        }
    }
    print(&text)
}

/// `media-gen rm FILE`: asks on a terminal unless `yes`.
pub async fn rm(service: Arc<Service>, file: &str, yes: bool) -> Result<(), AppError> {
    use std::io::IsTerminal;
    let name = file;
    let mut confirm = yes;
    if !confirm {
        if !std::io::stdin().is_terminal() {
            return Err(AppError::Command(format!(
                "CONFIRMATION_REQUIRED: not deleting `{name}` without `--yes` (stdin is not a terminal)"
            )));
        }
        // Show that it exists first, then ask.
        service.file_info(name).await.map_err(|e| failed(&e))?;
        eprint!("delete `{name}`, its sidecar and its catalog entry? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(AppError::Stdout)?;
        confirm = matches!(answer.trim(), "y" | "Y" | "yes");
        if !confirm {
            return Err(AppError::Command("nothing deleted".into()));
        }
    }
    let out = service
        .delete_file(name, confirm)
        .await
        .map_err(|e| failed(&e))?;
    print(&format!("deleted {}\n", out.deleted))
}

/// `media-gen video`: starts a job and prints its id (`JOB_ID<TAB>STATUS`),
/// or with `wait` runs the job runner here and shows progress (a bar on a
/// terminal, a line every 10 s otherwise) until the video is saved, then
/// prints `PATH<TAB>WxH<TAB>SECONDSs<TAB>video/mp4`. An interrupt stops
/// waiting; the job itself is durable and finishes later (`media-gen jobs`,
/// or a running server).
pub async fn video(
    service: Arc<Service>,
    operation: VideoOperation,
    input: VideoInput,
    wait: bool,
    json: bool,
    cancel: CancellationToken,
) -> Result<(), AppError> {
    let policy = super::stdio_policy();
    let started = match service.start_video(operation, &input, &policy).await {
        Ok(s) => s,
        Err(e) => {
            if json {
                print_json(&e.output())?;
            }
            return Err(failed(&e));
        }
    };
    if !wait {
        if json {
            return print_json(&started);
        }
        eprintln!("media-gen: {}", started.note);
        eprintln!(
            "media-gen: `media-gen jobs` shows its state (and saves it once ready); a running media-gen server finishes it too"
        );
        return print(&format!("{}\t{}\n", started.job_id, started.status));
    }
    if !json {
        for line in started.note.split(" Note: ").skip(1) {
            eprintln!("media-gen: note: {}", line.trim_end_matches('.'));
        }
    }
    let runner_stop = cancel.child_token();
    let runner = tokio::spawn(service.clone().run_jobs(runner_stop.clone()));
    let mut bar = ProgressLine::new(&started.job_id);
    let outcome = loop {
        let status = tokio::select! {
            () = cancel.cancelled() => break None,
            s = service.video_status(&started.job_id, Some(MAX_WAIT_SECONDS), |job, _| bar.show(job)) => s,
        };
        match status {
            Ok(s) if matches!(s.output.status.as_str(), "queued" | "running") => continue,
            other => break Some(other),
        }
    };
    bar.clear();
    runner_stop.cancel();
    let _ = runner.await;
    let status = match outcome {
        None => {
            return Err(AppError::Command(format!(
                "stopped waiting; job {} continues: `media-gen jobs` shows it and saves the video once ready",
                started.job_id
            )));
        }
        Some(Err(e)) => return Err(failed(&e)),
        Some(Ok(s)) => s,
    };
    let out = &status.output;
    if json {
        print_json(out)?;
    }
    match (&out.error, &out.metadata, &out.video_path) {
        (Some(e), _, _) => Err(AppError::Command(format!(
            "{}: {}",
            e.code.as_str(),
            e.message
        ))),
        (None, Some(m), Some(path)) if !json => print(&format!(
            "{path}\t{}x{}\t{:.1}s\t{}\n",
            m.width, m.height, m.duration_seconds, m.mime_type
        )),
        _ => Ok(()),
    }
}

/// Shows a job's progress on stderr: a bar redrawn in place on a terminal,
/// a plain line at most every 10 s otherwise.
struct ProgressLine {
    job: String,
    terminal: bool,
    started: std::time::Instant,
    last_line: Option<std::time::Instant>,
}

impl ProgressLine {
    fn new(job: &str) -> Self {
        use std::io::IsTerminal;
        Self {
            job: job.to_owned(),
            terminal: std::io::stderr().is_terminal(),
            started: std::time::Instant::now(),
            last_line: None,
        }
    }

    fn show(&mut self, job: &crate::store::Job) {
        let secs = self.started.elapsed().as_secs();
        let elapsed = format!("{}:{:02}", secs / 60, secs % 60);
        let state = job.state.as_str();
        if self.terminal {
            const WIDTH: usize = 30;
            let bar = match job.progress {
                Some(p) => {
                    let filled = ((p.clamp(0.0, 1.0)) * WIDTH as f64).round() as usize;
                    format!(
                        "[{}{}] {:>3.0}%",
                        "#".repeat(filled),
                        ".".repeat(WIDTH - filled),
                        p * 100.0
                    )
                }
                None => {
                    // No percentage from the provider: a bouncing marker.
                    let pos = (secs as usize) % (2 * WIDTH - 2);
                    let pos = if pos < WIDTH {
                        pos
                    } else {
                        2 * WIDTH - 2 - pos
                    };
                    let mut cells = vec!['.'; WIDTH];
                    cells[pos] = '#';
                    format!("[{}]     ", cells.into_iter().collect::<String>())
                }
            };
            eprint!("\r{bar} {state} {elapsed} ({})\x1b[K", self.job);
        } else if self
            .last_line
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(10))
        {
            self.last_line = Some(std::time::Instant::now());
            let pct = job
                .progress
                .map(|p| format!(" {:.0}%", p * 100.0))
                .unwrap_or_default();
            eprintln!("media-gen: {} {state}{pct} after {elapsed}", self.job);
        }
    }

    fn clear(&self) {
        if self.terminal {
            eprint!("\r\x1b[K");
        }
    }
}

/// `media-gen jobs`: advances the unfinished jobs by one poll (saving the
/// videos that are ready), then lists the newest jobs.
pub async fn jobs(service: Arc<Service>, limit: u32, json: bool) -> Result<(), AppError> {
    if let Err(e) = service.advance_jobs().await {
        tracing::warn!("could not advance the jobs: {}", e.message());
    }
    let list = service.list_jobs(limit).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&list);
    }
    let rows: Vec<Vec<String>> = list
        .jobs
        .iter()
        .map(|j| {
            vec![
                j.job_id.clone(),
                match j.progress {
                    Some(p) if j.status == "running" => format!("{} {:.0}%", j.status, p * 100.0),
                    _ => j.status.clone(),
                },
                j.operation.clone(),
                j.model.clone(),
                j.created.get(..16).unwrap_or_default().replace('T', " "),
                match (&j.filename, &j.error) {
                    (Some(f), _) => f.clone(),
                    (None, Some(e)) => shorten(&format!("{}: {}", e.code.as_str(), e.message), 60),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    let mut text = table(
        &[
            "JOB",
            "STATUS",
            "OPERATION",
            "MODEL",
            "CREATED",
            "FILE / ERROR",
        ],
        &rows,
    );
    if list.jobs.is_empty() {
        text = "no video jobs yet; start one with `media-gen video PROMPT`\n".into();
    }
    print(&text)
}

/// One setting in `media-gen config --json`.
#[derive(Serialize)]
struct SettingJson<'a> {
    key: &'a str,
    /// The effective value as text (secrets `<redacted>`); null: unset.
    value: Option<&'a str>,
    /// `default`, `file`, `env` or `flag`.
    source: &'static str,
    /// The file path, variable or flag; null for a default.
    origin: Option<String>,
    /// The environment variables that set it.
    env: &'a [&'static str],
}

/// A value accepted with a correction, in `media-gen config --json`.
#[derive(Serialize)]
struct NoteJson<'a> {
    setting: &'a str,
    message: &'a str,
    /// What to set it to instead.
    value: &'a str,
    source: &'static str,
    origin: Option<String>,
}

/// `media-gen config --json`.
#[derive(Serialize)]
struct ConfigJson<'a> {
    config_file: Option<String>,
    default_config_file: Option<String>,
    settings: Vec<SettingJson<'a>>,
    notes: Vec<NoteJson<'a>>,
}

/// An origin as `(source, where)`: `("env", Some("MCP_X"))`.
fn origin_parts(origin: &Origin) -> (&'static str, Option<String>) {
    match origin {
        Origin::Default => ("default", None),
        Origin::File(p) => ("file", Some(p.display().to_string())),
        Origin::Env(var) => ("env", Some((*var).to_owned())),
        Origin::Flag(flag) => ("flag", Some((*flag).to_owned())),
    }
}

/// `media-gen config`: every setting's effective value (secrets redacted)
/// and where it came from, the config file, and values accepted with a
/// correction.
pub fn config(settings: &Settings, json: bool) -> Result<(), AppError> {
    let prov = &settings.provenance;
    let path = |p: &std::path::Path| p.display().to_string();
    if json {
        return print_json(&ConfigJson {
            config_file: prov.file.as_deref().map(path),
            default_config_file: prov.default_file.as_deref().map(path),
            settings: prov
                .settings
                .iter()
                .map(|s| {
                    let (source, origin) = origin_parts(&s.origin);
                    SettingJson {
                        key: s.key,
                        value: s.value.as_deref(),
                        source,
                        origin,
                        env: s.env,
                    }
                })
                .collect(),
            notes: prov
                .notes
                .iter()
                .map(|n| {
                    let (source, origin) = origin_parts(&n.origin);
                    NoteJson {
                        setting: n.setting,
                        message: &n.message,
                        value: &n.value,
                        source,
                        origin,
                    }
                })
                .collect(),
        });
    }
    let rows: Vec<Vec<String>> = prov
        .settings
        .iter()
        .map(|s| {
            let from = match origin_parts(&s.origin) {
                (source, Some(origin)) => format!("{source} {origin}"),
                (source, None) => source.to_owned(),
            };
            vec![
                s.key.to_owned(),
                s.value.clone().unwrap_or_else(|| "(unset)".to_owned()),
                from,
            ]
        })
        .collect();
    let mut text = table(&["SETTING", "VALUE", "FROM"], &rows);
    text.push('\n');
    match (&prov.file, &prov.default_file) {
        (Some(file), _) => text.push_str(&format!("config file: {}\n", file.display())),
        (None, Some(default)) => text.push_str(&format!(
            "config file: none (`{}` is read when it exists; `--config PATH` or `MCP_CONFIG` names another)\n",
            default.display()
        )),
        (None, None) => text.push_str("config file: none (`--config PATH` or `MCP_CONFIG` names one)\n"),
    }
    for note in &prov.notes {
        text.push_str(&format!("note: {note}\n"));
    }
    print(&text)
}
