"""Provider webhooks: verify the request, turn it into an `Inbound`, run the turn, render.

Rule: no conversation logic here. Each view checks the provider's signature first (a
failure is a 403 that changes nothing), then calls `conversations.run_turn` and renders
its replies with the channel's renderer. A replayed event (the same MessageSid) gets the
same response, because run_turn returns the stored turn. Nothing a patient sends can make
a view fail: an error inside a turn still answers with a kind apology.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace

from flask import Blueprint, Response, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from assistant import conversations
from assistant.channels.sms import render_sms
from assistant.channels.render import APOLOGY
from assistant.web.telegram_turns import telegram_reply
from assistant.engine.messages import N_, Inbound, InboundKind, msg

log = logging.getLogger(__name__)

# Said after a call's first question, unless the caller already asked for slower speech.
SLOWER_HINT = N_("If I speak too fast, say: slower.")

webhooks = Blueprint("webhooks", __name__)


def _careline():
    return current_app.config["CARELINE"]


def _renderer():
    return current_app.config["CARELINE_RENDERER"]


def twilio_signature_ok(settings, path: str) -> bool:
    """X-Twilio-Signature over the URL Twilio called and the form parameters. The URL is
    `public_url` plus the path when set (behind a proxy the request's own URL is not the
    one Twilio signed). Without an auth token nothing passes."""
    token = settings.twilio.get("auth_token")
    signature = request.headers.get("X-Twilio-Signature", "")
    if not token or not signature:
        return False
    url = (settings.public_url + path) if settings.public_url else request.base_url
    if request.query_string:
        url += "?" + request.query_string.decode("latin-1")
    return RequestValidator(token).validate(url, request.form.to_dict(flat=True), signature)


def _unsigned(path: str) -> Response | None:
    """A 403 for a request without Twilio's valid signature for `path`, else None."""
    if twilio_signature_ok(_careline().settings, path):
        return None
    log.warning("refused a %s request without a valid Twilio signature", path)
    return Response("forbidden", status=403, mimetype="text/plain")


def _twiml(messages) -> Response:
    reply = MessagingResponse()
    for body in messages:
        reply.message(body)
    return Response(str(reply), mimetype="application/xml")


@webhooks.post("/sms")
def sms() -> Response:
    """Twilio Messaging: one inbound SMS in, the replies inline as TwiML <Message>s."""
    if (refused := _unsigned("/sms")) is not None:
        return refused
    app = _careline()
    sender = request.form.get("From", "")
    message_sid = request.form.get("MessageSid") or request.form.get("SmsSid")
    if not sender or not message_sid:
        return Response("bad request", status=400, mimetype="text/plain")
    inbound = Inbound(text=request.form.get("Body", ""), kind=InboundKind.TEXT,
                      language_hint=sender, event_id=message_sid)
    renderer = _renderer()
    try:
        result = conversations.run_turn(app.services, "sms", sender, inbound, app.clock(), renderer)
    except Exception as exc:  # the database may be down: apologise, never a 500 to Twilio
        log.error("an SMS turn could not be handled: %s", type(exc).__name__)
        return _twiml([renderer.text(msg(APOLOGY), app.settings.default_locale)])
    if result.turn.ended:
        # STOP: Twilio confirms the opt-out itself and would block a reply of ours.
        return _twiml([])
    locale = result.turn.state.locale or app.settings.default_locale
    return _twiml(render_sms(result.turn.replies, locale, renderer).messages)


@webhooks.post("/sms/status")
def sms_status() -> Response:
    """Twilio's status callback for a message CareLine sent: the delivery record."""
    if (refused := _unsigned("/sms/status")) is not None:
        return refused
    app = _careline()
    sid, status = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if sid and status:
        from assistant.booking import outbox

        outbox.record_delivery_status(app.services, provider_ref=sid, status=status)
    return Response("", status=204)


# ---- voice ------------------------------------------------------------------------------

# Twilio posts these statuses when a call is over.
CALL_OVER = frozenset({"completed", "busy", "failed", "no-answer", "canceled"})


def _step_token(event_id: str) -> str:
    """The token the next Gather's action URL carries: derived from this event, so a
    replayed event renders the very same TwiML, and the answer to it is recognised as a
    replay by CallSid and token."""
    return hashlib.sha256(f"{event_id}:next".encode()).hexdigest()[:16]


def read_back_id(entered: str, renderer, locale: str) -> str:
    """The ID the caller just keyed, said back one character at a time (star is X), so a
    slip of the finger is heard before anything is booked."""
    characters = ["X" if ch in "*xX" else ch for ch in entered if ch.isdigit() or ch in "*xX"]
    return renderer.text(msg(N_("You entered: {digits}."), digits=", ".join(characters)), locale, spoken=True)


def _speaker(app, locale: str, slow: bool):
    """Says a text in the locale's language and voice; slowed with SSML prosody for a
    caller who asked for slower speech."""
    voice = app.settings.voice
    options = {"language": voice.language(locale)}
    if voice.voice(locale):
        options["voice"] = voice.voice(locale)

    def say(parent, text: str) -> None:
        if slow:
            parent.say(**options).prosody(text, rate="slow")
        else:
            parent.say(text, **options)
    return say


def _voice_twiml(app, rendered, locale: str, event_id: str, slow: bool = False) -> Response:
    from twilio.twiml.voice_response import VoiceResponse

    voice = app.settings.voice
    say = _speaker(app, locale, slow)
    response = VoiceResponse()
    if rendered.dial:
        for text in rendered.messages:
            say(response, text)
        response.dial(rendered.dial)
        return Response(str(response), mimetype="application/xml")
    if rendered.ended or rendered.expect == "none":
        for text in rendered.messages:
            say(response, text)
        response.hangup()
        return Response(str(response), mimetype="application/xml")
    base = app.settings.public_url or request.url_root.rstrip("/")
    # The action URL says when the caller is keying an ID, so its answer is read back.
    asking_id = "&e=id" if rendered.expect == "id_number" else ""
    gather = {"input": "dtmf speech", "action": f"{base}/voice/gather?t={_step_token(event_id)}{asking_id}",
              "method": "POST", "timeout": voice.gather_timeout, "language": voice.language(locale),
              "action_on_empty_result": True, "speech_timeout": "auto"}
    if rendered.expect in ("choice", "yes_no") and len(rendered.options) <= 9:
        gather["num_digits"] = 1  # one key press answers at once
    else:
        gather["finish_on_key"] = "#"  # an ID number: * stands for X, # ends it
    hints = [option.label for option in rendered.options]
    if hints:
        gather["hints"] = ", ".join(hints)[:500]
    with response.gather(**gather) as asked:
        for text in rendered.messages:
            say(asked, text)
    return Response(str(response), mimetype="application/xml")


def _voice_turn(inbound: Inbound, caller: str, keyed_id: str = "") -> Response:
    from assistant.channels.voice import render_voice

    app, renderer = _careline(), _renderer()
    try:
        result = conversations.run_turn(app.services, "voice", caller, inbound, app.clock(), renderer)
    except Exception as exc:  # never a dead line: apologise and hand over to the desk
        log.error("a voice turn could not be handled: %s", type(exc).__name__)
        from twilio.twiml.voice_response import VoiceResponse

        response = VoiceResponse()
        locale = app.settings.default_locale
        response.say(renderer.text(msg(APOLOGY), locale), language=app.settings.voice.language(locale))
        response.hangup()
        return Response(str(response), mimetype="application/xml")
    locale = result.turn.state.locale or app.settings.default_locale
    rendered = render_voice(result.turn.replies, locale, renderer)
    if keyed_id and rendered.expect != "id_number":  # accepted: asked again means refused
        rendered = replace(rendered, messages=(read_back_id(keyed_id, renderer, locale),) + rendered.messages)
    slow = result.slow_speech
    if inbound.kind is InboundKind.START and not slow and rendered.expect != "none":
        rendered = replace(rendered, messages=rendered.messages + (
            renderer.text(msg(SLOWER_HINT), locale, spoken=True),))
    return _voice_twiml(app, rendered, locale, inbound.event_id, slow)


def _patient_on_the_line() -> str:
    """The patient's number: the caller, or on a call we placed (an offer or reminder
    that asks "press 1"), the number called."""
    if request.form.get("Direction", "").startswith("outbound"):
        return request.form.get("To", "")
    return request.form.get("From", "")


@webhooks.post("/voice")
def voice() -> Response:
    """Twilio Voice, a call comes in: greet and ask the first question in a <Gather>."""
    if (refused := _unsigned("/voice")) is not None:
        return refused
    call_sid, caller = request.form.get("CallSid", ""), _patient_on_the_line()
    if not call_sid or not caller:
        return Response("bad request", status=400, mimetype="text/plain")
    return _voice_turn(Inbound(kind=InboundKind.START, language_hint=caller,
                               event_id=f"{call_sid}:start"), caller)


@webhooks.post("/voice/gather")
def voice_gather() -> Response:
    """What the caller pressed or said (nothing, when the Gather timed out)."""
    if (refused := _unsigned("/voice/gather")) is not None:
        return refused
    call_sid, caller = request.form.get("CallSid", ""), _patient_on_the_line()
    token = request.args.get("t", "")
    if not call_sid or not caller or not token:
        return Response("bad request", status=400, mimetype="text/plain")
    said = (request.form.get("Digits") or request.form.get("SpeechResult") or "").strip()
    kind = InboundKind.TEXT if said else InboundKind.SILENCE
    keyed_id = said if request.args.get("e") == "id" and request.form.get("Digits") else ""
    return _voice_turn(Inbound(text=said, kind=kind, language_hint=caller,
                               event_id=f"{call_sid}:{token}"), caller, keyed_id)


@webhooks.post("/voice/status")
def voice_status() -> Response:
    """The call's status callback: when it is over, the next call starts afresh."""
    if (refused := _unsigned("/voice/status")) is not None:
        return refused
    app = _careline()
    if request.form.get("CallStatus") in CALL_OVER and _patient_on_the_line():
        conversations.end_conversation(app.services, "voice", _patient_on_the_line(), app.clock())
    return Response("", status=204)


# ---- Telegram ------------------------------------------------------------------------------


def telegram_secret_ok(settings) -> bool:
    """X-Telegram-Bot-Api-Secret-Token, set when the webhook was registered. Without a
    configured secret nothing passes."""
    secret = settings.telegram.get("secret_token")
    given = request.headers.get("X-Telegram-Bot-Api-Secret-Token", "")
    return bool(secret) and hmac.compare_digest(given.encode(), secret.encode())


@webhooks.post("/telegram")
def telegram() -> Response:
    """The Bot API's webhook: the reply goes back inline, as the response's method call."""
    app = _careline()
    if not telegram_secret_ok(app.settings):
        return Response("forbidden", status=403, mimetype="text/plain")
    update = request.get_json(silent=True)
    if not isinstance(update, dict) or "update_id" not in update:
        return Response("bad request", status=400, mimetype="text/plain")
    reply = telegram_reply(app, _renderer(), update)
    if reply is None:
        return Response("", status=204)
    return Response(json.dumps(reply, ensure_ascii=False), mimetype="application/json")
