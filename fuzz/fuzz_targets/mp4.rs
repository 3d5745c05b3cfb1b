//! Video bytes from a backend: the MP4 box reader (size, duration, frame
//! count) and the frame decoder behind contact sheets. None may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_gen::media::video::{frames, is_mp4, probe_mp4};

fuzz_target!(
    init: {
        // The reader turns a panic inside re_mp4 into an error on purpose
        // (catch_unwind); libfuzzer-sys's hook would abort on it first. A
        // panic that escapes the target still aborts (libfuzzer-sys catches
        // it around each run) and is reported as a crash.
        std::panic::set_hook(Box::new(|_| {}));
    },
    |bytes: &[u8]| {
    if !is_mp4(bytes) {
        assert!(probe_mp4(bytes).is_err());
        return;
    }
    if let Ok(info) = probe_mp4(bytes) {
        assert!(info.width > 0 && info.height > 0);
        // Decoding is the expensive part: only for small pictures.
        if u64::from(info.width) * u64::from(info.height) <= 1 << 16 {
            let _ = frames(bytes, 2);
        }
    }
    }
);
