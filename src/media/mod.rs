//! Pixels: reading image headers, decoding within limits, and the small inline
//! previews that go into tool results ([`preview`]); input images with their
//! limits and orientation ([`input`]); exact-size resampling ([`resize`]);
//! masks ([`mask`]); outpaint canvases and compositing ([`canvas`]);
//! encoding results ([`encode`]); MP4 size and duration, frames and contact
//! sheets ([`video`]). No MCP, no HTTP, no files.

pub mod canvas;
pub mod encode;
pub mod input;
pub mod mask;
mod reduce;
pub mod resize;
pub mod video;

use std::io::Cursor;

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{DynamicImage, ImageEncoder, ImageFormat, ImageReader, Limits};

/// Largest image accepted for decoding, in pixels (decompression-bomb
/// guard): 100 megapixels, above the largest result (an 8192² upscale).
pub const MAX_PIXELS: u64 = 100_000_000;
/// Largest allocation a decode may make.
pub const MAX_ALLOC: u64 = 1 << 30;

/// What an image file is, read from its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ImageInfo {
    pub mime_type: &'static str,
    pub extension: &'static str,
    pub width: u32,
    pub height: u32,
}

/// A small rendition for inline display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub mime_type: &'static str,
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    #[error("not a supported image (PNG, JPEG, WebP or GIF)")]
    Unsupported,
    #[error(
        "the image is {width}×{height} ({:.1} megapixels), over the limit of {:.1} megapixels",
        megapixels(u64::from(*width) * u64::from(*height)),
        megapixels(*max_pixels)
    )]
    TooLarge {
        width: u32,
        height: u32,
        max_pixels: u64,
    },
    #[error("the file is {:.1} MB, over the limit of {:.1} MB", *size as f64 / 1e6, *max as f64 / 1e6)]
    FileTooLarge { size: u64, max: u64 },
    #[error("the {0} file is cut short: its {1} is missing")]
    Incomplete(&'static str, &'static str),
    #[error("cannot decode the image: {0}")]
    Decode(#[source] image::ImageError),
    #[error("cannot encode the image: {0}")]
    Encode(#[source] image::ImageError),
    #[error("cannot encode the preview: {0}")]
    PreviewEncode(String),
    #[error("cannot resize the image: {0}")]
    Resize(String),
    #[error("cannot read the video: {0}")]
    Video(String),
}

/// Megapixels (10⁶ pixels) for messages.
fn megapixels(pixels: u64) -> f64 {
    pixels as f64 / 1e6
}

fn format_info(format: ImageFormat) -> Option<(&'static str, &'static str)> {
    match format {
        ImageFormat::Png => Some(("image/png", "png")),
        ImageFormat::Jpeg => Some(("image/jpeg", "jpg")),
        ImageFormat::WebP => Some(("image/webp", "webp")),
        ImageFormat::Gif => Some(("image/gif", "gif")),
        _ => None,
    }
}

/// A reader over in-memory bytes, with its guessed format.
type Reader<'a> = (ImageReader<Cursor<&'a [u8]>>, ImageFormat);

fn reader(bytes: &[u8]) -> Result<Reader<'_>, MediaError> {
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| MediaError::Unsupported)?;
    let format = reader.format().ok_or(MediaError::Unsupported)?;
    Ok((reader, format))
}

/// Format and size from the header only; the pixels are not decoded.
pub fn probe(bytes: &[u8]) -> Result<ImageInfo, MediaError> {
    let (reader, format) = reader(bytes)?;
    let (mime_type, extension) = format_info(format).ok_or(MediaError::Unsupported)?;
    let (width, height) = reader.into_dimensions().map_err(|e| match e {
        image::ImageError::Unsupported(_) => MediaError::Unsupported,
        other => MediaError::Decode(other),
    })?;
    if width == 0 || height == 0 {
        return Err(MediaError::Unsupported);
    }
    Ok(ImageInfo {
        mime_type,
        extension,
        width,
        height,
    })
}

/// Whether an image file is whole, from its structure alone (cheap: no
/// pixels are decoded): PNG chunks up to `IEND`, JPEG up to its end marker,
/// WebP as long as its RIFF header says, GIF up to its trailer. A file cut
/// off in transfer fails here even though its header reads fine.
pub fn check_complete(bytes: &[u8], info: &ImageInfo) -> Result<(), MediaError> {
    let whole = match info.mime_type {
        "image/png" => png_complete(bytes),
        // Encoders may pad after the end marker; nothing else follows it.
        "image/jpeg" => {
            let end = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
            end >= 4 && bytes[end - 2..end] == [0xFF, 0xD9]
        }
        "image/webp" => {
            bytes.len() >= 12 && {
                let riff = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
                bytes.len() >= riff + 8
            }
        }
        "image/gif" => bytes.last() == Some(&0x3B),
        _ => true,
    };
    match whole {
        true => Ok(()),
        false => Err(MediaError::Incomplete(
            info.extension,
            match info.mime_type {
                "image/png" => "end chunk (IEND)",
                "image/jpeg" => "end-of-image marker",
                "image/webp" => "end (the size its RIFF header gives)",
                _ => "trailer",
            },
        )),
    }
}

/// PNG chunks walked from the signature: every chunk fits, up to `IEND`.
fn png_complete(bytes: &[u8]) -> bool {
    let mut at = 8usize;
    loop {
        let Some(head) = bytes.get(at..at + 8) else {
            return false;
        };
        let len = u32::from_be_bytes([head[0], head[1], head[2], head[3]]) as usize;
        let Some(next) = at.checked_add(12).and_then(|n| n.checked_add(len)) else {
            return false;
        };
        if next > bytes.len() {
            return false;
        }
        if &head[4..8] == b"IEND" {
            return true;
        }
        at = next;
    }
}

/// Decodes a whole image within [`MAX_PIXELS`] and [`MAX_ALLOC`].
pub fn decode(bytes: &[u8]) -> Result<DynamicImage, MediaError> {
    let info = probe(bytes)?;
    within_limit(&info)?;
    let (mut reader, _) = reader(bytes)?;
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_ALLOC);
    limits.max_image_width = Some(info.width);
    limits.max_image_height = Some(info.height);
    reader.limits(limits);
    reader.decode().map_err(|e| match e {
        image::ImageError::Limits(_) => MediaError::TooLarge {
            width: info.width,
            height: info.height,
            max_pixels: MAX_PIXELS,
        },
        other => MediaError::Decode(other),
    })
}

/// Size that fits `max_side`, keeping the aspect ratio; never larger than the source.
pub fn fit(width: u32, height: u32, max_side: u32) -> (u32, u32) {
    let long = width.max(height);
    if long <= max_side || max_side == 0 {
        return (width, height);
    }
    let scale = f64::from(max_side) / f64::from(long);
    let w = (f64::from(width) * scale).round().max(1.0) as u32;
    let h = (f64::from(height) * scale).round().max(1.0) as u32;
    (w.min(max_side), h.min(max_side))
}

/// A preview whose long side is at most `max_side` and whose encoded size is
/// at most about `max_bytes`: JPEG, or PNG when the image has transparency.
///
/// A PNG larger than the preview is reduced as it is decoded, a band of rows
/// at a time ([`reduce::png`]): the full-size pixels are never all in memory.
/// Other formats (and interlaced PNGs) are decoded whole first.
pub fn preview(bytes: &[u8], max_side: u32, max_bytes: usize) -> Result<Preview, MediaError> {
    let info = probe(bytes)?;
    within_limit(&info)?;
    if info.mime_type == "image/png"
        && let Some(reduced) = reduce::png(bytes, &info, max_side)?
    {
        return encode_preview(reduced.image, reduced.transparent, max_side, max_bytes);
    }
    preview_of(&decode(bytes)?, max_side, max_bytes)
}

/// [`preview`] of pixels already decoded (a result still in memory: no
/// second decode of a large file).
pub fn preview_of(
    img: &DynamicImage,
    max_side: u32,
    max_bytes: usize,
) -> Result<Preview, MediaError> {
    let has_alpha = img.color().has_alpha() && has_transparency(img);
    // Shrink the source once to the first target size; the retries in
    // `encode_preview` work from that small copy, never from the full image.
    let (w, h) = fit(img.width(), img.height(), max_side);
    let small = resize::resized(img, w, h, resize::Filter::Bilinear)?;
    encode_preview(small, has_alpha, max_side, max_bytes)
}

/// `small` (already fitted to `max_side`) encoded within `max_bytes`: lower
/// JPEG quality first, then a smaller size, down to a 64 px long side.
fn encode_preview(
    small: DynamicImage,
    has_alpha: bool,
    max_side: u32,
    max_bytes: usize,
) -> Result<Preview, MediaError> {
    // One layout for every attempt (no copy when it already is).
    let mut small = if has_alpha {
        DynamicImage::ImageRgba8(small.into_rgba8())
    } else {
        DynamicImage::ImageRgb8(small.into_rgb8())
    };
    let mut side = max_side;
    loop {
        let (w, h) = (small.width(), small.height());
        if let Some(p) = encode_within(small.as_bytes(), w, h, has_alpha, max_bytes)? {
            return Ok(p);
        }
        // Even the lowest quality is too big: shrink and try again.
        if side <= 64 {
            return encode_within(small.as_bytes(), w, h, has_alpha, usize::MAX)?
                .ok_or_else(|| MediaError::Resize("preview could not be encoded".into()));
        }
        side = side * 3 / 4;
        let (w, h) = fit(w, h, side);
        small = resize::resize_exact(small, w, h, resize::Filter::Bilinear)?;
    }
}

/// Refuses an image over [`MAX_PIXELS`] before anything is allocated for it.
fn within_limit(info: &ImageInfo) -> Result<(), MediaError> {
    if u64::from(info.width) * u64::from(info.height) > MAX_PIXELS {
        return Err(MediaError::TooLarge {
            width: info.width,
            height: info.height,
            max_pixels: MAX_PIXELS,
        });
    }
    Ok(())
}

fn has_transparency(img: &DynamicImage) -> bool {
    match img {
        DynamicImage::ImageRgba8(b) => b.pixels().any(|p| p.0[3] != 255),
        DynamicImage::ImageLumaA8(b) => b.pixels().any(|p| p.0[1] != 255),
        DynamicImage::ImageRgba16(b) => b.pixels().any(|p| p.0[3] != u16::MAX),
        DynamicImage::ImageLumaA16(b) => b.pixels().any(|p| p.0[1] != u16::MAX),
        _ => true,
    }
}

/// Encodes at decreasing quality until it fits; `None` if even q=40 does
/// not. JPEG with `jpeg-encoder` (SIMD), PNG with fast deflate first and
/// the best only when that is over the budget: a preview is small, and made
/// on every result.
fn encode_within(
    pixels: &[u8],
    w: u32,
    h: u32,
    alpha: bool,
    max_bytes: usize,
) -> Result<Option<Preview>, MediaError> {
    let preview = |mime_type, data| Preview {
        mime_type,
        data,
        width: w,
        height: h,
    };
    if alpha {
        for compression in [CompressionType::Fast, CompressionType::Best] {
            let mut out = Vec::new();
            PngEncoder::new_with_quality(&mut out, compression, FilterType::Adaptive)
                .write_image(pixels, w, h, image::ExtendedColorType::Rgba8)
                .map_err(MediaError::Encode)?;
            if out.len() <= max_bytes {
                return Ok(Some(preview("image/png", out)));
            }
        }
        return Ok(None);
    }
    let (Ok(w16), Ok(h16)) = (u16::try_from(w), u16::try_from(h)) else {
        return Err(MediaError::Resize(format!(
            "a {w}×{h} preview is over JPEG's 65535 px"
        )));
    };
    for quality in [82u8, 70, 55, 40] {
        let mut out = Vec::with_capacity(max_bytes.min(pixels.len()));
        jpeg_encoder::Encoder::new(&mut out, quality)
            .encode(pixels, w16, h16, jpeg_encoder::ColorType::Rgb)
            .map_err(|e| MediaError::PreviewEncode(e.to_string()))?;
        if out.len() <= max_bytes {
            return Ok(Some(preview("image/jpeg", out)));
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {

    fn encoded(format: image::ImageFormat) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(40, 30, |x, y| {
            image::Rgb([x as u8 * 6, y as u8 * 8, 100])
        }));
        let mut out = Vec::new();
        img.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    #[test]
    fn cut_off_files_are_told_from_whole_ones() {
        for format in [
            image::ImageFormat::Png,
            image::ImageFormat::Jpeg,
            image::ImageFormat::WebP,
            image::ImageFormat::Gif,
        ] {
            let whole = encoded(format);
            let info = probe(&whole).unwrap();
            assert!(check_complete(&whole, &info).is_ok(), "{format:?}");
            // Padding after the end is not a cut.
            if format == image::ImageFormat::Jpeg {
                let mut padded = whole.clone();
                padded.extend_from_slice(&[0, 0, 0]);
                assert!(check_complete(&padded, &info).is_ok());
            }
            for cut in [whole.len() / 2, whole.len() - 1] {
                let part = &whole[..cut];
                // A PNG's header still reads (only the structure tells); a
                // small JPEG cut in half may already fail its header.
                let info = match probe(part) {
                    Ok(info) => info,
                    Err(_) if format != image::ImageFormat::Png => continue,
                    Err(e) => panic!("{format:?}: {e}"),
                };
                assert!(
                    matches!(check_complete(part, &info), Err(MediaError::Incomplete(..))),
                    "{format:?} cut at {cut} of {}",
                    whole.len()
                );
            }
        }
    }

    use super::*;
    use image::{ImageBuffer, Rgb, Rgba};

    fn noisy_rgb(w: u32, h: u32) -> DynamicImage {
        let mut state = 0x1234_5678u32;
        DynamicImage::ImageRgb8(ImageBuffer::from_fn(w, h, |x, y| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            Rgb([(x % 256) as u8, (y % 256) as u8, (state & 0xff) as u8])
        }))
    }

    fn encode(img: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn probe_reads_png_jpeg_webp_headers() {
        let img = noisy_rgb(300, 200);
        for (format, mime, ext) in [
            (ImageFormat::Png, "image/png", "png"),
            (ImageFormat::Jpeg, "image/jpeg", "jpg"),
            (ImageFormat::WebP, "image/webp", "webp"),
        ] {
            let info = probe(&encode(&img, format)).unwrap();
            assert_eq!(
                (info.width, info.height, info.mime_type, info.extension),
                (300, 200, mime, ext)
            );
        }
        assert!(matches!(
            probe(b"hello world, not an image"),
            Err(MediaError::Unsupported)
        ));
        assert!(matches!(probe(b""), Err(MediaError::Unsupported)));
    }

    #[test]
    fn preview_fits_side_and_budget_keeps_ratio() {
        let png = encode(&noisy_rgb(1376, 768), ImageFormat::Png);
        let p = preview(&png, 512, 100 * 1024).unwrap();
        assert_eq!(p.mime_type, "image/jpeg");
        assert_eq!((p.width, p.height), (512, 286));
        assert!(p.data.len() <= 100 * 1024);
        let back = image::load_from_memory(&p.data).unwrap();
        assert_eq!((back.width(), back.height()), (512, 286));
        // A tight budget still gets met, by quality then size.
        let p = preview(&png, 512, 12 * 1024).unwrap();
        assert!(p.data.len() <= 12 * 1024, "{}", p.data.len());
    }

    #[test]
    fn preview_never_upscales() {
        let png = encode(&noisy_rgb(100, 60), ImageFormat::Png);
        let p = preview(&png, 512, 100 * 1024).unwrap();
        assert_eq!((p.width, p.height), (100, 60));
    }

    #[test]
    fn transparent_images_preview_as_png() {
        let img = DynamicImage::ImageRgba8(ImageBuffer::from_fn(600, 300, |x, _| {
            Rgba([200, 10, 10, if x < 300 { 0 } else { 255 }])
        }));
        let p = preview(&encode(&img, ImageFormat::Png), 512, 100 * 1024).unwrap();
        assert_eq!(p.mime_type, "image/png");
        assert_eq!((p.width, p.height), (512, 256));
        // Opaque RGBA is treated as RGB (JPEG).
        let opaque =
            DynamicImage::ImageRgba8(ImageBuffer::from_pixel(64, 64, Rgba([1, 2, 3, 255])));
        assert_eq!(
            preview(&encode(&opaque, ImageFormat::Png), 512, 100 * 1024)
                .unwrap()
                .mime_type,
            "image/jpeg"
        );
    }

    /// The streamed reduction of a PNG gives the pixels a whole decode and
    /// resize gives (the same separable filter), for every PNG colour type
    /// it reads: RGB, RGBA, grey, grey + alpha, palette, 16-bit.
    #[test]
    fn streamed_png_reduction_matches_the_whole_decode() {
        let rgb = noisy_rgb(1376, 768);
        let rgba = DynamicImage::ImageRgba8(rgb.to_rgba8());
        let cases = [
            ("rgb", rgb.clone()),
            ("rgba", rgba),
            ("grey", DynamicImage::ImageLuma8(rgb.to_luma8())),
            (
                "grey+alpha",
                DynamicImage::ImageLumaA8(rgb.to_luma_alpha8()),
            ),
            ("rgb16", DynamicImage::ImageRgb16(rgb.to_rgb16())),
        ];
        for (name, img) in cases {
            let png = encode(&img, ImageFormat::Png);
            let info = probe(&png).unwrap();
            let streamed = reduce::png(&png, &info, 512).unwrap().expect("reduced");
            assert!(!streamed.transparent, "{name}");
            let whole = resize::resized(
                &resize::to_rgb_or_rgba(decode(&png).unwrap()),
                512,
                286,
                resize::Filter::Bilinear,
            )
            .unwrap();
            assert_eq!(streamed.image.color(), whole.color(), "{name}");
            assert_eq!(
                (streamed.image.width(), streamed.image.height()),
                (512, 286),
                "{name}"
            );
            let most = streamed
                .image
                .as_bytes()
                .iter()
                .zip(whole.as_bytes())
                .map(|(a, b)| a.abs_diff(*b))
                .max();
            assert!(most <= Some(1), "{name}: differs by {most:?}");
        }
        // A palette PNG (with tRNS: one transparent entry) expands to RGBA.
        let mut png = Vec::new();
        {
            let mut enc = png::Encoder::new(&mut png, 700, 20);
            enc.set_color(png::ColorType::Indexed);
            enc.set_palette(vec![255, 0, 0, 0, 0, 255]);
            enc.set_trns(vec![255, 0]);
            let mut w = enc.write_header().unwrap();
            let data: Vec<u8> = (0..700 * 20).map(|i| u8::from(i % 700 >= 350)).collect();
            w.write_image_data(&data).unwrap();
        }
        let p = preview(&png, 512, 100 * 1024).unwrap();
        assert_eq!((p.mime_type, p.width, p.height), ("image/png", 512, 15));
        let back = image::load_from_memory(&p.data).unwrap().into_rgba8();
        assert_eq!(back.get_pixel(10, 7).0, [255, 0, 0, 255]);
        assert_eq!(back.get_pixel(500, 7).0[3], 0);
    }

    /// A PNG cut short or with a damaged chunk is an error from the
    /// streamed preview, never a preview of part of it.
    #[test]
    fn streamed_preview_refuses_damaged_pngs() {
        let png = encode(&noisy_rgb(1376, 768), ImageFormat::Png);
        let info = probe(&png).unwrap();
        // Cut inside the pixel data (the header still reads).
        assert!(reduce::png(&png[..png.len() / 2], &info, 512).is_err());
        assert!(preview(&png[..png.len() / 2], 512, 100 * 1024).is_err());
        // One byte of the pixel data changed: its chunk's CRC no longer holds.
        let mut bad = png.clone();
        let at = png.len() / 2;
        bad[at] ^= 0x55;
        assert!(preview(&bad, 512, 100 * 1024).is_err());
    }

    /// A PNG whose header claims 100000×100000 pixels is refused before any
    /// pixel buffer is allocated.
    #[test]
    fn decompression_bomb_is_refused() {
        let png = super::tests_support::png_claiming(100_000, 100_000);
        assert_eq!(probe(&png).unwrap().width, 100_000);
        assert!(matches!(decode(&png), Err(MediaError::TooLarge { .. })));
        assert!(matches!(
            preview(&png, 512, 1000),
            Err(MediaError::TooLarge { .. })
        ));
    }

    #[test]
    fn fit_math() {
        assert_eq!(fit(5504, 3072, 512), (512, 286));
        assert_eq!(fit(768, 1376, 512), (286, 512));
        assert_eq!(fit(100, 100, 512), (100, 100));
        assert_eq!(fit(4000, 1, 512), (512, 1));
    }
}

/// Small real images (and crafted ones) for tests across the crate.
#[cfg(test)]
pub(crate) mod tests_support {
    /// A `w`×`h` PNG of one colour.
    pub fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(
            w,
            h,
            image::Rgb([9, 8, 7]),
        ));
        let mut out = std::io::Cursor::new(Vec::new());
        let _ = img.write_to(&mut out, image::ImageFormat::Png);
        out.into_inner()
    }

    /// A small PNG whose header claims `w`×`h`: a decompression bomb's
    /// shape, harmless unless something decodes it.
    pub fn png_claiming(w: u32, h: u32) -> Vec<u8> {
        let mut png = png(8, 8);
        png[16..20].copy_from_slice(&w.to_be_bytes());
        png[20..24].copy_from_slice(&h.to_be_bytes());
        let crc = crc32(&png[12..29]);
        png[29..33].copy_from_slice(&crc.to_be_bytes());
        png
    }

    /// `jpeg` with an EXIF segment saying `orientation` (1–8).
    pub fn with_exif_orientation(jpeg: &[u8], orientation: u16) -> Vec<u8> {
        // TIFF, little-endian: header, one IFD entry (0x0112 SHORT), no next IFD.
        let mut tiff = vec![
            b'I', b'I', 0x2a, 0, 8, 0, 0, 0, 1, 0, 0x12, 0x01, 3, 0, 1, 0, 0, 0,
        ];
        tiff.extend_from_slice(&orientation.to_le_bytes());
        tiff.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
        let mut segment = b"Exif\0\0".to_vec();
        segment.extend_from_slice(&tiff);
        let len = u16::try_from(segment.len() + 2).unwrap_or(u16::MAX);
        let mut out = jpeg[..2].to_vec(); // SOI
        out.extend_from_slice(&[0xff, 0xe1]);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&segment);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    pub fn crc32(data: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in data {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
}

/// Header reading and the completeness check on hostile bytes.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::prop_support::config;

    fn encoded(w: u32, h: u32, format: ImageFormat) -> Vec<u8> {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x * 37) as u8, (y * 91) as u8, ((x ^ y) * 13) as u8])
        }));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn format() -> impl Strategy<Value = ImageFormat> {
        prop::sample::select(vec![
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::WebP,
            ImageFormat::Gif,
        ])
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            if let Ok(info) = probe(&bytes) {
                prop_assert!(info.width > 0 && info.height > 0);
                let _ = check_complete(&bytes, &info);
            }
            for mime_type in ["image/png", "image/jpeg", "image/webp", "image/gif"] {
                let info = ImageInfo { mime_type, extension: "x", width: 1, height: 1 };
                let _ = check_complete(&bytes, &info);
            }
        }

        /// A real file with bytes flipped or cut: probed, checked and
        /// decoded without a panic.
        #[test]
        fn damaged_files_never_panic(
            (w, h) in (1u32..40, 1u32..40),
            format in format(),
            flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let mut bytes = encoded(w, h, format);
            for (at, b) in flips {
                let i = at.index(bytes.len());
                bytes[i] = b;
            }
            bytes.truncate(cut.index(bytes.len() + 1));
            if let Ok(info) = probe(&bytes) {
                let _ = check_complete(&bytes, &info);
                let _ = decode(&bytes);
                // A side under the image's: the PNG's streamed reduction runs.
                let _ = preview(&bytes, 4, 4096);
            }
        }

        /// A whole file probes as its size and is complete; any strict
        /// prefix of a PNG, JPEG or WebP is refused by one or the other.
        #[test]
        fn whole_files_pass_and_cut_files_do_not(
            (w, h) in (1u32..64, 1u32..64),
            format in format(),
            cut in any::<prop::sample::Index>(),
        ) {
            let bytes = encoded(w, h, format);
            let info = probe(&bytes).unwrap();
            prop_assert_eq!((info.width, info.height), (w, h));
            prop_assert!(check_complete(&bytes, &info).is_ok());
            if format != ImageFormat::Gif {
                // (A GIF's trailer byte 0x3B can also occur inside its data.)
                let prefix = &bytes[..cut.index(bytes.len())];
                let whole = probe(prefix).is_ok_and(|i| check_complete(prefix, &i).is_ok());
                prop_assert!(!whole, "a {format:?} cut to {} of {} bytes passed", prefix.len(), bytes.len());
            }
        }

        #[test]
        fn fit_stays_within_the_side_and_keeps_the_shape(
            w in 1u32..100_000, h in 1u32..100_000, side in 0u32..5000,
        ) {
            let (fw, fh) = fit(w, h, side);
            prop_assert!(fw >= 1 && fh >= 1);
            prop_assert!(fw <= w && fh <= h);
            if side > 0 {
                prop_assert!(fw.max(fh) <= side.max(1));
            }
        }
    }
}
