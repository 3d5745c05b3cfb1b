//! Exact-size resampling with `fast_image_resize` (SIMD): Lanczos3 for
//! results (upscales, backend outputs brought back to the source's size,
//! downscaled inputs), nearest for masks. Pixels stay 8-bit RGB or RGBA.

use fast_image_resize::images::Image;
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use image::{DynamicImage, RgbImage, RgbaImage};

use super::MediaError;

/// How to resample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Sharp, high quality (results).
    Lanczos3,
    /// Quick and smooth (previews).
    Bilinear,
}

/// `img` as 8-bit RGB, or RGBA when it has an alpha channel: the two
/// layouts every pixel operation here works in. No copy when it already is.
pub fn to_rgb_or_rgba(img: DynamicImage) -> DynamicImage {
    match img {
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_) => img,
        other if other.color().has_alpha() => DynamicImage::ImageRgba8(other.into_rgba8()),
        other => DynamicImage::ImageRgb8(other.into_rgb8()),
    }
}

/// `img` resampled to exactly `width`×`height` (8-bit RGB or RGBA, as
/// [`to_rgb_or_rgba`] gives). The same size returns the image as it is.
pub fn resize_exact(
    img: DynamicImage,
    width: u32,
    height: u32,
    filter: Filter,
) -> Result<DynamicImage, MediaError> {
    let img = to_rgb_or_rgba(img);
    if (img.width(), img.height()) == (width, height) {
        return Ok(img);
    }
    resized(&img, width, height, filter)
}

/// A resampled copy of `img` at exactly `width`×`height` (8-bit RGB or
/// RGBA); `img` itself is left as it is.
pub fn resized(
    img: &DynamicImage,
    width: u32,
    height: u32,
    filter: Filter,
) -> Result<DynamicImage, MediaError> {
    if !matches!(
        img,
        DynamicImage::ImageRgb8(_) | DynamicImage::ImageRgba8(_)
    ) {
        return resized(&to_rgb_or_rgba(img.clone()), width, height, filter);
    }
    if width == 0 || height == 0 {
        return Err(MediaError::Resize(format!(
            "cannot resize to {width}×{height}"
        )));
    }
    let alpha = matches!(img, DynamicImage::ImageRgba8(_));
    let pixel_type = if alpha {
        PixelType::U8x4
    } else {
        PixelType::U8x3
    };
    let mut dst = Image::new(width, height, pixel_type);
    let alg = match filter {
        Filter::Lanczos3 => ResizeAlg::Convolution(FilterType::Lanczos3),
        Filter::Bilinear => ResizeAlg::Convolution(FilterType::Bilinear),
    };
    Resizer::new()
        .resize(img, &mut dst, &ResizeOptions::new().resize_alg(alg))
        .map_err(|e| MediaError::Resize(e.to_string()))?;
    let raw = dst.into_vec();
    let out = if alpha {
        RgbaImage::from_raw(width, height, raw).map(DynamicImage::ImageRgba8)
    } else {
        RgbImage::from_raw(width, height, raw).map(DynamicImage::ImageRgb8)
    };
    out.ok_or_else(|| MediaError::Resize("resized buffer has the wrong size".into()))
}

/// `img` scaled down (never up) so that neither side exceeds `max_side`.
pub fn fit_within(
    img: DynamicImage,
    max_side: u32,
    filter: Filter,
) -> Result<DynamicImage, MediaError> {
    let (w, h) = super::fit(img.width(), img.height(), max_side);
    resize_exact(img, w, h, filter)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_sizes_keep_the_layout() {
        let rgb = DynamicImage::ImageRgb8(RgbImage::from_pixel(10, 8, image::Rgb([10, 20, 30])));
        let out = resize_exact(rgb, 40, 32, Filter::Lanczos3).unwrap();
        assert_eq!((out.width(), out.height()), (40, 32));
        assert!(matches!(out, DynamicImage::ImageRgb8(_)));
        // A flat colour stays that colour.
        assert_eq!(out.as_rgb8().unwrap().get_pixel(20, 16).0, [10, 20, 30]);
        let rgba = DynamicImage::ImageRgba8(RgbaImage::from_pixel(4, 4, image::Rgba([1, 2, 3, 0])));
        let out = resize_exact(rgba, 2, 2, Filter::Lanczos3).unwrap();
        assert!(matches!(out, DynamicImage::ImageRgba8(_)));
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(3, 3, image::Luma([7])));
        assert!(matches!(to_rgb_or_rgba(grey), DynamicImage::ImageRgb8(_)));
        let big = DynamicImage::ImageRgb8(RgbImage::new(3000, 1000));
        let small = fit_within(big, 1500, Filter::Bilinear).unwrap();
        assert_eq!((small.width(), small.height()), (1500, 500));
    }
}
