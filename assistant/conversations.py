"""run_turn: one inbound message through the engine, with state and replay handled.

Rule: this is the loop every channel shares. It (1) returns the stored replies when the
event was handled before, (2) loads the conversation, (3) runs the engine, then (4)
claims the event, saves the new state (optimistic lock) and stores the replies. Steps
1-3 read in one transaction; everything the turn writes (a booking, a cancellation, the
state and the replies) is one write transaction, committed once: a patient is never
booked by a turn whose answer was lost, and a turn that failed half-way keeps none of
its writes. State and stored replies are encrypted: they can hold a name or an ID
number. Logs name the conversation only by its blinded address.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Mapping

from assistant.booking import driver, statements as sql
from assistant.booking.inputs import ServiceContext
from assistant.conversation_backend import ServiceBackend, address_for
from assistant.engine import Turn, handle
from assistant.engine import messages as m
from assistant.engine.state import Conversation, from_json, to_json

log = logging.getLogger(__name__)

SAVE_ATTEMPTS = 3


@dataclass(frozen=True)
class TurnResult:
    turn: Turn
    replayed: bool = False
    # The address asked to be spoken to slowly (the phone applies it); read with the turn.
    slow_speech: bool = False
    # A Telegram chat that shared its own number (it no longer needs the share button).
    phone_linked: bool = False


def run_turn(ctx: ServiceContext, channel: str, address: str, inbound: m.Inbound,
             now: datetime, renderer=None, *, address_kind: str | None = None) -> TurnResult:
    """`renderer` (channels.render.Renderer) lets the engine understand an option's
    label sent back as the patient saw it (a tapped button). `address_kind` overrides the
    kind the channel's addresses have (conversation_backend.ADDRESS_KIND): the /try
    simulator runs a real "sms", "voice" or "telegram" conversation for a "console"
    address, so its bookings and notices never reach a real phone or chat."""
    expiry = ctx.settings.conversation.expiry(channel)
    address_index = _address_index(ctx, channel, address, address_kind)
    event_key = f"turn:{channel}:{inbound.event_id}" if inbound.event_id else None
    for _ in range(SAVE_ATTEMPTS):
        with ctx.uow.one_write() as write:
            # The replay check, the load and every question the engine asks: one read transaction.
            with ctx.uow.shared_reads():
                backend = ServiceBackend(ctx, channel, address, renderer, address_kind)
                stored = _stored_turn(ctx, event_key) if event_key is not None else None
                if stored is not None:
                    return TurnResult(stored, replayed=True, slow_speech=backend.speaks_slowly(),
                                      phone_linked=backend.speaks_for_a_phone())
                state, version = _load(ctx, channel, address_index)
                turn = handle(state, inbound, backend, now, expiry=expiry)
                slow, linked = backend.speaks_slowly(), backend.speaks_for_a_phone()
            if turn.error:
                log.error("engine error in %s conversation %s: %s", channel, address_index[:12], turn.error)
                write.rollback()  # keep nothing the failed turn wrote; save its apology state
            saved = _save(ctx, channel, address_index, version, turn, event_key, now)
            if saved is not None:
                if not saved.replayed:
                    write.commit()
                return replace(saved, slow_speech=slow, phone_linked=linked)
        # Another message of this conversation was saved in between: run again on it.
    log.warning("conversation %s kept changing; answering without saving", address_index[:12])
    return TurnResult(turn, slow_speech=slow, phone_linked=linked)


def _address_index(ctx: ServiceContext, channel: str, address: str,
                   address_kind: str | None = None) -> str:
    kind = address_for(channel, address, address_kind).kind
    return ctx.keyring.blind_index(f"conversation:{channel}:{kind}", address.strip())


def _load(ctx: ServiceContext, channel: str, address_index: str) -> tuple[Conversation | None, int | None]:
    with ctx.uow.read_only() as uow:
        row = _cursor(uow).run(sql.CONVERSATION_STATE, {
            "channel": channel, "address_index": address_index}).first()
        if row is None:
            return None, None
        return from_json(ctx.keyring.decrypt(row.state_encrypted)), row.version


def _save(ctx: ServiceContext, channel: str, address_index: str, version: int | None, turn: Turn,
          event_key: str | None, now: datetime) -> TurnResult | None:
    state = to_json(turn.state)
    with ctx.uow() as uow:
        db = _cursor(uow)
        if event_key is not None:
            # The claim carries the replies, for replays: one statement.
            replies = {"turn": ctx.keyring.encrypt(_encode_turn(turn, state))}
            if db.run(sql.STORE_RESULT, {"key": event_key, "now": now, "result": replies}).first() is None:
                stored = db.run(sql.REPLAYED_RESULT, {"key": event_key}).scalar()
                return TurnResult(_decode_turn(ctx, stored), replayed=True)
        values = {"channel": channel, "address_index": address_index,
                  "state": ctx.keyring.encrypt(state), "now": now}
        if version is None:
            saved = db.run(sql.INSERT_CONVERSATION, values).first()
        else:
            saved = db.run(sql.UPDATE_CONVERSATION, {**values, "version": version}).first()
        if saved is None:
            return None
        uow.commit()
        return TurnResult(turn)


def _stored_turn(ctx: ServiceContext, event_key: str) -> Turn | None:
    with ctx.uow.read_only() as uow:
        stored = _cursor(uow).run(sql.REPLAYED_RESULT, {"key": event_key}).scalar()
        return _decode_turn(ctx, stored) if stored else None


def _cursor(uow) -> driver.Cursor:
    """A turn's own fixed statements run on the driver's cursor (booking/driver.py): they
    run on every message, and SQLAlchemy's work around each cost more than the statement."""
    return driver.Cursor(uow.session.connection())


# ---- replies as JSON, for replays ---------------------------------------------------------


def _encode_turn(turn: Turn, state_json: str) -> str:
    return json.dumps({"state": state_json, "ended": turn.ended,
                       "replies": [_encode_reply(r) for r in turn.replies]}, ensure_ascii=False)


def _decode_turn(ctx: ServiceContext, result: Mapping[str, Any]) -> Turn:
    data = json.loads(ctx.keyring.decrypt(result["turn"]) or "{}")
    return Turn(from_json(data.get("state")) or Conversation(),
                tuple(_decode_reply(r) for r in data.get("replies", [])), ended=data.get("ended", False))


def _encode_msg(msg: m.Msg) -> dict:
    return {"text": msg.text, "params": {k: _encode_param(v) for k, v in msg.params.items()}}


def _encode_param(value: Any) -> Any:
    if isinstance(value, m.Msg):
        return {"msg": _encode_msg(value)}
    if isinstance(value, m.Names):
        return {"names": dict(value.by_locale)}
    if isinstance(value, m.When):
        return {"when": value.value.isoformat(), "style": value.style,
                "is_date": not isinstance(value.value, datetime)}
    return value


def _decode_msg(data: dict) -> m.Msg:
    return m.Msg(data["text"], {k: _decode_param(v) for k, v in data["params"].items()})


def _decode_param(value: Any) -> Any:
    from datetime import date

    if isinstance(value, dict):
        if "msg" in value:
            return _decode_msg(value["msg"])
        if "names" in value:
            return m.Names(value["names"])
        if "when" in value:
            parsed = date.fromisoformat(value["when"]) if value["is_date"] else datetime.fromisoformat(value["when"])
            return m.When(parsed, value["style"])
    return value


def _encode_reply(reply: m.Reply) -> dict:
    if isinstance(reply, m.Say):
        return {"say": _encode_msg(reply.msg)}
    if isinstance(reply, m.Ask):
        return {"ask": _encode_msg(reply.msg), "expect": reply.expect.kind.value,
                "digits": reply.expect.digits,
                "options": [[o.key, _encode_msg(o.label)] for o in reply.expect.options]}
    if isinstance(reply, m.Handoff):
        return {"handoff": reply.reason, "phone": reply.desk_phone,
                "hours": dict(reply.desk_hours.by_locale) if reply.desk_hours else None}
    return {"end": True}


def _decode_reply(data: dict) -> m.Reply:
    if "say" in data:
        return m.Say(_decode_msg(data["say"]))
    if "ask" in data:
        options = tuple(m.Option(k, _decode_msg(label)) for k, label in data["options"])
        return m.Ask(_decode_msg(data["ask"]), m.Expect(m.ExpectKind(data["expect"]), options, data["digits"]))
    if "handoff" in data:
        return m.Handoff(data["handoff"], data["phone"], m.Names(data["hours"]) if data["hours"] else None)
    return m.End()


def end_conversation(ctx: ServiceContext, channel: str, address: str, now: datetime) -> bool:
    """The call is over: the next one starts afresh, keeping the language."""
    address_index = _address_index(ctx, channel, address)
    state, version = _load(ctx, channel, address_index)
    if state is None:
        return False
    fresh = state.fresh().with_(updated_at=now)
    with ctx.uow() as uow:
        changed = _cursor(uow).run(sql.UPDATE_CONVERSATION, {
            "channel": channel, "address_index": address_index, "version": version,
            "state": ctx.keyring.encrypt(to_json(fresh)), "now": now}).first()
        uow.commit()
    return changed is not None
