"""Languages: guessing the first one, and switching at any point.

Rule: the first reply is in the sender's most likely language: one remembered for the
address, else the language the first message is written in, else the channel's hint
(Telegram's language_code, the phone's country), else the hospital's default. Key 8 or
a language's own name ("中文", "español", "English") switches, from any step.
"""

from __future__ import annotations

import unicodedata
from typing import Mapping, Sequence

from assistant.engine.flow import Step
from assistant.engine.parse import language_markers
from assistant.engine.messages import N_, Msg, msg
from assistant.engine.state import Conversation
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, Answer, Ctx, Go, PromptResult, Retry, StepHandlers, ask_menu, menu_choice,
)

# Each language's name in itself, when the hospital info doesn't say.
OWN_NAMES = {"en": "English", "zh_Hans": "中文", "es": "Español"}
# Country calling codes whose phones most likely belong to a speaker of a language.
CALLING_CODES = {"+86": "zh_Hans", "+886": "zh_Hans", "+852": "zh_Hans", "+65": "zh_Hans",
                 "+34": "es", "+52": "es", "+54": "es", "+57": "es", "+56": "es", "+51": "es",
                 "+58": "es", "+53": "es", "+1": "en", "+44": "en", "+61": "en", "+64": "en"}


def own_name(locale: str, names: Mapping[str, str] | None = None) -> str:
    return (names or {}).get(locale) or OWN_NAMES.get(locale, locale)


def match_tag(tag: str | None, supported: Sequence[str]) -> str | None:
    """A language tag (zh-CN, zh_Hans_CN, es-MX, en) to a supported catalog code.
    Chinese of any region or script maps to the one Chinese catalog we have."""
    if not tag:
        return None
    primary = tag.replace("-", "_").split("_")[0].lower()
    for code in supported:
        if code.split("_")[0].lower() == primary:
            return code
    return None


def from_phone(address_hint: str | None, supported: Sequence[str]) -> str | None:
    if not address_hint or not address_hint.startswith("+"):
        return None
    for length in (4, 3, 2):
        locale = CALLING_CODES.get(address_hint[:length])
        if locale in supported:
            return locale
    return None


def from_text(text: str, supported: Sequence[str]) -> str | None:
    """The language a message is written in, when it is clear."""
    if not text:
        return None
    if any("CJK" in unicodedata.name(ch, "") for ch in text[:200]):
        return match_tag("zh", supported)
    lowered = text[:200].lower()
    words = set(lowered.replace("?", " ").replace("!", " ").replace(",", " ").split())
    # Each language's markers (words.toml): whole words, except phrases and marks that
    # can only be that language ("¿", "ñ", "por favor"). English is tried last: its
    # markers ("hi", "book") turn up in other languages' messages too.
    markers = language_markers()
    for code in sorted(markers, key=lambda code: code == "en"):
        if any(marker in lowered if not marker.isascii() or " " in marker else marker in words
               for marker in markers[code]):
            return match_tag(code, supported)
    return None


def guess(text: str, language_hint: str | None, remembered: str | None,
          supported: Sequence[str], default: str) -> str:
    for candidate in (
        remembered if remembered in supported else None,
        from_text(text, supported),
        match_tag(language_hint, supported) or from_phone(language_hint, supported),
    ):
        if candidate:
            return candidate
    return default


def switch_line(current: str, supported: Sequence[str], names: Mapping[str, str] | None = None,
                names_in_current: Mapping[str, str] | None = None) -> Msg:
    """One short line telling how to switch, in the other languages' own words. In a
    language written in Latin letters, a name in another script ("中文") is given in
    the current language instead ("Chinese"): it would make an English SMS cost twice."""
    others = [code for code in supported if code != current]

    def shown(code: str) -> str:
        name = own_name(code, names)
        if _is_latin(own_name(current, names)) and not _is_latin(name):
            return (names_in_current or {}).get(code) or name
        return name

    return msg(N_("Other languages: {languages} (or press 8)"),
               languages=" / ".join(shown(code) for code in others))


def _is_latin(text: str) -> bool:
    return all(ord(ch) < 0x250 for ch in text)


def prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    names = ctx.hospital.language_names
    items = [(code, msg("{name}", name=own_name(code, names))) for code in ctx.hospital.locales]
    return ask_menu(state, msg(N_("Which language?")), items)


def answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import parse_language

    chosen = parse_language(text)
    if chosen not in ctx.hospital.locales:
        names = ctx.hospital.language_names
        chosen = menu_choice(state, text, {code: [own_name(code, names)] for code in ctx.hospital.locales})
    if chosen is None:
        return Retry()
    ctx.backend.remember_locale(chosen, state.patient_ref, ctx.now)
    resume = state.resume or Step.MENU
    return Go(resume, state.with_(locale=chosen, resume=None),
              say=(msg(N_("I will speak English with you.")),))


STEPS = {Step.LANGUAGE: StepHandlers(prompt, answer, SIMPLE_CHOICE)}
