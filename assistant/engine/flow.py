"""The transition table: which step may follow which, and where `*` goes back to.

Rule: this table is the only place steps are named and linked. Step handlers return
`Go(step, …)`; the engine checks every move against `TRANSITIONS` and refuses any move
the table doesn't list. docs/flows.md is generated from this table
(`python -m assistant.engine.flow > docs/flows.md`), and a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass


class Step:
    MENU = "menu"
    LANGUAGE = "language"
    WHO = "who"
    ID_NUMBER = "id_number"
    NAME = "name"
    BIRTH_DATE = "birth_date"
    DEPARTMENT = "department"
    DAY = "day"
    DAY_PART = "day_part"
    TIME = "time"
    SOONEST = "soonest"
    CONFIRM = "confirm"
    FIX = "fix"
    BOOKINGS = "bookings"
    BOOKING_ACTION = "booking_action"
    CANCEL_CONFIRM = "cancel_confirm"
    CLAIM_CODE = "claim_code"
    CLAIM_LAST4 = "claim_last4"
    ID_DOCUMENT = "id_document"
    ID_COUNTRY = "id_country"
    REQUEST = "request"
    QUESTION = "question"


@dataclass(frozen=True)
class StepSpec:
    back: str  # where `*` leads
    next: tuple[str, ...]  # where an answer may lead
    purpose: str  # one line for the diagram


S = Step
TRANSITIONS: dict[str, StepSpec] = {
    S.MENU: StepSpec(S.MENU, (S.WHO, S.SOONEST, S.DEPARTMENT, S.BOOKINGS),
                     "book again, book for a listed patient, book, my bookings (a new address: who)"),
    S.LANGUAGE: StepSpec(S.MENU, (S.MENU,), "choose a language (returns where it left)"),
    S.WHO: StepSpec(S.MENU, (S.ID_NUMBER, S.DEPARTMENT, S.BOOKINGS), "for a linked patient, me, or someone else"),
    S.ID_NUMBER: StepSpec(S.WHO, (S.NAME, S.ID_DOCUMENT, S.ID_COUNTRY), "a new patient's ID number"),
    S.ID_DOCUMENT: StepSpec(S.ID_NUMBER, (S.ID_COUNTRY,), "a generic ID's document type"),
    S.ID_COUNTRY: StepSpec(S.ID_NUMBER, (S.NAME,), "a generic ID's issuing country"),
    S.NAME: StepSpec(S.ID_NUMBER, (S.DEPARTMENT, S.BIRTH_DATE), "the name on the ID"),
    S.BIRTH_DATE: StepSpec(S.NAME, (S.DEPARTMENT,), "the birth date, for IDs that don't carry it"),
    S.DEPARTMENT: StepSpec(S.WHO, (S.SOONEST, S.DAY), "which department (a word, or a menu)"),
    S.DAY: StepSpec(S.DEPARTMENT, (S.DAY_PART, S.TIME, S.REQUEST, S.CONFIRM),
                    "which day (listed, or free text; none free: a waiting list)"),
    S.DAY_PART: StepSpec(S.DAY, (S.TIME,), "morning or afternoon"),
    S.TIME: StepSpec(S.DAY, (S.CONFIRM,), "which time"),
    S.SOONEST: StepSpec(S.DEPARTMENT, (S.CONFIRM, S.DAY, S.TIME, S.SOONEST, S.REQUEST),
                        "the soonest free times, another day, or a typed date or time (a draw: requests)"),
    S.REQUEST: StepSpec(S.DEPARTMENT, (S.CONFIRM, S.DAY),
                        "a draw's days to request, or full days' waiting lists, by part of the day"),
    S.CONFIRM: StepSpec(S.SOONEST, (S.MENU, S.SOONEST, S.DAY, S.FIX, S.ID_NUMBER, S.REQUEST),
                        "read back (with a new ID's birth date), then book or request on yes"),
    S.QUESTION: StepSpec(S.MENU, (S.MENU,), "answer an offer from the waitlist or a reminder: 1 or 2"),
    S.FIX: StepSpec(S.SOONEST, (S.SOONEST, S.ID_NUMBER), "after a no: the time, or the name or ID"),
    S.BOOKINGS: StepSpec(S.MENU, (S.BOOKING_ACTION, S.WHO, S.CLAIM_CODE), "list the bookings this address made"),
    S.CLAIM_CODE: StepSpec(S.BOOKINGS, (S.CLAIM_LAST4,), "a booking someone else made: its code"),
    S.CLAIM_LAST4: StepSpec(S.CLAIM_CODE, (S.BOOKING_ACTION, S.BOOKINGS), "… and the ID's last four characters"),
    S.BOOKING_ACTION: StepSpec(S.BOOKINGS, (S.CANCEL_CONFIRM, S.SOONEST, S.BOOKINGS), "cancel or change one booking"),
    S.CANCEL_CONFIRM: StepSpec(S.BOOKING_ACTION, (S.MENU,), "confirm the cancellation"),
}


class FlowError(RuntimeError):
    """A handler tried a move the table doesn't allow: a bug, never the patient's."""


def check_move(current: str, target: str) -> None:
    """Moves to the menu and to the language step are always allowed (global keys), and
    the language step returns to wherever it was called from."""
    if target in (S.MENU, S.LANGUAGE) or target == current or current == S.LANGUAGE:
        return
    spec = TRANSITIONS.get(current)
    if spec is None or (target not in spec.next and target != spec.back):
        raise FlowError(f"{current} -> {target} is not in the transition table")


def back_of(step: str) -> str:
    spec = TRANSITIONS.get(step)
    return spec.back if spec else S.MENU


def mermaid() -> str:
    """The flow diagram, generated from TRANSITIONS."""
    lines = ["# Conversation flow", "",
             "Generated from `assistant/engine/flow.py` by "
             "`python -m assistant.engine.flow > docs/flows.md`; do not edit by hand.", "",
             "Every step also accepts the global keys: 0 a person, 9 repeat, * back, "
             "8 language, HELP, MENU, STOP and START.", "",
             "```mermaid", "flowchart TD"]
    for step, spec in TRANSITIONS.items():
        lines.append(f'    {step}["{step}: {spec.purpose}"]')
    for step, spec in TRANSITIONS.items():
        for target in spec.next:
            lines.append(f"    {step} --> {target}")
        if spec.back != step:
            lines.append(f"    {step} -. \"*\" .-> {spec.back}")
    lines.append("```")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    print(mermaid(), end="")
