//! Strings a client or a backend sends that name things: data URLs and
//! their base64, library file names (bare or `media://files/…`), job ids,
//! outpaint directions. None may panic; a name that is accepted is a single
//! safe path component.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_gen::fuzzing;
use media_gen::media::canvas::Direction;
use media_gen::service::parse_filename;
use media_gen::store::{JobId, MediaId};

fuzz_target!(|text: &str| {
    if let Some((mime, payload)) = fuzzing::split_data_url(text) {
        assert!(!mime.is_empty());
        assert!(text.ends_with(payload));
        let _ = fuzzing::decode_base64(payload);
    }
    let _ = fuzzing::decode_base64(text);
    for parsed in [text.parse::<MediaId>().ok(), parse_filename(text).ok()]
        .into_iter()
        .flatten()
    {
        let name = parsed.as_str();
        assert!(!name.is_empty() && name.len() <= 255);
        assert!(!name.contains(['/', '\\', '\0']) && !name.contains(".."));
        assert!(!name.starts_with('.'));
        assert_eq!(
            std::path::Path::new(name).components().count(),
            1,
            "{name:?} is one path component"
        );
    }
    let _ = text.parse::<JobId>();
    let _ = text.parse::<Direction>();
});
