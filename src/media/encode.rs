//! Encoding results: PNG (lossless, the default), JPEG, or WebP (lossless).

use std::str::FromStr;

use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::codecs::webp::WebPEncoder;
use image::{DynamicImage, ExtendedColorType, ImageEncoder};

use super::MediaError;
use crate::domain::InvalidValue;

/// The file format of an edit's result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// Lossless; keeps every unedited pixel exactly.
    #[default]
    Png,
    /// Lossy (quality 92), much smaller for photos; no transparency.
    Jpeg,
    /// Lossless WebP.
    Webp,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [Self::Png, Self::Jpeg, Self::Webp];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Webp => "webp",
        }
    }

    pub fn mime_type(self) -> &'static str {
        match self {
            Self::Png => "image/png",
            Self::Jpeg => "image/jpeg",
            Self::Webp => "image/webp",
        }
    }

    /// File extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpg",
            Self::Webp => "webp",
        }
    }
}

impl FromStr for OutputFormat {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "png" => Ok(Self::Png),
            "jpeg" | "jpg" => Ok(Self::Jpeg),
            "webp" => Ok(Self::Webp),
            other => Err(InvalidValue::new(
                "output_format",
                other,
                Self::ALL.map(Self::as_str),
            )),
        }
    }
}

/// JPEG quality for results and re-encoded inputs.
pub const JPEG_QUALITY: u8 = 92;

/// `img` (8-bit RGB or RGBA) encoded as `format`. JPEG drops alpha.
pub fn encode(img: &DynamicImage, format: OutputFormat) -> Result<Vec<u8>, MediaError> {
    let (w, h) = (img.width(), img.height());
    let mut out = Vec::with_capacity((w as usize * h as usize) / 2);
    match (format, img) {
        (OutputFormat::Jpeg, DynamicImage::ImageRgb8(rgb)) => JpegEncoder::new_with_quality(
            &mut out,
            JPEG_QUALITY,
        )
        .write_image(rgb.as_raw(), w, h, ExtendedColorType::Rgb8),
        (OutputFormat::Jpeg, other) => {
            let rgb = other.to_rgb8();
            JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY).write_image(
                rgb.as_raw(),
                w,
                h,
                ExtendedColorType::Rgb8,
            )
        }
        (OutputFormat::Png, _) => {
            let (raw, color) = raw_and_color(img);
            // Fast deflate: large results (an 8192² upscale) encode in a
            // fraction of the time for a somewhat larger file.
            PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Adaptive)
                .write_image(raw, w, h, color)
        }
        (OutputFormat::Webp, _) => {
            let (raw, color) = raw_and_color(img);
            WebPEncoder::new_lossless(&mut out).write_image(raw, w, h, color)
        }
    }
    .map_err(MediaError::Encode)?;
    Ok(out)
}

fn raw_and_color(img: &DynamicImage) -> (&[u8], ExtendedColorType) {
    match img {
        DynamicImage::ImageRgba8(rgba) => (rgba.as_raw(), ExtendedColorType::Rgba8),
        DynamicImage::ImageRgb8(rgb) => (rgb.as_raw(), ExtendedColorType::Rgb8),
        // Callers pass RGB or RGBA (see `resize::to_rgb_or_rgba`); anything
        // else is encoded from its bytes as they are.
        other => (other.as_bytes(), other.color().into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_round_trip() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(64, 32, |x, y| {
            image::Rgb([x as u8 * 4, y as u8 * 8, 100])
        }));
        for format in OutputFormat::ALL {
            let bytes = encode(&img, format).unwrap();
            let info = crate::media::probe(&bytes).unwrap();
            assert_eq!(
                (info.width, info.height, info.mime_type),
                (64, 32, format.mime_type())
            );
            let back = image::load_from_memory(&bytes).unwrap().into_rgb8();
            if format != OutputFormat::Jpeg {
                assert_eq!(
                    back.as_raw(),
                    img.as_rgb8().unwrap().as_raw(),
                    "{format:?} is lossless"
                );
            }
        }
        assert_eq!("JPG".parse::<OutputFormat>().unwrap(), OutputFormat::Jpeg);
        assert!(
            "gif"
                .parse::<OutputFormat>()
                .unwrap_err()
                .to_string()
                .contains("png")
        );
    }
}
