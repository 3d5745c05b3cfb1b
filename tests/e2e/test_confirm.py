"""Asking before the expensive calls (`MCP_CONFIRM_ABOVE_USD`), driven by the official MCP
Python client: an elicitation at 2025-11-25, an `input_required` round trip at 2026-07-28,
`CONFIRMATION_REQUIRED` for a client that can ask neither, and `confirm_cost: true`.

The server talks to a separate `media-gen emulator`, whose `/emulator/stats` counts the
backend requests: a declined call must make none."""

import json
import urllib.request

import pytest
from mcp import Client, types
from mcp.client.session import ClientSession

from conftest import structured
from test_stdio import params

pytestmark = pytest.mark.anyio

# A 1K image of the default model (Gemini 3 Pro) costs more than this; a video far more.
THRESHOLD = "0.05"


def stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/emulator/stats") as r:
        return json.load(r)


def server(bin_path, out_dir, emulator):
    return params(
        bin_path,
        out_dir,
        MCP_CLIPROXY_URL=emulator,
        MCP_GEMINI_URL=emulator,
        MCP_GEMINI_API_KEY="test-key",
        MCP_CONFIRM_ABOVE_USD=THRESHOLD,
    )


class User:
    """Answers every question the same way and remembers what it was asked."""

    def __init__(self, action: str, confirm: bool | None = True):
        self.action = action
        self.confirm = confirm
        self.asked: list[types.ElicitRequestParams] = []

    async def __call__(self, context, params):
        self.asked.append(params)
        content = None if self.confirm is None or self.action != "accept" else {"confirm": self.confirm}
        return types.ElicitResult(action=self.action, content=content)


def media(out_dir) -> list[str]:
    """The library's media files (not the catalog)."""
    return sorted(p.name for p in out_dir.iterdir() if p.suffix in {".png", ".jpeg", ".jpg", ".webp", ".mp4"})


def unconfirmed(result, reason: str) -> dict:
    assert result.is_error, result
    err = structured(result)["error"]
    assert err["code"] == "CONFIRMATION_REQUIRED", err
    d = err["details"]
    assert d["reason"] == reason, err
    assert d["parameter"] == "confirm_cost"
    assert d["estimated_cost_usd"] > float(THRESHOLD)
    assert d["confirm_above_usd"] == float(THRESHOLD)
    assert d["model"] == "gemini-3-pro-image-preview"
    assert "nothing was spent" in err["message"]
    return err


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_accepted_goes_ahead(bin_path, out_dir, emulator, mode):
    user = User("accept")
    async with Client(server(bin_path, out_dir, emulator), mode=mode, elicitation_callback=user) as client:
        r = await client.call_tool("generate_image", {"prompt": "a lighthouse", "image_size": "2K"})
        assert not r.is_error, r
        assert structured(r)["success"]
    assert len(user.asked) == 1
    message = user.asked[0].message
    assert "$" in message and "gemini-3-pro-image-preview" in message and "2K" in message, message
    assert stats(emulator)["generate_requests"] == 1


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
@pytest.mark.parametrize(("action", "confirm", "reason"), [
    ("decline", None, "declined"),
    ("cancel", None, "cancelled"),
    ("accept", False, "declined"),
])
async def test_declined_spends_nothing(bin_path, out_dir, emulator, mode, action, confirm, reason):
    user = User(action, confirm)
    async with Client(server(bin_path, out_dir, emulator), mode=mode, elicitation_callback=user) as client:
        r = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        err = unconfirmed(r, reason)
        assert "confirm_cost: true` unless the user asks" in err["message"], err
        # A video is refused the same way, before any job or request exists.
        v = await client.call_tool("generate_video", {"prompt": "waves", "duration": "8s"})
        assert v.is_error and structured(v)["error"]["code"] == "CONFIRMATION_REQUIRED"
    assert len(user.asked) == 2
    s = stats(emulator)
    assert s["generate_requests"] == 0 and s["video_submits"] == 0, s
    assert media(out_dir) == []


@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_client_that_cannot_ask_gets_confirmation_required(bin_path, out_dir, emulator, mode):
    async with Client(server(bin_path, out_dir, emulator), mode=mode) as client:
        r = await client.call_tool("generate_image", {"prompt": "a lighthouse"})
        err = unconfirmed(r, "cannot_ask")
        assert "`confirm_cost: true`" in err["message"], err
        assert stats(emulator)["generate_requests"] == 0
        # The parameter that confirms it goes through, without asking.
        ok = await client.call_tool("generate_image", {"prompt": "a lighthouse", "confirm_cost": True})
        assert not ok.is_error, ok
        # Below the threshold nothing asks: a local upscale costs nothing.
        up = await client.call_tool("upscale", {"image_path": structured(ok)["filename"]})
        assert not up.is_error, up
    assert stats(emulator)["generate_requests"] == 1


async def test_batch_is_asked_about_once_as_a_whole(bin_path, out_dir, emulator):
    user = User("accept")
    async with Client(server(bin_path, out_dir, emulator), mode="legacy", elicitation_callback=user) as client:
        r = await client.call_tool("generate_image_batch", {"prompts": ["a", "b", "c"]})
        assert structured(r)["succeeded"] == 3, r
    assert len(user.asked) == 1 and "3 images" in user.asked[0].message, user.asked
    assert stats(emulator)["generate_requests"] == 3


async def test_input_required_state_is_bound_to_the_call(bin_path, out_dir, emulator):
    """The 2026-07-28 round by hand: the answer to one call's question, sent with other
    arguments (a larger, dearer image), is not taken as a yes; nor is it good twice."""
    async with Client(server(bin_path, out_dir, emulator), mode="2026-07-28", elicitation_callback=User("accept")) as client:
        session: ClientSession = client.session
        cheap = {"prompt": "a lighthouse", "image_size": "1K"}
        first = await session.call_tool("generate_image", cheap, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult), first
        assert list(first.input_requests) == ["confirm_cost"]
        ask = first.input_requests["confirm_cost"]
        assert ask.method == "elicitation/create"
        yes = {"confirm_cost": {"action": "accept", "content": {"confirm": True}}}

        dear = {"prompt": "a lighthouse", "image_size": "4K"}
        replayed = await session.call_tool(
            "generate_image", dear, input_responses=yes, request_state=first.request_state, allow_input_required=True
        )
        assert isinstance(replayed, types.InputRequiredResult), replayed
        assert stats(emulator)["generate_requests"] == 0

        done = await session.call_tool(
            "generate_image", cheap, input_responses=yes, request_state=first.request_state, allow_input_required=True
        )
        assert isinstance(done, types.CallToolResult) and not done.is_error, done
        again = await session.call_tool(
            "generate_image", cheap, input_responses=yes, request_state=first.request_state, allow_input_required=True
        )
        assert isinstance(again, types.InputRequiredResult), again
    assert stats(emulator)["generate_requests"] == 1


async def test_unset_threshold_never_asks(bin_path, out_dir, emulator):
    """Without `MCP_CONFIRM_ABOVE_USD` no call asks, even one a client cannot confirm."""
    unset = params(bin_path, out_dir, MCP_CLIPROXY_URL=emulator)
    async with Client(unset, mode="legacy") as client:
        r = await client.call_tool("generate_image", {"prompt": "a lighthouse", "image_size": "4K"})
        assert not r.is_error, r
    assert stats(emulator)["generate_requests"] == 1
