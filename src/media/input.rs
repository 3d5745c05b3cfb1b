//! Input images (what to edit, masks, references): checked against the
//! limits from their header before a single pixel is decoded — a
//! decompression bomb never allocates — then decoded (GIF: its first frame)
//! with the EXIF orientation applied.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

use super::{ImageInfo, MAX_ALLOC, MediaError, probe, resize};

/// How large an input may be. Checked before decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputLimits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Most pixels (width × height).
    pub max_pixels: u64,
}

impl Default for InputLimits {
    /// 50 MiB and 64 megapixels (64 × 2²⁰, i.e. 8192 × 8192).
    fn default() -> Self {
        Self {
            max_bytes: 50 << 20,
            max_pixels: 64 << 20,
        }
    }
}

/// A decoded input image.
#[derive(Debug, Clone)]
pub struct DecodedInput {
    /// 8-bit RGB, or RGBA when the file has alpha; upright.
    pub image: DynamicImage,
    /// What the header said (before orientation).
    pub info: ImageInfo,
    /// Whether the EXIF orientation turned or flipped the pixels.
    pub reoriented: bool,
}

/// Checks `bytes` against `limits` and decodes them.
pub fn decode_input(bytes: &[u8], limits: &InputLimits) -> Result<DecodedInput, MediaError> {
    let size = bytes.len() as u64;
    if size > limits.max_bytes {
        return Err(MediaError::FileTooLarge {
            size,
            max: limits.max_bytes,
        });
    }
    let info = probe(bytes)?;
    let pixels = u64::from(info.width) * u64::from(info.height);
    if pixels > limits.max_pixels {
        return Err(MediaError::TooLarge {
            width: info.width,
            height: info.height,
            max_pixels: limits.max_pixels,
        });
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|_| MediaError::Unsupported)?;
    let mut decode_limits = Limits::default();
    decode_limits.max_alloc = Some(MAX_ALLOC);
    decode_limits.max_image_width = Some(info.width);
    decode_limits.max_image_height = Some(info.height);
    reader.limits(decode_limits);
    let mut decoder = reader.into_decoder().map_err(MediaError::Decode)?;
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(MediaError::Decode)?;
    image.apply_orientation(orientation);
    Ok(DecodedInput {
        image: resize::to_rgb_or_rgba(image),
        info,
        reoriented: orientation != Orientation::NoTransforms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(img: &DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn formats_and_the_first_gif_frame() {
        let img =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(6, 4, image::Rgb([250, 0, 0])));
        for format in [
            image::ImageFormat::Png,
            image::ImageFormat::Jpeg,
            image::ImageFormat::WebP,
            image::ImageFormat::Gif,
        ] {
            let d = decode_input(&encoded(&img, format), &InputLimits::default()).unwrap();
            assert_eq!((d.image.width(), d.image.height()), (6, 4), "{format:?}");
            assert!(!d.reoriented);
        }
        assert!(matches!(
            decode_input(b"a text file named .png", &InputLimits::default()),
            Err(MediaError::Unsupported)
        ));
    }

    #[test]
    fn limits_are_checked_from_the_header() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::new(100, 100));
        let png = encoded(&img, image::ImageFormat::Png);
        let tight = InputLimits {
            max_bytes: 10,
            max_pixels: 64 << 20,
        };
        let e = decode_input(&png, &tight).unwrap_err();
        assert!(matches!(e, MediaError::FileTooLarge { max: 10, .. }), "{e}");
        let few = InputLimits {
            max_bytes: 1 << 30,
            max_pixels: 9_999,
        };
        let e = decode_input(&png, &few).unwrap_err();
        assert!(e.to_string().contains("100×100"), "{e}");
    }

    /// A JPEG whose EXIF says "rotate 90° clockwise" comes out upright.
    #[test]
    fn exif_orientation_is_applied() {
        let img = DynamicImage::ImageRgb8(image::RgbImage::from_fn(8, 4, |x, _| {
            image::Rgb(if x < 4 { [255, 0, 0] } else { [0, 0, 255] })
        }));
        let jpeg = encoded(&img, image::ImageFormat::Jpeg);
        let with_exif = super::super::tests_support::with_exif_orientation(&jpeg, 6);
        let d = decode_input(&with_exif, &InputLimits::default()).unwrap();
        assert!(d.reoriented);
        assert_eq!((d.image.width(), d.image.height()), (4, 8));
        // The red left half is now the top half.
        let rgb = d.image.to_rgb8();
        assert!(rgb.get_pixel(2, 1).0[0] > 200, "{:?}", rgb.get_pixel(2, 1));
        assert!(rgb.get_pixel(2, 6).0[2] > 200, "{:?}", rgb.get_pixel(2, 6));
    }
}

/// The input limits hold exactly at their boundaries.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::media::tests_support::{png, png_claiming};
    use crate::prop_support::config;

    proptest! {
        #![proptest_config(config(64))]

        #[test]
        fn limits_hold_at_their_boundaries(w in 1u32..48, h in 1u32..48) {
            let bytes = png(w, h);
            let size = bytes.len() as u64;
            let pixels = u64::from(w) * u64::from(h);
            let exact = InputLimits { max_bytes: size, max_pixels: pixels };
            let d = decode_input(&bytes, &exact).unwrap();
            prop_assert_eq!((d.image.width(), d.image.height()), (w, h));
            let one_byte_less = InputLimits { max_bytes: size - 1, ..exact };
            prop_assert!(
                matches!(decode_input(&bytes, &one_byte_less), Err(MediaError::FileTooLarge { .. })),
                "one byte over"
            );
            let one_pixel_less = InputLimits { max_pixels: pixels - 1, ..exact };
            prop_assert!(
                matches!(decode_input(&bytes, &one_pixel_less), Err(MediaError::TooLarge { .. })),
                "one pixel over"
            );
        }

        /// A header claiming more pixels than allowed is refused before a
        /// single pixel is decoded, however large the claim.
        #[test]
        fn bombs_are_refused_from_the_header(w in 1u32..=u32::MAX, h in 1u32..=u32::MAX) {
            let limits = InputLimits { max_bytes: 1 << 20, max_pixels: u64::from(w) * u64::from(h) - 1 };
            let bomb = png_claiming(w, h);
            let result = decode_input(&bomb, &limits);
            if probe(&bomb).is_ok() {
                prop_assert!(matches!(result, Err(MediaError::TooLarge { .. })), "{w}×{h}");
            } else {
                // Sizes the PNG reader itself refuses (rows over its limit).
                prop_assert!(result.is_err(), "{w}×{h}");
            }
        }

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..1024)) {
            let limits = InputLimits { max_bytes: 1 << 20, max_pixels: 1 << 16 };
            if let Ok(d) = decode_input(&bytes, &limits) {
                prop_assert!(u64::from(d.image.width()) * u64::from(d.image.height()) <= limits.max_pixels);
            }
        }
    }
}
