"""A Telegram chat that shared its own phone number speaks for that phone.

Rule: Telegram vouches for the number: the adapter accepts only a contact that is the
sender's own (the contact's user id is the sender's, in a private chat), never a
forwarded one or a typed number. From then on the chat books, lists and cancels as the
phone's address, so a patient finds the same bookings by SMS, by phone and on Telegram.
At linking, everything that gave the chat rights or liabilities moves to the phone: its
patient links, the bookings it made and its suspensions, so linking can neither lose a
booking nor wash a suspension away. The chat's language, STOP and slow speech stay its
own. Linking to another number later leaves what moved with the first number.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, select, update

from assistant.booking import audit, identity, results as r
from assistant.booking.inputs import AddressInput, ServiceContext
from assistant.booking.models import Booking, ChannelAddress, PatientLink, Suspension
from assistant.booking.records import AddressRow, address_actor, lock_address


@dataclass(frozen=True)
class PhoneLinked:
    masked_phone: str  # for the chat's thank-you: never the whole number


def link_phone(ctx: ServiceContext, chat: AddressInput, phone_number: str, *,
               now: datetime) -> PhoneLinked | r.Refusal:
    if chat.kind != "telegram":
        return r.InvalidAddress()
    phone = AddressInput("phone", _with_plus(phone_number))
    with ctx.uow() as uow:
        session = uow.session
        chat_row = lock_address(ctx, session, chat, now)  # the chat first, then the phone: always
        if isinstance(chat_row, r.Refusal):
            return chat_row
        phone_row = lock_address(ctx, session, phone, now)
        if isinstance(phone_row, r.Refusal):
            return phone_row
        masked = identity.mask_phone(ctx.keyring.decrypt(phone_row.address_encrypted) or "")
        if chat_row.phone_address_id == phone_row.id:
            return PhoneLinked(masked)
        moved = _move_rights(session, chat_row.id, phone_row.id)
        chat_row.phone_address_id = phone_row.id
        session.flush()
        audit.append(session, ctx.keyring.audit_key,
                     actor=audit.Actor(address_actor(chat_row), "telegram"),
                     action="address.phone_linked", subject=address_actor(phone_row),
                     details=moved, at=now)
        uow.commit()
        return PhoneLinked(masked)


def _move_rights(session, chat_id: int, phone_id: int) -> dict[str, int]:
    """The chat's links (unless the phone links the patient already), bookings and
    suspensions become the phone's."""
    already = select(PatientLink.patient_id).where(PatientLink.address_id == phone_id)
    links = session.execute(update(PatientLink).where(
        PatientLink.address_id == chat_id, PatientLink.patient_id.not_in(already))
        .values(address_id=phone_id)).rowcount
    session.execute(delete(PatientLink).where(PatientLink.address_id == chat_id))
    bookings = session.execute(update(Booking).where(Booking.booked_by_address_id == chat_id)
                               .values(booked_by_address_id=phone_id)).rowcount
    suspensions = session.execute(update(Suspension).where(Suspension.address_id == chat_id)
                                  .values(address_id=phone_id)).rowcount
    return {"links": links, "bookings": bookings, "suspensions": suspensions}


def speaks_for(ctx: ServiceContext, session, chat: AddressRow) -> AddressInput | None:
    """The phone a chat speaks for, if it shared one."""
    if chat.phone_address_id is None:
        return None
    phone = session.get(ChannelAddress, chat.phone_address_id)
    value = ctx.keyring.decrypt(phone.address_encrypted) if phone is not None else None
    return AddressInput("phone", value) if value else None


def _with_plus(number: str) -> str:
    """Telegram sends the number in international form, with or without its '+'."""
    digits = "".join(ch for ch in (number or "") if ch.isdigit())
    return f"+{digits}" if digits else ""
