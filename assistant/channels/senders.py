"""Sending one text to one address: SMS through Twilio's REST API, and Telegram through
python-telegram-bot's `Bot`.

Rule: a sender takes an address and a text and returns the provider's reference for the
message, or raises `SendError` with a short reason (a status or an error's type, never
the text, which could name a patient). Senders know nothing of bookings or the outbox:
delivery (assistant/notify.py) decides what to send and records how it went. PTB is
asyncio: its calls run on one event loop in a background thread (`BackgroundLoop`), never
an `asyncio.run` per message.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Callable, Protocol

SEND_TIMEOUT = 30.0  # seconds a provider may take to accept one message


class SendError(Exception):
    """The provider did not take the message; the reason is safe to log."""


class Sender(Protocol):
    kind: str  # the address kind it reaches: phone or telegram

    def send(self, address: str, text: str) -> str: ...

    def close(self) -> None: ...


class TwilioSmsSender:
    """SMS from the hospital's Twilio number. `http_client` is twilio's HTTP client (tests
    pass a TwilioHttpClient that talks to a local fake of Twilio's API)."""

    kind = "phone"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, http_client=None,
                 status_callback: str | None = None) -> None:
        from twilio.rest import Client

        self._client = Client(account_sid, auth_token, http_client=http_client)
        self._from = from_number
        # Twilio reports delivered/undelivered there (POST /sms/status).
        self._callback = {"status_callback": status_callback} if status_callback else {}

    def send(self, address: str, text: str) -> str:
        from twilio.base.exceptions import TwilioException, TwilioRestException

        try:
            message = self._client.messages.create(to=address, from_=self._from, body=text,
                                                   **self._callback)
        except TwilioRestException as exc:
            raise SendError(f"twilio refused: HTTP {exc.status}, code {exc.code}") from None
        except (TwilioException, OSError) as exc:
            raise SendError(f"twilio unreachable: {type(exc).__name__}") from None
        except Exception as exc:  # requests' errors: the network, a timeout
            raise SendError(f"twilio unreachable: {type(exc).__name__}") from None
        return message.sid

    def close(self) -> None:
        pass


class TwilioCallSender:
    """Phone calls from the hospital's Twilio number, for patients who booked by voice.
    `ring` places a call that opens a conversation at `answer_url` (our /voice webhook,
    which asks the open offer or reminder: "press 1"); `send` places a call that says a
    text twice and hangs up (a draw's result)."""

    kind = "voice"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, answer_url: str,
                 speech_language: Callable[[str], str] = lambda locale: "en-US", http_client=None) -> None:
        from twilio.rest import Client

        self._client = Client(account_sid, auth_token, http_client=http_client)
        self._from = from_number
        self._answer_url = answer_url
        self._speech_language = speech_language  # a locale's <Say> language, as the phone line's

    def _call(self, **how) -> str:
        from twilio.base.exceptions import TwilioRestException

        try:
            return self._client.calls.create(from_=self._from, **how).sid
        except TwilioRestException as exc:
            raise SendError(f"twilio refused the call: HTTP {exc.status}, code {exc.code}") from None
        except Exception as exc:  # twilio's and requests' errors: the network, a timeout
            raise SendError(f"twilio unreachable: {type(exc).__name__}") from None

    def ring(self, address: str) -> str:
        return self._call(to=address, url=self._answer_url, method="POST")

    def send(self, address: str, text: str, locale: str = "en") -> str:
        from twilio.twiml.voice_response import VoiceResponse

        spoken = VoiceResponse()
        for _ in range(2):  # said twice: a call can't be scrolled back
            spoken.say(text, language=self._speech_language(locale))
            spoken.pause(length=1)
        spoken.hangup()
        return self._call(to=address, twiml=str(spoken))

    def close(self) -> None:
        pass


class BackgroundLoop:
    """One asyncio event loop in a daemon thread, for a library that is asyncio (PTB)
    called from synchronous code."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="careline-asyncio",
                                        daemon=True)
        self._thread.start()

    def run(self, coroutine, timeout: float = SEND_TIMEOUT):
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def close(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


class TelegramSender:
    """Telegram messages from the hospital's bot. `base_url` points PTB at another Bot
    API server (tests: a local fake)."""

    kind = "telegram"

    def __init__(self, token: str, loop: BackgroundLoop, base_url: str | None = None) -> None:
        from telegram import Bot

        self._bot = Bot(token, **({"base_url": base_url} if base_url else {}))
        self._loop = loop
        self._ready = False

    async def _send(self, chat_id: int, text: str) -> str:
        if not self._ready:
            await self._bot.initialize()
            self._ready = True
        message = await self._bot.send_message(chat_id=chat_id, text=text)
        return str(message.message_id)

    def send(self, address: str, text: str) -> str:
        from telegram.error import TelegramError

        try:
            return self._loop.run(self._send(int(address), text))
        except TelegramError as exc:
            raise SendError(f"telegram refused: {type(exc).__name__}") from None
        except (ValueError, TimeoutError, OSError) as exc:
            raise SendError(f"telegram unreachable: {type(exc).__name__}") from None

    def close(self) -> None:
        if self._ready:
            try:
                self._loop.run(self._bot.shutdown())
            except Exception:  # closing after a failure: nothing more to do
                pass
