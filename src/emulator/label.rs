//! The band every emulator picture carries, so that a demo image is never
//! taken for a model's: "media-gen emulator" and the prompt it was asked
//! for, in a public-domain 8×8 bitmap font (`font8x8`; ASCII and Latin-1,
//! a replacement glyph for anything else), white on a darkened strip along
//! the bottom of an area.
//!
//! Glyphs are scaled by whole pixels with the picture's long side (one font
//! pixel per 512 image pixels), so the text is as readable in the 512 px
//! preview as in the full picture: 16 px glyphs at 1K, 64–80 px at 4K. A prompt
//! too long for the band keeps its beginning and its end with "…" between:
//! media-gen puts the caller's words last in an edit's instruction, and a
//! generation prompt is recognised by its opening words.

use font8x8::legacy::{BASIC_LEGACY, LATIN_LEGACY};

/// The first line of every label.
pub const TITLE: &str = "media-gen emulator";
/// Image pixels per font pixel: one per this much of the long side.
const PIXELS_PER_UNIT: u32 = 512;
/// A line's height and the band's margin, in font pixels.
const LINE: u32 = 10;
const MARGIN: u32 = 4;
/// Lines of prompt at most; the band takes at most a third of its area.
const PROMPT_LINES: usize = 3;
/// The title's colour (the emulator's mark) and the prompt's.
pub const TITLE_COLOUR: [u8; 3] = [255, 214, 10];
pub const TEXT_COLOUR: [u8; 3] = [255, 255, 255];

/// "…", three dots on the baseline.
const ELLIPSIS: [u8; 8] = [0, 0, 0, 0, 0, 0x49, 0x49, 0];
/// A character the font lacks: a '?' cut out of a 7×7 block.
const REPLACEMENT: [u8; 8] = {
    let q = BASIC_LEGACY['?' as usize];
    let mut g = [0u8; 8];
    let mut row = 0;
    while row < 7 {
        g[row] = !q[row] & 0x7f;
        row += 1;
    }
    g
};

/// A rectangle of the canvas, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Area {
    pub x: u32,
    pub y: u32,
    pub width: u32,
    pub height: u32,
}

impl Area {
    /// The whole of a `width`×`height` canvas.
    pub fn whole(width: u32, height: u32) -> Self {
        Self {
            x: 0,
            y: 0,
            width,
            height,
        }
    }
}

/// The 8×8 bitmap of `c` (row by row, bit 0 the leftmost pixel).
pub fn glyph(c: char) -> [u8; 8] {
    // Typographic punctuation as the ASCII it stands for.
    let c = match c {
        '\u{2018}' | '\u{2019}' => '\'',
        '\u{201c}' | '\u{201d}' => '"',
        '\u{2013}' | '\u{2014}' => '-',
        c => c,
    };
    match u32::from(c) {
        n @ 0x20..=0x7e => BASIC_LEGACY[n as usize],
        n @ 0xa0..=0xff => LATIN_LEGACY[(n - 0xa0) as usize],
        0x2026 => ELLIPSIS,
        _ => REPLACEMENT,
    }
}

/// Where the text goes: whole image pixels per font pixel and the lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub scale: u32,
    /// The title's lines first (one unless the area is narrow), then the
    /// prompt's.
    pub lines: Vec<Vec<char>>,
    pub title_lines: usize,
}

impl Layout {
    /// The band's height in pixels.
    pub fn height(&self) -> u32 {
        (self.lines.len() as u32 * LINE + 2 * MARGIN) * self.scale
    }

    /// The top-left pixel of `line`'s first glyph, relative to the band.
    pub fn origin(&self, line: usize) -> (u32, u32) {
        (
            MARGIN * self.scale,
            (MARGIN + line as u32 * LINE) * self.scale,
        )
    }
}

/// The label for `prompt` in `area` of a canvas whose long side is
/// `long_side`, or `None` when not even one line of the title fits.
pub fn layout(long_side: u32, area: Area, prompt: &str) -> Option<Layout> {
    // As large as the picture asks, but the title on one line if it can be.
    let title_units = TITLE.len() as u32 * 8 + 2 * MARGIN;
    let scale = (long_side / PIXELS_PER_UNIT)
        .min(area.width / title_units)
        .max(1);
    let cols = (area.width / scale).saturating_sub(2 * MARGIN) as usize / 8;
    let rows = ((area.height / 3 / scale).saturating_sub(2 * MARGIN) / LINE) as usize;
    if cols == 0 || rows == 0 {
        return None;
    }
    let mut lines = wrap(TITLE.split(' '), cols);
    lines.truncate(rows);
    let title_lines = lines.len();
    let room = rows.saturating_sub(title_lines).min(PROMPT_LINES);
    lines.extend(fit(prompt, cols, room));
    Some(Layout {
        scale,
        lines,
        title_lines,
    })
}

/// `text` word-wrapped to `cols` in at most `rows` lines; when it needs
/// more, its first lines and its last, "…" between.
fn fit(text: &str, cols: usize, rows: usize) -> Vec<Vec<char>> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let all = wrap(words.iter().copied(), cols);
    if all.len() <= rows {
        return all;
    }
    if rows == 0 {
        return Vec::new();
    }
    let head_rows = rows.div_ceil(2);
    let mut head = all;
    head.truncate(head_rows);
    if let Some(last) = head.last_mut() {
        last.truncate(cols - 1);
        while last.last() == Some(&' ') {
            last.pop();
        }
        last.push('…');
    }
    let tail_rows = rows - head_rows;
    if tail_rows > 0 {
        // As many of the last words as fit, hard-broken if one is too long.
        let mut tail = Vec::new();
        for start in (0..words.len()).rev() {
            let mut candidate = words[start..].to_vec();
            candidate.insert(0, "…");
            let lines = wrap(candidate.iter().copied(), cols);
            if lines.len() > tail_rows {
                break;
            }
            tail = lines;
        }
        if tail.is_empty() {
            let last: Vec<char> = text.trim_end().chars().collect();
            let keep = last.len().min(cols - 1);
            let mut line = vec!['…'];
            line.extend_from_slice(&last[last.len() - keep..]);
            tail.push(line);
        }
        head.extend(tail);
    }
    head
}

/// Words in lines of at most `cols` characters; a longer word is broken.
fn wrap<'a>(words: impl Iterator<Item = &'a str>, cols: usize) -> Vec<Vec<char>> {
    let mut lines: Vec<Vec<char>> = Vec::new();
    let mut line: Vec<char> = Vec::new();
    for word in words {
        let word: Vec<char> = word.chars().collect();
        if word.is_empty() {
            continue;
        }
        if !line.is_empty() && line.len() + 1 + word.len() <= cols {
            line.push(' ');
            line.extend_from_slice(&word);
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        let mut chunks = word.chunks(cols).peekable();
        while let Some(chunk) = chunks.next() {
            if chunks.peek().is_some() {
                lines.push(chunk.to_vec());
            } else {
                line = chunk.to_vec();
            }
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Draws the label for `prompt` along the bottom of `area` of an RGB8
/// canvas of `width`×`height` (rows of `width`×3 bytes). The band darkens
/// what is under it to a quarter; nothing outside `area` is touched.
pub fn draw(buf: &mut [u8], width: u32, height: u32, area: Area, prompt: &str) {
    let area = clip(area, width, height);
    let Some(layout) = layout(width.max(height), area, prompt) else {
        return;
    };
    let band_h = layout.height().min(area.height);
    let top = area.y + area.height - band_h;
    let stride = width as usize * 3;
    let (x0, x1) = (area.x as usize * 3, (area.x + area.width) as usize * 3);
    for y in top..top + band_h {
        let row = &mut buf[y as usize * stride..][x0..x1];
        for v in row {
            *v >>= 2;
        }
    }
    let s = layout.scale;
    for (i, line) in layout.lines.iter().enumerate() {
        let colour = if i < layout.title_lines {
            TITLE_COLOUR
        } else {
            TEXT_COLOUR
        };
        let (ox, oy) = layout.origin(i);
        for (col, &c) in line.iter().enumerate() {
            let gx = area.x + ox + col as u32 * 8 * s;
            let gy = top + oy;
            for (r, bits) in glyph(c).into_iter().enumerate() {
                for b in (0..8).filter(|b| (bits >> b) & 1 == 1) {
                    let px0 = gx + b * s;
                    let px1 = (px0 + s).min(area.x + area.width);
                    for y in gy + r as u32 * s..(gy + (r as u32 + 1) * s).min(top + band_h) {
                        let row = &mut buf[y as usize * stride..];
                        for x in px0..px1 {
                            let i = x as usize * 3;
                            row[i..i + 3].copy_from_slice(&colour);
                        }
                    }
                }
            }
        }
    }
}

/// `area` cut to the canvas.
fn clip(area: Area, width: u32, height: u32) -> Area {
    let x = area.x.min(width);
    let y = area.y.min(height);
    Area {
        x,
        y,
        width: area.width.min(width - x),
        height: area.height.min(height - y),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The text of one line of a drawn label, read back by matching each
    /// cell against the font (`?` where nothing matches).
    pub(crate) fn read_line(
        img: &image::RgbImage,
        (x, y): (u32, u32),
        scale: u32,
        colour: [u8; 3],
        cells: usize,
    ) -> String {
        let known = (0x20u32..0x7f)
            .chain(0xa1..=0xff)
            .filter_map(char::from_u32)
            .chain(['…', '\u{fffd}']);
        let font: Vec<(char, [u8; 8])> = known.map(|c| (c, glyph(c))).collect();
        (0..cells as u32)
            .map(|cell| {
                let mut bits = [0u8; 8];
                for (r, row) in bits.iter_mut().enumerate() {
                    for b in 0..8 {
                        let px = img.get_pixel(
                            x + (cell * 8 + b) * scale + scale / 2,
                            y + r as u32 * scale + scale / 2,
                        );
                        if px.0 == colour {
                            *row |= 1 << b;
                        }
                    }
                }
                font.iter()
                    .find(|(_, g)| *g == bits)
                    .map_or('?', |(c, _)| *c)
            })
            .collect::<String>()
            .trim_end()
            .to_owned()
    }

    fn canvas(w: u32, h: u32) -> image::RgbImage {
        image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x % 200) as u8, (y % 180) as u8, 90])
        })
    }

    fn drawn(w: u32, h: u32, area: Area, prompt: &str) -> image::RgbImage {
        let mut img = canvas(w, h);
        draw(&mut img, w, h, area, prompt);
        img
    }

    /// Reads every line of the label drawn at the bottom of `area`.
    fn read(img: &image::RgbImage, area: Area, prompt: &str) -> (Layout, Vec<String>) {
        let l = layout(img.width().max(img.height()), area, prompt).unwrap();
        let top = area.y + area.height - l.height();
        let cols = ((area.width / l.scale - 2 * MARGIN) / 8) as usize;
        let text = (0..l.lines.len())
            .map(|i| {
                let (ox, oy) = l.origin(i);
                let colour = if i < l.title_lines {
                    TITLE_COLOUR
                } else {
                    TEXT_COLOUR
                };
                read_line(img, (area.x + ox, top + oy), l.scale, colour, cols)
            })
            .collect();
        (l, text)
    }

    #[test]
    fn the_label_reads_back_at_1k_and_4k() {
        // 1K and 4K at 16:9, 1K at 9:16.
        for (w, h, scale) in [(1376, 768, 2), (5504, 3072, 10), (768, 1376, 2)] {
            let area = Area::whole(w, h);
            let before = canvas(w, h);
            let mut img = before.clone();
            draw(&mut img, w, h, area, "a lighthouse at dusk");
            let (l, text) = read(&img, area, "a lighthouse at dusk");
            assert_eq!(l.scale, scale, "{w}×{h}");
            assert_eq!(text, ["media-gen emulator", "a lighthouse at dusk"]);
            // The band is two lines and margins, at the very bottom.
            assert_eq!(l.height(), (2 * LINE + 2 * MARGIN) * scale);
            let band_top = h - l.height();
            let under = before.get_pixel(1, band_top).0;
            assert_eq!(img.get_pixel(1, band_top).0, under.map(|v| v >> 2));
            assert_eq!(
                img.get_pixel(1, band_top - 1),
                before.get_pixel(1, band_top - 1),
                "above the band is untouched"
            );
        }
    }

    #[test]
    fn long_prompts_keep_their_beginning_and_end() {
        let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
        let prompt = words.join(" ");
        let area = Area::whole(1024, 1024);
        let img = drawn(1024, 1024, area, &prompt);
        let (l, text) = read(&img, area, &prompt);
        assert_eq!(l.lines.len(), 1 + PROMPT_LINES);
        assert!(text[1].starts_with("w0 w1 w2"), "{text:?}");
        assert!(text[2].ends_with('…'), "{text:?}");
        assert!(
            text[3].starts_with('…') && text[3].ends_with("w198 w199"),
            "{text:?}"
        );
        // Every line fits the width.
        let cols = ((1024 / l.scale - 2 * MARGIN) / 8) as usize;
        assert!(l.lines.iter().all(|line| line.len() <= cols));
        // One word longer than the band is broken, not lost.
        let long = "x".repeat(500);
        let l = layout(1024, area, &long).unwrap();
        assert_eq!(l.lines.len(), 1 + PROMPT_LINES);
        assert_eq!(l.lines[3].last(), Some(&'x'));
    }

    #[test]
    fn other_scripts_get_a_replacement_glyph() {
        let prompt = "un café “quiet” 東京の夜 🚀\u{301}";
        let area = Area::whole(1024, 576);
        let img = drawn(1024, 576, area, prompt);
        let (_, text) = read(&img, area, prompt);
        assert_eq!(
            text[1],
            "un café \"quiet\" \u{fffd}\u{fffd}\u{fffd}\u{fffd} \u{fffd}\u{fffd}"
        );
        assert_ne!(glyph('東'), glyph(' '));
    }

    #[test]
    fn an_area_too_small_gets_no_label_and_a_narrow_one_a_wrapped_title() {
        assert_eq!(layout(40, Area::whole(40, 40), "x"), None);
        let before = canvas(60, 50);
        assert_eq!(drawn(60, 50, Area::whole(60, 50), "x"), before);
        let l = layout(600, Area::whole(60, 600), "a b").unwrap();
        assert_eq!(l.scale, 1);
        let text: Vec<String> = l.lines.iter().map(|c| c.iter().collect()).collect();
        assert_eq!(text, ["media-", "gen", "emulat", "or", "a b"]);
    }

    #[test]
    fn only_the_area_is_touched() {
        let area = Area {
            x: 300,
            y: 100,
            width: 400,
            height: 300,
        };
        let img = drawn(1024, 1024, area, "a red door");
        let before = canvas(1024, 1024);
        for (x, y, p) in img.enumerate_pixels() {
            let inside = (300..700).contains(&x) && (100..400).contains(&y);
            if !inside {
                assert_eq!(p, before.get_pixel(x, y), "({x},{y})");
            }
        }
        let (_, text) = read(&img, area, "a red door");
        assert_eq!(text, ["media-gen emulator", "a red door"]);
    }
}
