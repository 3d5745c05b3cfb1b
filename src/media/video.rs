//! Video files: what an MP4 holds (size, duration) read from its boxes, and
//! a few of its frames decoded (H.264, with OpenH264 built from source) into
//! a contact sheet, so the model can see a video it made within the same
//! preview budget as an image.

use image::{DynamicImage, Rgb, RgbImage};
use openh264::OpenH264API;
use openh264::decoder::{DecodedYUV, Decoder, DecoderConfig, Flush};
use openh264::formats::YUVSource;
use re_mp4::{Mp4, StsdBoxContent, Track, TrackKind};

use super::{MediaError, Preview, preview_of, resize};

/// What a video file is, read from its boxes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VideoInfo {
    pub mime_type: &'static str,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
    pub duration_seconds: f64,
    /// Video frames (samples of the video track).
    pub frames: usize,
}

fn video_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Video(e.to_string())
}

/// Whether `bytes` look like an MP4 (an `ftyp` box first).
pub fn is_mp4(bytes: &[u8]) -> bool {
    bytes.get(4..8) == Some(b"ftyp")
}

fn parse(bytes: &[u8]) -> Result<Mp4, MediaError> {
    if !is_mp4(bytes) {
        return Err(MediaError::Video("not an MP4 file (no `ftyp` box)".into()));
    }
    check_sample_entries(bytes)?;
    // re_mp4 indexes its sample tables without checking them: a file whose
    // tables disagree (found by fuzzing: an empty `stts`) panics inside it.
    // That is a malformed file, not a crash of whoever reads it.
    //
    // And every loop of re_mp4 that walks boxes reads or seeks each time
    // round, so a budget of reader calls turns any loop that a box layout
    // still finds (past the pre-check) into a refusal rather than a held
    // thread. A whole file needs far fewer calls than it has bytes.
    let budget = 4 * bytes.len() as u64 + 4096;
    std::panic::catch_unwind(|| {
        Mp4::read(
            Budgeted {
                inner: std::io::Cursor::new(bytes),
                left: budget,
            },
            bytes.len() as u64,
        )
    })
    .map_err(|_| MediaError::Video("the MP4's sample tables are inconsistent".into()))?
    .map_err(video_error)
}

/// A reader that fails once it has been called `left` times: the bound on
/// how long re_mp4 may walk a file.
struct Budgeted<R> {
    inner: R,
    left: u64,
}

impl<R> Budgeted<R> {
    fn spend(&mut self) -> std::io::Result<()> {
        self.left = self.left.checked_sub(1).ok_or_else(|| {
            std::io::Error::other("malformed MP4: its boxes send the reader round in circles")
        })?;
        Ok(())
    }
}

impl<R: std::io::Read> std::io::Read for Budgeted<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.spend()?;
        self.inner.read(buf)
    }
}

impl<R: std::io::Seek> std::io::Seek for Budgeted<R> {
    fn seek(&mut self, pos: std::io::SeekFrom) -> std::io::Result<u64> {
        self.spend()?;
        self.inner.seek(pos)
    }
}

/// Boxes re_mp4 walks into, and the bytes before their first child
/// (`stsd` and `dref` have a version, flags and an entry count). `meta` is
/// left out: QuickTime and ISO files lay it out differently.
const CONTAINERS: [(&[u8; 4], usize); 10] = [
    (b"moov", 0),
    (b"trak", 0),
    (b"mdia", 0),
    (b"minf", 0),
    (b"stbl", 0),
    (b"stsd", 8),
    (b"dinf", 0),
    (b"dref", 8),
    (b"edts", 0),
    (b"mvex", 0),
];

/// Refuses what `re_mp4` would loop on forever (found by fuzzing): it
/// moves from a box to the next by seeking to the box's start plus its
/// size (in `avc1` sample entries and when skipping a box it does not
/// know), so a box smaller than its own header — or of size 0, "to the end"
/// in the spec, below the top level — never moves it on. Walks every
/// container re_mp4 walks, and the boxes inside each `avc1`.
fn check_sample_entries(bytes: &[u8]) -> Result<(), MediaError> {
    fn walk(bytes: &[u8], depth: usize) -> Result<(), MediaError> {
        let bad = |what: &str| MediaError::Video(format!("malformed MP4: {what}"));
        let mut at = 0usize;
        while at + 8 <= bytes.len() {
            let size = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let kind = &bytes[at + 4..at + 8];
            let (header, size) = match size {
                // "To the end of the file": re_mp4 only copes at the top.
                0 if depth == 0 => (8, bytes.len() - at),
                0 => return Err(bad("a box inside another has size 0")),
                1 => {
                    let large = bytes
                        .get(at + 8..at + 16)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map(u64::from_be_bytes)
                        .ok_or_else(|| bad("a box header is cut off"))?;
                    (16, usize::try_from(large).unwrap_or(usize::MAX))
                }
                n => (8, n as usize),
            };
            if size < header {
                return Err(bad("a box is smaller than its header"));
            }
            let end = at.checked_add(size).filter(|e| *e <= bytes.len());
            // A last box running past the end is re_mp4's to refuse.
            let body = &bytes[at + header..end.unwrap_or(bytes.len())];
            if let Some((_, skip)) = CONTAINERS.iter().find(|(name, _)| kind == *name) {
                if depth < 16 {
                    walk(body.get(*skip..).unwrap_or_default(), depth + 1)?;
                }
            } else if kind == b"avc1" {
                // A visual sample entry: 78 bytes of fields, then boxes.
                walk_children(body.get(78..).unwrap_or_default())?;
            }
            match end {
                Some(end) => at = end,
                None => break,
            }
        }
        Ok(())
    }
    /// Every box inside an `avc1`: none smaller than its header.
    fn walk_children(bytes: &[u8]) -> Result<(), MediaError> {
        let mut at = 0usize;
        while at + 8 <= bytes.len() {
            let size = u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
            let size = match size {
                1 => bytes
                    .get(at + 8..at + 16)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map(|b| usize::try_from(u64::from_be_bytes(b)).unwrap_or(usize::MAX))
                    .unwrap_or(0),
                n => n as usize,
            };
            if size < 8 {
                return Err(MediaError::Video(
                    "malformed MP4: a box in the video sample entry is smaller than its header"
                        .into(),
                ));
            }
            match at.checked_add(size) {
                Some(end) if end <= bytes.len() => at = end,
                _ => break,
            }
        }
        Ok(())
    }
    // The top level: `moov` among `ftyp`, `mdat` …
    walk(bytes, 0)
}

fn video_track(mp4: &Mp4) -> Result<&Track, MediaError> {
    mp4.tracks()
        .values()
        .find(|t| t.kind == Some(TrackKind::Video))
        .ok_or_else(|| MediaError::Video("the MP4 has no video track".into()))
}

/// Size, duration and frame count from the MP4's boxes (nothing decoded).
pub fn probe_mp4(bytes: &[u8]) -> Result<VideoInfo, MediaError> {
    let mp4 = parse(bytes)?;
    let track = video_track(&mp4)?;
    let duration_seconds = if track.timescale > 0 {
        track.duration as f64 / track.timescale as f64
    } else if mp4.moov.mvhd.timescale > 0 {
        mp4.moov.mvhd.duration as f64 / f64::from(mp4.moov.mvhd.timescale)
    } else {
        0.0
    };
    if track.width == 0 || track.height == 0 {
        return Err(MediaError::Video("the video track has no size".into()));
    }
    Ok(VideoInfo {
        mime_type: "video/mp4",
        extension: "mp4",
        width: u32::from(track.width),
        height: u32::from(track.height),
        duration_seconds,
        frames: track.samples.len(),
    })
}

/// `count` frames spread evenly from the first to the last (in display
/// order), decoded to RGB. Decodes the whole track once.
pub fn frames(bytes: &[u8], count: usize) -> Result<Vec<RgbImage>, MediaError> {
    let mp4 = parse(bytes)?;
    let track = video_track(&mp4)?;
    let StsdBoxContent::Avc1(avc1) = &track.trak(&mp4).mdia.minf.stbl.stsd.contents else {
        return Err(MediaError::Video(
            "only H.264 video is decoded for previews".into(),
        ));
    };
    let config = &avc1.avcc.contents;
    let length_size = usize::from(config.length_size_minus_one) + 1;
    let parameter_sets: Vec<&[u8]> = config
        .sequence_parameter_sets
        .iter()
        .chain(&config.picture_parameter_sets)
        .map(|n| n.bytes.as_slice())
        .collect();
    let total = track.samples.len();
    if total == 0 || count == 0 {
        return Ok(Vec::new());
    }
    let wanted: Vec<usize> = (0..count)
        .map(|k| {
            if count == 1 {
                0
            } else {
                k * (total - 1) / (count - 1)
            }
        })
        .collect();
    let mut decoder = Decoder::with_api_config(
        OpenH264API::from_source(),
        DecoderConfig::new().flush_after_decode(Flush::NoFlush),
    )
    .map_err(video_error)?;
    let mut shown = 0usize;
    let mut out = Vec::with_capacity(count);
    let mut take = |yuv: &DecodedYUV<'_>, shown: &mut usize| {
        if wanted.contains(shown) {
            out.push(rgb(yuv));
        }
        *shown += 1;
    };
    for (i, sample) in track.samples.iter().enumerate() {
        let data = bytes
            .get(sample.byte_range())
            .ok_or_else(|| MediaError::Video("a sample lies outside the file".into()))?;
        let packet = annex_b(data, length_size, &parameter_sets, i == 0 || sample.is_sync);
        // A frame that does not decode is skipped, not fatal: a preview
        // of the others is still worth having.
        if let Ok(Some(yuv)) = decoder.decode(&packet) {
            take(&yuv, &mut shown);
        }
    }
    for yuv in decoder.flush_remaining().map_err(video_error)? {
        take(&yuv, &mut shown);
    }
    if out.is_empty() {
        return Err(MediaError::Video("no frame could be decoded".into()));
    }
    Ok(out)
}

/// A decoded frame as RGB.
fn rgb(yuv: &DecodedYUV<'_>) -> RgbImage {
    let (w, h) = yuv.dimensions();
    let mut raw = vec![0u8; w * h * 3];
    yuv.write_rgb8(&mut raw);
    RgbImage::from_raw(w as u32, h as u32, raw).unwrap_or_default()
}

/// MP4 (AVCC, length-prefixed) NAL units as Annex-B (start codes), with the
/// parameter sets before a sync sample.
fn annex_b(sample: &[u8], length_size: usize, parameter_sets: &[&[u8]], sync: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(sample.len() + 64);
    if sync {
        for ps in parameter_sets {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(ps);
        }
    }
    let mut rest = sample;
    while rest.len() >= length_size {
        let n = rest[..length_size]
            .iter()
            .fold(0usize, |a, b| (a << 8) | usize::from(*b));
        rest = &rest[length_size..];
        if n > rest.len() {
            break;
        }
        out.extend_from_slice(&[0, 0, 0, 1]);
        out.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
    }
    out
}

/// Frames in a contact sheet.
pub const SHEET_FRAMES: usize = 4;

/// A contact sheet of the video: four frames (first, two between, last) in
/// a 2×2 grid, within the preview's side and byte budget.
pub fn contact_sheet(bytes: &[u8], max_side: u32, max_bytes: usize) -> Result<Preview, MediaError> {
    let frames = frames(bytes, SHEET_FRAMES)?;
    let (fw, fh) = frames
        .first()
        .map(|f| f.dimensions())
        .ok_or_else(|| MediaError::Video("no frame could be decoded".into()))?;
    // Each cell fits half the side; a 2-pixel gutter between cells.
    let (cw, ch) = super::fit(fw, fh, max_side.saturating_sub(2) / 2);
    let gutter = 2;
    let cols = 2;
    let rows = frames.len().div_ceil(cols) as u32;
    let mut sheet = RgbImage::from_pixel(
        cols as u32 * cw + gutter,
        rows * ch + gutter * (rows - 1),
        Rgb([24, 24, 24]),
    );
    for (i, frame) in frames.into_iter().enumerate() {
        let cell = resize::resized(
            &DynamicImage::ImageRgb8(frame),
            cw,
            ch,
            resize::Filter::Bilinear,
        )?
        .into_rgb8();
        let (col, row) = ((i % cols) as u32, (i / cols) as u32);
        image::imageops::replace(
            &mut sheet,
            &cell,
            i64::from(col * (cw + gutter)),
            i64::from(row * (ch + gutter)),
        );
    }
    preview_of(&DynamicImage::ImageRgb8(sheet), max_side, max_bytes)
}

/// The MP4 reader on hostile bytes: a real clip (the emulator's) damaged
/// in every way proptest finds, and arbitrary boxes.
#[cfg(test)]
mod proptests {
    use std::sync::OnceLock;

    use proptest::prelude::*;

    use super::*;
    use crate::emulator::video::{Clip, render_mp4};
    use crate::prop_support::config;

    fn clip() -> &'static [u8] {
        static MP4: OnceLock<Vec<u8>> = OnceLock::new();
        MP4.get_or_init(|| {
            render_mp4(&Clip {
                seed: b"prop".to_vec(),
                prompt: "prop".into(),
                width: 64,
                height: 48,
                seconds: 1,
                first: None,
                last: None,
            })
            .unwrap()
        })
    }

    /// A box: size, type, payload (the size may lie).
    fn mp4_box() -> impl Strategy<Value = Vec<u8>> {
        (
            any::<u32>(),
            prop::sample::select(vec![
                *b"ftyp", *b"moov", *b"mvhd", *b"trak", *b"tkhd", *b"mdia", *b"mdhd", *b"hdlr",
                *b"minf", *b"stbl", *b"stsd", *b"stts", *b"stsz", *b"stco", *b"co64", *b"avc1",
                *b"avcC", *b"mdat", *b"free",
            ]),
            prop::collection::vec(any::<u8>(), 0..64),
            any::<bool>(),
        )
            .prop_map(|(size, kind, payload, honest)| {
                let size = if honest {
                    payload.len() as u32 + 8
                } else {
                    size
                };
                let mut b = size.to_be_bytes().to_vec();
                b.extend_from_slice(&kind);
                b.extend_from_slice(&payload);
                b
            })
    }

    proptest! {
        #![proptest_config(config(64))]

        #[test]
        fn arbitrary_boxes_never_panic(boxes in prop::collection::vec(mp4_box(), 0..8)) {
            let mut bytes = b"\0\0\0\x14ftypisom\0\0\0\0isom".to_vec();
            bytes.extend(boxes.concat());
            let _ = probe_mp4(&bytes);
            let _ = frames(&bytes, 2);
        }

        #[test]
        fn a_damaged_clip_never_panics(
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = clip().to_vec();
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1).max(8));
            if let Ok(info) = probe_mp4(&bytes)
                && u64::from(info.width) * u64::from(info.height) <= 1 << 16
            {
                let _ = frames(&bytes, 2);
            }
        }
    }

    /// Found by the `mp4` fuzz target: a clip whose `stts` table is empty
    /// panicked inside re_mp4 (index out of bounds).
    #[test]
    fn an_empty_sample_table_is_an_error_not_a_panic() {
        let bytes = include_bytes!("testdata/empty_stts.mp4");
        assert!(matches!(probe_mp4(bytes), Err(MediaError::Video(_))));
        assert!(matches!(frames(bytes, 2), Err(MediaError::Video(_))));
    }

    /// Found by the `mp4` fuzz target: a box inside the `avc1` sample
    /// entry smaller than its header made re_mp4 loop forever. Refused
    /// before re_mp4 sees it; a whole clip still passes the same check.
    #[test]
    fn a_sample_entry_box_smaller_than_its_header_is_refused_not_a_hang() {
        let bytes = include_bytes!("testdata/avc1_child_size_0.mp4");
        let err = probe_mp4(bytes).unwrap_err();
        assert!(err.to_string().contains("smaller than its header"), "{err}");
        assert!(matches!(frames(bytes, 2), Err(MediaError::Video(_))));
        check_sample_entries(clip()).unwrap();
        // The run after: a box of size 0 inside `moov` (re_mp4's `skip_box`).
        let bytes = include_bytes!("testdata/moov_child_size_0.mp4");
        let err = probe_mp4(bytes).unwrap_err();
        assert!(err.to_string().contains("size 0"), "{err}");
        // The third: a last box in `stbl` whose header runs past the end of
        // `stbl` and reads as size 0 — only the reader budget sees it.
        let bytes = include_bytes!("testdata/stbl_header_past_its_end.mp4");
        let err = probe_mp4(bytes).unwrap_err();
        assert!(err.to_string().contains("round in circles"), "{err}");
    }

    #[test]
    fn the_emulator_clip_reads_as_made() {
        let info = probe_mp4(clip()).unwrap();
        assert_eq!((info.width, info.height, info.frames), (64, 48, 8));
        assert!((info.duration_seconds - 1.0).abs() < 0.01, "{info:?}");
        assert!(!is_mp4(&clip()[1..]));
    }
}
