//! A PNG reduced while it is decoded, for the inline preview: rows are read
//! a band at a time into a small buffer, each band is narrowed to the
//! preview's width (`fast_image_resize`, the horizontal pass), and once every
//! row is in, the narrow image is brought to the preview's height (the
//! vertical pass). The same separable filter a whole-image resize applies,
//! but the full-size pixels (48 MiB at 4096²) are never held together: the
//! memory touched is one band plus the narrow image (a tenth at 4K), which is
//! most of what a whole decode costs at that size.

use std::io::Cursor;

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage, RgbaImage};
use png::{ColorType, Transformations};

use super::{ImageInfo, MAX_ALLOC, MediaError, fit};

/// Rows decoded before each horizontal pass.
const BAND_ROWS: u32 = 64;

/// The reduced pixels, 8-bit RGB or RGBA, and whether any is not opaque.
pub(super) struct Reduced {
    pub image: DynamicImage,
    pub transparent: bool,
}

/// `bytes` (a PNG whose header gave `info`) reduced to fit `max_side`, with
/// the preview's filter (bilinear). `None` when this path does not apply —
/// the image is no larger than the preview, or interlaced (its rows do not
/// arrive in order) — and the caller decodes it whole.
pub(super) fn png(
    bytes: &[u8],
    info: &ImageInfo,
    max_side: u32,
) -> Result<Option<Reduced>, MediaError> {
    let (w, h) = fit(info.width, info.height, max_side);
    if (w, h) == (info.width, info.height) {
        return Ok(None);
    }
    let mut decoder = png::Decoder::new(Cursor::new(bytes));
    // Palette and low bit depths expanded, 16 bits cut to 8, tRNS to alpha:
    // what the whole-image decode gives.
    decoder.set_transformations(Transformations::normalize_to_color8());
    decoder.set_limits(png::Limits {
        bytes: usize::try_from(MAX_ALLOC).unwrap_or(usize::MAX),
    });
    let mut reader = decoder.read_info().map_err(decode_error)?;
    if reader.info().interlaced {
        return Ok(None);
    }
    let (width, height) = reader.info().size();
    let (color, _) = reader.output_color_type();
    let (pixel_type, alpha) = match color {
        ColorType::Rgba | ColorType::GrayscaleAlpha => (PixelType::U8x4, true),
        _ => (PixelType::U8x3, false),
    };
    let px = pixel_type.size();
    let line = reader
        .output_line_size(width)
        .ok_or_else(|| MediaError::Resize("the PNG's rows are too long".into()))?;
    let stride = width as usize * px;
    let band_rows = BAND_ROWS.min(height);
    let mut band = vec![0u8; stride * band_rows as usize];
    // Grey rows are read here and widened into the band.
    let mut grey = vec![0u8; if stride == line { 0 } else { line }];
    // The horizontal pass's output: every row, at the preview's width.
    let mut narrow = vec![0u8; w as usize * px * height as usize];
    let mut resizer = Resizer::new();
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    let mut transparent = false;
    let mut y = 0u32;
    while y < height {
        let rows = band_rows.min(height - y);
        for row in band.chunks_exact_mut(stride).take(rows as usize) {
            let target = if grey.is_empty() {
                &mut *row
            } else {
                &mut grey[..]
            };
            if reader.read_row(target).map_err(decode_error)?.is_none() {
                return Err(MediaError::Resize(
                    "the PNG has fewer rows than it says".into(),
                ));
            }
            match color {
                ColorType::Grayscale => {
                    for (g, rgb) in grey.iter().zip(row.chunks_exact_mut(3)) {
                        rgb.fill(*g);
                    }
                }
                ColorType::GrayscaleAlpha => {
                    for (ga, rgba) in grey.chunks_exact(2).zip(row.chunks_exact_mut(4)) {
                        rgba[..3].fill(ga[0]);
                        rgba[3] = ga[1];
                    }
                }
                _ => {}
            }
            if alpha && !transparent {
                transparent = row.chunks_exact(4).any(|p| p[3] != 255);
            }
        }
        let src =
            Image::from_slice_u8(width, rows, &mut band[..stride * rows as usize], pixel_type)
                .map_err(resize_error)?;
        let at = w as usize * px * y as usize;
        let mut dst = Image::from_slice_u8(
            w,
            rows,
            &mut narrow[at..at + w as usize * px * rows as usize],
            pixel_type,
        )
        .map_err(resize_error)?;
        resizer
            .resize(&src, &mut dst, &options)
            .map_err(resize_error)?;
        y += rows;
    }
    // The rest of the file (chunks after the pixels, to IEND) reads too.
    reader.finish().map_err(decode_error)?;
    let narrow = Image::from_vec_u8(w, height, narrow, pixel_type).map_err(resize_error)?;
    let mut out = Image::new(w, h, pixel_type);
    resizer
        .resize(&narrow, &mut out, &options)
        .map_err(resize_error)?;
    let raw = out.into_vec();
    let image = match alpha {
        true => RgbaImage::from_raw(w, h, raw).map(DynamicImage::ImageRgba8),
        false => RgbImage::from_raw(w, h, raw).map(DynamicImage::ImageRgb8),
    }
    .ok_or_else(|| MediaError::Resize("reduced buffer has the wrong size".into()))?;
    Ok(Some(Reduced { image, transparent }))
}

fn decode_error(e: png::DecodingError) -> MediaError {
    MediaError::Decode(image::ImageError::Decoding(
        image::error::DecodingError::new(image::ImageFormat::Png.into(), e),
    ))
}

fn resize_error(e: impl std::fmt::Display) -> MediaError {
    MediaError::Resize(e.to_string())
}
