//! Input as tools and the CLI receive it (strings, optional fields), parsed
//! once into specs with the defaults applied. Tools and the CLI pass input
//! through unchanged; nothing above the service knows a default.

use super::{Service, ServiceError};
use crate::domain::{self, AspectRatio, ImageModelInfo, ImageSize, InvalidValue};
use crate::store::{ListQuery, MediaId, MediaKind, SortBy};

/// Longest prompt accepted (Gemini's own limit is far above what is useful).
pub const MAX_PROMPT_CHARS: usize = 32_000;
/// Most prompts in one batch.
pub const MAX_BATCH: usize = 64;
/// Most entries one listing returns.
pub const MAX_LIST_LIMIT: u32 = 1000;

/// Generation parameters as they arrive.
#[derive(Debug, Clone, Default)]
pub struct GenerateInput {
    pub prompt: String,
    pub model: Option<String>,
    pub aspect_ratio: Option<String>,
    pub image_size: Option<String>,
    /// Images sent with the prompt (file names, URIs or paths).
    pub reference_images: Vec<String>,
}

/// A batch as it arrives: several prompts, shared parameters.
#[derive(Debug, Clone, Default)]
pub struct BatchInput {
    pub prompts: Vec<String>,
    pub model: Option<String>,
    pub aspect_ratio: Option<String>,
    pub image_size: Option<String>,
    /// Sent with every prompt.
    pub reference_images: Vec<String>,
}

/// A listing request as it arrives.
#[derive(Debug, Clone, Default)]
pub struct ListInput {
    /// `image`, `video` or `all`.
    pub kind: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    /// `date`, `size` or `name`.
    pub sort_by: Option<String>,
    /// `asc` or `desc`; the default depends on `sort_by`.
    pub order: Option<String>,
    /// Substring of the prompt.
    pub query: Option<String>,
}

/// A validated image-generation request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenerateSpec {
    pub prompt: String,
    pub model: &'static str,
    pub aspect_ratio: AspectRatio,
    pub image_size: ImageSize,
}

impl Service {
    /// Checks generation parameters before anything is sent to a backend.
    pub fn parse_generate(&self, input: &GenerateInput) -> Result<GenerateSpec, ServiceError> {
        parse_generate(input, self.generation.default_model)
    }

    /// Checks a batch: the shared parameters and the number of prompts fail
    /// the whole call; a bad prompt fails only its own entry.
    pub(super) fn parse_batch(
        &self,
        input: &BatchInput,
    ) -> Result<Vec<Result<GenerateSpec, ServiceError>>, ServiceError> {
        if input.prompts.is_empty() || input.prompts.len() > MAX_BATCH {
            return Err(ServiceError::BatchSize {
                count: input.prompts.len(),
            });
        }
        let shared = |prompt: &str| GenerateInput {
            prompt: prompt.to_owned(),
            model: input.model.clone(),
            aspect_ratio: input.aspect_ratio.clone(),
            image_size: input.image_size.clone(),
            reference_images: Vec::new(),
        };
        self.parse_generate(&shared("-"))?;
        Ok(input
            .prompts
            .iter()
            .map(|p| self.parse_generate(&shared(p)))
            .collect())
    }
}

/// A prompt, trimmed: not empty, not too long.
pub fn parse_prompt(prompt: &str) -> Result<String, ServiceError> {
    let prompt = prompt.trim();
    if prompt.is_empty() {
        return Err(ServiceError::EmptyPrompt);
    }
    let chars = prompt.chars().count();
    if chars > MAX_PROMPT_CHARS {
        return Err(ServiceError::PromptTooLong { chars });
    }
    Ok(prompt.to_owned())
}

/// The image model a call names, or `default_model`.
pub fn parse_model(
    model: Option<&str>,
    default_model: &'static str,
) -> Result<&'static ImageModelInfo, ServiceError> {
    match model.map(str::trim) {
        None | Some("") => domain::image_model(default_model),
        Some(m) => domain::image_model(m),
    }
    .ok_or_else(|| ServiceError::UnknownModel {
        model: model.unwrap_or_default().to_owned(),
    })
}

/// Parses generation parameters with `default_model` for a call that names none.
pub fn parse_generate(
    input: &GenerateInput,
    default_model: &'static str,
) -> Result<GenerateSpec, ServiceError> {
    let prompt = parse_prompt(&input.prompt)?;
    let model = parse_model(input.model.as_deref(), default_model)?;
    let aspect_ratio = match input.aspect_ratio.as_deref() {
        None => AspectRatio::Square,
        Some(s) => model
            .aspect_ratio(s)
            .map_err(ServiceError::InvalidParameter)?,
    };
    let image_size = match input.image_size.as_deref() {
        None => ImageSize::S1K,
        Some(s) => model
            .image_size(s)
            .map_err(ServiceError::InvalidParameter)?,
    };
    Ok(GenerateSpec {
        prompt,
        model: model.id,
        aspect_ratio,
        image_size,
    })
}

/// `image`, `video` or `all` (also `images`, `videos`, empty).
pub fn parse_kind(field: &'static str, v: Option<&str>) -> Result<Option<MediaKind>, ServiceError> {
    match v.map(|s| s.trim().to_ascii_lowercase()).as_deref() {
        None | Some("all") | Some("") => Ok(None),
        Some("image") | Some("images") => Ok(Some(MediaKind::Image)),
        Some("video") | Some("videos") => Ok(Some(MediaKind::Video)),
        Some(other) => Err(ServiceError::InvalidParameter(InvalidValue::new(
            field,
            other,
            ["image", "video", "all"],
        ))),
    }
}

/// A listing request, checked.
pub fn parse_list(p: &ListInput) -> Result<ListQuery, ServiceError> {
    let bad = |field: &'static str, message: String| ServiceError::BadParameter { field, message };
    let kind = parse_kind("type", p.kind.as_deref())?;
    let limit = match p.limit {
        None => 20,
        Some(n) if (1..=i64::from(MAX_LIST_LIMIT)).contains(&n) => n as u32,
        Some(n) => {
            return Err(bad(
                "limit",
                format!("`limit` = `{n}`; use 1 to {MAX_LIST_LIMIT}"),
            ));
        }
    };
    let offset = match p.offset {
        None => 0,
        Some(n) if n >= 0 => n as u64,
        Some(n) => return Err(bad("offset", format!("`offset` = `{n}`; use 0 or more"))),
    };
    let sort = match p.sort_by.as_deref().map(str::trim) {
        None | Some("date") | Some("") => SortBy::Date,
        Some("size") => SortBy::Size,
        Some("name") => SortBy::Name,
        Some(other) => {
            return Err(ServiceError::InvalidParameter(InvalidValue::new(
                "sort_by",
                other,
                ["date", "size", "name"],
            )));
        }
    };
    let descending = match p.order.as_deref().map(str::trim) {
        None | Some("") => sort != SortBy::Name,
        Some("desc") => true,
        Some("asc") => false,
        Some(other) => {
            return Err(ServiceError::InvalidParameter(InvalidValue::new(
                "order",
                other,
                ["asc", "desc"],
            )));
        }
    };
    Ok(ListQuery {
        kind,
        sort,
        descending,
        limit,
        offset,
        text: p.query.clone().filter(|q| !q.trim().is_empty()),
    })
}

/// Parses a `filename` argument: a bare name, or a `media://files/NAME` URI.
pub fn parse_filename(raw: &str) -> Result<MediaId, ServiceError> {
    let name = raw.trim();
    let name = name.strip_prefix("media://files/").unwrap_or(name);
    name.parse().map_err(ServiceError::InvalidFilename)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::ErrorCode;

    fn input(prompt: &str) -> GenerateInput {
        GenerateInput {
            prompt: prompt.into(),
            ..Default::default()
        }
    }

    #[test]
    fn validation_defaults_and_errors() {
        let spec = parse_generate(&input("  a cat  "), domain::DEFAULT_IMAGE_MODEL).unwrap();
        assert_eq!(spec.prompt, "a cat");
        assert_eq!(spec.aspect_ratio, AspectRatio::Square);
        assert_eq!(spec.image_size, ImageSize::S1K);
        assert_eq!(spec.model, "gemini-3-pro-image-preview");

        for p in ["", "   ", "\n\t"] {
            let e = parse_generate(&input(p), domain::DEFAULT_IMAGE_MODEL).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidPrompt);
        }
        let mut i = input("x");
        i.aspect_ratio = Some("7:3".into());
        let e = parse_generate(&i, domain::DEFAULT_IMAGE_MODEL).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter);
        assert!(e.message().contains("16:9"), "{}", e.message());

        let mut i = input("x");
        i.model = Some("dall-e-3".into());
        let e = parse_generate(&i, domain::DEFAULT_IMAGE_MODEL).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidModel);
        assert!(e.message().contains("gemini-2.5-flash-image"));

        // 2.5 Flash is 1K only: 4K is refused, naming what it supports.
        let mut i = input("x");
        i.model = Some("gemini-2.5-flash-image".into());
        i.image_size = Some("4K".into());
        let e = parse_generate(&i, domain::DEFAULT_IMAGE_MODEL).unwrap_err();
        assert_eq!(e.code(), ErrorCode::InvalidParameter);
        assert!(
            e.message()
                .ends_with("by `gemini-2.5-flash-image`; use one of: 1K"),
            "{}",
            e.message()
        );

        // Extreme ratios are 3.1 Flash only.
        let mut i = input("x");
        i.aspect_ratio = Some("8:1".into());
        assert!(parse_generate(&i, domain::DEFAULT_IMAGE_MODEL).is_err());
        i.model = Some("gemini-3.1-flash-image-preview".into());
        assert!(parse_generate(&i, domain::DEFAULT_IMAGE_MODEL).is_ok());

        // The configured default applies when the call names no model.
        let spec = parse_generate(&input("x"), "gemini-2.5-flash-image").unwrap();
        assert_eq!(spec.model, "gemini-2.5-flash-image");
    }

    #[test]
    fn listing_input() {
        let q = parse_list(&ListInput::default()).unwrap();
        assert_eq!(q, ListQuery::default());
        let q = parse_list(&ListInput {
            sort_by: Some("name".into()),
            kind: Some("videos".into()),
            query: Some("  ".into()),
            ..ListInput::default()
        })
        .unwrap();
        assert!(!q.descending && q.kind == Some(MediaKind::Video) && q.text.is_none());
        for bad in [
            ListInput {
                limit: Some(0),
                ..ListInput::default()
            },
            ListInput {
                offset: Some(-1),
                ..ListInput::default()
            },
            ListInput {
                order: Some("up".into()),
                ..ListInput::default()
            },
            ListInput {
                kind: Some("audio".into()),
                ..ListInput::default()
            },
        ] {
            let e = parse_list(&bad).unwrap_err();
            assert_eq!(e.code(), ErrorCode::InvalidParameter, "{bad:?}");
        }
        assert_eq!(
            parse_filename(" media://files/a.png ").unwrap().as_str(),
            "a.png"
        );
        assert!(parse_filename("../a.png").is_err());
    }
}

/// `filename` arguments: a valid name, bare or as a `media://files/` URI,
/// is that name; a name with a path trick is `INVALID_PARAMETER`.
#[cfg(test)]
mod proptests {
    use proptest::prelude::*;

    use super::*;
    use crate::contract::ErrorCode;
    use crate::prop_support::config;

    proptest! {
        #![proptest_config(config(512))]

        #[test]
        fn valid_names_bare_or_as_uri(
            name in "[A-Za-z0-9_-]{1,40}\\.(png|jpg|webp|mp4)",
            uri in any::<bool>(),
            pad in "[ \t\n]{0,2}",
        ) {
            let raw = if uri { format!("{pad}media://files/{name}{pad}") } else { format!("{pad}{name}") };
            prop_assert_eq!(parse_filename(&raw).unwrap().to_string(), name);
        }

        #[test]
        fn path_tricks_are_invalid_parameter(
            trick in prop::sample::select(vec![
                "../", "..\\", "/", "\\", "\0", "..", "%2e%2e%2f", "C:\\", "\\\\srv\\share\\",
                "/etc/", "media://files/../", "\u{FF0E}\u{FF0E}/", "\u{2215}",
            ]),
            name in "[A-Za-z0-9_-]{1,20}\\.png",
            uri in any::<bool>(),
        ) {
            let raw = format!("{}{trick}{name}", if uri { "media://files/" } else { "" });
            let e = parse_filename(&raw).unwrap_err();
            prop_assert_eq!(e.code(), ErrorCode::InvalidParameter);
        }

        #[test]
        fn arbitrary_text_never_panics(s in any::<String>()) {
            let _ = parse_filename(&s);
            let _ = parse_prompt(&s);
            let _ = parse_kind("type", Some(&s));
        }
    }
}
