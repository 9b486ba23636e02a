"""What every step shares: the turn context, the values a step returns, and menus.

Rule: small building blocks only. A step module imports these; this module imports no
step module.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Callable, Sequence
from zoneinfo import ZoneInfo

from assistant.engine.messages import Ask, Expect, Inbound, Msg, N_, Option, Reply, Say, msg
from assistant.engine.ports import Backend, HospitalInfo
from assistant.engine.state import Conversation

PAGE_SIZE = 5  # at most five options a menu, plus "more"
MORE_KEY = str(PAGE_SIZE + 1)


@dataclass(frozen=True)
class Ctx:
    backend: Backend
    now: datetime
    hospital: HospitalInfo
    inbound: Inbound

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.hospital.timezone)

    @property
    def today(self) -> date:
        return self.now.astimezone(self.tz).date()

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.tz)


@dataclass(frozen=True)
class Go:
    """Move to `step` with `state`, saying `say` before that step's prompt."""

    step: str
    state: Conversation
    say: tuple[Msg, ...] = ()
    desk: bool = False  # also give the desk's number and hours (a refusal only staff can help with)


@dataclass(frozen=True)
class Retry:
    """The answer was not understood (or not possible); `hint` says why."""

    hint: Msg | None = None
    counts_as_failure: bool = True


@dataclass(frozen=True)
class Prompted:
    state: Conversation  # with the menu it offered
    replies: tuple[Reply, ...]


Answer = Go | Retry
PromptResult = Prompted | Go  # a prompt may skip ahead (one afternoon slot: no question)


@dataclass(frozen=True)
class StepHandlers:
    prompt: Callable[[Conversation, Ctx], PromptResult]
    answer: Callable[[Conversation, str, Ctx], Answer]
    simple_hint: Msg  # said after two failed answers, before the prompt again


def ask_menu(state: Conversation, question: Msg, items: Sequence[tuple[str, Msg]],
             *, page: int = 0, extra: Sequence[tuple[str, Msg]] = ()) -> Prompted:
    """A numbered menu of `items` (value, label), five a page with "more", then any
    `extra` options (value, label) that every page shows."""
    pages = max(1, -(-len(items) // PAGE_SIZE))
    page = page % pages
    shown = list(items[page * PAGE_SIZE:(page + 1) * PAGE_SIZE])
    menu: list[tuple[str, str]] = []
    options: list[Option] = []
    for index, (value, label) in enumerate(shown, start=1):
        menu.append((str(index), value))
        options.append(Option(str(index), label))
    next_key = len(shown) + 1
    if pages > 1:
        menu.append((str(next_key), "more"))
        options.append(Option(str(next_key), msg(N_("More"))))
        next_key += 1
    for value, label in extra:
        menu.append((str(next_key), value))
        options.append(Option(str(next_key), label))
        next_key += 1
    new_state = state.with_(menu=tuple(menu), page=page)
    return Prompted(new_state, (Ask(question, Expect.choice(tuple(options))),))


def ask_yes_no(state: Conversation, question: Msg, *, say: Sequence[Msg] = ()) -> Prompted:
    replies: list[Reply] = [Say(m) for m in say]
    replies.append(Ask(question, Expect.yes_no(msg(N_("Yes")), msg(N_("No")))))
    return Prompted(state.with_(menu=(("1", "yes"), ("2", "no"))), tuple(replies))


def menu_choice(state: Conversation, text: str, synonyms: dict[str, Sequence[str]] | None = None) -> str | None:
    """The menu value an answer picks: by key, number word, a synonym, or the label
    as the patient saw it (a tapped button sends "key label")."""
    from assistant.engine.parse import match_option

    shown = dict(state.labels)
    options = [(key, list((synonyms or {}).get(value, ())) + ([shown[key]] if key in shown else []))
               for key, value in state.menu]
    key = match_option(text, options)
    return state.menu_value(key) if key is not None else None


def label_choice(state: Conversation, text: str) -> str | None:
    """The menu value whose label, as the patient saw it, the message holds (a tapped
    button): it wins over dates and times read from the same words."""
    from assistant.engine.parse import match_label

    shown = dict(state.labels)
    key = match_label(text, [(key, [shown[key]]) for key, _ in state.menu if key in shown])
    return state.menu_value(key) if key is not None else None


def yes_no_answer(state: Conversation, text: str) -> bool | None:
    """Yes/no words in any language, or the 1/2 keys of the yes/no menu."""
    from assistant.engine.parse import parse_yes_no

    answer = parse_yes_no(text)
    if answer is not None:
        return answer
    picked = menu_choice(state, text)
    return {"yes": True, "no": False}.get(picked or "")


def label(names: dict[str, str]) -> Msg:
    """A label whose text is a per-locale name (a department, a doctor)."""
    from assistant.engine.messages import Names

    return msg("{name}", name=Names(dict(names)))


def managed_booking(ctx: Ctx, code: str | None, claim_last4: str | None = None):
    """The booking being managed: one this address made, or (with the ID's last four)
    one found by its code. None when it is gone or not this caller's to see."""
    if claim_last4 and code:
        return ctx.backend.find_booking(code, claim_last4, ctx.now)
    for booking in ctx.backend.bookings(ctx.now):
        if booking.code == code:
            return booking
    return None


SIMPLE_CHOICE = msg(N_("Please send only the number of your choice, for example 1."))
SIMPLE_YES_NO = msg(N_("Please send 1 for yes or 2 for no."))
