"""The conversation state: plain data that round-trips through JSON.

Rule: `Conversation` holds everything the engine needs between two messages and nothing
it can recompute. It is immutable; `handle` returns a new one. `to_json` and
`from_json` carry a version number; a stored state of another version is not guessed
at: the conversation starts over, keeping its language. The state may hold a patient's
ID number and name while they are being typed in, so whoever stores it must encrypt it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from datetime import date, datetime
from typing import Any

STATE_VERSION = 1


@dataclass(frozen=True)
class IdentityDraft:
    """A new patient's identity as typed so far."""

    id_kind: str | None = None
    id_number: str | None = None
    id_last4: str | None = None
    name: str | None = None
    birth_date: date | None = None
    document: str | None = None  # a generic ID's document type and issuing country
    country: str | None = None


@dataclass(frozen=True)
class Conversation:
    step: str = "menu"
    locale: str | None = None
    patient_ref: int | None = None  # a linked patient chosen from the list
    relation: str | None = None  # self | family
    draft: IdentityDraft | None = None  # a new patient being identified
    department_id: int | None = None
    department_group: str | None = None  # the area listed, in a large hospital's menu
    candidates: tuple[int, ...] = ()  # departments offered after "did you mean"
    # What the first message already asked for ("book cardiology tomorrow morning"),
    # used once when the conversation reaches that question.
    intent_department: int | None = None
    intent_day: date | None = None
    intent_part: str | None = None
    # Days a quota refusal rules out, left out of the soonest times from then on.
    skip_days: tuple[date, ...] = ()
    not_before: date | None = None
    day: date | None = None
    day_part: str | None = None  # morning | afternoon
    slot_id: int | None = None
    slot_start: datetime | None = None
    # A request instead of a booking (a draw, or a full day's waiting list): the day and
    # morning | afternoon | any.
    request_day: date | None = None
    request_part: str | None = None
    booking_code: str | None = None  # the booking being managed
    # With a booking code someone else's booking was found by: the ID's last four.
    claim_last4: str | None = None
    rescheduling: bool = False
    resume: str | None = None  # the step to return to after choosing a language
    menu: tuple[tuple[str, str], ...] = ()  # option key -> value shown in the last prompt
    # option key -> its label as the patient saw it, so a tapped button is understood
    labels: tuple[tuple[str, str], ...] = ()
    page: int = 0
    retries: int = 0
    silences: int = 0
    updated_at: datetime | None = None
    version: int = STATE_VERSION

    def with_(self, **changes: Any) -> "Conversation":
        return replace(self, **changes)

    def menu_value(self, key: str) -> str | None:
        return dict(self.menu).get(key)

    def fresh(self) -> "Conversation":
        """A new conversation that keeps only the language."""
        return Conversation(locale=self.locale)


def to_json(state: Conversation) -> str:
    # Field by field rather than asdict(), which deep-copies every tuple first; the JSON
    # is the same (tuples become lists either way).
    data = {name: getattr(state, name) for name in _CONVERSATION_FIELDS}
    if state.draft is not None:
        data["draft"] = {name: getattr(state.draft, name) for name in _DRAFT_FIELDS}
    return json.dumps(data, default=_encode, ensure_ascii=False, sort_keys=True)


_CONVERSATION_FIELDS = tuple(f.name for f in fields(Conversation))
_DRAFT_FIELDS = tuple(f.name for f in fields(IdentityDraft))


def from_json(text: str | None) -> Conversation | None:
    """None for nothing stored; a fresh state (same language) for another version."""
    if not text:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if data.get("version") != STATE_VERSION:
        locale = data.get("locale") if isinstance(data.get("locale"), str) else None
        return Conversation(locale=locale)
    try:
        return _decode_conversation(data)
    except (KeyError, TypeError, ValueError):
        return Conversation(locale=data.get("locale") if isinstance(data.get("locale"), str) else None)


def _encode(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _decode_conversation(data: dict[str, Any]) -> Conversation:
    known = {f.name for f in fields(Conversation)}
    values = {k: v for k, v in data.items() if k in known}
    if values.get("draft") is not None:
        draft = dict(values["draft"])
        if draft.get("birth_date"):
            draft["birth_date"] = date.fromisoformat(draft["birth_date"])
        values["draft"] = IdentityDraft(**draft)
    values["skip_days"] = tuple(date.fromisoformat(d) for d in values.get("skip_days", ()))
    for name in ("day", "intent_day", "not_before", "request_day"):
        if values.get(name):
            values[name] = date.fromisoformat(values[name])
    for name in ("slot_start", "updated_at"):
        if values.get(name):
            values[name] = datetime.fromisoformat(values[name])
    values["menu"] = tuple(tuple(pair) for pair in values.get("menu", ()))
    values["labels"] = tuple(tuple(pair) for pair in values.get("labels", ()))
    values["candidates"] = tuple(values.get("candidates", ()))
    return Conversation(**values)
