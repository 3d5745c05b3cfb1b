//! Deterministic test patterns: same inputs, same bytes. Every picture
//! carries the emulator's label (see [`super::label`]).

use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use image::{GrayImage, ImageEncoder, RgbImage};
use sha2::{Digest, Sha256};

use super::label::{self, Area};

/// Renders a PNG of `width`×`height` from a seed (a hash of the request):
/// a two-colour diagonal gradient, a few bands and discs, and fine grain so
/// the file is not trivially small, labelled with `prompt` along the
/// bottom. If `source` pixels are given (an edit), they are scaled in and a
/// tinted band marks the change. With a `mask` too, the pattern appears
/// only where the mask is white; the source shows (scaled, as a model would
/// redraw it) everywhere else, and the label sits at the bottom of the
/// white area, cut to it — a masked edit changes nothing outside its mask.
pub fn render_png(
    seed: &[u8],
    prompt: &str,
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
    let area = match masked {
        Some((_, mask)) => white_area(mask, width, height),
        None => Some(Area::whole(width, height)),
    };
    if let Some(area) = area {
        label::draw(&mut buf, width, height, area, prompt);
    }
    if let Some((src, mask)) = masked {
        keep_unmasked(&mut buf, width, height, src, mask);
    }
    png(&buf, width, height)
}

/// A PNG of one colour, labelled with `prompt`.
pub fn flat_png(width: u32, height: u32, colour: [u8; 3], prompt: &str) -> Vec<u8> {
    let mut img = RgbImage::from_pixel(width, height, image::Rgb(colour));
    label::draw(&mut img, width, height, Area::whole(width, height), prompt);
    png(img.as_raw(), width, height)
}

fn png(rgb: &[u8], width: u32, height: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(rgb.len() / 8);
    // Fast compression: the emulator must not dominate benchmarks.
    let _ = PngEncoder::new_with_quality(&mut out, CompressionType::Fast, FilterType::Sub)
        .write_image(rgb, width, height, image::ExtendedColorType::Rgb8);
    out
}

/// The canvas rectangle around `mask`'s white pixels (the mask scaled to
/// `width`×`height` by nearest neighbour, as [`keep_unmasked`] reads it).
fn white_area(mask: &GrayImage, width: u32, height: u32) -> Option<Area> {
    let (mut x0, mut y0, mut x1, mut y1) = (u32::MAX, u32::MAX, 0, 0);
    for (x, y, p) in mask.enumerate_pixels() {
        if p.0[0] >= 128 {
            (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
        }
    }
    if x0 > x1 {
        return None;
    }
    // Canvas pixel `c` reads mask pixel `c * m / n`: the first canvas pixel
    // of mask pixel `k` is `ceil(k * n / m)`.
    let first =
        |k: u32, n: u32, m: u32| (u64::from(k) * u64::from(n)).div_ceil(u64::from(m)) as u32;
    let (mw, mh) = (mask.width(), mask.height());
    let (x, y) = (first(x0, width, mw), first(y0, height, mh));
    Some(Area {
        x,
        y,
        width: first(x1 + 1, width, mw) - x,
        height: first(y1 + 1, height, mh) - y,
    })
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
    use crate::emulator::label::tests::read_line;
    use crate::emulator::label::{TEXT_COLOUR, TITLE_COLOUR};

    #[test]
    fn pictures_are_labelled_with_their_prompt() {
        let png = render_png(b"seed", "a lighthouse at dusk", 1024, 1024, None, None);
        let img = image::load_from_memory(&png).unwrap().into_rgb8();
        // At 1K a font pixel is 2×2; the band (two lines of 10 and a
        // margin of 4 above and below, in font pixels) ends at the bottom.
        let top = 1024 - (2 * 10 + 2 * 4) * 2;
        let title = read_line(&img, (8, top + 8), 2, TITLE_COLOUR, 20);
        let prompt = read_line(&img, (8, top + 28), 2, TEXT_COLOUR, 30);
        assert_eq!(
            (title.as_str(), prompt.as_str()),
            ("media-gen emulator", "a lighthouse at dusk")
        );
        // Nothing but the band is dark: above it, the pattern is as before.
        let unlabelled = render_png(b"seed", "", 1024, 1024, None, None);
        let plain = image::load_from_memory(&unlabelled).unwrap().into_rgb8();
        let rows = |img: &RgbImage| img.as_raw()[..top as usize * 1024 * 3].to_vec();
        assert_eq!(rows(&img), rows(&plain));
        // Any text draws.
        let odd = render_png(b"s", "東京 🚀 \u{0}\u{fffd} ∑", 512, 512, None, None);
        assert!(image::load_from_memory(&odd).is_ok());
    }

    #[test]
    fn deterministic_and_sized() {
        let a = render_png(b"a cat", "a cat", 64, 48, None, None);
        let b = render_png(b"a cat", "a cat", 64, 48, None, None);
        let c = render_png(b"a dog", "a dog", 64, 48, None, None);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let img = image::load_from_memory(&a).unwrap();
        assert_eq!((img.width(), img.height()), (64, 48));
    }

    #[test]
    fn edits_are_derived_from_the_source() {
        let src = RgbImage::from_pixel(10, 10, image::Rgb([0, 0, 255]));
        let out = render_png(b"edit", "edit", 40, 40, Some(&src), None);
        let img = image::load_from_memory(&out).unwrap().into_rgb8();
        // Most of the picture is still the (blue) source.
        let blue = img.pixels().filter(|p| p.0[2] > 200 && p.0[0] < 60).count();
        assert!(blue > 40 * 40 / 3, "{blue}");
    }

    #[test]
    fn masked_edits_change_only_the_white_area_and_are_labelled_there() {
        let src = RgbImage::from_pixel(60, 40, image::Rgb([0, 0, 255]));
        let mask = GrayImage::from_fn(60, 40, |x, _| image::Luma([if x < 30 { 0 } else { 255 }]));
        let out = render_png(b"paint", "a door", 600, 400, Some(&src), Some(&mask));
        let img = image::load_from_memory(&out).unwrap().into_rgb8();
        let blue = |x: u32, y: u32| img.get_pixel(x, y).0 == [0, 0, 255];
        assert!(
            (0..300).all(|x| (0..400).all(|y| blue(x, y))),
            "the black half is the source"
        );
        let changed = (300..600)
            .flat_map(|x| (0..400).map(move |y| (x, y)))
            .filter(|&(x, y)| !blue(x, y))
            .count();
        assert!(changed > 300 * 400 * 9 / 10, "{changed}");
        // The white half is 300×400: one line of title, one of prompt,
        // at the bottom of that half, font pixels 1×1.
        let top = 400 - (2 * 10 + 2 * 4);
        let title = read_line(&img, (304, top + 4), 1, TITLE_COLOUR, 20);
        let prompt = read_line(&img, (304, top + 14), 1, TEXT_COLOUR, 20);
        assert_eq!(
            (title.as_str(), prompt.as_str()),
            ("media-gen emulator", "a door")
        );
    }
}
