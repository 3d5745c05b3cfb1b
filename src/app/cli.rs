//! The shell commands (`generate`, `models`, `list`, `info`, `rm` …): the
//! same service calls the tools make, printed as a table or line for people
//! or, with `--json`, as the contract's JSON; and `config`, the effective
//! settings and where each came from. Messages are written for the
//! shell ([`Surface::Cli`]: they name `media-gen` commands, not tools),
//! times are local, and progress shows on stderr ([`super::progress`]).

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::progress::Progress;
use super::{AppError, Command};
use crate::config::{Origin, Settings};
use crate::contract::{FileInfoOutput, JobsOutput, ListGeneratedOutput, Surface};
use crate::domain;
use crate::service::{
    BatchInput, EditInput, GenerateInput, Generated, ListInput, MAX_WAIT_SECONDS, ModelCatalog,
    OutpaintInput, Service, ServiceError, UpscaleInput, VideoAccess, VideoInput, VideoOperation,
    parse_filename,
};

/// A command failed with a contract error.
fn failed(e: &ServiceError) -> AppError {
    AppError::failed(e)
}

/// Prints the error envelope (`--json`), its message written for the shell.
fn print_error_json(e: &ServiceError) -> Result<(), AppError> {
    print_json(&e.output_for(Surface::Cli))
}

/// An RFC 3339 time as people read it here: local time with its offset
/// (`2026-11-26 09:14 +01:00`). JSON keeps RFC 3339 (UTC).
pub fn local_time(rfc3339: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .map(|t| {
            t.with_timezone(&chrono::Local)
                .format("%Y-%m-%d %H:%M %:z")
                .to_string()
        })
        .unwrap_or_else(|_| rfc3339.to_owned())
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
/// image, or the batch). A failed prompt is one `error[CODE]:` line on
/// stderr; the command fails if any prompt failed. `cancel` (the interrupt
/// signal) stops what is still running; nothing half-made stays.
pub async fn generate(
    service: Arc<Service>,
    input: BatchInput,
    json: bool,
    cancel: CancellationToken,
) -> Result<(), AppError> {
    let policy = super::stdio_policy();
    if let [prompt] = input.prompts.as_slice() {
        let one = GenerateInput {
            prompt: prompt.clone(),
            model: input.model.clone(),
            aspect_ratio: input.aspect_ratio.clone(),
            image_size: input.image_size.clone(),
            reference_images: input.reference_images.clone(),
        };
        let progress = Progress::spinner("generating");
        let outcome = service.generate_image(&one, &policy, &cancel).await;
        progress.clear();
        return match outcome {
            Ok(g) if json => print_json(&g.output),
            Ok(g) => print(&result_line(&g)),
            Err(e) => {
                if json {
                    print_error_json(&e)?;
                }
                Err(failed(&e))
            }
        };
    }
    let progress = Progress::count(input.prompts.len(), "images");
    let batch = service
        .generate_batch(&input, &policy, &cancel, |done, total| {
            progress.done(done, total)
        })
        .await;
    progress.clear();
    let batch = match batch {
        Ok(batch) => batch,
        Err(e) => {
            if json {
                print_error_json(&e)?;
            }
            return Err(failed(&e));
        }
    };
    let total = batch.items.len();
    if json {
        print_json(&batch.output_for(Surface::Cli))?;
    } else {
        let lines: String = batch.generated().map(result_line).collect();
        print(&lines)?;
    }
    let mut failures = 0;
    for (i, (prompt, outcome)) in batch.items.iter().enumerate() {
        if let Err(e) = outcome {
            failures += 1;
            eprintln!(
                "error[{}]: prompt {} of {total} ({:?}): {}",
                e.code().as_str(),
                i + 1,
                shorten(prompt, 40),
                e.message_for(Surface::Cli)
            );
        }
    }
    if failures > 0 {
        return Err(AppError::GenerateFailed {
            failed: failures,
            total,
        });
    }
    Ok(())
}

/// `PATH<TAB>WxH<TAB>MIME` for a saved image (its `media://` URI in place
/// of the path when the library is in object storage).
fn result_line(g: &Generated) -> String {
    let m = &g.output.metadata;
    let place = match g.output.image_path.is_empty() {
        true => &g.output.uri,
        false => &g.output.image_path,
    };
    format!("{place}\t{}x{}\t{}\n", m.width, m.height, m.mime_type)
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
    let (doing, image) = match &edit {
        Edit::Edit(i) => ("editing", &i.image),
        Edit::Inpaint(i) => ("inpainting", &i.image),
        Edit::Outpaint(i) => ("outpainting", &i.image),
        Edit::Upscale(i) => ("upscaling", &i.image),
    };
    let progress = Progress::spinner(&format!("{doing} {}", shorten(image, 60)));
    let outcome = match &edit {
        Edit::Edit(i) => service.edit_image(i, &policy, &cancel).await,
        Edit::Inpaint(i) => service.inpaint(i, &policy, &cancel).await,
        Edit::Outpaint(i) => service.outpaint(i, &policy, &cancel).await,
        Edit::Upscale(i) => service.upscale(i, &policy, &cancel).await,
    };
    progress.clear();
    match (outcome, json) {
        (Ok(g), true) => print_json(&g.output),
        (Ok(g), false) => print(&result_line(&g)),
        (Err(e), true) => {
            print_error_json(&e)?;
            Err(failed(&e))
        }
        (Err(e), false) => Err(failed(&e)),
    }
}

/// `media-gen models`: the image models, then the video models — or, when
/// no video backend is set up, what it takes to set one up — with what
/// serves each group and what each model takes.
pub async fn models(catalog: &ModelCatalog, json: bool) -> Result<(), AppError> {
    let report = catalog.list(None).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&report);
    }
    let available = |a: Option<bool>| match a {
        Some(true) => "yes",
        Some(false) => "no",
        None => "?",
    };
    let name =
        |m: &crate::contract::ModelOutput| format!("{}{}", m.id, if m.default { " *" } else { "" });
    let images: Vec<Vec<String>> = report
        .models
        .iter()
        .filter(|m| m.kind == "image")
        .map(|m| {
            vec![
                name(m),
                available(m.available).to_owned(),
                m.image_sizes.join(" "),
                m.max_reference_images.unwrap_or(0).to_string(),
                m.aspect_ratios.join(" "),
            ]
        })
        .collect();
    let mut text = format!(
        "Image models, from {} at {}:\n",
        catalog.images.backend().name(),
        catalog.images.base_url()
    );
    text.push_str(&indent(&table(
        &["MODEL", "AVAILABLE", "SIZES", "REFERENCES", "ASPECT RATIOS"],
        &images,
    )));
    text.push('\n');
    match &catalog.videos {
        VideoAccess::Unavailable(why) => {
            text.push_str(&format!("Video models: none set up. {why}.\n"));
        }
        VideoAccess::Ready(provider) => {
            let family = catalog.videos.family();
            let (ours, others): (Vec<_>, Vec<_>) = report
                .models
                .iter()
                .filter(|m| m.kind == "video")
                .partition(|m| domain::video_model(&m.id).is_some_and(|v| v.provider == family));
            let rows: Vec<Vec<String>> = ours
                .iter()
                .map(|m| {
                    let durations: Vec<String> =
                        m.durations.iter().map(|d| format!("{d}s")).collect();
                    vec![
                        name(m),
                        available(m.available).to_owned(),
                        durations.join(" "),
                        m.resolutions.join(" "),
                        m.aspect_ratios.join(" "),
                        domain::video_model(&m.id)
                            .map(video_extras)
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            text.push_str(&format!(
                "Video models, from {} at {}:\n",
                provider.backend().name(),
                provider.base_url()
            ));
            text.push_str(&indent(&table(
                &[
                    "MODEL",
                    "AVAILABLE",
                    "DURATIONS",
                    "RESOLUTIONS",
                    "ASPECT RATIOS",
                    "ALSO TAKES",
                ],
                &rows,
            )));
            if !others.is_empty() {
                let names: Vec<&str> = others.iter().map(|m| m.id.as_str()).collect();
                let setting = match family {
                    domain::VideoProvider::Gemini => "MCP_VIDEO_BACKEND=cliproxy",
                    domain::VideoProvider::CliProxy => {
                        "MCP_VIDEO_BACKEND=gemini and a Gemini API key"
                    }
                };
                text.push_str(&format!(
                    "  {} need{} `{setting}`.\n",
                    names.join(", "),
                    if names.len() == 1 { "s" } else { "" }
                ));
            }
        }
    }
    text.push_str(
        "\n* = the default. AVAILABLE: whether the backend lists the model now (? = not checked).\n",
    );
    if let Some(note) = report
        .note
        .filter(|n| n.starts_with("availability unknown"))
    {
        text.push_str(&format!(
            "note: {}\n",
            note.split("; video models").next().unwrap_or(&note)
        ));
    }
    print(&text)
}

/// What a video model takes besides a prompt.
fn video_extras(m: &domain::VideoModelInfo) -> String {
    let x = m.extras;
    let mut parts = Vec::new();
    if x.image {
        parts.push("first frame".to_owned());
    }
    if x.last_frame {
        parts.push("last frame".to_owned());
    }
    if x.reference_images > 0 {
        parts.push(format!("{} references", x.reference_images));
    }
    if x.extend {
        parts.push("extension".to_owned());
    }
    parts.join(", ")
}

fn indent(text: &str) -> String {
    text.lines().map(|l| format!("  {l}\n")).collect()
}

/// What a command that only looks says when the output directory holds no
/// library: it creates none.
pub fn without_library(command: Command, settings: &Settings) -> Result<(), AppError> {
    let dir = settings.library.output_dir.as_path();
    match command {
        Command::Usage { json, .. } => {
            let (_, month) = crate::service::period_starts(chrono::Utc::now());
            let spend = &settings.spend;
            match json {
                true => print_json(&serde_json::json!({
                    "success": true,
                    "since": crate::store::timestamp(month),
                    "until": crate::store::timestamp(chrono::Utc::now()),
                    "total_usd": 0.0, "images": 0, "videos": 0, "calls": 0,
                    "failed": 0, "blocked": 0, "running": 0,
                    "by_model": [], "by_day": [],
                    "budget": {
                        "daily_usd": spend.budget_daily_usd,
                        "monthly_usd": spend.budget_monthly_usd,
                        "spent_today": 0.0, "spent_month": 0.0,
                    },
                    "note": format!("no media library in {} yet: nothing spent", dir.display()),
                })),
                false => print(&format!(
                    "nothing spent: no media library in {} yet\n",
                    dir.display()
                )),
            }
        }
        Command::List { json: true, .. } => print_json(&ListGeneratedOutput {
            success: true,
            files: Vec::new(),
            total: 0,
            next_offset: None,
        }),
        Command::List { .. } => print(&no_files(dir)),
        Command::Jobs { json: true, .. } => print_json(&JobsOutput {
            success: true,
            jobs: Vec::new(),
        }),
        Command::Jobs { .. } => print(NO_JOBS),
        Command::Info { file, .. } | Command::Rm { file, .. } => {
            let name = parse_filename(&file).map_or_else(
                |_| {
                    Path::new(&file)
                        .file_name()
                        .map_or(file.clone(), |n| n.to_string_lossy().into_owned())
                },
                |id| id.to_string(),
            );
            Err(failed(&ServiceError::FileNotFound(name)))
        }
        _ => Ok(()),
    }
}

fn no_files(dir: &Path) -> String {
    format!(
        "no files in {}; make one with `media-gen generate \"a prompt\"` (add `--emulator` to try it offline)\n",
        dir.display()
    )
}

/// `media-gen usage`: a table per model, per-day bars on a terminal, the
/// total and the budget.
pub async fn usage(
    service: Arc<Service>,
    since: Option<&str>,
    until: Option<&str>,
    json: bool,
) -> Result<(), AppError> {
    let u = service.usage(since, until).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&u);
    }
    print(&usage_text(&u, std::io::stdout().is_terminal()))
}

/// The text `media-gen usage` prints; `bars`: per-day bars (a terminal).
pub fn usage_text(u: &crate::contract::UsageOutput, bars: bool) -> String {
    let usd = |v: f64| format!("${v:.2}");
    let mut text = format!(
        "from {} to {} (UTC); figures are estimates\n",
        u.since, u.until
    );
    if u.calls == 0 {
        text.push_str("no backend calls in this period\n");
    } else {
        let rows: Vec<Vec<String>> = u
            .by_model
            .iter()
            .map(|m| {
                vec![
                    m.model.clone(),
                    m.count.to_string(),
                    m.calls.to_string(),
                    usd(m.usd),
                ]
            })
            .collect();
        text.push_str(&table(&["MODEL", "MADE", "CALLS", "USD"], &rows));
        if bars {
            let widest = u.by_day.iter().map(|d| d.usd).fold(0.0, f64::max);
            for d in &u.by_day {
                let n = match widest > 0.0 {
                    true => ((d.usd / widest) * 30.0).round() as usize,
                    false => 0,
                };
                text.push_str(&format!(
                    "{}  {:<30}  {:>8}  {} made\n",
                    d.date,
                    "█".repeat(n.max(usize::from(d.usd > 0.0))),
                    usd(d.usd),
                    d.count
                ));
            }
        }
    }
    text.push_str(&format!(
        "total {}: {} images, {} videos; {} failed, {} blocked, {} running\n",
        usd(u.total_usd),
        u.images,
        u.videos,
        u.failed,
        u.blocked,
        u.running
    ));
    let cap = |c: Option<f64>, var: &str| match c {
        Some(c) => format!("cap {} ({var})", usd(c)),
        None => format!("no cap ({var} unset)"),
    };
    text.push_str(&format!(
        "today {} of {}; this month {} of {}\n",
        usd(u.budget.spent_today),
        cap(u.budget.daily_usd, "MCP_BUDGET_DAILY_USD"),
        usd(u.budget.spent_month),
        cap(u.budget.monthly_usd, "MCP_BUDGET_MONTHLY_USD"),
    ));
    text
}

const NO_JOBS: &str = "no video jobs yet; start one with `media-gen video PROMPT`\n";

/// `media-gen list`; an empty page says which directory it read.
pub async fn list(
    service: Arc<Service>,
    input: ListInput,
    json: bool,
    dir: &Path,
) -> Result<(), AppError> {
    let page = service.list_files(&input).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&page);
    }
    if page.files.is_empty() {
        let filtered = input.query.is_some() || input.kind.as_deref().is_some_and(|k| k != "all");
        return print(&match page.total {
            0 if filtered => format!("no matching files in {}\n", dir.display()),
            0 => no_files(dir),
            n => format!("no files on this page ({n} match in {})\n", dir.display()),
        });
    }
    let rows: Vec<Vec<String>> = page
        .files
        .iter()
        .map(|f| {
            vec![
                f.filename.clone(),
                local_time(&f.created),
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
    text.push_str(&format!(
        "{} of {} shown, from {}\n",
        page.files.len(),
        page.total,
        dir.display()
    ));
    print(&text)
}

/// `media-gen info FILE`: FILE is a name, a `media://` URI or the path
/// `generate` printed.
pub async fn info(service: Arc<Service>, file: &str, json: bool) -> Result<(), AppError> {
    let name = service.shell_file(file).map_err(|e| failed(&e))?;
    let info: FileInfoOutput = service
        .file_info(name.as_str())
        .await
        .map_err(|e| failed(&e))?;
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
        let v = match key {
            "created" => local_time(&info.created),
            _ => shown(&value[key]),
        };
        text.push_str(&format!("{key:<13} {v}\n"));
    }
    for key in [
        "prompt",
        "model",
        "aspect_ratio",
        "image_size",
        "duration_seconds",
        "resolution",
        "operation",
        "source",
        "job_id",
    ] {
        if let Some(v) = info.metadata.get(key).filter(|v| !v.is_null()) {
            text.push_str(&format!("{key:<13} {}\n", shown(v)));
        }
    }
    if !info.lineage.derived.is_empty() {
        text.push_str(&format!(
            "{:<13} {}\n",
            "made into",
            info.lineage.derived.join(", ")
        ));
    }
    print(&text)
}

/// `media-gen rm FILE`: checks that FILE is in the library, then asks on a
/// terminal unless `yes`; without a terminal it needs `yes`.
pub async fn rm(service: Arc<Service>, file: &str, yes: bool) -> Result<(), AppError> {
    use std::io::IsTerminal;
    let name = service.shell_file(file).map_err(|e| failed(&e))?;
    // A wrong name is the bigger mistake: say so before anything else.
    service
        .file_info(name.as_str())
        .await
        .map_err(|e| failed(&e))?;
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(failed(&ServiceError::ConfirmationRequired(
                name.to_string(),
            )));
        }
        eprint!("delete `{name}`, its sidecar and its catalog entry? [y/N] ");
        let mut answer = String::new();
        std::io::stdin()
            .read_line(&mut answer)
            .map_err(AppError::Stdout)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(AppError::Command(format!("`{name}` was not deleted")));
        }
    }
    let out = service
        .delete_file(name.as_str(), true)
        .await
        .map_err(|e| failed(&e))?;
    print(&format!("deleted {}\n", out.deleted))
}

/// `media-gen video`: starts a job and prints its id (`JOB_ID<TAB>STATUS`),
/// or with `wait` runs the job runner here and shows progress until the
/// video is saved, then prints `PATH<TAB>WxH<TAB>SECONDSs<TAB>video/mp4`.
/// An interrupt stops waiting; the job itself is durable and finishes later
/// (`media-gen jobs`, or a running server).
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
                print_error_json(&e)?;
            }
            return Err(failed(&e));
        }
    };
    if !json {
        for note in &started.notes {
            eprintln!("note: {}", note.render(Surface::Cli));
        }
    }
    let job_id = started.output.job_id.clone();
    if !wait {
        if json {
            return print_json(&started.output);
        }
        eprintln!(
            "media-gen: the video takes about 1–6 minutes; `media-gen jobs` shows its state (and saves it once ready), and a running media-gen server finishes it too"
        );
        return print(&format!("{job_id}\t{}\n", started.output.status));
    }
    let runner_stop = cancel.child_token();
    let runner = tokio::spawn(service.clone().run_jobs(runner_stop.clone()));
    let progress = Progress::job(&job_id);
    let outcome = loop {
        let status = tokio::select! {
            () = cancel.cancelled() => break None,
            s = service.video_status(&job_id, Some(MAX_WAIT_SECONDS), |job, _| progress.job_state(job)) => s,
        };
        match status {
            Ok(s) if matches!(s.output.status.as_str(), "queued" | "running") => continue,
            other => break Some(other),
        }
    };
    progress.clear();
    runner_stop.cancel();
    let _ = runner.await;
    let status = match outcome {
        None => {
            return Err(AppError::Command(format!(
                "stopped waiting; job {job_id} continues: `media-gen jobs` shows it and saves the video once ready"
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
        (Some(e), _, _) => Err(AppError::Failed {
            code: e.code,
            message: e.message.clone(),
        }),
        (None, Some(m), Some(path)) if !json => print(&format!(
            "{path}\t{}x{}\t{:.1}s\t{}\n",
            m.width, m.height, m.duration_seconds, m.mime_type
        )),
        _ => Ok(()),
    }
}

/// `media-gen jobs`: advances the unfinished jobs by one poll (saving the
/// videos that are ready), then lists the newest jobs.
pub async fn jobs(service: Arc<Service>, limit: u32, json: bool) -> Result<(), AppError> {
    if let Err(e) = service.advance_jobs().await {
        tracing::warn!(
            "could not advance the jobs: {}",
            e.message_for(Surface::Cli)
        );
    }
    let list = service.list_jobs(limit).await.map_err(|e| failed(&e))?;
    if json {
        return print_json(&list);
    }
    if list.jobs.is_empty() {
        return print(NO_JOBS);
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
                local_time(&j.created),
                match (&j.filename, &j.error) {
                    (Some(f), _) => f.clone(),
                    (None, Some(e)) => shorten(&format!("{}: {}", e.code.as_str(), e.message), 60),
                    _ => "-".into(),
                },
            ]
        })
        .collect();
    print(&table(
        &[
            "JOB",
            "STATUS",
            "OPERATION",
            "MODEL",
            "CREATED",
            "FILE / ERROR",
        ],
        &rows,
    ))
}

/// What bare `media-gen` (or `serve` over stdio) says when a person starts
/// it in a terminal: clients pipe stdin, so a terminal means someone is
/// trying it by hand. On stderr; stdout stays the protocol's.
pub fn waiting_for_a_client() {
    eprintln!(
        "media-gen is an MCP server: it is now waiting for an MCP client to speak JSON-RPC on stdin.
  Try it from the shell:   media-gen generate \"a lighthouse at dusk\" --emulator
  Add it to Claude Code:   claude mcp add media-gen -- media-gen serve
  See every command:       media-gen --help
Press Ctrl-D to stop (it keeps serving until stdin closes)."
    );
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
