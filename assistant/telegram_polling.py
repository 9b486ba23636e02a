"""Telegram without a public HTTPS address: long polling, and registering the webhook.

Rule: polling takes updates from the Bot API (getUpdates) and sends each through the very
path the webhook uses (`web.telegram_turns.telegram_reply`), then sends the reply with the bot.
PTB runs on one asyncio loop in a background thread (`channels.senders.BackgroundLoop`).
"""

from __future__ import annotations

import logging
import threading

from assistant.channels.senders import BackgroundLoop

log = logging.getLogger(__name__)


def make_bot(token: str, base_url: str | None = None):
    from telegram import Bot

    return Bot(token, **({"base_url": base_url} if base_url else {}))


def set_webhook(token: str, url: str, secret: str, *, base_url: str | None = None) -> bool:
    loop = BackgroundLoop()
    bot = make_bot(token, base_url)
    try:
        async def register():
            async with bot:
                return await bot.set_webhook(url=url, secret_token=secret, allowed_updates=["message"])

        return loop.run(register())
    finally:
        loop.close()


def poll(app, renderer, token: str, *, stop: threading.Event, base_url: str | None = None,
         timeout: int = 30, rounds: int | None = None) -> int:
    """Answer updates until `stop` is set (or `rounds` getUpdates calls are done); returns
    how many replies were sent. A failed round is logged and retried."""
    from assistant.web.telegram_turns import telegram_reply

    loop = BackgroundLoop()
    bot = make_bot(token, base_url)
    offset, sent, done = None, 0, 0
    try:
        loop.run(bot.initialize())
        loop.run(bot.delete_webhook())  # getUpdates refuses to run while a webhook is set
        while not stop.is_set() and (rounds is None or done < rounds):
            done += 1
            try:
                updates = loop.run(bot.get_updates(offset=offset, timeout=timeout,
                                                   allowed_updates=["message"]), timeout=timeout + 30)
            except Exception as exc:  # the network: wait a little and ask again
                log.warning("getUpdates failed: %s", type(exc).__name__)
                stop.wait(5)
                continue
            for update in updates:
                offset = update.update_id + 1
                reply = telegram_reply(app, renderer, update.to_dict())
                if reply is None:
                    continue
                try:
                    loop.run(bot.send_message(chat_id=reply["chat_id"], text=reply["text"],
                                              reply_markup=_markup(reply.get("reply_markup"), bot)))
                    sent += 1
                except Exception as exc:
                    log.warning("a reply could not be sent: %s", type(exc).__name__)
        return sent
    finally:
        try:
            loop.run(bot.shutdown())
        finally:
            loop.close()


def _markup(data: dict | None, bot):
    """The reply keyboard of a `telegram_reply` dict, as PTB's object."""
    from telegram import ReplyKeyboardMarkup, ReplyKeyboardRemove

    if not data:
        return None
    if data.get("remove_keyboard"):
        return ReplyKeyboardRemove()
    return ReplyKeyboardMarkup.de_json(data, bot)
