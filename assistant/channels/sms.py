"""SMS: the engine's replies as numbered text within the segment budget.

Rule: a prompt (question plus its numbered options) fits in 2 segments and a plain
yes/no question in 1; the read-back before booking may take 2. GSM-7 allows 160
characters (153 a part), UCS-2 70 (67 a part); every Chinese message and Spanish "í"
need UCS-2, so when a menu would not fit, option labels are shortened (the words in
brackets go first), never the question. Sayings before a prompt share its message
when they fit, else go in their own.
"""

from __future__ import annotations

from assistant.channels.base import Rendered, RenderedOption
from assistant.channels.render import Renderer, without_brackets
from assistant.channels.sms_segments import count_segments
from assistant.channels.text_forms import handoff_message
from assistant.engine.messages import Ask, End, ExpectKind, Handoff, Reply, Say

PROMPT_SEGMENTS = 2
YES_NO_SEGMENTS = 1


def render_sms(replies: tuple[Reply, ...], locale: str, renderer: Renderer) -> Rendered:
    bodies: list[str] = []
    pending: list[str] = []
    options: tuple[RenderedOption, ...] = ()
    expect = "none"
    ended = False
    for reply in replies:
        if isinstance(reply, Say):
            pending.append(renderer.text(reply.msg, locale))
        elif isinstance(reply, Handoff):
            pending.append(renderer.text(handoff_message(reply), locale))
        elif isinstance(reply, Ask):
            prompt, options = ask_body(reply, locale, renderer)
            expect = reply.expect.kind.value
            _flush_with(bodies, pending, prompt, budget=PROMPT_SEGMENTS)
            pending = []
        elif isinstance(reply, End):
            ended = True
    if pending:
        _flush_with(bodies, pending[:-1], pending[-1], budget=PROMPT_SEGMENTS)
    return Rendered(tuple(bodies), options, expect, ended)


def ask_body(ask: Ask, locale: str, renderer: Renderer) -> tuple[str, tuple[RenderedOption, ...]]:
    """The question and its numbered options, shortened to fit the budget: first the
    option labels, then the names inside the question."""
    labels = [renderer.text(o.label, locale) for o in ask.expect.options]
    keys = [o.key for o in ask.expect.options]
    options = tuple(RenderedOption(k, label) for k, label in zip(keys, labels))
    body = ""
    for compact in (False, True):
        question = renderer.text(ask.msg, locale, compact=compact)
        if ask.expect.kind is ExpectKind.YES_NO:
            body = f"{question}\n" + "  ".join(f"{k} {label}" for k, label in zip(keys, labels))
            if count_segments(body).segments <= PROMPT_SEGMENTS:
                return body, options
            continue
        for shorten in (_as_is, without_brackets, _clipped(18), _clipped(12), _clipped(8)):
            shown = [shorten(label) for label in labels]
            body = "\n".join([question] + [f"{k} {label}" for k, label in zip(keys, shown)])
            if count_segments(body).segments <= PROMPT_SEGMENTS:
                return body, options
    return body, options


def _flush_with(bodies: list[str], sayings: list[str], last: str, *, budget: int) -> None:
    """Put sayings in front of `last` when the whole still fits the budget."""
    combined = "\n".join(sayings + [last])
    if not sayings or count_segments(combined).segments <= max(budget, count_segments(last).segments):
        bodies.append(combined)
        return
    bodies.append("\n".join(sayings))
    bodies.append(last)


def _as_is(label: str) -> str:
    return label


def _clipped(limit: int):
    def clip(label: str) -> str:
        label = without_brackets(label)
        return label if len(label) <= limit else label[: limit - 1].rstrip() + "…"
    return clip
