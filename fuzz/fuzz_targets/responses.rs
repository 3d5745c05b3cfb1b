//! Every reader of a backend's answer, fed the same bytes: the image
//! routes (chat completions, generateContent), the video operations (Veo,
//! OpenAI-style videos), error bodies with every status class, and model
//! lists. None may panic; an image that parses carries decoded bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use media_gen::fuzzing;

fuzz_target!(|body: &[u8]| {
    for parsed in [
        fuzzing::chat_completion(body),
        fuzzing::generate_content(body),
    ] {
        if let Ok(image) = parsed {
            assert!(!image.mime_type.is_empty());
            assert_eq!(image.attempts, 1);
        }
    }
    let _ = fuzzing::veo_operation(body);
    let _ = fuzzing::openai_video(body);
    let _ = fuzzing::model_list(body);
    for status in [400, 401, 404, 429, 500] {
        let e = fuzzing::error_response(status, None, body);
        // Messages reach users: they must format, and redact cleanly.
        let _ = fuzzing::redact(&e.to_string(), Some("sk-secret"));
        let _ = e.is_retryable();
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = fuzzing::redact(text, Some(text.get(..8).unwrap_or(text)));
    }
});
