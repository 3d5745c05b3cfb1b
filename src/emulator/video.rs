//! Real, playable H.264 MP4 clips for the emulator's video routes (encoded
//! with OpenH264, muxed with `mp4`). Every frame shows the prompt-derived
//! pattern — two colours from the request's hash — with a disc that crosses
//! the picture over the clip, so a contact sheet shows both what was asked
//! and that it moves. A clip made from an image starts on that image, and
//! one given a last frame ends on it. Every frame carries the emulator's
//! label with the prompt (`label.rs`), below the disc's path.

use bytes::Bytes;
use image::{DynamicImage, Rgb, RgbImage};
use openh264::OpenH264API;
use openh264::encoder::{
    BitRate, Encoder, EncoderConfig, FrameRate, IntraFramePeriod, RateControlMode,
};
use openh264::formats::{RgbSliceU8, YUVBuffer};
use sha2::{Digest, Sha256};

use super::label::{self, Area};

/// Frames per second of emulator clips (low: they only need to play).
pub const FPS: u32 = 8;
const TIMESCALE: u32 = 90_000;

/// What to draw.
#[derive(Debug, Clone)]
pub struct Clip {
    /// Hash input: the same request gives the same clip.
    pub seed: Vec<u8>,
    /// What the label says under "media-gen emulator".
    pub prompt: String,
    pub width: u32,
    pub height: u32,
    pub seconds: u32,
    /// The first frame, when the clip animates an image.
    pub first: Option<RgbImage>,
    /// The last frame, when the clip interpolates to one.
    pub last: Option<RgbImage>,
}

/// The colours a seed stands for: background top, bottom, and the disc.
pub fn colours(seed: &[u8]) -> [[u8; 3]; 3] {
    let h = Sha256::digest(seed);
    [
        [h[0], h[1], h[2]],
        [h[3], h[4], h[5]],
        [255 - h[0], 255 - h[1], h[2] / 2],
    ]
}

/// The background every drawn frame shares: a vertical blend of the seed's
/// first two colours, labelled.
fn background(clip: &Clip) -> RgbImage {
    let (w, h) = (clip.width, clip.height);
    let [top, bottom, _] = colours(&clip.seed);
    let mut img = RgbImage::new(w, h);
    for (y, row) in img.rows_mut().enumerate() {
        let t = y as u32 * 255 / h.max(1);
        let c = Rgb(std::array::from_fn(|c| {
            ((u32::from(top[c]) * (255 - t) + u32::from(bottom[c]) * t) / 255) as u8
        }));
        for p in row {
            *p = c;
        }
    }
    labelled(clip, img)
}

fn labelled(clip: &Clip, mut img: RgbImage) -> RgbImage {
    let (w, h) = img.dimensions();
    label::draw(&mut img, w, h, Area::whole(w, h), &clip.prompt);
    img
}

fn frame(clip: &Clip, background: &RgbImage, index: u32, count: u32) -> RgbImage {
    let (w, h) = (clip.width, clip.height);
    if index == 0
        && let Some(first) = &clip.first
    {
        return labelled(clip, scaled(first, w, h));
    }
    if index + 1 == count
        && let Some(last) = &clip.last
    {
        return labelled(clip, scaled(last, w, h));
    }
    let [_, _, disc] = colours(&clip.seed);
    let mut img = background.clone();
    let progress = f64::from(index) / f64::from(count.saturating_sub(1).max(1));
    let r = h / 6;
    let cx = (f64::from(r) + progress * f64::from(w.saturating_sub(2 * r))) as i64;
    let cy = i64::from(h / 2);
    let r = i64::from(r);
    for y in (cy - r).max(0)..(cy + r).min(i64::from(h)) {
        for x in (cx - r).max(0)..(cx + r).min(i64::from(w)) {
            if (x - cx).pow(2) + (y - cy).pow(2) <= r * r {
                img.put_pixel(x as u32, y as u32, Rgb(disc));
            }
        }
    }
    img
}

fn scaled(img: &RgbImage, w: u32, h: u32) -> RgbImage {
    image::imageops::resize(img, w, h, image::imageops::FilterType::Triangle)
}

/// NAL units of an Annex-B stream, without their start codes.
fn nal_units(stream: &[u8]) -> Vec<&[u8]> {
    let mut starts = Vec::new();
    let mut i = 0;
    while i + 3 <= stream.len() {
        if stream[i..i + 3] == [0, 0, 1] {
            starts.push(i + 3);
            i += 3;
        } else {
            i += 1;
        }
    }
    starts
        .iter()
        .enumerate()
        .map(|(k, &s)| {
            let end = starts.get(k + 1).map_or(stream.len(), |&n| n - 3);
            // A 4-byte start code leaves a zero before the next one.
            let end = if end > s && stream.get(end - 1) == Some(&0) && k + 1 < starts.len() {
                end - 1
            } else {
                end
            };
            &stream[s..end]
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// The clip as an MP4 file.
pub fn render_mp4(clip: &Clip) -> Result<Vec<u8>, String> {
    let count = (clip.seconds * FPS).max(1);
    let config = EncoderConfig::new()
        .max_frame_rate(FrameRate::from_hz(FPS as f32))
        .intra_frame_period(IntraFramePeriod::from_num_frames(FPS * 2))
        .skip_frames(false)
        // Without rate control: every frame is kept, and OpenH264 has
        // nothing to warn about (skipping is off).
        .rate_control_mode(RateControlMode::Off)
        .bitrate(BitRate::from_bps(1_500_000));
    let mut encoder =
        Encoder::with_api_config(OpenH264API::from_source(), config).map_err(|e| e.to_string())?;
    let (mut sps, mut pps) = (None, None);
    let mut samples = Vec::with_capacity(count as usize);
    let background = background(clip);
    for index in 0..count {
        let rgb = frame(clip, &background, index, count);
        let yuv = YUVBuffer::from_rgb8_source(RgbSliceU8::new(
            rgb.as_raw(),
            (clip.width as usize, clip.height as usize),
        ));
        let stream = encoder.encode(&yuv).map_err(|e| e.to_string())?.to_vec();
        let mut sample = Vec::with_capacity(stream.len());
        let mut sync = false;
        for nal in nal_units(&stream) {
            match nal[0] & 0x1f {
                7 => sps = Some(nal.to_vec()),
                8 => pps = Some(nal.to_vec()),
                kind => {
                    sync |= kind == 5;
                    sample.extend_from_slice(&(nal.len() as u32).to_be_bytes());
                    sample.extend_from_slice(nal);
                }
            }
        }
        samples.push((sample, sync));
    }
    let (Some(sps), Some(pps)) = (sps, pps) else {
        return Err("the encoder produced no parameter sets".into());
    };
    mux(clip, &sps, &pps, samples)
}

fn mux(
    clip: &Clip,
    sps: &[u8],
    pps: &[u8],
    samples: Vec<(Vec<u8>, bool)>,
) -> Result<Vec<u8>, String> {
    let brands = ["isom", "iso2", "avc1", "mp41"]
        .iter()
        .map(|b| b.parse())
        .collect::<Result<Vec<mp4::FourCC>, _>>()
        .map_err(|e| e.to_string())?;
    let config = mp4::Mp4Config {
        major_brand: brands[0],
        minor_version: 512,
        compatible_brands: brands,
        timescale: TIMESCALE,
    };
    let mut writer = mp4::Mp4Writer::write_start(std::io::Cursor::new(Vec::new()), &config)
        .map_err(|e| e.to_string())?;
    writer
        .add_track(&mp4::TrackConfig {
            track_type: mp4::TrackType::Video,
            timescale: TIMESCALE,
            language: "und".into(),
            media_conf: mp4::MediaConfig::AvcConfig(mp4::AvcConfig {
                width: clip.width as u16,
                height: clip.height as u16,
                seq_param_set: sps.to_vec(),
                pic_param_set: pps.to_vec(),
            }),
        })
        .map_err(|e| e.to_string())?;
    let step = u64::from(TIMESCALE / FPS);
    for (i, (data, sync)) in samples.into_iter().enumerate() {
        writer
            .write_sample(
                1,
                &mp4::Mp4Sample {
                    start_time: i as u64 * step,
                    duration: step as u32,
                    rendering_offset: 0,
                    is_sync: sync,
                    bytes: Bytes::from(data),
                },
            )
            .map_err(|e| e.to_string())?;
    }
    writer.write_end().map_err(|e| e.to_string())?;
    Ok(writer.into_writer().into_inner())
}

/// Decodes an image sent with a request (first or last frame).
pub fn decode_frame(bytes: &[u8]) -> Option<RgbImage> {
    image::load_from_memory(bytes)
        .ok()
        .map(DynamicImage::into_rgb8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::video::{contact_sheet, frames, probe_mp4};

    #[test]
    fn clips_play_and_show_their_pattern() {
        let clip = Clip {
            seed: b"a wave".to_vec(),
            prompt: "a wave".into(),
            width: 320,
            height: 180,
            seconds: 2,
            first: None,
            last: None,
        };
        let mp4 = render_mp4(&clip).unwrap();
        let info = probe_mp4(&mp4).unwrap();
        assert_eq!((info.width, info.height, info.frames), (320, 180, 16));
        assert!((info.duration_seconds - 2.0).abs() < 0.01, "{info:?}");
        let shots = frames(&mp4, 2).unwrap();
        assert_eq!(shots.len(), 2);
        // The top row is the first colour, give or take the codec.
        let [top, _, _] = colours(b"a wave");
        let p = shots[0].get_pixel(5, 1).0;
        assert!(
            p.iter().zip(top).all(|(a, b)| a.abs_diff(b) < 24),
            "{p:?} vs {top:?}"
        );
        // The disc moved: the frames differ on the middle row.
        let row = |f: &RgbImage| (0..320).map(|x| f.get_pixel(x, 90).0).collect::<Vec<_>>();
        assert_ne!(row(&shots[0]), row(&shots[1]));
        let sheet = contact_sheet(&mp4, 512, 100 * 1024).unwrap();
        assert!(
            sheet.width <= 512 && sheet.data.len() <= 100 * 1024,
            "{}×{}",
            sheet.width,
            sheet.height
        );
    }

    #[test]
    fn every_frame_is_labelled() {
        use crate::emulator::label::tests::read_line;
        use crate::emulator::label::{TEXT_COLOUR, TITLE_COLOUR};
        let clip = Clip {
            seed: b"boat".to_vec(),
            prompt: "a paper boat".into(),
            width: 1280,
            height: 720,
            seconds: 1,
            first: Some(RgbImage::from_pixel(64, 36, Rgb([220, 20, 20]))),
            last: None,
        };
        let background = background(&clip);
        // The first frame (the given image) and a drawn one; at 720p a
        // font pixel is 2×2 and the two-line band ends at the bottom.
        for index in [0, 4] {
            let f = frame(&clip, &background, index, FPS);
            let top = 720 - 56;
            let title = read_line(&f, (8, top + 8), 2, TITLE_COLOUR, 20);
            let prompt = read_line(&f, (8, top + 28), 2, TEXT_COLOUR, 20);
            assert_eq!(
                (title.as_str(), prompt.as_str()),
                ("media-gen emulator", "a paper boat"),
                "frame {index}"
            );
        }
    }

    #[test]
    fn image_clips_start_and_end_on_their_frames() {
        let red = RgbImage::from_pixel(64, 36, Rgb([220, 20, 20]));
        let blue = RgbImage::from_pixel(64, 36, Rgb([20, 20, 220]));
        let clip = Clip {
            seed: b"x".to_vec(),
            prompt: "x".into(),
            width: 160,
            height: 96,
            seconds: 1,
            first: Some(red),
            last: Some(blue),
        };
        let shots = frames(&render_mp4(&clip).unwrap(), 2).unwrap();
        let (a, b) = (shots[0].get_pixel(80, 48).0, shots[1].get_pixel(80, 48).0);
        assert!(a[0] > 180 && a[2] < 70, "first {a:?}");
        assert!(b[2] > 180 && b[0] < 70, "last {b:?}");
    }
}
