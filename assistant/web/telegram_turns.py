"""One Telegram update through the engine, for the webhook and for polling alike.

Rule: options become big reply-keyboard buttons, one to a row. A contact the patient
shares is linked here, before the turn, and only when it is the sender's own (Telegram
then vouches for the number); a forwarded contact or someone else's card links nothing.
The turn after a contact asks the current question again, under a line that says what
happened. Nothing a patient sends makes this fail: an error becomes a kind apology.
"""

from __future__ import annotations

import logging

from assistant import conversations
from assistant.booking import service
from assistant.booking.inputs import AddressInput
from assistant.channels.telegram import (
    CONTACT_NOT_OWN,
    PHONE_LINKED,
    PHONE_NOT_LINKED,
    SHARE_PHONE,
    render_telegram,
    offers_phone_sharing,
)
from assistant.channels.render import APOLOGY
from assistant.engine.messages import Inbound, InboundKind, Msg, msg

log = logging.getLogger(__name__)


def telegram_reply(app, renderer, update: dict) -> dict | None:
    """The reply as a `sendMessage` call (a dict the webhook returns as its body, and
    polling sends), or None when there is nothing to say."""
    from telegram import Update

    parsed = Update.de_json(update, None)
    message = parsed.effective_message if parsed else None
    if message is None or message.chat is None or not (message.text or message.contact):
        return None  # edits, stickers, joins: nothing to answer
    chat_id = message.chat.id
    language = parsed.effective_user.language_code if parsed.effective_user else None
    event_id = str(parsed.update_id)
    notice: Msg | None = None
    try:
        if message.contact is not None:
            notice = _link_contact(app, message)
            inbound = Inbound(kind=InboundKind.RESUME, language_hint=language, event_id=event_id)
        else:
            inbound = text_inbound(message.text or "", language, event_id)
        result = conversations.run_turn(app.services, "telegram", str(chat_id), inbound, app.clock(),
                                        renderer)
    except Exception as exc:
        log.error("a Telegram turn could not be handled: %s", type(exc).__name__)
        return {"method": "sendMessage", "chat_id": chat_id,
                "text": renderer.text(msg(APOLOGY), app.settings.default_locale)}
    if result.turn.ended:
        return None  # STOP: no more messages
    locale = result.turn.state.locale or app.settings.default_locale
    rendered = render_telegram(result.turn.replies, locale, renderer)
    texts = ([renderer.text(notice, locale)] if notice is not None else []) + list(rendered.messages)
    share = (renderer.text(msg(SHARE_PHONE), locale)
             if not result.phone_linked and offers_phone_sharing(result.turn.state.step, rendered)
             else None)
    return {"method": "sendMessage", "chat_id": chat_id, "text": "\n\n".join(texts),
            "reply_markup": _keyboard(rendered.buttons, share)}


def text_inbound(text: str, language: str | None, event_id: str) -> Inbound:
    if text.strip().split("@")[0] == "/start":
        return Inbound(kind=InboundKind.START, language_hint=language, event_id=event_id)
    return Inbound(text, language_hint=language, event_id=event_id)


def _link_contact(app, message) -> Msg:
    """Link the number when the contact is the sender's own, in a private chat."""
    contact, sender = message.contact, message.from_user
    own = (sender is not None and contact.user_id is not None and contact.user_id == sender.id
           and message.chat.type == "private")
    if not own:
        log.info("a Telegram contact that is not the sender's own was not linked")
        return msg(CONTACT_NOT_OWN)
    linked = service.link_phone(app.services, AddressInput("telegram", str(message.chat.id)),
                                contact.phone_number or "", now=app.clock())
    if isinstance(linked, service.PhoneLinked):
        return msg(PHONE_LINKED, phone=linked.masked_phone)
    return msg(PHONE_NOT_LINKED)


def _keyboard(rows: tuple[tuple[str, ...], ...], share_label: str | None) -> dict:
    from telegram import KeyboardButton, ReplyKeyboardMarkup, ReplyKeyboardRemove

    buttons = [[KeyboardButton(row[0])] for row in rows]
    if share_label is not None:
        buttons.append([KeyboardButton(share_label, request_contact=True)])
    if not buttons:
        return ReplyKeyboardRemove().to_dict()
    return ReplyKeyboardMarkup(buttons, resize_keyboard=True, one_time_keyboard=True).to_dict()
