//! Masks: which pixels an edit may change. White (or opaque) = change,
//! black (or transparent) = keep. A mask is made binary, scaled to the image
//! it belongs to (nearest neighbour, so it stays binary), and turned into a
//! blend weight with a small feather *inside* the changed region: every
//! kept pixel stays exactly as it was.

use image::{DynamicImage, GrayImage, Luma};

/// A binary mask: `true` = may change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mask {
    width: u32,
    height: u32,
    on: Vec<bool>,
}

impl Mask {
    /// Reads a mask image. An image with any transparency is read by its
    /// alpha (opaque = change); otherwise by its brightness (light = change).
    pub fn from_image(img: &DynamicImage) -> Self {
        let (width, height) = (img.width(), img.height());
        let uses_alpha = img.color().has_alpha() && img.to_rgba8().pixels().any(|p| p.0[3] != 255);
        let on = if uses_alpha {
            img.to_rgba8().pixels().map(|p| p.0[3] >= 128).collect()
        } else {
            img.to_luma8().pixels().map(|p| p.0[0] >= 128).collect()
        };
        Self { width, height, on }
    }

    /// A `width`×`height` mask with `f(x, y)` deciding each pixel.
    pub fn from_fn(width: u32, height: u32, f: impl Fn(u32, u32) -> bool) -> Self {
        let mut on = Vec::with_capacity(width as usize * height as usize);
        for y in 0..height {
            for x in 0..width {
                on.push(f(x, y));
            }
        }
        Self { width, height, on }
    }

    pub fn dimensions(&self) -> (u32, u32) {
        (self.width, self.height)
    }

    /// Whether nothing may change (an all-black mask).
    pub fn is_empty(&self) -> bool {
        !self.on.iter().any(|&b| b)
    }

    /// Whether pixel (`x`, `y`) may change.
    pub fn get(&self, x: u32, y: u32) -> bool {
        self.on[(y as usize) * self.width as usize + x as usize]
    }

    /// The mask at `width`×`height` (nearest neighbour); itself if already.
    pub fn scaled(self, width: u32, height: u32) -> Self {
        if (self.width, self.height) == (width, height) {
            return self;
        }
        let (sw, sh) = (u64::from(self.width), u64::from(self.height));
        Self::from_fn(width, height, |x, y| {
            let sx = (u64::from(x) * sw / u64::from(width)) as u32;
            let sy = (u64::from(y) * sh / u64::from(height)) as u32;
            self.get(sx, sy)
        })
    }

    /// The mask as a black-and-white picture (what the model is shown).
    pub fn to_image(&self) -> GrayImage {
        GrayImage::from_fn(self.width, self.height, |x, y| {
            Luma([if self.get(x, y) { 255 } else { 0 }])
        })
    }

    /// Blend weights 0–255: 0 wherever the mask says keep, rising from the
    /// edge of the changed region to 255 at `feather` pixels inside it (or
    /// at once with `feather` = 0). The image border is not an edge: a
    /// region touching it is not faded there.
    pub fn weights(&self, feather: u32) -> Vec<u8> {
        if feather == 0 {
            return self.on.iter().map(|&b| if b { 255 } else { 0 }).collect();
        }
        let dist = self.distance_to_keep();
        let f = feather as f32;
        dist.iter()
            .map(|&d| {
                if d == 0.0 {
                    0
                } else {
                    // The first changed pixel next to a kept one already
                    // blends a little; `feather` pixels in, it is all new.
                    ((d / f).min(1.0) * 255.0).round() as u8
                }
            })
            .collect()
    }

    /// For each pixel, the distance (in pixels, chamfer 3-4 metric) to the
    /// nearest kept pixel; 0 on kept pixels. Two passes over the image.
    fn distance_to_keep(&self) -> Vec<f32> {
        let (w, h) = (self.width as usize, self.height as usize);
        const FAR: f32 = f32::MAX / 4.0;
        let mut d: Vec<f32> = self.on.iter().map(|&b| if b { FAR } else { 0.0 }).collect();
        let (a, b) = (1.0f32, std::f32::consts::SQRT_2);
        for y in 0..h {
            for x in 0..w {
                let i = y * w + x;
                if d[i] == 0.0 {
                    continue;
                }
                let mut v = d[i];
                if x > 0 {
                    v = v.min(d[i - 1] + a);
                }
                if y > 0 {
                    v = v.min(d[i - w] + a);
                    if x > 0 {
                        v = v.min(d[i - w - 1] + b);
                    }
                    if x + 1 < w {
                        v = v.min(d[i - w + 1] + b);
                    }
                }
                d[i] = v;
            }
        }
        for y in (0..h).rev() {
            for x in (0..w).rev() {
                let i = y * w + x;
                if d[i] == 0.0 {
                    continue;
                }
                let mut v = d[i];
                if x + 1 < w {
                    v = v.min(d[i + 1] + a);
                }
                if y + 1 < h {
                    v = v.min(d[i + w] + a);
                    if x + 1 < w {
                        v = v.min(d[i + w + 1] + b);
                    }
                    if x > 0 {
                        v = v.min(d[i + w - 1] + b);
                    }
                }
                d[i] = v;
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn white_or_opaque_means_change() {
        let bw = DynamicImage::ImageLuma8(GrayImage::from_fn(4, 1, |x, _| Luma([x as u8 * 80])));
        let m = Mask::from_image(&bw);
        assert_eq!(
            (0..4).map(|x| m.get(x, 0)).collect::<Vec<_>>(),
            [false, false, true, true]
        );
        let alpha = DynamicImage::ImageRgba8(image::RgbaImage::from_fn(2, 1, |x, _| {
            image::Rgba([0, 0, 0, if x == 0 { 0 } else { 255 }])
        }));
        let m = Mask::from_image(&alpha);
        assert!(
            !m.get(0, 0) && m.get(1, 0),
            "alpha decides when there is transparency"
        );
        let black = DynamicImage::ImageLuma8(GrayImage::new(3, 3));
        assert!(Mask::from_image(&black).is_empty());
    }

    #[test]
    fn scaling_is_nearest_and_stays_binary() {
        let m = Mask::from_fn(2, 2, |x, y| x == 1 && y == 0);
        let big = m.scaled(4, 6);
        assert_eq!(big.dimensions(), (4, 6));
        for y in 0..6 {
            for x in 0..4 {
                assert_eq!(big.get(x, y), x >= 2 && y < 3, "({x},{y})");
            }
        }
    }

    #[test]
    fn weights_are_zero_outside_and_feathered_inside() {
        let m = Mask::from_fn(20, 1, |x, _| x >= 10);
        let hard = m.weights(0);
        assert!(hard[..10].iter().all(|&w| w == 0) && hard[10..].iter().all(|&w| w == 255));
        let soft = m.weights(4);
        assert!(
            soft[..10].iter().all(|&w| w == 0),
            "kept pixels never blend"
        );
        assert!(soft[10] > 0 && soft[10] < 255, "{soft:?}");
        assert!(soft.windows(2).skip(10).all(|p| p[0] <= p[1]), "{soft:?}");
        assert_eq!(soft[19], 255, "the border is not an edge");
        assert_eq!(soft[14], 255);
    }
}

/// Masks scaled to any size keep their shape; weights stay inside the mask.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::prop_support::config;

    fn mask() -> impl Strategy<Value = Mask> {
        (1u32..24, 1u32..24).prop_flat_map(|(w, h)| {
            prop::collection::vec(any::<bool>(), (w * h) as usize).prop_map(move |on| Mask {
                width: w,
                height: h,
                on,
            })
        })
    }

    proptest! {
        #![proptest_config(config(256))]

        #[test]
        fn scaling_gives_the_size_asked_for(m in mask(), w in 1u32..64, h in 1u32..64) {
            let all = !m.on.contains(&false);
            let none = m.is_empty();
            let s = m.scaled(w, h);
            prop_assert_eq!(s.dimensions(), (w, h));
            prop_assert_eq!(s.on.len(), (w * h) as usize);
            // Nearest neighbour invents nothing: uniform stays uniform.
            if all {
                prop_assert!(!s.on.contains(&false));
            }
            if none {
                prop_assert!(s.is_empty());
            }
        }

        #[test]
        fn weights_are_zero_exactly_where_kept(m in mask(), feather in 0u32..=64) {
            let weights = m.weights(feather);
            prop_assert_eq!(weights.len(), m.on.len());
            for (w, on) in weights.iter().zip(&m.on) {
                if *on {
                    prop_assert!(*w > 0);
                } else {
                    prop_assert_eq!(*w, 0);
                }
            }
            if feather == 0 {
                prop_assert!(weights.iter().all(|w| *w == 0 || *w == 255));
            }
        }
    }
}
