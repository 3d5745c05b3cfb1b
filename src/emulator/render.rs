//! Deterministic test patterns: same inputs, same bytes.

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{GrayImage, ImageEncoder, RgbImage};
use sha2::{Digest, Sha256};

/// Renders a PNG of `width`×`height` from a seed (a hash of the request):
/// a two-colour diagonal gradient, a few bands and discs, and fine grain so
/// the file is not trivially small. If `source` pixels are given (an edit),
/// they are scaled in and a tinted band marks the change. With a `mask`
/// too, the pattern appears only where the mask is white; the source shows
/// (scaled, as a model would redraw it) everywhere else.
pub fn render_png(
    seed: &[u8],
    width: u32,
    height: u32,
    source: Option<&RgbImage>,
    mask: Option<&GrayImage>,
) -> Vec<u8> {
    let h = Sha256::digest(seed);
    let c0 = [h[0], h[1], h[2]];
    let c1 = [h[3], h[4], h[5]];
    let mut buf = vec![0u8; width as usize * height as usize * 3];
    let (w, hgt) = (width.max(1) as u64, height.max(1) as u64);
    // Gradient, written row by row with integer maths (fast even in debug).
    for (y, row) in buf.chunks_exact_mut(width as usize * 3).enumerate() {
        let y = y as u64;
        for (x, px) in row.chunks_exact_mut(3).enumerate() {
            let t = ((x as u64 * 255 / w) + (y * 255 / hgt)) / 2; // 0..=255
            for c in 0..3 {
                let v = (u64::from(c0[c]) * (255 - t) + u64::from(c1[c]) * t) / 255;
                // Grain: a cheap hash of the position, a few levels deep.
                let g = ((x as u64 ^ (y << 3)).wrapping_mul(0x9E37_79B9) >> 29) & 7;
                px[c] = (v + g).min(255) as u8;
            }
        }
    }
    let masked = source.zip(mask);
    if let (Some(src), None) = (source, mask) {
        blit_scaled(&mut buf, width, height, src);
    }
    // Discs and bands derived from the hash.
    for k in 0..4 {
        let b = &h[6 + k * 6..12 + k * 6];
        let cx = u64::from(u16::from_le_bytes([b[0], b[1]])) * w / 65536;
        let cy = u64::from(u16::from_le_bytes([b[2], b[3]])) * hgt / 65536;
        let r = (w.min(hgt) / 10) * (1 + u64::from(b[4] % 3));
        let colour = [b[5], b[4], b[0]];
        disc(&mut buf, width, height, cx, cy, r, colour);
    }
    let band_y = u64::from(h[30]) * hgt / 256;
    let band_h = (hgt / 24).max(1);
    let tint = if source.is_some() && mask.is_none() {
        [255, 40, 40]
    } else {
        [h[31], 255 - h[31], 128]
    };
    for y in band_y..(band_y + band_h).min(hgt) {
        let row = &mut buf[(y * w * 3) as usize..((y + 1) * w * 3) as usize];
        for px in row.chunks_exact_mut(3) {
            for c in 0..3 {
                px[c] = ((u16::from(px[c]) + u16::from(tint[c])) / 2) as u8;
            }
        }
    }
    if let Some((src, mask)) = masked {
        keep_unmasked(&mut buf, width, height, src, mask);
    }
    let mut out = Vec::with_capacity(buf.len() / 8);
    // Fast compression: the emulator must not dominate benchmarks.
    let _ = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(&buf, width, height, image::ExtendedColorType::Rgb8);
    out
}

/// A PNG of one colour.
pub fn flat_png(width: u32, height: u32, colour: [u8; 3]) -> Vec<u8> {
    let img = RgbImage::from_pixel(width, height, image::Rgb(colour));
    let mut out = Vec::new();
    let _ = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(img.as_raw(), width, height, image::ExtendedColorType::Rgb8);
    out
}

fn disc(buf: &mut [u8], width: u32, height: u32, cx: u64, cy: u64, r: u64, colour: [u8; 3]) {
    let (w, h) = (u64::from(width), u64::from(height));
    let y0 = cy.saturating_sub(r);
    let y1 = (cy + r).min(h.saturating_sub(1));
    for y in y0..=y1 {
        let dy = y.abs_diff(cy);
        let half = ((r * r - dy.min(r) * dy.min(r)) as f64).sqrt() as u64;
        let x0 = cx.saturating_sub(half);
        let x1 = (cx + half).min(w.saturating_sub(1));
        if x0 > x1 {
            continue;
        }
        let start = ((y * w + x0) * 3) as usize;
        let end = ((y * w + x1 + 1) * 3) as usize;
        for px in buf[start..end].chunks_exact_mut(3) {
            px.copy_from_slice(&colour);
        }
    }
}

/// Where `mask` (scaled to the canvas) is dark, the source (scaled) again.
fn keep_unmasked(buf: &mut [u8], width: u32, height: u32, src: &RgbImage, mask: &GrayImage) {
    let (w, h) = (u64::from(width), u64::from(height));
    let (sw, sh) = (
        u64::from(src.width().max(1)),
        u64::from(src.height().max(1)),
    );
    let (mw, mh) = (
        u64::from(mask.width().max(1)),
        u64::from(mask.height().max(1)),
    );
    let raw = src.as_raw();
    for y in 0..h {
        for x in 0..w {
            if mask.get_pixel((x * mw / w) as u32, (y * mh / h) as u32).0[0] >= 128 {
                continue;
            }
            let s = (((y * sh / h) * sw + x * sw / w) * 3) as usize;
            let d = ((y * w + x) * 3) as usize;
            buf[d..d + 3].copy_from_slice(&raw[s..s + 3]);
        }
    }
}

/// Nearest-neighbour copy of `src` over the whole canvas.
fn blit_scaled(buf: &mut [u8], width: u32, height: u32, src: &RgbImage) {
    let (sw, sh) = (
        u64::from(src.width().max(1)),
        u64::from(src.height().max(1)),
    );
    let (w, h) = (u64::from(width), u64::from(height));
    let raw = src.as_raw();
    for y in 0..h {
        let sy = y * sh / h;
        for x in 0..w {
            let sx = x * sw / w;
            let s = ((sy * sw + sx) * 3) as usize;
            let d = ((y * w + x) * 3) as usize;
            buf[d..d + 3].copy_from_slice(&raw[s..s + 3]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_sized() {
        let a = render_png(b"a cat", 64, 48, None, None);
        let b = render_png(b"a cat", 64, 48, None, None);
        let c = render_png(b"a dog", 64, 48, None, None);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let img = image::load_from_memory(&a).unwrap();
        assert_eq!((img.width(), img.height()), (64, 48));
    }

    #[test]
    fn edits_are_derived_from_the_source() {
        let src = RgbImage::from_pixel(10, 10, image::Rgb([0, 0, 255]));
        let out = render_png(b"edit", 40, 40, Some(&src), None);
        let img = image::load_from_memory(&out).unwrap().into_rgb8();
        // Most of the picture is still the (blue) source.
        let blue = img.pixels().filter(|p| p.0[2] > 200 && p.0[0] < 60).count();
        assert!(blue > 40 * 40 / 3, "{blue}");
    }

    #[test]
    fn masked_edits_change_only_the_white_area() {
        let src = RgbImage::from_pixel(10, 10, image::Rgb([0, 0, 255]));
        let mask = GrayImage::from_fn(10, 10, |x, _| image::Luma([if x < 5 { 0 } else { 255 }]));
        let out = render_png(b"paint", 40, 40, Some(&src), Some(&mask));
        let img = image::load_from_memory(&out).unwrap().into_rgb8();
        let blue = |x: u32, y: u32| img.get_pixel(x, y).0 == [0, 0, 255];
        assert!(
            (0..20).all(|x| (0..40).all(|y| blue(x, y))),
            "the black half is the source"
        );
        let changed = (20..40)
            .flat_map(|x| (0..40).map(move |y| (x, y)))
            .filter(|&(x, y)| !blue(x, y))
            .count();
        assert!(changed > 20 * 40 * 9 / 10, "{changed}");
    }
}
