"""SMS: the engine's replies as numbered text within the segment budget.

Rule: a prompt (question plus its numbered options) fits in 2 segments and a plain
yes/no question in 1; the read-back before booking may take 2. GSM-7 allows 160
characters (153 a part), UCS-2 70 (67 a part); every Chinese message and Spanish "í"
need UCS-2, so when a message would not fit, names are shortened (option labels first,
the words in brackets before the rest), never dates, times or codes, and the wording
itself is kept. Consecutive pieces share one SMS while the whole fits the budget.
"""

from __future__ import annotations

from assistant.channels.base import Rendered, RenderedOption
from assistant.channels.render import Renderer, clip, without_brackets
from assistant.channels.sms_segments import count_segments
from assistant.channels.text_forms import handoff_message
from assistant.engine.messages import Ask, End, ExpectKind, Handoff, Msg, Reply, Say

PROMPT_SEGMENTS = 2
COMPACT_LEVELS = (0, 1, 2)  # see Renderer.text: names as they are, unbracketed, clipped


def render_sms(replies: tuple[Reply, ...], locale: str, renderer: Renderer) -> Rendered:
    pieces: list[str] = []
    options: tuple[RenderedOption, ...] = ()
    expect = "none"
    ended = False
    for reply in replies:
        if isinstance(reply, Say):
            pieces.append(fitted_sentence(reply.msg, locale, renderer))
        elif isinstance(reply, Handoff):
            pieces.append(fitted_sentence(handoff_message(reply), locale, renderer))
        elif isinstance(reply, Ask):
            prompt, options = ask_body(reply, locale, renderer)
            expect = reply.expect.kind.value
            pieces.append(prompt)
        elif isinstance(reply, End):
            ended = True
    return Rendered(tuple(pack(pieces)), options, expect, ended)


def pack(pieces: list[str]) -> list[str]:
    """Join consecutive pieces into one SMS while the whole stays within the budget."""
    bodies: list[str] = []
    for piece in pieces:
        if bodies and _segments("\n".join([bodies[-1], piece])) <= PROMPT_SEGMENTS:
            bodies[-1] = "\n".join([bodies[-1], piece])
        else:
            bodies.append(piece)
    return bodies


def fitted_sentence(message: Msg, locale: str, renderer: Renderer) -> str:
    """A sentence, with its names shortened only if it would not fit otherwise."""
    text = ""
    for level in COMPACT_LEVELS:
        text = renderer.text(message, locale, compact=level)
        if _segments(text) <= PROMPT_SEGMENTS:
            break
    return text


def ask_body(ask: Ask, locale: str, renderer: Renderer) -> tuple[str, tuple[RenderedOption, ...]]:
    """The question and its numbered options, shortened to fit the budget: first the
    option labels, then the names inside the question."""
    labels = [renderer.text(o.label, locale) for o in ask.expect.options]
    keys = [o.key for o in ask.expect.options]
    options = tuple(RenderedOption(k, label) for k, label in zip(keys, labels))
    body = ""
    for level in COMPACT_LEVELS:
        question = renderer.text(ask.msg, locale, compact=level)
        if ask.expect.kind is ExpectKind.YES_NO:
            body = f"{question}\n" + "  ".join(f"{k} {label}" for k, label in zip(keys, labels))
            if _segments(body) <= PROMPT_SEGMENTS:
                return body, options
            continue
        for shorten in (_as_is, without_brackets, _clipped(18), _clipped(12), _clipped(8)):
            shown = [shorten(label) for label in labels]
            body = "\n".join([question] + [f"{k} {label}" for k, label in zip(keys, shown)])
            if _segments(body) <= PROMPT_SEGMENTS:
                return body, options
    return body, options


def _segments(text: str) -> int:
    return count_segments(text).segments


def _as_is(label: str) -> str:
    return label


def _clipped(limit: int):
    def shorten(label: str) -> str:
        return clip(without_brackets(label), limit)
    return shorten
