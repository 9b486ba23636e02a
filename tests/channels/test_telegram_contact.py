"""Telegram's "share my phone number" button: a chat that shares its own number speaks
for that phone; anything else links nothing. Through POST /telegram with Bot API updates,
on SQLite and PostgreSQL, tested as an attacker would try it: a forwarded contact card,
a typed number, a group chat, a replay.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from assistant.booking import results as r, service
from assistant.booking.inputs import AddressInput
from assistant.booking.models import AuditEvent, ChannelAddress, Slot, Suspension
from tests.channels.conftest import post_update as post
from tests.support import person

CHAT = 2222222
VICTIM_CHAT = 3333333
PHONE = "+8613800138000"


@pytest.fixture
def client(telegram_client):
    return telegram_client


def message(update_id: int, chat: int = CHAT, sender: int = CHAT, chat_type: str = "private", **content) -> dict:
    """A message as the Bot API sends it (text or contact)."""
    chat_data = {"id": chat, "type": chat_type, "first_name": "Li"}
    if chat_type != "private":
        chat_data = {"id": chat, "type": chat_type, "title": "Family"}
    return {"update_id": update_id, "message": {
        "message_id": 500 + update_id, "date": 1796000000, "chat": chat_data,
        "from": {"id": sender, "is_bot": False, "first_name": "Li", "language_code": "en"}, **content}}


def said(client, update_id: int, body: str, **kw) -> dict:
    return post(client, message(update_id, text=body, **kw)).get_json()


def shared(client, update_id: int, phone: str = PHONE, user_id: int | None = CHAT, **kw) -> dict:
    contact = {"phone_number": phone, "first_name": "Li"}
    if user_id is not None:
        contact["user_id"] = user_id
    return post(client, message(update_id, contact=contact, **kw)).get_json()


def share_button(reply: dict) -> dict | None:
    rows = reply.get("reply_markup", {}).get("keyboard", [])
    found = [button for row in rows for button in row if button.get("request_contact")]
    return found[0] if found else None


def my_bookings(client, first_update: int) -> str:
    """MENU, then the button labelled "My bookings": what the chat is shown (its text
    and its buttons)."""
    menu = said(client, first_update, "menu")
    label = next(button["text"] for row in menu["reply_markup"]["keyboard"] for button in row
                 if "My bookings" in button["text"])
    shown = said(client, first_update + 1, label)
    buttons = [button["text"] for row in shown["reply_markup"].get("keyboard", []) for button in row]
    return "\n".join([shown["text"], *buttons])


def try_booking(app, address: AddressInput, now, name: str) -> list[r.Booked | r.Refusal]:
    """Book `name` from `address` (the service layer, as the SMS channel calls it) in the
    first open slot that takes it; every result, in order."""
    with app.services.uow.read_only() as uow:
        slots = uow.session.execute(select(Slot.id).where(Slot.release_at <= now, Slot.starts_at > now,
                                                          Slot.booked < Slot.capacity)
                                    .order_by(Slot.starts_at)).scalars().all()
    results = []
    for slot_id in slots:
        results.append(service.book_slot(app.services, slot_id=slot_id, channel="sms", now=now,
                                         identity_input=person(name), booked_by=address))
        if isinstance(results[-1], r.Booked):
            break
    return results


def book_by_sms(app, address: AddressInput, now, name: str) -> str:
    """A booking for `name`; lists show it by the patient's name."""
    assert isinstance(try_booking(app, address, now, name)[-1], r.Booked)
    return name


def linked_phone_ids(app) -> list[int | None]:
    with app.services.uow.read_only() as uow:
        return uow.session.execute(select(ChannelAddress.phone_address_id)
                                   .where(ChannelAddress.kind == "telegram")).scalars().all()


def test_the_button_is_offered_until_the_chat_shares_its_own_number(client):
    first = said(client, 1, "/start")
    button = share_button(first)
    assert button == {"text": "Share my phone number", "request_contact": True}
    linked = shared(client, 2)
    assert "This chat now works with your phone number +86" in linked["text"]
    assert "8000" in linked["text"] and PHONE not in linked["text"]  # masked
    assert "Who is the appointment for?" in linked["text"]  # the question, asked again
    assert share_button(linked) is None
    assert share_button(said(client, 3, "menu")) is None


def test_a_shared_own_number_brings_the_bookings_made_from_that_phone(client, telegram_app, now):
    patient = book_by_sms(telegram_app, AddressInput("phone", PHONE), now, "Zhao Lan")
    said(client, 1, "/start")
    assert patient not in my_bookings(client, 2)
    shared(client, 4)
    assert patient in my_bookings(client, 5)


def test_bookings_the_chat_made_before_sharing_stay_visible_and_reach_the_phone(client, telegram_app, now):
    patient = book_by_sms(telegram_app, AddressInput("telegram", str(CHAT)), now, "Zhao Lan")
    said(client, 1, "/start")
    assert patient in my_bookings(client, 2)
    shared(client, 4)
    assert patient in my_bookings(client, 5)
    by_phone = service.address_bookings(telegram_app.services, AddressInput("phone", PHONE), now=now)
    assert len(by_phone) == 1


@pytest.mark.parametrize("how", ["forwarded", "typed", "group"])
def test_someone_elses_contact_links_nothing_and_shows_nothing(client, telegram_app, now, how):
    victims_booking = book_by_sms(telegram_app, AddressInput("phone", PHONE), now, "Zhao Lan")
    said(client, 1, "/start")
    if how == "forwarded":  # the victim's own card, forwarded: its user id is the victim's
        reply = shared(client, 2, user_id=VICTIM_CHAT)
    elif how == "typed":  # a number typed into a contact card: no user id
        reply = shared(client, 2, user_id=None)
    else:  # the attacker's own user id, but in a group chat
        said(client, 1, "/start", chat=-100777, chat_type="group")
        reply = shared(client, 2, chat=-100777, chat_type="group")
    assert "Please share your own number" in reply["text"]
    assert share_button(reply) is not None
    assert all(phone_id is None for phone_id in linked_phone_ids(telegram_app))
    assert victims_booking not in my_bookings(client, 10)


def test_a_replayed_contact_answers_the_same_and_links_once(client, telegram_app):
    said(client, 1, "/start")
    first = shared(client, 2)
    assert shared(client, 2) == first
    with telegram_app.services.uow.read_only() as uow:
        actions = uow.session.execute(select(AuditEvent.action)).scalars().all()
    assert actions.count("address.phone_linked") == 1


def test_the_link_moves_a_suspension_with_the_rights_so_it_is_not_washed_away(client, telegram_app, now):
    said(client, 1, "/start")
    service.remember_locale(telegram_app.services, AddressInput("telegram", str(CHAT)), "en",
                            patient_ref=None, now=now)  # the chat's address row
    with telegram_app.services.uow() as uow:
        chat_id = uow.session.execute(select(ChannelAddress.id).where(
            ChannelAddress.kind == "telegram")).scalar_one()
        uow.session.add(Suspension(address_id=chat_id, rule="cancellations", starts_at=now,
                                   ends_at=now.replace(year=now.year + 1)))
        uow.commit()
    shared(client, 2)
    with telegram_app.services.uow.read_only() as uow:
        phone_id = uow.session.execute(select(ChannelAddress.id).where(ChannelAddress.kind == "phone")).scalar_one()
        suspended = uow.session.execute(select(Suspension.address_id)).scalars().all()
    assert suspended == [phone_id]
    results = try_booking(telegram_app, AddressInput("phone", PHONE), now, "Zhao Lan")
    assert not any(isinstance(result, r.Booked) for result in results)
    assert any(isinstance(result, r.Suspended) for result in results)


def test_the_chat_keeps_its_own_stop_and_the_number_is_never_stored_in_plain_text(client, telegram_app, now):
    said(client, 1, "/start")
    shared(client, 2)
    said(client, 3, "STOP")
    assert service.address_profile(telegram_app.services, AddressInput("telegram", str(CHAT))).opted_out
    assert not service.address_profile(telegram_app.services, AddressInput("phone", PHONE)).opted_out
    digits = PHONE.lstrip("+")
    with telegram_app.services.uow.read_only() as uow:
        for table in ("channel_address", "audit_event", "processed_event", "conversation"):
            rows = uow.session.execute(text(f"SELECT * FROM {table}")).all()
            assert not any(digits in str(value) for row in rows for value in row), table
