//! Tool arguments. [`Parameters`] stands in for rmcp's extractor of the
//! same name (the `#[tool]` macro finds a handler's input schema by that
//! name) and differs in one thing: an argument that does not fit its type
//! becomes the contract's `INVALID_PARAMETER` result naming the parameter
//! and what it expects, instead of rmcp's bare text. `MediaServer::call_tool`
//! turns the error this extractor raises into that result.

use std::borrow::Cow;

use rmcp::ErrorData;
use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::ErrorCode;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::de::DeserializeOwned;

use crate::contract::ErrorCode as ContractCode;
use crate::service::ServiceError;

/// A tool's arguments, deserialized into `P`.
#[derive(Debug, Clone)]
pub struct Parameters<P>(pub P);

impl<P: JsonSchema> JsonSchema for Parameters<P> {
    fn schema_name() -> Cow<'static, str> {
        P::schema_name()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        P::json_schema(generator)
    }
}

impl<S, P: DeserializeOwned> FromContextPart<ToolCallContext<'_, S>> for Parameters<P> {
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, ErrorData> {
        let arguments = context.arguments.take().unwrap_or_default();
        parse(serde_json::Value::Object(arguments))
            .map(Self)
            .map_err(|e| {
                let output = serde_json::to_value(e.output()).unwrap_or_default();
                ErrorData::invalid_params(e.message(), Some(output))
            })
    }
}

/// `arguments` as `P`, or which argument is wrong and why.
pub fn parse<P: DeserializeOwned>(arguments: serde_json::Value) -> Result<P, ServiceError> {
    serde_path_to_error::deserialize(arguments).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string();
        // A missing field is reported at its parent (`.` for the top).
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.strip_suffix('`'));
        let (field, message) = match missing {
            Some(name) => {
                let field = match path.as_str() {
                    "." | "" => name.to_owned(),
                    parent => format!("{parent}.{name}"),
                };
                let message = format!(
                    "`{field}` is required; pass it as the tool's input schema (`tools/list`) describes"
                );
                (field, message)
            }
            None => {
                let field = match path.as_str() {
                    "." | "" => "arguments".to_owned(),
                    p => p.to_owned(),
                };
                let message = format!(
                    "`{field}`: {inner}; pass it as the tool's input schema (`tools/list`) describes"
                );
                (field, message)
            }
        };
        ServiceError::BadInput { field, message }
    })
}

/// The contract's error result carried by an argument error that
/// [`Parameters`] raised, if `e` is one.
pub fn argument_error(e: &ErrorData) -> Option<&serde_json::Value> {
    let data = e.data.as_ref()?;
    let is_ours = e.code == ErrorCode::INVALID_PARAMS
        && data["success"] == false
        && data["error"]["code"] == ContractCode::InvalidParameter.as_str();
    is_ours.then_some(data)
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "only the deserialization is tested")]
    struct P {
        prompt: String,
        #[serde(default)]
        reference_images: Vec<String>,
        #[serde(default)]
        count: Option<u32>,
    }

    fn fails(v: serde_json::Value) -> (String, String) {
        let e = parse::<P>(v).unwrap_err();
        let out = serde_json::to_value(e.output()).unwrap();
        assert_eq!(out["error"]["code"], "INVALID_PARAMETER");
        (
            out["error"]["details"]["parameter"]
                .as_str()
                .unwrap()
                .to_owned(),
            out["error"]["message"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn wrong_types_name_the_parameter_and_what_it_expects() {
        let (field, message) = fails(json!({"prompt": 123}));
        assert_eq!(field, "prompt");
        assert!(message.contains("expected a string"), "{message}");
        let (field, message) = fails(json!({"prompt": "x", "reference_images": ["a", 2]}));
        assert_eq!(field, "reference_images[1]");
        assert!(message.contains("expected a string"), "{message}");
        let (field, message) = fails(json!({"prompt": "x", "count": -1}));
        assert_eq!(field, "count");
        assert!(message.contains("expected u32"), "{message}");
        let (field, message) = fails(json!({}));
        assert_eq!(field, "prompt");
        assert!(message.contains("`prompt` is required"), "{message}");
        assert!(parse::<P>(json!({"prompt": "ok"})).is_ok());
    }
}
