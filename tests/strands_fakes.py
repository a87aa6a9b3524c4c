"""A scripted Strands `Model`: drives the real agent loop through real tool calls, offline.

Each turn is produced by a policy (a function of the conversation so far), and usage is reported
from the size of what the model was sent, so cost accounting is exercised realistically.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterable, Callable
from typing import Any

from strands.models import Model

Turn = dict[str, Any]  # {"content": [blocks]} or {"raise": Exception}
Policy = Callable[[list[dict[str, Any]], list[dict[str, Any]] | None], Turn]

CHARS_PER_TOKEN = 4


def estimate_tokens(payload: Any) -> int:
    return max(1, len(json.dumps(payload, default=str)) // CHARS_PER_TOKEN)


class ScriptedModel(Model):
    def __init__(
        self, policy: Policy | list[Turn], *, cache_system_prompt: bool = False, cache_in_input: bool = False
    ) -> None:
        self._script = list(policy) if isinstance(policy, list) else None
        self._policy = policy if callable(policy) else None
        self.cache_system_prompt = cache_system_prompt
        # Bedrock and Anthropic report cached tokens beside inputTokens; OpenAI's prompt_tokens
        # (Strands' inputTokens) already contain them, and its total is input plus output.
        self.cache_in_input = cache_in_input
        self.requests: list[dict[str, Any]] = []
        self.usages: list[dict[str, int]] = []
        self.config: dict[str, Any] = {"model_id": "scripted"}

    def update_config(self, **model_config: Any) -> None:
        self.config.update(model_config)

    def get_config(self) -> Any:
        return self.config

    async def structured_output(
        self, output_model: Any, prompt: Any, system_prompt: str | None = None, **kwargs: Any
    ) -> Any:
        raise NotImplementedError("the engine uses structured_output_model on the agent call")
        yield {}  # pragma: no cover

    def _next_turn(self, messages: list[dict[str, Any]], tool_specs: list[dict[str, Any]] | None) -> Turn:
        if self._script is not None:
            if not self._script:
                raise RuntimeError("ScriptedModel: script exhausted")
            return self._script.pop(0)
        assert self._policy is not None
        return self._policy(messages, tool_specs)

    async def stream(
        self,
        messages: Any,
        tool_specs: Any = None,
        system_prompt: str | None = None,
        *,
        tool_choice: Any = None,
        **kwargs: Any,
    ) -> AsyncIterable[Any]:
        self.requests.append({"messages": messages, "tool_specs": tool_specs, "system_prompt": system_prompt})
        turn = self._next_turn(messages, tool_specs)
        if "raise" in turn:
            raise turn["raise"]
        static = estimate_tokens({"system": system_prompt, "tools": tool_specs})
        dynamic = estimate_tokens(messages)
        usage = {"outputTokens": estimate_tokens(turn["content"])}
        if self.cache_system_prompt and len(self.requests) > 1:
            usage |= {"inputTokens": dynamic, "cacheReadInputTokens": static, "cacheWriteInputTokens": 0}
        elif self.cache_system_prompt:
            usage |= {"inputTokens": dynamic, "cacheReadInputTokens": 0, "cacheWriteInputTokens": static}
        else:
            usage |= {"inputTokens": static + dynamic}
        if self.cache_in_input:
            usage["inputTokens"] = static + dynamic
            usage["totalTokens"] = usage["inputTokens"] + usage["outputTokens"]
        else:
            usage["totalTokens"] = sum(v for k, v in usage.items() if k != "totalTokens")
        self.usages.append(usage)
        stop = "end_turn"
        yield {"messageStart": {"role": "assistant"}}
        for block in turn["content"]:
            if "text" in block:
                yield {"contentBlockStart": {"start": {}}}
                yield {"contentBlockDelta": {"delta": {"text": block["text"]}}}
                yield {"contentBlockStop": {}}
            elif "toolUse" in block:
                stop = "tool_use"
                tu = block["toolUse"]
                yield {"contentBlockStart": {"start": {"toolUse": {"toolUseId": tu["toolUseId"], "name": tu["name"]}}}}
                yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(tu["input"])}}}}
                yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": turn.get("stop_reason", stop)}}
        yield {"metadata": {"usage": usage, "metrics": {"latencyMs": 1}}}


def tool_use(name: str, tool_input: dict[str, Any], use_id: str | None = None) -> Turn:
    return {"content": [{"toolUse": {"toolUseId": use_id or f"tu-{name}", "name": name, "input": tool_input}}]}


def answer(category: str, team: str, confidence: float = 0.9, reasoning: str = "From the evidence.") -> Turn:
    return tool_use(
        "RoutingAnswer",
        {"category": category, "team": team, "confidence": confidence, "reasoning": reasoning, "alternatives": []},
        use_id="tu-answer",
    )


_CLASSIFIER_LINE = re.compile(r"- text classifier: ([^,\n]+?) (\d\.\d\d)")
TEAMS = {
    "Network Outage": "Network Operations",
    "Billing Dispute": "Billing Support",
    "Technical Problem": "Technical Support",
    "Account Access": "Account Management",
}


def first_user_text(messages: list[dict[str, Any]]) -> str:
    for message in messages:
        if message.get("role") == "user":
            return " ".join(block.get("text", "") for block in message.get("content", []))
    return ""


def evidence_policy(messages: list[dict[str, Any]], tool_specs: Any) -> Turn:
    """A well-behaved model: answers at once with the category the evidence points to."""
    match = _CLASSIFIER_LINE.search(first_user_text(messages))
    category = match.group(1) if match else "Technical Problem"
    return answer(category, TEAMS.get(category, "Technical Support"), 0.85)


SEVEN_TOOLS = [
    ("extract_entities", {}),
    ("check_vip_status", {}),
    ("check_service_status", {"service_ids": []}),
    ("get_historical_context", {}),
    ("classify_issue", {}),
    ("calculate_priority", {"category": "Technical Problem"}),
    ("route_to_team", {"category": "Technical Problem"}),
]


def seven_round_trips_policy(messages: list[dict[str, Any]], tool_specs: Any) -> Turn:
    """The reference design's style: one tool per model round trip, all seven, then the answer."""
    calls_made = sum(
        1 for m in messages if m.get("role") == "assistant" for b in m.get("content", []) if "toolUse" in b
    )
    if calls_made < len(SEVEN_TOOLS):
        name, tool_input = SEVEN_TOOLS[calls_made]
        return tool_use(name, tool_input, use_id=f"tu-{calls_made}")
    return evidence_policy(messages, tool_specs)
