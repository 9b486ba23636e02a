"""/try: the patient's side of CareLine in a browser, as an SMS chat, a phone keypad or
a Telegram chat.

Rule: each send calls `conversations.run_turn` directly (never the webhooks) on the
chosen channel, and lays the replies out with that channel's own renderer, so the page
shows what the patient would get. The visitor is a simulated patient: a random
"try:<token>" address of kind "console", which no sender ever delivers to, kept in the
Flask session; Start again draws a new one. Who may open /try is `web.try_access`:
everyone ("public"), logged-in administrators ("admin"), or nobody ("off": 404). Plain
forms and POST-redirect-GET, no JavaScript. The transcript lives in the session cookie,
encrypted with the keyring (a visitor may type an ID number, and a cookie is only
signed), trimmed from the oldest exchange so the cookie always fits. Nothing a visitor types makes a page fail: an error in a turn is answered with
the kind apology.
"""

from __future__ import annotations

import base64
import json
import logging
import secrets
import unicodedata
import uuid
import zlib
from dataclasses import replace

from flask import Blueprint, abort, current_app, redirect, render_template, request, session, url_for

from assistant import conversations
from assistant.channels.render import APOLOGY
from assistant.channels.sms import render_sms
from assistant.channels.telegram import render_telegram
from assistant.channels.voice import render_voice
from assistant.engine.messages import N_, Inbound, InboundKind, msg
from assistant.web import security, ui
# The webhooks' own readings, so the simulator says and understands what they do: the
# read-back of a keyed ID, and /start.
from assistant.web.telegram_turns import text_inbound
from assistant.web.webhooks import SLOWER_HINT, read_back_id

log = logging.getLogger(__name__)

try_it = Blueprint("try_it", __name__, url_prefix="/try")

CHANNELS = (("sms", N_("SMS")), ("voice", N_("Phone keypad")), ("telegram", N_("Telegram")))
KEYPAD = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "*", "0", "#")
ADDRESS_KIND = "console"  # never delivered to: conversation_backend.address_for
SESSION_KEY = "try"
KEEP_EXCHANGES = 30
COOKIE_BUDGET = 3600  # bytes of the signed session cookie; browsers refuse more than 4096
SHOWN_INPUT = 300  # characters of a visitor's message kept for the transcript
MAX_ENTRY = 40  # keys in one keypad entry (an ID number is 18)
# What a provider would pass on: Twilio joins an SMS of up to 1600 characters, Telegram
# takes 4096; recognised speech is short.
MAX_INPUT = {"sms": 1600, "voice": 500, "telegram": 4096}
# web.try_access besides "public": the staff role it asks for. Anything else is a 404.
# "demo" is made "public" by `assistant serve` (cli._served); anywhere else it is "admin".
ACCESS_ROLE = {"admin": "admin", "demo": "admin"}


def careline():
    return current_app.config["CARELINE"]


@try_it.before_request
def check_access():
    access = careline().settings.web.try_access
    if access == "public":
        return None
    if access not in ACCESS_ROLE:
        abort(404)  # "off", or anything unexpected: as if /try did not exist
    staff = security.current_staff()
    if staff is None:
        return redirect(url_for("admin.login", next=request.path))
    if not security.has_role(staff, ACCESS_ROLE[access]):
        abort(403)
    return None


# ---- pages ----------------------------------------------------------------------------------


@try_it.get("")
def page():
    state = _stored()
    locale = state["l"] if state else ui.ui_locale()
    return render_template("try/page.html", state=state, channels=CHANNELS, keypad=KEYPAD,
                           channel=state["c"] if state else "sms", locale=locale,
                           channel_label=dict(CHANNELS)[state["c"]] if state else "",
                           locales=ui.language_names(),
                           max_input=MAX_INPUT[state["c"]] if state else MAX_INPUT["sms"])


@try_it.post("/start")
def start():
    """A new conversation (a new simulated patient) on the chosen channel and language."""
    settings = careline().settings
    channel = request.form.get("channel", "")
    channel = channel if channel in MAX_INPUT else "sms"
    locale = request.form.get("locale", "")
    locale = locale if locale in settings.locales else ui.ui_locale()
    state = _new(channel, locale)
    if channel == "voice":
        _voice_turn(state, _inbound(state, kind=InboundKind.START), "call", None)
    _save(state)
    return _back()


@try_it.post("/send")
def send():
    """A typed message (SMS, Telegram, a tapped button) or, on the phone, speech."""
    state = _current()
    text = request.form.get("message", "")[:MAX_INPUT[state["c"]]]
    if state["c"] == "voice":
        if not state["v"].get("over"):
            said = "" if request.form.get("silence") else text.strip()
            kind = InboundKind.TEXT if said else InboundKind.SILENCE
            _voice_turn(state, _inbound(state, said, kind), "text" if said else "silence", said)
    elif text.strip():  # an empty box sent by a slip: a phone would send nothing
        inbound = _inbound(state, text)
        if state["c"] == "telegram":  # "/start" starts, as the bot reads it
            inbound = text_inbound(text, state["l"], inbound.event_id)
        _text_turn(state, inbound, text)
    _save(state)
    return _back()


@try_it.post("/key")
def key():
    """One key of the on-screen keypad. A question answered by one key is sent at once
    (the call's Gather takes one digit); otherwise keys add up until # sends them, and *
    stands for X, as in the real call."""
    state = _current()
    pressed = request.form.get("key", "")
    voice = state["v"]
    if state["c"] != "voice" or voice.get("over"):
        return _back()
    if request.form.get("clear"):
        state["e"] = ""
    elif pressed == "#" or (pressed in KEYPAD and voice.get("single") and not state["e"]):
        keys = state["e"] if pressed == "#" else pressed
        state["e"] = ""
        kind = InboundKind.TEXT if keys else InboundKind.SILENCE
        keyed_id = keys if voice.get("expect") == "id_number" else None
        _voice_turn(state, _inbound(state, keys, kind), "keys", (keys or "") + ("#" if pressed == "#" else ""),
                    keyed_id=keyed_id)
    elif pressed in KEYPAD and len(state["e"]) < MAX_ENTRY:
        state["e"] += pressed
    _save(state)
    return _back()


@try_it.post("/call")
def call():
    """The caller calls again (same number): a new call starts."""
    state = _current()
    if state["c"] == "voice":
        state["e"] = ""
        _voice_turn(state, _inbound(state, kind=InboundKind.START), "call", None)
        _save(state)
    return _back()


@try_it.post("/hangup")
def hang_up():
    state = _current()
    if state["c"] == "voice" and not state["v"].get("over"):
        state["v"] = {"over": True}
        state["e"] = ""
        _record(state, "hangup", None, [], None)
        _save(state)
    return _back()


# ---- turns ------------------------------------------------------------------------------------


def _inbound(state: dict, text: str = "", kind: InboundKind = InboundKind.TEXT) -> Inbound:
    # A fresh event id per send: a replay of one would return that stored turn.
    return Inbound(text=text, kind=kind, language_hint=state["l"], event_id=f"try-{uuid.uuid4().hex}")


def _run(state: dict, inbound: Inbound):
    """The turn's result, or None when it could not run (the apology is shown)."""
    app = careline()
    try:
        return conversations.run_turn(app.services, state["c"], "try:" + state["t"], inbound, app.clock(),
                                      current_app.config["CARELINE_RENDERER"], address_kind=ADDRESS_KIND)
    except Exception as exc:  # the type only: a message could quote the visitor's words
        log.error("a /try %s turn could not be handled: %s", state["c"], type(exc).__name__)
        return None


def _apology(state: dict) -> str:
    return current_app.config["CARELINE_RENDERER"].text(msg(APOLOGY), state["l"])


def _reply_locale(result) -> str:
    return result.turn.state.locale or careline().settings.default_locale


def _text_turn(state: dict, inbound: Inbound, text: str) -> None:
    """SMS and Telegram: the replies as the webhook would send them."""
    renderer = current_app.config["CARELINE_RENDERER"]
    result = _run(state, inbound)
    state["b"] = []
    if result is None:
        _record(state, "text", text, [_apology(state)], None)
        return
    if result.turn.ended:  # STOP: the provider confirms the opt-out, we send nothing
        _record(state, "text", text, [], [N_("(No reply: after STOP, nothing more is sent. START resumes.)"), {}])
        return
    locale = _reply_locale(result)
    if state["c"] == "telegram":
        rendered = render_telegram(result.turn.replies, locale, renderer)
        # One message, as telegram_turns sends it; its keyboard stays until the next reply.
        state["b"] = [row[0] for row in rendered.buttons]
        _record(state, "text", text, ["\n\n".join(rendered.messages)] if rendered.messages else [], None)
    else:
        _record(state, "text", text, list(render_sms(result.turn.replies, locale, renderer).messages), None)


def _voice_turn(state: dict, inbound: Inbound, kind: str, mine: str | None, keyed_id: str | None = None) -> None:
    """What the call would say, as the voice webhook builds it (its <Say> texts), and
    how the next answer is taken: one key, or keys ended by #."""
    renderer = current_app.config["CARELINE_RENDERER"]
    result = _run(state, inbound)
    if result is None:  # the real call apologises and hangs up
        state["v"] = {"over": True}
        _record(state, kind, mine, [_apology(state)], [N_("The call has ended."), {}])
        return
    locale = _reply_locale(result)
    rendered = render_voice(result.turn.replies, locale, renderer)
    if keyed_id and rendered.expect != "id_number":  # accepted: asked again means refused
        rendered = replace(rendered, messages=(read_back_id(keyed_id, renderer, locale),) + rendered.messages)
    if inbound.kind is InboundKind.START and not result.slow_speech and rendered.expect != "none":
        rendered = replace(rendered, messages=rendered.messages + (
            renderer.text(msg(SLOWER_HINT), locale, spoken=True),))
    over = bool(rendered.dial or rendered.ended or rendered.expect == "none")
    state["v"] = {"over": over, "expect": rendered.expect, "slow": result.slow_speech,
                  "single": rendered.expect in ("choice", "yes_no") and len(rendered.options) <= 9}
    note = None
    if rendered.dial:
        note = [N_("The call is put through to the desk: {number}."), {"number": rendered.dial}]
    elif over:
        note = [N_("The call has ended."), {}]
    _record(state, kind, mine, list(rendered.messages), note)


# ---- the transcript in the session --------------------------------------------------------


def _stored() -> dict | None:
    state = _decrypted(session.get(SESSION_KEY))
    fields = ("t", "c", "l", "x", "e", "v", "b")
    if isinstance(state, dict) and all(f in state for f in fields) and state["c"] in MAX_INPUT:
        return state
    return None


def _new(channel: str, locale: str) -> dict:
    """A new simulated patient: t its token, c the channel, l the language, x the
    exchanges, e the keys entered so far, v how the call takes its next answer, b the
    Telegram keyboard."""
    return {"t": secrets.token_urlsafe(16), "c": channel, "l": locale, "x": [], "e": "", "v": {},
            "b": ["/start"] if channel == "telegram" else []}


def _current() -> dict:
    """The visitor's conversation; a first send without one starts an SMS chat."""
    return _stored() or _new("sms", ui.ui_locale())


def _record(state: dict, kind: str, mine: str | None, replies: list[str], note: list | None) -> None:
    state["x"] = state["x"] + [{"k": kind, "m": _shown(mine), "r": replies, "n": note}]


def _shown(text: str | None) -> str | None:
    """A visitor's words as the transcript keeps them: clipped, control characters
    replaced (they have no place in a page), line breaks kept."""
    if text is None:
        return None
    clipped = text[:SHOWN_INPUT] + ("…" if len(text) > SHOWN_INPUT else "")
    return "".join("\ufffd" if unicodedata.category(ch) in ("Cc", "Cs") and ch not in "\n\t" else ch
                   for ch in clipped)


def _save(state: dict) -> None:
    """Keep the newest exchanges that fit the cookie: a long conversation drops its
    oldest lines from the page, never the cookie."""
    state["x"] = state["x"][-KEEP_EXCHANGES:]
    while len(state["x"]) > 1 and not _fits(state):
        state["x"] = state["x"][1:]
    if not _fits(state):  # one huge exchange: keep its start
        state["x"] = [dict(x, r=[reply[:SHOWN_INPUT] for reply in x["r"]]) for x in state["x"]]
        if not _fits(state):
            state["x"] = []
    session[SESSION_KEY] = _encrypted(state)


def _fits(state: dict) -> bool:
    interface = current_app.session_interface
    serializer = (interface.get_signing_serializer(current_app)
                  if hasattr(interface, "get_signing_serializer") else None)
    if serializer is None:  # a server-side session store has no cookie to outgrow
        return True
    return len(serializer.dumps({**dict(session), SESSION_KEY: _encrypted(state)})) <= COOKIE_BUDGET


def _encrypted(state: dict) -> str:
    # Compressed first: ciphertext doesn't compress, and the cookie has 4 KB.
    packed = zlib.compress(json.dumps(state, ensure_ascii=False, separators=(",", ":")).encode())
    return careline().services.keyring.encrypt(base64.b85encode(packed).decode())


def _decrypted(token) -> dict | None:
    if not isinstance(token, str):
        return None
    try:
        packed = careline().services.keyring.decrypt(token)
        return json.loads(zlib.decompress(base64.b85decode(packed))) if packed else None
    except (ValueError, TypeError, zlib.error):  # another key, or not ours: a new conversation
        return None


def _back():
    return redirect(url_for("try_it.page") + "#latest")
