"""What a channel can show, and the rendered forms channels share.

Rule: types only. `Capabilities` tells the engine's replies how to be laid out
(buttons? voice? how many SMS segments?); `Rendered` is one turn, ready to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Capabilities:
    buttons: bool = False
    voice: bool = False
    max_segments: int | None = None  # SMS budget for one prompt


@dataclass(frozen=True)
class RenderedOption:
    key: str
    label: str


@dataclass(frozen=True)
class Rendered:
    """One turn in a channel's own form: `messages` are what is sent or spoken, in order;
    `options` the choices of the last question; `dial` a number to connect the call to."""

    messages: tuple[str, ...]
    options: tuple[RenderedOption, ...] = ()
    expect: str = "none"
    ended: bool = False
    dial: str | None = None
    buttons: tuple[tuple[str, ...], ...] = field(default=())
