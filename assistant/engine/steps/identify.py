"""Who the booking is for: a linked patient, or a new identity typed in.

Rule: a returning address picks from the patients it has booked for ("1 Wang Fang,
2 Li Wei, 3 someone else"). A new patient gives an ID number, the name on it and a
birth date; a Chinese resident ID carries the birth date, which the final read-back
names for a yes (a wrong one there leads back to the ID number). A generic ID (a passport, when the hospital accepts them) also needs its document
type and issuing country. The backend checks each field as it arrives, so a typo is
caught at once, not at the end. Nothing said here tells whether an ID number is on file.
"""

from __future__ import annotations

from dataclasses import replace

from assistant.engine.flow import Step
from assistant.engine.parse import option_words
from assistant.engine.messages import N_, Msg, msg
from assistant.engine.state import Conversation, IdentityDraft
from assistant.engine.steps.base import (
    SIMPLE_CHOICE, Answer, Ctx, Go, Prompted, PromptResult, Retry, StepHandlers, ask_menu,
    menu_choice,
)
from assistant.engine.messages import Ask, Expect, ExpectKind

def who_words() -> dict[str, list[str]]:
    """Words for "for me" and "for someone else", in every language (words.toml)."""
    return {"me": option_words("who_me"), "other": option_words("who_other")}

ID_HINTS: dict[str, Msg] = {
    "length": msg(N_("An ID card number has 18 characters. Please check it and send it again.")),
    "checksum": msg(N_("That ID number does not look right. Please check each digit and send it again.")),
    "characters": msg(N_("An ID number has only digits, and maybe X at the end. Please send it again.")),
    "birth_date_invalid": msg(N_("The birth date inside that ID number is not a real date. Please check it.")),
    "pattern": msg(N_("That ID number does not look right. Please check it and send it again.")),
    "contains_resident_id": msg(N_("That holds a resident ID number. Please send the resident ID number alone.")),
    "empty": msg(N_("Please send the ID number.")),
}

# Labels of generic document types; a type without one is shown by its code.
DOCUMENT_LABELS = {"passport": N_("Passport")}


def _is_family(state: Conversation) -> bool:
    return state.relation == "family"


# ---- who ---------------------------------------------------------------------------------


def who_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    linked = list(ctx.backend.linked_patients())[:4]
    items = [(f"patient:{p.ref}", msg("{name}", name=p.name)) for p in linked]
    if not any(p.relation == "self" for p in linked):
        items.append(("me", msg(N_("For me"))))
    items.append(("other", msg(N_("For someone else"))))
    if not linked:
        # A new address skipped the menu: its bookings (made for it by others) are here.
        items.append(("bookings", msg(N_("My bookings: check, cancel or change"))))
    return ask_menu(state, msg(N_("Who is the appointment for?")), items)


def who_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import match_label, parse_choice

    if parse_choice(text) is None:
        said = match_label(text, [("bookings", option_words("my_bookings")), ("book", option_words("book"))])
        if said == "bookings":  # "my bookings", 我的预约, mis citas: also for a returning address
            return Go(Step.BOOKINGS, state.with_(page=0))
        if said == "book":  # "book", 预约, cita: that is what this question is for
            return Go(Step.WHO, state)
    choice = menu_choice(state, text, who_words())
    if choice is None:
        return Retry()
    if choice == "bookings":
        return Go(Step.BOOKINGS, state.with_(page=0))
    if choice.startswith("patient:"):
        return Go(Step.DEPARTMENT, state.with_(patient_ref=int(choice.split(":")[1]),
                                               relation="linked", draft=None))
    relation = "self" if choice == "me" else "family"
    return Go(Step.ID_NUMBER, state.with_(patient_ref=None, relation=relation, draft=IdentityDraft()))


# ---- ID number ---------------------------------------------------------------------------


def id_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    question = (msg(N_("Please send their ID card number."))
                if _is_family(state) else msg(N_("Please send your ID card number.")))
    return Prompted(state.with_(menu=()), (Ask(question, Expect(ExpectKind.ID_NUMBER, digits=18)),))


def id_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    check = ctx.backend.check_id_number(text, ctx.today)
    if not check.ok:
        return Retry(ID_HINTS.get(check.reason or "", ID_HINTS["pattern"]))
    draft = IdentityDraft(id_kind=check.kind, id_number=check.value, id_last4=check.last4,
                          birth_date=check.birth_date)
    if check.kind == "generic":
        # A generic number is one person's only within its document type and country.
        documents = ctx.hospital.generic_documents
        if len(documents) == 1:
            return Go(Step.ID_COUNTRY, state.with_(draft=replace(draft, document=documents[0])))
        return Go(Step.ID_DOCUMENT, state.with_(draft=draft))
    return Go(Step.NAME, state.with_(draft=draft))


# ---- a generic ID: document type and issuing country -------------------------------------


def document_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    items = [(document, msg(DOCUMENT_LABELS[document]) if document in DOCUMENT_LABELS
              else msg("{name}", name=document)) for document in ctx.hospital.generic_documents]
    return ask_menu(state, msg(N_("What kind of document is it?")), items)


def document_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    choice = menu_choice(state, text)
    if choice is None:
        return Retry()
    return Go(Step.ID_COUNTRY, state.with_(draft=replace(state.draft or IdentityDraft(), document=choice)))


def country_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    return Prompted(state.with_(menu=()), (Ask(msg(N_(
        "Which country issued it? Send its name or its two-letter code.")), Expect(ExpectKind.TEXT)),))


def country_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    country = ctx.backend.check_country(text, state.locale or ctx.hospital.default_locale)
    if country is None:
        return Retry(msg(N_("I did not find that country. Please send its name, for example France, or a code like FR.")))
    return Go(Step.NAME, state.with_(draft=replace(state.draft or IdentityDraft(), country=country)))


# ---- name ----------------------------------------------------------------------------------


def name_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    question = (msg(N_("What is their full name, as on the ID card?"))
                if _is_family(state) else msg(N_("What is your full name, as on the ID card?")))
    return Prompted(state.with_(menu=()), (Ask(question, Expect(ExpectKind.NAME)),))


def name_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    name = ctx.backend.check_name(text)
    if name is None:
        return Retry(msg(N_("Please send the name in letters, as written on the ID card.")))
    draft = replace(state.draft or IdentityDraft(), name=name)
    # A resident ID carries the birth date: the final read-back names it for a yes.
    step = Step.DEPARTMENT if draft.birth_date else Step.BIRTH_DATE
    return Go(step, state.with_(draft=draft))


# ---- birth date ----------------------------------------------------------------------------


def birth_date_prompt(state: Conversation, ctx: Ctx) -> PromptResult:
    question = (msg(N_("What is their date of birth? For example 1950-03-07."))
                if _is_family(state) else msg(N_("What is your date of birth? For example 1950-03-07.")))
    return Prompted(state.with_(menu=()), (Ask(question, Expect(ExpectKind.BIRTH_DATE)),))


def birth_date_answer(state: Conversation, text: str, ctx: Ctx) -> Answer:
    from assistant.engine.parse import parse_birth_date

    born = parse_birth_date(text, day_first=state.locale == "es")
    if born is None or born > ctx.today or born.year < 1900:
        return Retry(msg(N_("Please send the date of birth as year-month-day, for example 1950-03-07.")))
    draft = replace(state.draft or IdentityDraft(), birth_date=born)
    return Go(Step.DEPARTMENT, state.with_(draft=draft))


STEPS = {
    Step.WHO: StepHandlers(who_prompt, who_answer, SIMPLE_CHOICE),
    Step.ID_DOCUMENT: StepHandlers(document_prompt, document_answer, SIMPLE_CHOICE),
    Step.ID_COUNTRY: StepHandlers(country_prompt, country_answer, msg(N_(
        "Please send only the country's name, or its two-letter code."))),
    Step.ID_NUMBER: StepHandlers(id_prompt, id_answer, msg(N_(
        "Please send only the digits of the ID number, and X if it ends with X. On a phone keypad, press * for X."))),
    Step.NAME: StepHandlers(name_prompt, name_answer, msg(N_("Please send only the name, as on the ID card."))),
    Step.BIRTH_DATE: StepHandlers(birth_date_prompt, birth_date_answer, msg(N_(
        "Please send the date of birth like this: 1950-03-07."))),
}
