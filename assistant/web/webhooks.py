"""Provider webhooks: verify the request, turn it into an `Inbound`, run the turn, render.

Rule: no conversation logic here. Each view checks the provider's signature first (a
failure is a 403 that changes nothing), then calls `conversations.run_turn` and renders
its replies with the channel's renderer. A replayed event (the same MessageSid) gets the
same response, because run_turn returns the stored turn. Nothing a patient sends can make
a view fail: an error inside a turn still answers with a kind apology.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Response, current_app, request
from twilio.request_validator import RequestValidator
from twilio.twiml.messaging_response import MessagingResponse

from assistant import conversations
from assistant.channels.sms import render_sms
from assistant.engine.messages import N_, Inbound, InboundKind, msg

log = logging.getLogger(__name__)

webhooks = Blueprint("webhooks", __name__)

APOLOGY = N_("Sorry, something went wrong on our side. Please try again in a few minutes.")


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


def _twiml(messages) -> Response:
    reply = MessagingResponse()
    for body in messages:
        reply.message(body)
    return Response(str(reply), mimetype="application/xml")


@webhooks.post("/sms")
def sms() -> Response:
    """Twilio Messaging: one inbound SMS in, the replies inline as TwiML <Message>s."""
    app = _careline()
    if not twilio_signature_ok(app.settings, "/sms"):
        log.warning("refused an /sms request without a valid Twilio signature")
        return Response("forbidden", status=403, mimetype="text/plain")
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
    app = _careline()
    if not twilio_signature_ok(app.settings, "/sms/status"):
        return Response("forbidden", status=403, mimetype="text/plain")
    sid, status = request.form.get("MessageSid", ""), request.form.get("MessageStatus", "")
    if sid and status:
        from assistant.booking import outbox

        outbox.record_delivery_status(app.services, provider_ref=sid, status=status)
    return Response("", status=204)
