"""Local fakes of Twilio's and Telegram's APIs, on 127.0.0.1, for the real client libraries.

Rule: each fake is a real HTTP server in a thread that answers the way the provider's
API does for the calls CareLine makes, records what it accepted, and can be told to fail
the first N requests. The real twilio client reaches it through `LocalTwilioHttpClient`
(a TwilioHttpClient that swaps api.twilio.com for the fake), PTB's Bot through
`base_url`. No assertions here.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

from twilio.http.http_client import TwilioHttpClient


class _FakeServer:
    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.accepted: list[dict] = []
        self.requests = 0
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                if "json" in self.headers.get("Content-Type", ""):
                    fields = json.loads(raw or "{}")
                else:
                    fields = {k: v[0] for k, v in parse_qs(raw).items()}
                status, body = fake.answer(self.path, fields)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def failing_now(self) -> bool:
        with self.lock:
            self.requests += 1
            if self.fail > 0:
                self.fail -= 1
                return True
            return False

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class FakeTwilio(_FakeServer):
    """POST /2010-04-01/Accounts/{AccountSid}/Messages.json and Calls.json, as Twilio
    answers them. Calls are kept in `calls`."""

    def __init__(self, fail: int = 0) -> None:
        super().__init__(fail)
        self.calls: list[dict] = []

    def answer(self, path, fields):
        if re.fullmatch(r"/2010-04-01/Accounts/AC\w+/Calls\.json", path):
            return self._call(path, fields)
        if not re.fullmatch(r"/2010-04-01/Accounts/AC\w+/Messages\.json", path):
            return 404, {"code": 20404, "message": "The requested resource was not found", "status": 404}
        if self.failing_now():
            return 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
        sid = "SM" + uuid.uuid4().hex
        with self.lock:
            self.accepted.append({**fields, "sid": sid})
        return 201, {"sid": sid, "status": "queued", "to": fields.get("To"), "from": fields.get("From"),
                     "body": fields.get("Body"), "num_segments": "1", "direction": "outbound-api",
                     "api_version": "2010-04-01", "account_sid": path.split("/")[3]}


    def _call(self, path, fields):
        if self.failing_now():
            return 500, {"code": 20500, "message": "Internal Server Error", "status": 500}
        sid = "CA" + uuid.uuid4().hex
        with self.lock:
            self.calls.append({**fields, "sid": sid})
        return 201, {"sid": sid, "status": "queued", "to": fields.get("To"), "from": fields.get("From"),
                     "direction": "outbound-api", "api_version": "2010-04-01",
                     "account_sid": path.split("/")[3]}


class LocalTwilioHttpClient(TwilioHttpClient):
    """twilio's own HTTP client, sending to a local fake instead of api.twilio.com."""

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url

    def request(self, method, url, *args, **kwargs):
        return super().request(method, url.replace("https://api.twilio.com", self.base_url), *args, **kwargs)


class FakeTelegram(_FakeServer):
    """The Bot API's getMe and sendMessage, at /bot{token}/{method}."""

    _ids = itertools.count(1)

    def __init__(self, fail: int = 0) -> None:
        super().__init__(fail)
        self.updates: list[dict] = []  # handed out by getUpdates, once
        self.calls: list[tuple[str, dict]] = []

    def answer(self, path, fields):
        method = path.rsplit("/", 1)[-1]
        with self.lock:
            self.calls.append((method, fields))
        if method in ("deleteWebhook", "setWebhook", "close", "logOut"):
            return 200, {"ok": True, "result": True}
        if method == "getUpdates":
            with self.lock:
                handed, self.updates = self.updates, []
            return 200, {"ok": True, "result": handed}
        if method == "getMe":
            return 200, {"ok": True, "result": {"id": 4242, "is_bot": True, "first_name": "CareLine",
                                                "username": "careline_demo_bot"}}
        if method != "sendMessage":
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        if self.failing_now():
            return 500, {"ok": False, "error_code": 500, "description": "Internal Server Error"}
        message_id = next(self._ids)
        with self.lock:
            self.accepted.append({**fields, "message_id": message_id})
        return 200, {"ok": True, "result": {
            "message_id": message_id, "date": 1796000000, "text": fields.get("text"),
            "chat": {"id": int(fields.get("chat_id")), "type": "private"}}}
