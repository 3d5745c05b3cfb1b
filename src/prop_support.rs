//! Shared pieces of the property tests (`mod prop` beside the code they
//! test): a modest case count, so the whole set stays well under a minute,
//! and strategies for hostile input.

use proptest::prelude::*;
use proptest::test_runner::Config;

/// `cases` cases, no regression files written into the source tree (a
/// failure found here becomes a named unit test instead).
pub fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

/// Any JSON value, a few levels deep, with keys the parsers look for mixed
/// in with arbitrary ones so the interesting branches are reached.
pub fn json() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let key = prop_oneof![
        Just("choices".to_owned()),
        Just("message".to_owned()),
        Just("images".to_owned()),
        Just("image_url".to_owned()),
        Just("url".to_owned()),
        Just("content".to_owned()),
        Just("finish_reason".to_owned()),
        Just("thought".to_owned()),
        Just("candidates".to_owned()),
        Just("parts".to_owned()),
        Just("inlineData".to_owned()),
        Just("data".to_owned()),
        Just("mimeType".to_owned()),
        Just("done".to_owned()),
        Just("error".to_owned()),
        Just("response".to_owned()),
        Just("generateVideoResponse".to_owned()),
        Just("generatedSamples".to_owned()),
        Just("video".to_owned()),
        Just("uri".to_owned()),
        Just("encodedVideo".to_owned()),
        Just("metadata".to_owned()),
        Just("progressPercent".to_owned()),
        Just("status".to_owned()),
        Just("progress".to_owned()),
        Just("code".to_owned()),
        Just("details".to_owned()),
        Just("retryDelay".to_owned()),
        Just("reason".to_owned()),
        "[a-zA-Z_]{0,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON numbers are finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
        prop_oneof![
            Just("data:image/png;base64,iVBORw0KGgo=".to_owned()),
            Just("1e300s".to_owned()),
            Just("STOP".to_owned()),
            Just("IMAGE_SAFETY".to_owned()),
            Just("completed".to_owned()),
            Just("failed".to_owned()),
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}
