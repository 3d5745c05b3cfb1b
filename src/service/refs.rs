//! Input images. Every parameter that names an image (`image_path`,
//! `mask_path`, `reference_images[]`) goes through [`Service::read_input`]:
//! a library file name, a `media://files/NAME` URI, or a path. What a path
//! may reach depends on who asks — the transport hands each session its
//! [`InputPolicy`]: over stdio any readable path (relative ones from the
//! server's working directory), over HTTP only absolute paths inside the
//! output directory and `MCP_INPUT_ROOTS`, with links resolved before the
//! check. Sizes are checked from the header before any pixel is decoded.
//!
//! Reading a client's path is input handling, not library storage: it is
//! the one place the service opens a file itself.

use std::fs::File;
use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Component, Path, PathBuf};

use bytes::Bytes;

use super::{Service, ServiceError};
use crate::backend::InputImage;
use crate::media::encode::{self, OutputFormat};
use crate::media::input::{DecodedInput, InputLimits, decode_input};
use crate::media::resize::{self, Filter};
use crate::media::{self, ImageInfo};
use crate::store::MediaId;

/// References larger than this (long side, pixels) are scaled down before
/// they are sent: the models work from about this much detail.
pub const REFERENCE_MAX_SIDE: u32 = 2048;

/// What paths a session's inputs may name.
#[derive(Debug, Clone)]
pub struct InputPolicy {
    kind: PolicyKind,
}

#[derive(Debug, Clone)]
enum PolicyKind {
    /// Any readable path; relative ones from `cwd`.
    AnyPath { cwd: Option<PathBuf> },
    /// Absolute paths inside `roots` (each as configured and with its links
    /// resolved).
    Within { roots: Vec<(PathBuf, PathBuf)> },
}

impl InputPolicy {
    /// Over stdio (the client runs on this machine, as this user): any
    /// readable path, relative ones from `cwd`.
    pub fn any_path(cwd: Option<PathBuf>) -> Self {
        Self {
            kind: PolicyKind::AnyPath { cwd },
        }
    }

    /// Over HTTP: only absolute paths inside `roots`. Roots that do not
    /// exist are left out (and logged).
    pub fn within(roots: &[PathBuf]) -> Self {
        let roots = roots
            .iter()
            .filter_map(|r| match r.canonicalize() {
                Ok(c) => Some((normalize(r), c)),
                Err(e) => {
                    tracing::warn!(root = %r.display(), error = %e, "input root not usable; left out");
                    None
                }
            })
            .collect();
        Self {
            kind: PolicyKind::Within { roots },
        }
    }

    /// What the policy allows, for messages.
    fn describe(&self) -> String {
        match &self.kind {
            PolicyKind::AnyPath { .. } => "any readable path".to_owned(),
            PolicyKind::Within { roots } => roots
                .iter()
                .map(|(r, _)| format!("`{}`", r.display()))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }
}

/// Where an input came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputOrigin {
    /// A file of the library (the result records it as the source).
    Library(MediaId),
    /// A file elsewhere on this machine.
    Path(PathBuf),
}

/// An input read and checked from its header, not yet decoded.
#[derive(Debug, Clone)]
pub struct ReadInput {
    /// The parameter it came from (`image_path`, `reference_images[2]` …).
    pub field: String,
    /// How results name it: the library file name, or the path.
    pub label: String,
    pub origin: InputOrigin,
    pub bytes: Bytes,
    /// From the header (before any EXIF orientation).
    pub info: ImageInfo,
}

impl ReadInput {
    /// The library file it is, if it is one.
    pub fn library_id(&self) -> Option<&MediaId> {
        match &self.origin {
            InputOrigin::Library(id) => Some(id),
            InputOrigin::Path(_) => None,
        }
    }

    /// Decodes the pixels (blocking: call off the runtime).
    pub fn decode(&self, limits: &InputLimits) -> Result<DecodedInput, ServiceError> {
        decode_input(&self.bytes, limits).map_err(|source| self.invalid(source))
    }

    fn invalid(&self, source: media::MediaError) -> ServiceError {
        ServiceError::InvalidImage {
            field: self.field.clone(),
            reference: self.label.clone(),
            source,
        }
    }

    /// The image as it is sent to a model beside a prompt, at most
    /// `max_side` pixels on its long side: the file itself when it already
    /// fits (PNG, JPEG or WebP, upright), else a scaled copy of `decoded`
    /// (PNG with alpha, JPEG without). Blocking.
    pub fn for_model(
        &self,
        decoded: &DecodedInput,
        max_side: u32,
    ) -> Result<InputImage, ServiceError> {
        let fits = self.info.width.max(self.info.height) <= max_side;
        let sendable = matches!(
            self.info.mime_type,
            "image/png" | "image/jpeg" | "image/webp"
        );
        if fits && sendable && !decoded.reoriented {
            return Ok(InputImage {
                mime_type: self.info.mime_type.to_owned(),
                data: self.bytes.clone(),
            });
        }
        let (w, h) = media::fit(decoded.image.width(), decoded.image.height(), max_side);
        resize::resized(&decoded.image, w, h, Filter::Lanczos3)
            .and_then(|small| image_for_model(&small))
            .map_err(|e| self.invalid(e))
    }
}

/// Pixels as a model input: PNG when they have alpha, JPEG otherwise.
pub fn image_for_model(img: &image::DynamicImage) -> Result<InputImage, media::MediaError> {
    let format = if img.color().has_alpha() {
        OutputFormat::Png
    } else {
        OutputFormat::Jpeg
    };
    Ok(InputImage {
        mime_type: format.mime_type().to_owned(),
        data: Bytes::from(encode::encode(img, format)?),
    })
}

impl Service {
    /// The limits inputs are held to.
    pub(super) fn input_limits(&self) -> InputLimits {
        InputLimits {
            max_bytes: self.edit.input_max_bytes,
            max_pixels: self.edit.input_max_pixels,
        }
    }

    /// Finds and reads the image `reference` names for parameter `field`,
    /// as `policy` allows, and checks its header against the limits.
    pub(super) async fn read_input(
        &self,
        field: &str,
        reference: &str,
        policy: &InputPolicy,
    ) -> Result<ReadInput, ServiceError> {
        let reference = reference.trim();
        let field = field.to_owned();
        if reference.is_empty() {
            return Err(ServiceError::BadInput {
                message: format!(
                    "`{field}` is empty; give a library file name, a `media://files/…` URI or a path"
                ),
                field,
            });
        }
        let limits = self.input_limits();
        let (origin, bytes) = if let Some(name) = reference.strip_prefix("media://files/") {
            let id = name
                .parse::<MediaId>()
                .map_err(|_| self.not_found(&field, reference))?;
            self.read_library(&field, reference, id, &limits).await?
        } else if let Some(id) = self.catalogued(reference).await? {
            self.read_library(&field, reference, id, &limits).await?
        } else {
            let path = PathBuf::from(reference);
            let allowed = policy.describe();
            let policy = policy.clone();
            let max = limits.max_bytes;
            let (canonical, bytes) =
                tokio::task::spawn_blocking(move || read_path(&policy, &path, max))
                    .await
                    .map_err(|e| ServiceError::Internal(format!("input task failed: {e}")))?
                    .map_err(|e| e.into_service_error(&field, reference, allowed))?;
            // The path of a library file is that library file (and its lineage).
            match self.library.local_id(&canonical) {
                Some(id) if self.library.get(&id).await.ok().flatten().is_some() => {
                    (InputOrigin::Library(id), bytes)
                }
                _ => (InputOrigin::Path(canonical), bytes),
            }
        };
        let label = match &origin {
            InputOrigin::Library(id) => id.to_string(),
            InputOrigin::Path(p) => p.display().to_string(),
        };
        let info = media::probe(&bytes).map_err(|source| ServiceError::InvalidImage {
            field: field.clone(),
            reference: label.clone(),
            source,
        })?;
        let pixels = u64::from(info.width) * u64::from(info.height);
        if pixels > limits.max_pixels {
            return Err(ServiceError::InvalidImage {
                field,
                reference: label,
                source: media::MediaError::TooLarge {
                    width: info.width,
                    height: info.height,
                    max_pixels: limits.max_pixels,
                },
            });
        }
        Ok(ReadInput {
            field,
            label,
            origin,
            bytes,
            info,
        })
    }

    /// `name` as a catalogued library file, if it is one.
    async fn catalogued(&self, name: &str) -> Result<Option<MediaId>, ServiceError> {
        let Ok(id) = name.parse::<MediaId>() else {
            return Ok(None);
        };
        let known = self.library.get(&id).await.map_err(ServiceError::Storage)?;
        Ok(known.map(|_| id))
    }

    async fn read_library(
        &self,
        field: &str,
        reference: &str,
        id: MediaId,
        limits: &InputLimits,
    ) -> Result<(InputOrigin, Bytes), ServiceError> {
        let record = self
            .library
            .get(&id)
            .await
            .map_err(ServiceError::Storage)?
            .ok_or_else(|| self.not_found(field, reference))?;
        if record.size_bytes > limits.max_bytes {
            return Err(ServiceError::InvalidImage {
                field: field.to_owned(),
                reference: id.to_string(),
                source: media::MediaError::FileTooLarge {
                    size: record.size_bytes,
                    max: limits.max_bytes,
                },
            });
        }
        let bytes = self
            .library
            .read(&id)
            .await
            .map_err(|_| self.not_found(field, reference))?;
        Ok((InputOrigin::Library(id), bytes))
    }

    fn not_found(&self, field: &str, reference: &str) -> ServiceError {
        ServiceError::InputNotFound {
            field: field.to_owned(),
            reference: reference.to_owned(),
        }
    }
}

/// Why a path could not be read.
#[derive(Debug)]
enum PathError {
    Missing,
    /// Outside what the policy allows (or relative where only absolute
    /// paths are allowed).
    Refused(&'static str),
    NotAFile,
    TooLarge(u64, u64),
    Io(std::io::Error),
}

impl PathError {
    fn into_service_error(self, field: &str, reference: &str, allowed: String) -> ServiceError {
        let (field, reference) = (field.to_owned(), reference.to_owned());
        match self {
            Self::Missing => ServiceError::InputNotFound { field, reference },
            Self::Refused(why) => ServiceError::InputRefused {
                field,
                reference,
                reason: format!("{why}; this server reads only inside {allowed}"),
            },
            Self::NotAFile => ServiceError::InvalidImage {
                field,
                reference,
                source: media::MediaError::Unsupported,
            },
            Self::TooLarge(size, max) => ServiceError::InvalidImage {
                field,
                reference,
                source: media::MediaError::FileTooLarge { size, max },
            },
            Self::Io(e) => ServiceError::InputUnreadable {
                field,
                reference,
                source: e,
            },
        }
    }
}

fn io_error(e: std::io::Error) -> PathError {
    match e.kind() {
        std::io::ErrorKind::NotFound => PathError::Missing,
        _ => PathError::Io(e),
    }
}

/// `path` with `.` and `..` resolved as text (no file system access).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Reads the file at `raw` as `policy` allows: its canonical path and bytes.
fn read_path(
    policy: &InputPolicy,
    raw: &Path,
    max_bytes: u64,
) -> Result<(PathBuf, Bytes), PathError> {
    let canonical = match &policy.kind {
        PolicyKind::AnyPath { cwd } => {
            let path = match (raw.is_relative(), cwd) {
                (true, Some(cwd)) => cwd.join(raw),
                _ => raw.to_owned(),
            };
            path.canonicalize().map_err(io_error)?
        }
        PolicyKind::Within { roots } => {
            if raw.is_relative() {
                return Err(PathError::Refused("a relative path"));
            }
            // Outside the roots even as written: refused without touching
            // the file system, so nothing outside is even probed.
            let written = normalize(raw);
            if !roots
                .iter()
                .any(|(r, c)| written.starts_with(r) || written.starts_with(c))
            {
                return Err(PathError::Refused("outside the allowed directories"));
            }
            let canonical = raw.canonicalize().map_err(io_error)?;
            if !inside(roots, &canonical) {
                return Err(PathError::Refused("a link out of the allowed directories"));
            }
            canonical
        }
    };
    let file = File::options()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&canonical)
        .map_err(io_error)?;
    if let PolicyKind::Within { roots } = &policy.kind {
        // What was opened is what was checked: the descriptor's own path
        // (a swap between the check and the open is caught here).
        let opened = std::fs::read_link(format!("/proc/self/fd/{}", file.as_raw_fd()))
            .map_err(PathError::Io)?;
        if !inside(roots, &opened) {
            return Err(PathError::Refused("a link out of the allowed directories"));
        }
    }
    let meta = file.metadata().map_err(PathError::Io)?;
    if !meta.is_file() {
        return Err(PathError::NotAFile);
    }
    if meta.len() > max_bytes {
        return Err(PathError::TooLarge(meta.len(), max_bytes));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    file.take(max_bytes + 1)
        .read_to_end(&mut buf)
        .map_err(PathError::Io)?;
    if buf.len() as u64 > max_bytes {
        return Err(PathError::TooLarge(buf.len() as u64, max_bytes));
    }
    Ok((canonical, Bytes::from(buf)))
}

fn inside(roots: &[(PathBuf, PathBuf)], path: &Path) -> bool {
    roots.iter().any(|(_, c)| path.starts_with(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    #[test]
    fn stdio_reads_any_path_relative_from_the_working_directory() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.png", b"abc");
        let any = InputPolicy::any_path(Some(dir.path().to_owned()));
        let (p, b) = read_path(&any, Path::new("a.png"), 100).unwrap();
        assert_eq!(
            (p.file_name().unwrap().to_str().unwrap(), &b[..]),
            ("a.png", &b"abc"[..])
        );
        assert!(matches!(
            read_path(&any, Path::new("nope.png"), 100),
            Err(PathError::Missing)
        ));
        assert!(matches!(
            read_path(&any, dir.path(), 100),
            Err(PathError::NotAFile)
        ));
        assert!(matches!(
            read_path(&any, &dir.path().join("a.png"), 2),
            Err(PathError::TooLarge(3, 2))
        ));
    }

    #[test]
    fn http_reads_only_inside_the_roots() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = write(outside.path(), "canary.png", b"secret");
        let inside_file = write(root.path(), "in.png", b"ok");
        std::os::unix::fs::symlink(&canary, root.path().join("link.png")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("door")).unwrap();
        let within = InputPolicy::within(&[root.path().to_owned()]);
        assert!(read_path(&within, &inside_file, 100).is_ok());
        let refused = |p: &Path| matches!(read_path(&within, p, 100), Err(PathError::Refused(_)));
        assert!(refused(&canary), "outside");
        assert!(refused(Path::new("in.png")), "relative");
        assert!(
            refused(
                &root
                    .path()
                    .join("../")
                    .join(outside.path().file_name().unwrap())
                    .join("canary.png")
            ),
            ".."
        );
        assert!(
            refused(&root.path().join("link.png")),
            "a link to a file outside"
        );
        assert!(
            refused(&root.path().join("door/canary.png")),
            "a link to a directory outside"
        );
        // A missing file inside is reported missing; outside, only refused.
        assert!(matches!(
            read_path(&within, &root.path().join("gone.png"), 100),
            Err(PathError::Missing)
        ));
        assert!(refused(&outside.path().join("gone.png")));
        assert_eq!(std::fs::read(&canary).unwrap(), b"secret");
        // A root that does not exist is left out, not an error.
        let none = InputPolicy::within(&[root.path().join("missing")]);
        assert!(matches!(
            read_path(&none, &inside_file, 100),
            Err(PathError::Refused(_))
        ));
    }
}

/// Paths built from hostile pieces (`..`, `.`, links out, the outside
/// directory's own name) over a real directory tree: over HTTP nothing
/// outside the root is ever read.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::prop_support::config;

    const CANARY: &[u8] = b"canary: outside the library";

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn normalized_absolute_paths_have_no_dots(
            parts in prop::collection::vec(prop::sample::select(vec!["..", ".", "a", "b", ""]), 0..10),
        ) {
            let p = normalize(Path::new(&format!("/{}", parts.join("/"))));
            prop_assert!(p.is_absolute());
            prop_assert!(p.components().all(|c| matches!(c, Component::RootDir | Component::Normal(_))));
        }
    }

    #[test]
    fn nothing_outside_the_root_is_read() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let canary = outside.path().join("canary.png");
        std::fs::write(&canary, CANARY).unwrap();
        std::fs::write(root.path().join("in.png"), b"inside").unwrap();
        std::fs::create_dir(root.path().join("sub")).unwrap();
        std::fs::write(root.path().join("sub/deep.png"), b"deep").unwrap();
        std::os::unix::fs::symlink(&canary, root.path().join("link.png")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("door")).unwrap();
        std::os::unix::fs::symlink("../in.png", root.path().join("sub/up.png")).unwrap();
        let away = outside
            .path()
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let within = InputPolicy::within(&[root.path().to_owned()]);
        let real_root = root.path().canonicalize().unwrap();
        let piece = prop::sample::select(vec![
            "..".to_owned(),
            ".".to_owned(),
            "".to_owned(),
            "in.png".to_owned(),
            "link.png".to_owned(),
            "door".to_owned(),
            "sub".to_owned(),
            "deep.png".to_owned(),
            "up.png".to_owned(),
            "canary.png".to_owned(),
            away,
        ]);
        let start = prop_oneof![
            Just(root.path().to_owned()),
            Just(outside.path().to_owned()),
            Just(PathBuf::from("/")),
            Just(PathBuf::new()),
        ];
        proptest!(config(512), |(start in start, parts in prop::collection::vec(piece, 0..6))| {
            let path = parts.iter().fold(start, |p, s| p.join(s));
            // Refused, missing, not a file, or `in.png/..` (not a
            // directory): nothing was read. Read: only inside the root.
            if let Ok((p, bytes)) = read_path(&within, &path, 1 << 20) {
                prop_assert!(p.starts_with(&real_root), "{} read as {}", path.display(), p.display());
                prop_assert_ne!(&bytes[..], CANARY);
            }
        });
        assert_eq!(std::fs::read(&canary).unwrap(), CANARY);
    }
}
