//! Domain values shared by every layer: aspect ratios, image sizes, the image
//! model registry and the Gemini output-size table.
//!
//! These are types rather than strings so that a value, once parsed at the edge
//! (tool parameters, CLI flags, config), is known to be valid everywhere else.

use std::fmt;
use std::str::FromStr;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// An output aspect ratio as Gemini spells it (`"16:9"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum AspectRatio {
    #[serde(rename = "1:1")]
    Square,
    #[serde(rename = "2:3")]
    R2x3,
    #[serde(rename = "3:2")]
    R3x2,
    #[serde(rename = "3:4")]
    R3x4,
    #[serde(rename = "4:3")]
    R4x3,
    #[serde(rename = "4:5")]
    R4x5,
    #[serde(rename = "5:4")]
    R5x4,
    #[serde(rename = "9:16")]
    R9x16,
    #[serde(rename = "16:9")]
    R16x9,
    #[serde(rename = "21:9")]
    R21x9,
    #[serde(rename = "1:4")]
    R1x4,
    #[serde(rename = "4:1")]
    R4x1,
    #[serde(rename = "1:8")]
    R1x8,
    #[serde(rename = "8:1")]
    R8x1,
}

impl AspectRatio {
    /// Every ratio, in the order they are listed to users.
    pub const ALL: [AspectRatio; 14] = [
        Self::Square,
        Self::R2x3,
        Self::R3x2,
        Self::R3x4,
        Self::R4x3,
        Self::R4x5,
        Self::R5x4,
        Self::R9x16,
        Self::R16x9,
        Self::R21x9,
        Self::R1x4,
        Self::R4x1,
        Self::R1x8,
        Self::R8x1,
    ];
    /// The ten ratios every Gemini 3 / 2.5 image model supports.
    pub const STANDARD: [AspectRatio; 10] = [
        Self::Square,
        Self::R2x3,
        Self::R3x2,
        Self::R3x4,
        Self::R4x3,
        Self::R4x5,
        Self::R5x4,
        Self::R9x16,
        Self::R16x9,
        Self::R21x9,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Square => "1:1",
            Self::R2x3 => "2:3",
            Self::R3x2 => "3:2",
            Self::R3x4 => "3:4",
            Self::R4x3 => "4:3",
            Self::R4x5 => "4:5",
            Self::R5x4 => "5:4",
            Self::R9x16 => "9:16",
            Self::R16x9 => "16:9",
            Self::R21x9 => "21:9",
            Self::R1x4 => "1:4",
            Self::R4x1 => "4:1",
            Self::R1x8 => "1:8",
            Self::R8x1 => "8:1",
        }
    }

    /// Pixel size of a 1K image at this ratio, as Gemini 3 Pro Image returns it.
    /// The extreme ratios (1:4 … 8:1, 3.1 Flash only) keep about one megapixel.
    fn base_1k(self) -> (u32, u32) {
        match self {
            Self::Square => (1024, 1024),
            Self::R2x3 => (848, 1264),
            Self::R3x2 => (1264, 848),
            Self::R3x4 => (896, 1200),
            Self::R4x3 => (1200, 896),
            Self::R4x5 => (928, 1152),
            Self::R5x4 => (1152, 928),
            Self::R9x16 => (768, 1376),
            Self::R16x9 => (1376, 768),
            Self::R21x9 => (1584, 672),
            Self::R1x4 => (512, 2048),
            Self::R4x1 => (2048, 512),
            Self::R1x8 => (368, 2896),
            Self::R8x1 => (2896, 368),
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AspectRatio {
    type Err = InvalidValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| InvalidValue::new("aspect_ratio", s, Self::ALL.map(Self::as_str)))
    }
}

/// Output resolution class. Gemini wants the upper-case spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ImageSize {
    #[serde(rename = "512")]
    S512,
    #[serde(rename = "1K")]
    S1K,
    #[serde(rename = "2K")]
    S2K,
    #[serde(rename = "4K")]
    S4K,
}

impl ImageSize {
    pub const ALL: [ImageSize; 4] = [Self::S512, Self::S1K, Self::S2K, Self::S4K];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::S512 => "512",
            Self::S1K => "1K",
            Self::S2K => "2K",
            Self::S4K => "4K",
        }
    }
}

impl fmt::Display for ImageSize {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ImageSize {
    type Err = InvalidValue;
    /// Accepts `1k` as well as `1K`: people type both, Gemini wants the latter.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        Self::ALL
            .into_iter()
            .find(|v| v.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| InvalidValue::new("image_size", s, Self::ALL.map(Self::as_str)))
    }
}

/// The pixel size Gemini returns for a ratio and size: the 1K table, halved for
/// `512`, doubled for 2K and quadrupled for 4K (both sides).
pub fn output_dimensions(ratio: AspectRatio, size: ImageSize) -> (u32, u32) {
    let (w, h) = ratio.base_1k();
    match size {
        ImageSize::S512 => (w / 2, h / 2),
        ImageSize::S1K => (w, h),
        ImageSize::S2K => (w * 2, h * 2),
        ImageSize::S4K => (w * 4, h * 4),
    }
}

/// What one image model accepts.
#[derive(Debug, Clone, Copy)]
pub struct ImageModelInfo {
    pub id: &'static str,
    pub aspect_ratios: &'static [AspectRatio],
    pub image_sizes: &'static [ImageSize],
    /// Most reference images one request may carry (beside an image being edited).
    pub max_reference_images: u32,
    /// Estimated USD per generated image, by size (see [`PRICES_CHECKED`]);
    /// a size missing here has no price.
    pub price_per_image: &'static [(ImageSize, f64)],
}

impl ImageModelInfo {
    /// `text` as one of the ratios this model makes. Anything else — an
    /// unknown ratio or another model's — is refused listing only this
    /// model's ratios.
    pub fn aspect_ratio(&self, text: &str) -> Result<AspectRatio, InvalidValue> {
        let ratio = text.parse::<AspectRatio>().ok();
        ratio
            .filter(|r| self.aspect_ratios.contains(r))
            .ok_or_else(|| {
                InvalidValue::new(
                    "aspect_ratio",
                    text.trim(),
                    self.aspect_ratios.iter().map(|r| r.as_str()),
                )
                .of_model(self.id)
            })
    }

    /// `text` as one of the sizes this model makes (`1k` as well as `1K`);
    /// anything else is refused listing only this model's sizes.
    pub fn image_size(&self, text: &str) -> Result<ImageSize, InvalidValue> {
        let size = text.parse::<ImageSize>().ok();
        size.filter(|s| self.image_sizes.contains(s))
            .ok_or_else(|| {
                InvalidValue::new(
                    "image_size",
                    text.trim(),
                    self.image_sizes.iter().map(|s| s.as_str()),
                )
                .of_model(self.id)
            })
    }

    /// The supported ratio closest to `width`:`height` (by the logarithm of
    /// the ratio, so 2:1 and 1:2 are equally far from 1:1).
    pub fn nearest_ratio(&self, width: u32, height: u32) -> AspectRatio {
        let want = (f64::from(width.max(1)) / f64::from(height.max(1))).ln();
        let distance = |r: &AspectRatio| {
            let (w, h) = r.base_1k();
            ((f64::from(w) / f64::from(h)).ln() - want).abs()
        };
        self.aspect_ratios
            .iter()
            .copied()
            .min_by(|a, b| distance(a).total_cmp(&distance(b)))
            .unwrap_or(AspectRatio::Square)
    }

    /// The smallest size whose output at `ratio` is at least `width`×`height`,
    /// or the largest the model has.
    pub fn covering_size(&self, ratio: AspectRatio, width: u32, height: u32) -> ImageSize {
        let mut sizes = self.image_sizes.to_vec();
        sizes.sort_by_key(|s| output_dimensions(ratio, *s).0);
        sizes
            .iter()
            .copied()
            .find(|s| {
                let (w, h) = output_dimensions(ratio, *s);
                w >= width && h >= height
            })
            .or_else(|| sizes.last().copied())
            .unwrap_or(ImageSize::S1K)
    }
}

const ALL_SIZES_BUT_512: [ImageSize; 3] = [ImageSize::S1K, ImageSize::S2K, ImageSize::S4K];

/// The day the price table below (`price_per_image`, `price_per_second`)
/// was last checked. The figures are estimates of the Gemini API's paid-tier
/// list prices (<https://ai.google.dev/gemini-api/docs/pricing>, standard,
/// not batch), which could not be opened from where they were checked; they
/// come from pages quoting it, found through a search index:
///
/// - Gemini 3 Pro Image (`gemini-3-pro-image-preview`, and the same for
///   `gemini-3-pro-image`): $0.134 per 1K or 2K image, $0.24 per 4K image
///   (issue 12's figures; the 4K figure also in Puter's Gemini cost map,
///   github.com/HeyPuter/puter PR 2562, and aifreeapi.com's Veo pricing
///   page). Output image tokens at $120 per million: 1120 tokens for 1K/2K,
///   2000 for 4K.
/// - Gemini 3.1 Flash Image (`gemini-3.1-flash-image-preview`): $0.045 (512),
///   $0.067 (1K), $0.101 (2K), $0.151 (4K): blog.laozhang.ai "Gemini 3.1
///   Flash Image Pricing by Resolution" (checked against Google's page on
///   2026-04-04) and xairouter.com's model page ($60 per million image
///   tokens).
/// - Gemini 2.5 Flash Image: $0.039 per image (1K only): Puter's cost map
///   (3,900,000 micro-cents per 1024²), $30 per million output tokens ×
///   1290 tokens.
/// - Veo 3.1 (`veo-3.1-generate-preview`): $0.40/s at 720p and 1080p,
///   $0.60/s at 4k; Veo 3.1 Fast: $0.10/s (720p), $0.12/s (1080p), $0.30/s
///   (4k): reapi.ai "Cheapest Veo 3.1 API in 2026" (May 2026, citing the
///   Gemini API docs); the Veo 3.1 $0.40/s also in issue 12.
/// - Veo 3 (`veo-3.0-generate-001`) $0.40/s and Veo 3 Fast $0.15/s:
///   docs.dev.xavier.icvr.xyz's Veo 3 page.
/// - Veo 2: $0.35/s, Google's long-standing list price; no page found to
///   confirm it again here.
/// - `grok-imagine-video` (through CLIProxyAPI) has no price: set one in the
///   config file's `[prices]` table.
///
/// Veo 3.x on the Gemini API always makes sound, and its price includes it
/// (there is no cheaper silent rate to choose). Every figure can be replaced
/// from the config file (`[prices]`), e.g. for another price list or a
/// discount.
pub const PRICES_CHECKED: &str = "2026-11-26";

/// Gemini 3 Pro Image, preview and GA ids alike.
const GEMINI_3_PRO_IMAGE_PRICES: &[(ImageSize, f64)] = &[
    (ImageSize::S1K, 0.134),
    (ImageSize::S2K, 0.134),
    (ImageSize::S4K, 0.24),
];

/// The image models media-gen knows, default first.
pub const IMAGE_MODELS: [ImageModelInfo; 4] = [
    ImageModelInfo {
        id: "gemini-3-pro-image-preview",
        aspect_ratios: &AspectRatio::STANDARD,
        image_sizes: &ALL_SIZES_BUT_512,
        max_reference_images: 14,
        price_per_image: GEMINI_3_PRO_IMAGE_PRICES,
    },
    ImageModelInfo {
        id: "gemini-2.5-flash-image",
        aspect_ratios: &AspectRatio::STANDARD,
        image_sizes: &[ImageSize::S1K],
        max_reference_images: 3,
        price_per_image: &[(ImageSize::S1K, 0.039)],
    },
    ImageModelInfo {
        id: "gemini-3.1-flash-image-preview",
        aspect_ratios: &AspectRatio::ALL,
        image_sizes: &ImageSize::ALL,
        max_reference_images: 14,
        price_per_image: &[
            (ImageSize::S512, 0.045),
            (ImageSize::S1K, 0.067),
            (ImageSize::S2K, 0.101),
            (ImageSize::S4K, 0.151),
        ],
    },
    ImageModelInfo {
        id: "gemini-3-pro-image",
        aspect_ratios: &AspectRatio::STANDARD,
        image_sizes: &ALL_SIZES_BUT_512,
        max_reference_images: 14,
        price_per_image: GEMINI_3_PRO_IMAGE_PRICES,
    },
];

/// Default image model when neither the call nor the config names one.
pub const DEFAULT_IMAGE_MODEL: &str = "gemini-3-pro-image-preview";

pub fn image_model(id: &str) -> Option<&'static ImageModelInfo> {
    IMAGE_MODELS.iter().find(|m| m.id == id)
}

pub fn image_model_ids() -> Vec<&'static str> {
    IMAGE_MODELS.iter().map(|m| m.id).collect()
}

/// Who serves a video model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoProvider {
    /// Veo through the Gemini API (`:predictLongRunning`).
    Gemini,
    /// CLIProxyAPI's OpenAI-style `/v1/videos`.
    CliProxy,
}

/// The optional inputs a video model takes besides the prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VideoExtras {
    /// A first frame (image-to-video).
    pub image: bool,
    /// A last frame to end on (interpolation).
    pub last_frame: bool,
    /// Most asset reference images (0: none).
    pub reference_images: u32,
    /// Extends a video it made earlier.
    pub extend: bool,
    pub negative_prompt: bool,
}

/// What one video model accepts.
#[derive(Debug, Clone, Copy)]
pub struct VideoModelInfo {
    pub id: &'static str,
    pub provider: VideoProvider,
    pub aspect_ratios: &'static [&'static str],
    /// Whole seconds the model can produce.
    pub durations: &'static [u32],
    /// Output resolutions, default first.
    pub resolutions: &'static [&'static str],
    /// Resolutions above 720p need the longest duration (Veo 3.x: 1080p and
    /// 4k only at 8 s).
    pub high_resolution_duration: Option<u32>,
    pub extras: VideoExtras,
    /// Seconds one extension adds (the output is the input plus these).
    pub extension_seconds: u32,
    /// Estimated USD per second of output video, by resolution (see
    /// [`PRICES_CHECKED`]); a resolution missing here has no price.
    pub price_per_second: &'static [(&'static str, f64)],
}

const VEO3_DURATIONS: [u32; 3] = [4, 6, 8];
const WIDE_TALL: [&str; 2] = ["16:9", "9:16"];
const VEO31_EXTRAS: VideoExtras = VideoExtras {
    image: true,
    last_frame: true,
    reference_images: 3,
    extend: true,
    negative_prompt: true,
};
const VEO_EXTRAS: VideoExtras = VideoExtras {
    image: true,
    last_frame: false,
    reference_images: 0,
    extend: false,
    negative_prompt: true,
};

/// The video models media-gen knows, default first.
pub const VIDEO_MODELS: [VideoModelInfo; 6] = [
    VideoModelInfo {
        id: "veo-3.1-generate-preview",
        provider: VideoProvider::Gemini,
        aspect_ratios: &WIDE_TALL,
        durations: &VEO3_DURATIONS,
        resolutions: &["720p", "1080p", "4k"],
        high_resolution_duration: Some(8),
        extras: VEO31_EXTRAS,
        extension_seconds: 7,
        price_per_second: &[("720p", 0.40), ("1080p", 0.40), ("4k", 0.60)],
    },
    VideoModelInfo {
        id: "veo-3.1-fast-generate-preview",
        provider: VideoProvider::Gemini,
        aspect_ratios: &WIDE_TALL,
        durations: &VEO3_DURATIONS,
        resolutions: &["720p", "1080p", "4k"],
        high_resolution_duration: Some(8),
        extras: VEO31_EXTRAS,
        extension_seconds: 7,
        price_per_second: &[("720p", 0.10), ("1080p", 0.12), ("4k", 0.30)],
    },
    VideoModelInfo {
        id: "veo-3.0-generate-001",
        provider: VideoProvider::Gemini,
        aspect_ratios: &WIDE_TALL,
        durations: &VEO3_DURATIONS,
        resolutions: &["720p", "1080p"],
        high_resolution_duration: Some(8),
        extras: VEO_EXTRAS,
        extension_seconds: 0,
        price_per_second: &[("720p", 0.40), ("1080p", 0.40)],
    },
    VideoModelInfo {
        id: "veo-3.0-fast-generate-001",
        provider: VideoProvider::Gemini,
        aspect_ratios: &WIDE_TALL,
        durations: &VEO3_DURATIONS,
        resolutions: &["720p", "1080p"],
        high_resolution_duration: Some(8),
        extras: VEO_EXTRAS,
        extension_seconds: 0,
        price_per_second: &[("720p", 0.15), ("1080p", 0.15)],
    },
    VideoModelInfo {
        id: "veo-2.0-generate-001",
        provider: VideoProvider::Gemini,
        aspect_ratios: &WIDE_TALL,
        durations: &[5, 6, 7, 8],
        resolutions: &["720p"],
        high_resolution_duration: None,
        extras: VEO_EXTRAS,
        extension_seconds: 0,
        price_per_second: &[("720p", 0.35)],
    },
    VideoModelInfo {
        id: "grok-imagine-video",
        provider: VideoProvider::CliProxy,
        aspect_ratios: &["16:9", "9:16", "1:1"],
        durations: &[6],
        resolutions: &["720p", "480p"],
        high_resolution_duration: None,
        extras: VideoExtras {
            image: true,
            last_frame: false,
            reference_images: 0,
            extend: false,
            negative_prompt: false,
        },
        extension_seconds: 0,
        price_per_second: &[],
    },
];

pub fn video_model(id: &str) -> Option<&'static VideoModelInfo> {
    VIDEO_MODELS.iter().find(|m| m.id == id)
}

pub fn video_model_ids() -> Vec<&'static str> {
    VIDEO_MODELS.iter().map(|m| m.id).collect()
}

/// Reads a duration as tools give it: `5s`, `5`, `5 s`, `8.0s`, `5 seconds`.
/// Whole or fractional seconds, 1 to 600.
pub fn parse_seconds(text: &str) -> Option<f64> {
    let t = text.trim().to_ascii_lowercase();
    let number = ["seconds", "second", "secs", "sec", "s"]
        .iter()
        .find_map(|u| t.strip_suffix(u))
        .unwrap_or(&t)
        .trim();
    let n: f64 = number.parse().ok()?;
    (n.is_finite() && (1.0..=600.0).contains(&n)).then_some(n)
}

impl VideoModelInfo {
    /// The durations this model makes at `resolution`.
    pub fn durations_at(&self, resolution: &str) -> Vec<u32> {
        match self.high_resolution_duration {
            Some(d) if resolution != "720p" && resolution != "480p" => vec![d],
            _ => self.durations.to_vec(),
        }
    }

    /// The length the model makes closest to `seconds` among `allowed`;
    /// ties go to the longer one (`5s` → 6 s on Veo 3.x).
    pub fn nearest_duration(allowed: &[u32], seconds: f64) -> u32 {
        allowed
            .iter()
            .copied()
            .min_by(|a, b| {
                let da = (f64::from(*a) - seconds).abs();
                let db = (f64::from(*b) - seconds).abs();
                da.total_cmp(&db).then(b.cmp(a))
            })
            .unwrap_or(8)
    }

    pub fn default_resolution(&self) -> &'static str {
        self.resolutions.first().copied().unwrap_or("720p")
    }
}

/// A value outside its allowed set; the message names the allowed values
/// (and the model whose set it is, when the set depends on the model).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{field}` = `{value}` is not supported{}; use one of: {}",
    model.map(|m| format!(" by `{m}`")).unwrap_or_default(),
    allowed.join(", ")
)]
pub struct InvalidValue {
    pub field: &'static str,
    pub value: String,
    pub allowed: Vec<String>,
    /// The model `allowed` belongs to.
    pub model: Option<&'static str>,
}

impl InvalidValue {
    pub fn new<I, S>(field: &'static str, value: &str, allowed: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            field,
            value: value.to_owned(),
            allowed: allowed.into_iter().map(Into::into).collect(),
            model: None,
        }
    }

    /// The allowed values are what model `id` takes.
    pub fn of_model(mut self, id: &'static str) -> Self {
        self.model = Some(id);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn video_durations_round_to_the_nearest_ties_up() {
        let veo3 = video_model("veo-3.1-generate-preview").unwrap();
        let at = |s: &str, res: &str| {
            VideoModelInfo::nearest_duration(&veo3.durations_at(res), parse_seconds(s).unwrap())
        };
        // The seed's values: 5s ties between 4 and 6 → 6; 10s and 15s → 8.
        assert_eq!(at("5s", "720p"), 6);
        assert_eq!(at("10s", "720p"), 8);
        assert_eq!(at("15s", "720p"), 8);
        assert_eq!(at("4", "720p"), 4);
        assert_eq!(at("7 s", "720p"), 8);
        assert_eq!(at("3s", "720p"), 4);
        // 1080p and 4k only at 8 s.
        assert_eq!(at("4s", "1080p"), 8);
        assert_eq!(at("4s", "4k"), 8);
        let veo2 = video_model("veo-2.0-generate-001").unwrap();
        let v2 = |s: &str| {
            VideoModelInfo::nearest_duration(&veo2.durations_at("720p"), parse_seconds(s).unwrap())
        };
        assert_eq!((v2("5s"), v2("10s"), v2("6.5s")), (5, 8, 7));
        assert_eq!(parse_seconds("0s"), None);
        assert_eq!(parse_seconds("five"), None);
        assert_eq!(parse_seconds("8 seconds"), Some(8.0));
    }

    #[test]
    fn video_registry_extras() {
        for m in &VIDEO_MODELS {
            assert!(
                !m.durations.is_empty() && !m.resolutions.is_empty(),
                "{}",
                m.id
            );
            if m.provider == VideoProvider::Gemini {
                assert!(
                    !m.aspect_ratios.contains(&"1:1"),
                    "Veo makes no 1:1: {}",
                    m.id
                );
            }
            assert_eq!(m.extras.extend, m.extension_seconds > 0, "{}", m.id);
        }
        assert!(
            video_model("veo-3.1-generate-preview")
                .unwrap()
                .resolutions
                .contains(&"4k")
        );
        assert!(
            !video_model("veo-3.0-generate-001")
                .unwrap()
                .resolutions
                .contains(&"4k")
        );
        assert_eq!(
            video_model("veo-3.1-fast-generate-preview")
                .unwrap()
                .extras
                .reference_images,
            3
        );
        assert!(
            !video_model("veo-2.0-generate-001")
                .unwrap()
                .extras
                .last_frame
        );
    }

    #[test]
    fn size_table_matches_gemini() {
        use AspectRatio::*;
        use ImageSize::*;
        let cases = [
            (Square, S1K, (1024, 1024)),
            (R2x3, S1K, (848, 1264)),
            (R3x2, S1K, (1264, 848)),
            (R3x4, S1K, (896, 1200)),
            (R4x3, S1K, (1200, 896)),
            (R4x5, S1K, (928, 1152)),
            (R5x4, S1K, (1152, 928)),
            (R9x16, S1K, (768, 1376)),
            (R16x9, S1K, (1376, 768)),
            (R21x9, S1K, (1584, 672)),
            (R16x9, S2K, (2752, 1536)),
            (R16x9, S4K, (5504, 3072)),
            (Square, S4K, (4096, 4096)),
            (Square, S512, (512, 512)),
        ];
        for (r, s, want) in cases {
            assert_eq!(output_dimensions(r, s), want, "{r} {s}");
        }
    }

    #[test]
    fn parse_accepts_lowercase_size_and_rejects_unknown_ratio() {
        assert_eq!("2k".parse::<ImageSize>().unwrap(), ImageSize::S2K);
        assert_eq!("16:9".parse::<AspectRatio>().unwrap(), AspectRatio::R16x9);
        let err = "16:10".parse::<AspectRatio>().unwrap_err();
        assert!(err.to_string().contains("16:9"), "{err}");
        assert!(err.to_string().contains("`16:10`"), "{err}");
    }

    #[test]
    fn serde_names_match_display() {
        for r in AspectRatio::ALL {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        for s in ImageSize::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.as_str());
        }
    }

    #[test]
    fn nearest_ratio_and_covering_size() {
        let pro = image_model(DEFAULT_IMAGE_MODEL).unwrap();
        assert_eq!(pro.nearest_ratio(1024, 1024), AspectRatio::Square);
        assert_eq!(pro.nearest_ratio(1280, 1024), AspectRatio::R5x4);
        assert_eq!(pro.nearest_ratio(1920, 1080), AspectRatio::R16x9);
        assert_eq!(pro.nearest_ratio(4000, 1000), AspectRatio::R21x9);
        let flash = image_model("gemini-3.1-flash-image-preview").unwrap();
        assert_eq!(flash.nearest_ratio(4000, 1000), AspectRatio::R4x1);
        assert_eq!(
            pro.covering_size(AspectRatio::Square, 1000, 1000),
            ImageSize::S1K
        );
        assert_eq!(
            pro.covering_size(AspectRatio::Square, 1025, 900),
            ImageSize::S2K
        );
        assert_eq!(
            pro.covering_size(AspectRatio::Square, 9000, 9000),
            ImageSize::S4K
        );
        assert_eq!(
            flash.covering_size(AspectRatio::Square, 300, 300),
            ImageSize::S512
        );
    }

    #[test]
    fn a_refused_ratio_lists_only_what_the_model_makes() {
        let pro = image_model(DEFAULT_IMAGE_MODEL).unwrap();
        for asked in ["7:5", "1:8"] {
            let e = pro.aspect_ratio(asked).unwrap_err();
            assert_eq!(e.allowed.len(), pro.aspect_ratios.len(), "{asked}");
            assert!(!e.allowed.contains(&"1:8".to_owned()), "{asked}: {e}");
            assert!(e.to_string().contains(DEFAULT_IMAGE_MODEL), "{e}");
        }
        let flash = image_model("gemini-3.1-flash-image-preview").unwrap();
        assert_eq!(flash.aspect_ratio(" 1:8 ").unwrap(), AspectRatio::R1x8);
        assert!(
            flash
                .aspect_ratio("7:5")
                .unwrap_err()
                .allowed
                .contains(&"1:8".to_owned())
        );
        let e = pro.image_size("512").unwrap_err();
        assert_eq!(e.allowed, ["1K", "2K", "4K"]);
        assert_eq!(pro.image_size("2k").unwrap(), ImageSize::S2K);
    }

    #[test]
    fn registry_default_is_first() {
        assert_eq!(IMAGE_MODELS[0].id, DEFAULT_IMAGE_MODEL);
        assert!(image_model("gemini-2.5-flash-image").is_some());
        assert!(image_model("dall-e-3").is_none());
    }
}
