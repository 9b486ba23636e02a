"""How many SMS segments a text costs, counted the way carriers split it.

Rule: this module only measures. It never shortens, transliterates or rewrites a
message; the SMS channel decides what to do when a prompt is over its budget.

A message is GSM-7 when every character is in the GSM 03.38 basic set or its
extension table, and UCS-2 otherwise: one "í" or one Chinese character turns the
whole message into UCS-2. A message that fits in one segment uses all of it
(160 GSM-7 units, 70 UTF-16 units). A longer one is split into parts that each
lose room to the concatenation header (153 and 67 units), and a part never ends
in the middle of a GSM escape pair or a UTF-16 surrogate pair, so parts are
counted by packing characters, not by dividing.

Nothing here raises: any string, including one with lone surrogates, gets a count.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Literal

Encoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 basic character set, in table order. 0x1B is the escape to the
# extension table, not a character, so it is left out. Greek capitals are written
# as escapes because Latin look-alikes (A, B, E, …) would be silently wrong.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "\u0394_\u03a6\u0393\u039b\u03a9\u03a0\u03a8\u03a3\u0398\u039e"  # ΔΦΓΛΩΠΨΣΘΞ
    "ÆæßÉ"
    " !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmnopqrstuvwxyzäöñüà"
)

# Each of these is sent as ESC + code, so it costs two units.
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE, GSM7_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67


@dataclass(frozen=True)
class SegmentCount:
    """The encoding a text needs, its length in that encoding's units, and its parts."""

    encoding: Encoding
    units: int
    segments: int


def count_segments(text: str) -> SegmentCount:
    """Count the encoding, units and segments of one SMS body.

    An empty body counts as 1 segment: Twilio bills every message it sends as at
    least one segment, and a budget check must never treat a send as free.
    """
    text = text if isinstance(text, str) else ("" if text is None else str(text))
    if is_gsm7(text):
        weights = [_gsm7_units(char) for char in text]
        return _count("GSM-7", weights, GSM7_SINGLE, GSM7_PART)
    weights = [_utf16_units(char) for char in text]
    return _count("UCS-2", weights, UCS2_SINGLE, UCS2_PART)


def is_gsm7(text: str) -> bool:
    """True when every character can be sent in GSM-7 (basic set or extension)."""
    return all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text)


def _gsm7_units(char: str) -> int:
    return 2 if char in GSM7_EXTENSION else 1


def _utf16_units(char: str) -> int:
    # Outside the Basic Multilingual Plane (most emoji) UTF-16 needs a surrogate pair.
    return 2 if ord(char) > 0xFFFF else 1


def _count(encoding: Encoding, weights: list[int], single: int, per_part: int) -> SegmentCount:
    units = sum(weights)
    segments = 1 if units <= single else _pack(weights, per_part)
    return SegmentCount(encoding=encoding, units=units, segments=segments)


def _pack(weights: Iterable[int], per_part: int) -> int:
    """Parts needed when each character's units must stay together in one part."""
    parts, used = 1, 0
    for weight in weights:
        if used + weight > per_part:
            parts, used = parts + 1, 0
        used += weight
    return parts
