"""Turning the engine's messages into words, in the conversation's language.

Rule: translation happens here, at the edge. A `Msg` is looked up in the catalog of
the locale, and its parameters are rendered first: names picked by locale, dates and
times formatted by Babel in the hospital's zone, written or spoken. Channels call this
and then lay the words out in their own form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from assistant.channels.sms_segments import is_gsm7
from assistant.engine.messages import N_, Msg, Names, When
from assistant.i18n import Catalogs
from assistant.i18n import format as fmt

# What every channel answers when a turn could not run at all (the database is down).
APOLOGY = N_("Sorry, something went wrong on our side. Please try again in a few minutes.")


@dataclass(frozen=True)
class Renderer:
    catalogs: Catalogs
    timezone: str

    def text(self, message: Msg, locale: str, *, spoken: bool = False, compact: int = 0) -> str:
        """`compact` shortens names for an SMS that would not fit otherwise: 1 drops
        their bracketed part ("Ophthalmology (Eyes)" -> "Ophthalmology"), 2 also clips
        them (and a patient's name) to NAME_CLIP characters. Dates, times and codes are
        never shortened."""
        params = {k: self._param(k, v, locale, spoken, compact) for k, v in message.params.items()}
        text = self.catalogs.gettext(locale, message.text, **params)
        return _spanish_spoken_articles(text) if spoken and locale == "es" else text

    def _param(self, key: str, value: Any, locale: str, spoken: bool, compact: int) -> str:
        if spoken and key == "code" and isinstance(value, str):
            return " ".join(value)  # a booking code is spelled out, letter by letter
        if key == "name" and isinstance(value, str) and compact >= 2:
            return clip(value, NAME_CLIP)  # a patient's long name, in an SMS over budget
        if isinstance(value, Msg):
            return self.text(value, locale, spoken=spoken, compact=compact)
        if isinstance(value, Names):
            name = pick_name(value.by_locale, locale)
            if compact >= 1:
                name = without_brackets(name)
            return clip(name, NAME_CLIP) if compact >= 2 else name
        if isinstance(value, When):
            return self._when(value, locale, spoken)
        return str(value)

    def _when(self, when: When, locale: str, spoken: bool) -> str:
        value, tz = when.value, self.timezone
        if when.style == "time":
            return (fmt.format_time_spoken if spoken else fmt.format_time)(value, locale, tz)
        if when.style == "date_short" and not spoken:
            return fmt.format_date_short(value, locale, tz)
        if when.style == "birth_date":
            return fmt.format_date_plain(value, locale, tz)
        if when.style == "datetime":
            day = (fmt.format_date_spoken if spoken else fmt.format_date_long)(value, locale, tz)
            clock = (fmt.format_time_spoken if spoken else fmt.format_time)(value, locale, tz)
            return f"{day} {clock}"
        return (fmt.format_date_spoken if spoken else fmt.format_date_long)(value, locale, tz)


NAME_CLIP = 16


def clip(label: str, limit: int) -> str:
    """A name cut to `limit` characters. A name in GSM-7 letters ends in "..." rather than
    "…", which would make the whole SMS UCS-2 and cost double."""
    if len(label) <= limit:
        return label
    if is_gsm7(label):
        return label[: limit - 3].rstrip() + "..."
    return label[: limit - 1].rstrip() + "…"


def _spanish_spoken_articles(text: str) -> str:
    """Spoken Spanish times carry their article ("las ocho y media"), and the catalog's
    sentences carry one too ("a las {time}"): keep one."""
    return text.replace("las las ", "las ").replace("las la una", "la una")


def without_brackets(label: str) -> str:
    """The words before a bracketed explanation: "Ophthalmology (Eyes)" -> "Ophthalmology"."""
    for opening in (" (", "（", "("):
        if opening in label:
            shortened = label.split(opening, 1)[0].strip()
            return shortened or label
    return label


def pick_name(names: dict[str, str], locale: str) -> str:
    """A name in the locale, else English, else the first one given."""
    for candidate in (locale, "en"):
        if names.get(candidate):
            return names[candidate]
    return next(iter(names.values()), "")
