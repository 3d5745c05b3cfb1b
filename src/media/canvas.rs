//! Canvases and compositing: the larger canvas an outpaint fills (the source
//! placed, the new area pre-filled from the source's edges so the model sees
//! context, and the mask of what is new), and the composite that puts a
//! generated picture only where a mask allows — every other pixel is the
//! base's, exactly.

use std::str::FromStr;

use image::{DynamicImage, RgbImage, RgbaImage};

use super::MediaError;
use super::mask::Mask;
use crate::domain::InvalidValue;

/// Which side(s) an outpaint extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Left,
    Right,
    Up,
    Down,
    /// Every side.
    All,
}

impl Direction {
    pub const ALL: [Direction; 5] = [Self::Left, Self::Right, Self::Up, Self::Down, Self::All];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "left",
            Self::Right => "right",
            Self::Up => "up",
            Self::Down => "down",
            Self::All => "all",
        }
    }
}

impl FromStr for Direction {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        Self::ALL
            .into_iter()
            .find(|d| d.as_str() == s)
            .ok_or_else(|| InvalidValue::new("direction", &s, Self::ALL.map(Self::as_str)))
    }
}

/// Where the source sits on an extended canvas.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extension {
    pub width: u32,
    pub height: u32,
    /// The source's top-left corner on the canvas.
    pub x: u32,
    pub y: u32,
}

/// The canvas for extending a `width`×`height` image by `pixels` towards
/// `direction` (`All`: every side).
pub fn extend(width: u32, height: u32, direction: Direction, pixels: u32) -> Extension {
    let (l, r, u, d) = match direction {
        Direction::Left => (pixels, 0, 0, 0),
        Direction::Right => (0, pixels, 0, 0),
        Direction::Up => (0, 0, pixels, 0),
        Direction::Down => (0, 0, 0, pixels),
        Direction::All => (pixels, pixels, pixels, pixels),
    };
    Extension {
        width: width.saturating_add(l).saturating_add(r),
        height: height.saturating_add(u).saturating_add(d),
        x: l,
        y: u,
    }
}

impl Extension {
    /// Whether canvas pixel (`x`, `y`) is outside the source (new).
    pub fn is_new(&self, x: u32, y: u32, src_w: u32, src_h: u32) -> bool {
        // In u64: the sum cannot overflow whatever the sizes.
        x < self.x
            || y < self.y
            || u64::from(x) >= u64::from(self.x) + u64::from(src_w)
            || u64::from(y) >= u64::from(self.y) + u64::from(src_h)
    }
}

/// The canvas with `src` placed and the new area filled by stretching the
/// source's nearest edge pixels outwards (RGB, or RGBA when the source has
/// alpha), and the mask of the new area.
pub fn outpaint_canvas(src: &DynamicImage, ext: Extension) -> (DynamicImage, Mask) {
    let (sw, sh) = (src.width(), src.height());
    // The nearest source pixel: inside, itself; outside, the edge.
    let nearest = |x: u32, y: u32| {
        (
            x.saturating_sub(ext.x).min(sw - 1),
            y.saturating_sub(ext.y).min(sh - 1),
        )
    };
    let canvas = match src {
        DynamicImage::ImageRgba8(rgba) => {
            DynamicImage::ImageRgba8(RgbaImage::from_fn(ext.width, ext.height, |x, y| {
                let (sx, sy) = nearest(x, y);
                *rgba.get_pixel(sx, sy)
            }))
        }
        other => {
            let rgb = other.to_rgb8();
            DynamicImage::ImageRgb8(RgbImage::from_fn(ext.width, ext.height, |x, y| {
                let (sx, sy) = nearest(x, y);
                *rgb.get_pixel(sx, sy)
            }))
        }
    };
    let mask = Mask::from_fn(ext.width, ext.height, |x, y| ext.is_new(x, y, sw, sh));
    (canvas, mask)
}

/// `base` where `weights` is 0, `generated` where it is 255, blended in
/// between. Both images must have the weights' size; the result has the
/// base's layout (RGB or RGBA). Where the weight is 0 the base's pixel is
/// copied as it is.
pub fn composite(
    base: &DynamicImage,
    generated: &DynamicImage,
    weights: &[u8],
) -> Result<DynamicImage, MediaError> {
    let (w, h) = (base.width(), base.height());
    if (generated.width(), generated.height()) != (w, h) || weights.len() != (w * h) as usize {
        return Err(MediaError::Resize(format!(
            "cannot composite {}×{} over {w}×{h} with {} weights",
            generated.width(),
            generated.height(),
            weights.len()
        )));
    }
    let blend = |b: &mut [u8], g: &[u8], a: u8| {
        if a == 0 {
            return;
        }
        for (bc, &gc) in b.iter_mut().zip(g) {
            let v =
                (u32::from(*bc) * u32::from(255 - a) + u32::from(gc) * u32::from(a) + 127) / 255;
            *bc = v as u8;
        }
    };
    Ok(match base {
        DynamicImage::ImageRgba8(b) => {
            let mut out = b.clone();
            let g = generated.to_rgba8();
            for ((o, gp), &a) in out.pixels_mut().zip(g.pixels()).zip(weights) {
                blend(&mut o.0, &gp.0, a);
            }
            DynamicImage::ImageRgba8(out)
        }
        other => {
            let mut out = other.to_rgb8();
            let g = generated.to_rgb8();
            for ((o, gp), &a) in out.pixels_mut().zip(g.pixels()).zip(weights) {
                blend(&mut o.0, &gp.0, a);
            }
            DynamicImage::ImageRgb8(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_arithmetic_for_every_direction() {
        let cases = [
            (Direction::Right, (1280, 1024, 0, 0)),
            (Direction::Left, (1280, 1024, 256, 0)),
            (Direction::Down, (1024, 1280, 0, 0)),
            (Direction::Up, (1024, 1280, 0, 256)),
            (Direction::All, (1536, 1536, 256, 256)),
        ];
        for (dir, (w, h, x, y)) in cases {
            let e = extend(1024, 1024, dir, 256);
            assert_eq!((e.width, e.height, e.x, e.y), (w, h, x, y), "{dir:?}");
        }
        assert_eq!("ALL".parse::<Direction>().unwrap(), Direction::All);
        assert!(
            "sideways"
                .parse::<Direction>()
                .unwrap_err()
                .to_string()
                .contains("left")
        );
    }

    /// Found by `proptests::extension_arithmetic_never_overflows`: a source
    /// placed near `u32::MAX` overflowed `x + width`.
    #[test]
    fn is_new_near_the_largest_sizes() {
        let e = Extension {
            width: u32::MAX,
            height: u32::MAX,
            x: u32::MAX - 1,
            y: 0,
        };
        assert!(!e.is_new(u32::MAX - 1, 0, 5, 1));
        assert!(e.is_new(u32::MAX - 2, 0, 5, 1));
        assert!(e.is_new(0, 1, 5, 1));
    }

    #[test]
    fn canvas_places_the_source_and_prefills_from_its_edges() {
        let src = DynamicImage::ImageRgb8(image::RgbImage::from_fn(4, 2, |x, _| {
            image::Rgb([x as u8 * 60, 0, 0])
        }));
        let ext = extend(4, 2, Direction::Left, 3);
        let (canvas, mask) = outpaint_canvas(&src, ext);
        let c = canvas.to_rgba8();
        assert_eq!(c.dimensions(), (7, 2));
        // The source, unchanged, at x = 3…6; the new area repeats its left edge.
        for x in 0..4 {
            assert_eq!(c.get_pixel(3 + x, 1).0[0], x as u8 * 60);
        }
        assert_eq!(c.get_pixel(0, 0).0[0], 0);
        assert!(mask.get(2, 0) && !mask.get(3, 0));
    }

    #[test]
    fn composite_keeps_every_unmasked_pixel_exactly() {
        let base = DynamicImage::ImageRgb8(image::RgbImage::from_fn(32, 32, |x, y| {
            image::Rgb([(x * 7) as u8, (y * 5) as u8, ((x ^ y) * 3) as u8])
        }));
        let generated =
            DynamicImage::ImageRgb8(image::RgbImage::from_pixel(32, 32, image::Rgb([1, 2, 3])));
        let mask = Mask::from_fn(32, 32, |x, y| (8..24).contains(&x) && (8..24).contains(&y));
        let out = composite(&base, &generated, &mask.weights(3)).unwrap();
        let (o, b) = (out.to_rgb8(), base.to_rgb8());
        for y in 0..32 {
            for x in 0..32 {
                if !mask.get(x, y) {
                    assert_eq!(o.get_pixel(x, y), b.get_pixel(x, y), "({x},{y}) changed");
                }
            }
        }
        assert_eq!(o.get_pixel(16, 16).0, [1, 2, 3], "the middle is all new");
        assert!(composite(&base, &generated, &[0; 3]).is_err());
    }
}

/// Canvas arithmetic for any size and extension.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::prop_support::config;

    fn direction() -> impl Strategy<Value = Direction> {
        prop::sample::select(Direction::ALL.to_vec())
    }

    proptest! {
        #![proptest_config(config(256))]

        /// Any sizes, even ones no limit would let through: no overflow.
        #[test]
        fn extension_arithmetic_never_overflows(
            w in any::<u32>(), h in any::<u32>(), px in any::<u32>(), dir in direction(),
            x in any::<u32>(), y in any::<u32>(),
        ) {
            let e = extend(w, h, dir, px);
            prop_assert!(e.width >= w && e.height >= h);
            let _ = e.is_new(x, y, w, h);
        }

        /// New pixels are exactly the canvas minus the source, and the
        /// canvas's mask says so.
        #[test]
        fn the_mask_marks_exactly_the_new_area(
            w in 1u32..12, h in 1u32..12, px in 1u32..8, dir in direction(),
        ) {
            let e = extend(w, h, dir, px);
            let src = DynamicImage::ImageRgb8(image::RgbImage::new(w, h));
            let (canvas, mask) = outpaint_canvas(&src, e);
            prop_assert_eq!((canvas.width(), canvas.height()), (e.width, e.height));
            prop_assert_eq!(mask.dimensions(), (e.width, e.height));
            let mut new = 0u64;
            for cy in 0..e.height {
                for cx in 0..e.width {
                    let is_new = e.is_new(cx, cy, w, h);
                    prop_assert_eq!(mask.get(cx, cy), is_new);
                    new += u64::from(is_new);
                }
            }
            prop_assert_eq!(new, u64::from(e.width) * u64::from(e.height) - u64::from(w) * u64::from(h));
        }

        #[test]
        fn any_direction_text_never_panics(s in any::<String>()) {
            let _ = s.parse::<Direction>();
        }
    }
}
