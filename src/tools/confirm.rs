//! Asking the user before an expensive call (`MCP_CONFIRM_ABOVE_USD`).
//!
//! Every tool that calls a paid backend passes through [`MediaServer::confirm`]
//! before the service sends anything. With a threshold set and the call
//! estimated above it ([`Service::quote`]), the user is asked, the way the
//! client's protocol allows:
//!
//! - 2025-11-25 (and earlier) clients that declared `elicitation`: an
//!   `elicitation/create` (form mode, one boolean `confirm`) while the call
//!   waits;
//! - 2026-07-28 clients that declared `elicitation`: an `input_required`
//!   result carrying the same question; the client calls again with the
//!   answer and the sealed `requestState`;
//! - any other client: `CONFIRMATION_REQUIRED` with the estimate, and the
//!   call goes through when made again with `confirm_cost: true`.
//!
//! Only `action: accept` with `confirm: true` goes on. A decline or a
//! dismissal is `CONFIRMATION_REQUIRED` with `details.reason` `declined` or
//! `cancelled`: nothing was sent to a backend, and the message tells the
//! model not to override the user with `confirm_cost`.
//!
//! The `requestState` of the 2026-07-28 round is sealed (HMAC, a key made
//! when the process starts) with the tool's name and its arguments as
//! associated data, expires after [`STATE_TTL`] and is good for one call:
//! an answer cannot be replayed onto other arguments (a bigger size, more
//! prompts), nor used twice. A state that does not open for this call is
//! not an error: the user is simply asked about this call.
//!
//! `confirm_cost: true` skips the question. It guards against a model
//! spending by accident (a loop, a wrong size), not against one that means
//! to: the tool descriptions tell the model to set it only after the user
//! agreed.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use rmcp::handler::server::common::FromContextPart;
use rmcp::handler::server::tool::ToolCallContext;
use rmcp::model::{
    CallToolResponse, ElicitRequestParams, InputRequest, InputRequests, InputRequiredResult,
    InputResponses, RequestStateCodec, SealOptions,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{MediaServer, error_result};
use crate::service::{Paid, Quote, ServiceError, Unconfirmed};

/// How long the user has to answer a 2026-07-28 question.
pub const STATE_TTL: Duration = Duration::from_secs(15 * 60);

/// The key of the question in `inputRequests` / `inputResponses`.
const QUESTION: &str = "confirm_cost";

/// The `confirm_cost` parameter of every paid tool.
#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
pub struct ConfirmCost {
    /// Set to `true` only after the user agreed to this call's estimated cost. Calls
    /// estimated above the server's `MCP_CONFIRM_ABOVE_USD` otherwise ask the user first
    /// (or, when the client cannot ask, fail with `CONFIRMATION_REQUIRED` and the estimate).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_cost: Option<bool>,
}

impl ConfirmCost {
    fn given(&self) -> bool {
        self.confirm_cost == Some(true)
    }
}

/// A 2026-07-28 client's answers from the previous round, and the state it
/// echoed.
pub struct Answers {
    responses: Option<InputResponses>,
    state: Option<String>,
}

impl<S> FromContextPart<ToolCallContext<'_, S>> for Answers {
    fn from_context_part(context: &mut ToolCallContext<S>) -> Result<Self, ErrorData> {
        Ok(Self {
            responses: context.input_responses.take(),
            state: context.request_state.take(),
        })
    }
}

/// Whether the call goes on.
pub enum Gate {
    Go,
    /// Answer with this instead (a question, or why not).
    Stop(CallToolResponse),
}

/// What the sealed `requestState` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Asked {
    /// Makes the state good for one call.
    nonce: String,
    /// The estimate the user was shown.
    usd: f64,
}

/// The process's key for `requestState`, and the states already used.
struct Seals {
    codec: RequestStateCodec,
    used: Mutex<HashMap<String, Instant>>,
}

static SEALS: LazyLock<Seals> = LazyLock::new(|| {
    // 32 random bytes: the length `try_new` asks for, so nothing to check.
    let key: [u8; 32] = rand::random();
    Seals {
        codec: RequestStateCodec::new_unchecked(key.to_vec()),
        used: Mutex::new(HashMap::new()),
    }
});

impl Seals {
    fn seal(&self, bound: &[u8], usd: f64) -> Result<String, ErrorData> {
        let nonce: [u8; 16] = rand::random();
        let asked = Asked {
            nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
            usd,
        };
        let options = SealOptions::new().associated_data(bound).ttl(STATE_TTL);
        self.codec
            .seal_json_with(&asked, &options)
            .map_err(|e| ErrorData::internal_error(e.to_string(), None))
    }

    /// The question a state answers, if it was sealed for this call, has
    /// not expired and was not used before; it is used up here.
    fn redeem(&self, state: &str, bound: &[u8]) -> Option<Asked> {
        let asked: Asked = match self.codec.open_json_with(state, bound) {
            Ok(asked) => asked,
            Err(e) => {
                tracing::debug!(error = %e, "requestState not for this call; asking again");
                return None;
            }
        };
        let now = Instant::now();
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        used.retain(|_, expires| *expires > now);
        if used.contains_key(&asked.nonce) {
            tracing::debug!("requestState used before; asking again");
            return None;
        }
        used.insert(asked.nonce.clone(), now + STATE_TTL);
        Some(asked)
    }
}

/// What the tool, with these arguments, binds its state to.
fn binding<P: Serialize>(tool: &str, params: &P) -> Vec<u8> {
    let mut bound = tool.as_bytes().to_vec();
    bound.push(0);
    // Serializing plain parameter structs cannot fail; an empty binding
    // would still be bound to the tool.
    bound.extend(serde_json::to_vec(params).unwrap_or_default());
    bound
}

/// The question, as the user sees it.
fn question(tool: &str, quote: &Quote, threshold: f64) -> String {
    format!(
        "`{tool}` is estimated to cost about {} ({}, {}). Go ahead? (media-gen asks before calls \
estimated above {}.)",
        crate::service::usd(quote.usd),
        quote.what,
        quote.model,
        crate::service::usd(threshold)
    )
}

/// The form: one boolean, `confirm`.
fn form(message: String) -> Result<ElicitRequestParams, ErrorData> {
    serde_json::from_value(json!({
        "mode": "form",
        "message": message,
        "requestedSchema": {
            "type": "object",
            "properties": {"confirm": {
                "type": "boolean",
                "title": "Spend it",
                "description": "Yes: make the call. No: nothing is sent and nothing is spent.",
                "default": true
            }},
            "required": ["confirm"]
        }
    }))
    .map_err(|e| ErrorData::internal_error(e.to_string(), None))
}

/// What an elicitation answer (`action`, `content`) means.
fn verdict(action: Option<&Value>, content: Option<&Value>) -> Result<(), Unconfirmed> {
    match action.and_then(Value::as_str) {
        Some("accept") if content.and_then(|c| c.get("confirm")) == Some(&json!(true)) => Ok(()),
        Some("cancel") => Err(Unconfirmed::Cancelled),
        _ => Err(Unconfirmed::Declined),
    }
}

/// The client said it can answer form elicitations (an empty
/// `elicitation` object means form).
fn can_elicit(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.client_capabilities()
        .and_then(|c| c.elicitation)
        .is_some_and(|e| e.form.is_some() || e.url.is_none())
}

/// The request came in a protocol without `initialize` (2026-07-28 on):
/// questions go into an `input_required` result.
fn in_band(ctx: &RequestContext<RoleServer>) -> bool {
    ctx.protocol_version().is_some_and(|v| !v.has_initialize())
}

impl MediaServer {
    /// Before a paid call: asks the user when its estimate is above the
    /// threshold. `params` are the tool's arguments, `call` what the
    /// service quotes.
    pub(super) async fn confirm<P: Serialize>(
        &self,
        tool: &str,
        params: &P,
        consent: &ConfirmCost,
        call: Paid<'_>,
        answers: Answers,
        ctx: &RequestContext<RoleServer>,
    ) -> Gate {
        let Some(threshold) = self.service().confirm_above_usd() else {
            return Gate::Go;
        };
        if consent.given() {
            return Gate::Go;
        }
        let quote = match self.service().quote(call, self.policy()).await {
            Ok(Some(q)) if q.usd > threshold => q,
            Ok(_) => return Gate::Go,
            Err(e) => return stop(&e),
        };
        // A call the budget refuses is refused before anyone is asked.
        if let Err(e) = self.service().check_budget(quote.usd) {
            return stop(&e);
        }
        let refused = |why| {
            stop(&ServiceError::CostUnconfirmed {
                quote: quote.clone(),
                threshold_usd: threshold,
                why,
            })
        };
        if !can_elicit(ctx) {
            return refused(Unconfirmed::CannotAsk);
        }
        let message = question(tool, &quote, threshold);
        if in_band(ctx) {
            let bound = binding(tool, params);
            if let (Some(state), Some(responses)) = (&answers.state, &answers.responses)
                && let Some(answer) = responses.get(QUESTION)
                && let Some(asked) = SEALS.redeem(state, &bound)
                && quote.usd <= asked.usd
            {
                return match verdict(answer.get("action"), answer.get("content")) {
                    Ok(()) => Gate::Go,
                    Err(why) => refused(why),
                };
            }
            return match ask_in_band(message, &bound, quote.usd) {
                Ok(r) => Gate::Stop(r),
                Err(e) => Gate::Stop(error_response(e)),
            };
        }
        let params = match form(message) {
            Ok(p) => p,
            Err(e) => return Gate::Stop(error_response(e)),
        };
        let answer = tokio::select! {
            () = ctx.ct.cancelled() => return stop(&ServiceError::Cancelled),
            a = ctx.peer.create_elicitation(params) => a,
        };
        match answer {
            Ok(a) => {
                let action = serde_json::to_value(&a.action).ok();
                match verdict(action.as_ref(), a.content.as_ref()) {
                    Ok(()) => Gate::Go,
                    Err(why) => refused(why),
                }
            }
            Err(e) => {
                tracing::info!(error = %e, "asking the user to confirm a cost failed");
                refused(Unconfirmed::AskFailed)
            }
        }
    }
}

/// The `input_required` result that asks the question.
fn ask_in_band(message: String, bound: &[u8], usd: f64) -> Result<CallToolResponse, ErrorData> {
    let request: InputRequest = serde_json::from_value(json!({
        "method": "elicitation/create",
        "params": form(message)?,
    }))
    .map_err(|e| ErrorData::internal_error(e.to_string(), None))?;
    let mut requests = InputRequests::new();
    requests.insert(QUESTION.to_owned(), request);
    Ok(InputRequiredResult::new(Some(requests), Some(SEALS.seal(bound, usd)?)).into())
}

fn stop(e: &ServiceError) -> Gate {
    Gate::Stop(error_result(e).into())
}

/// A protocol error as a tool result (never expected: building a fixed
/// form cannot fail).
fn error_response(e: ErrorData) -> CallToolResponse {
    error_result(&ServiceError::Internal(e.message.to_string())).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accept_with_confirm_true_goes_on() {
        let accept = json!("accept");
        assert_eq!(
            verdict(Some(&accept), Some(&json!({"confirm": true}))),
            Ok(())
        );
        for content in [
            json!({"confirm": false}),
            json!({}),
            json!({"confirm": "yes"}),
        ] {
            assert_eq!(
                verdict(Some(&accept), Some(&content)),
                Err(Unconfirmed::Declined)
            );
        }
        assert_eq!(verdict(Some(&accept), None), Err(Unconfirmed::Declined));
        assert_eq!(
            verdict(Some(&json!("decline")), Some(&json!({"confirm": true}))),
            Err(Unconfirmed::Declined)
        );
        assert_eq!(
            verdict(Some(&json!("cancel")), None),
            Err(Unconfirmed::Cancelled)
        );
        assert_eq!(verdict(None, None), Err(Unconfirmed::Declined));
    }

    /// A state opens only for the arguments it was sealed with, and once.
    #[test]
    fn state_is_bound_to_the_call_and_used_once() {
        let cheap = binding(
            "generate_image",
            &json!({"prompt": "a", "image_size": "1K"}),
        );
        let dear = binding(
            "generate_image",
            &json!({"prompt": "a", "image_size": "4K"}),
        );
        let other_tool = binding("edit_image", &json!({"prompt": "a", "image_size": "1K"}));
        let state = SEALS.seal(&cheap, 0.13).unwrap();
        assert!(SEALS.redeem(&state, &dear).is_none());
        assert!(SEALS.redeem(&state, &other_tool).is_none());
        let mut tampered = state.clone();
        tampered.push('x');
        assert!(SEALS.redeem(&tampered, &cheap).is_none());
        let asked = SEALS
            .redeem(&state, &cheap)
            .expect("opens for its own call");
        assert_eq!(asked.usd, 0.13);
        assert!(SEALS.redeem(&state, &cheap).is_none(), "used twice");
    }
}
