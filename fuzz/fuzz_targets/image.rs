//! Image bytes from a client or a backend: the header probe, the
//! completeness check, decoding within (small) limits, and a mask read
//! from what decoded. None may panic; limits hold.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_gen::media::input::{InputLimits, decode_input};
use media_gen::media::mask::Mask;
use media_gen::media::{check_complete, probe};

fuzz_target!(|bytes: &[u8]| {
    let Ok(info) = probe(bytes) else {
        return;
    };
    assert!(info.width > 0 && info.height > 0);
    let _ = check_complete(bytes, &info);
    // Small limits keep each run fast; the header decides before decoding.
    let limits = InputLimits {
        max_bytes: 1 << 20,
        max_pixels: 1 << 16,
    };
    if let Ok(decoded) = decode_input(bytes, &limits) {
        let (w, h) = (decoded.image.width(), decoded.image.height());
        assert!(u64::from(w) * u64::from(h) <= limits.max_pixels);
        let mask = Mask::from_image(&decoded.image);
        let _ = mask.clone().scaled(w.div_ceil(2), h.div_ceil(2));
        let _ = mask.weights(3);
    }
});
