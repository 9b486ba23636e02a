"""The floor for bench/webhooks.py: the least any SMS turn must do, on the plain driver.

POST /sms checks Twilio's signature, claims the MessageSid, loads the conversation's
encrypted state by a keyed index of the sender, decrypts it, encrypts the next state and
saves it, commits once, and answers fixed TwiML: no engine, no ORM, no service layer,
one transaction on sqlite3 or psycopg. What CareLine does on top of this is its own
cost; what this costs is the database's and the libraries' share that no design removes.
The tables are made by `create_tables`, before gunicorn starts.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import sqlite3
import threading

from cryptography.fernet import Fernet
from flask import Flask, Response, request
from twilio.request_validator import RequestValidator

app = Flask(__name__)

DATABASE_URL = os.environ.get("ASSISTANT_DATABASE_URL", "")
TOKEN = os.environ.get("ASSISTANT_TWILIO_AUTH_TOKEN", "")
PUBLIC_URL = os.environ.get("ASSISTANT_PUBLIC_URL", "")
FERNET = Fernet(os.environ["FLOOR_FERNET_KEY"]) if os.environ.get("FLOOR_FERNET_KEY") else None
INDEX_KEY = b"floor-index-key"
REPLY = ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
         "Welcome to CareLine. Reply 1 to book, 2 to see your bookings.</Message></Response>")
_local = threading.local()


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def connect(url: str):
    if _is_sqlite(url):
        connection = sqlite3.connect(url.split("///", 1)[1], timeout=30, isolation_level=None)
        connection.execute("PRAGMA journal_mode=WAL")
        return connection
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"))


def create_tables(url: str) -> None:
    connection = connect(url)
    for statement in ("CREATE TABLE IF NOT EXISTS floor_event (key VARCHAR(200) PRIMARY KEY)",
                      "CREATE TABLE IF NOT EXISTS floor_conversation (address_index VARCHAR(64) PRIMARY KEY, "
                      "state TEXT NOT NULL, version INTEGER NOT NULL)"):
        connection.execute(statement)
    connection.commit()
    connection.close()


def _connection():
    if getattr(_local, "connection", None) is None:
        _local.connection = connect(DATABASE_URL)
    return _local.connection


@app.post("/sms")
def sms() -> Response:
    url = PUBLIC_URL + "/sms"
    if not RequestValidator(TOKEN).validate(url, request.form.to_dict(flat=True),
                                            request.headers.get("X-Twilio-Signature", "")):
        return Response("forbidden", status=403)
    index = hmac.new(INDEX_KEY, request.form.get("From", "").encode(), hashlib.sha256).hexdigest()
    mark = "?" if _is_sqlite(DATABASE_URL) else "%s"
    connection = _connection()
    if _is_sqlite(DATABASE_URL):
        connection.execute("BEGIN IMMEDIATE")
    claimed = connection.execute(
        f"INSERT INTO floor_event (key) VALUES ({mark}) ON CONFLICT DO NOTHING RETURNING key",
        (request.form.get("MessageSid", ""),)).fetchone()
    if claimed is None:
        connection.rollback()
        return Response(REPLY, mimetype="text/xml")
    row = connection.execute(f"SELECT state, version FROM floor_conversation WHERE address_index = {mark}",
                             (index,)).fetchone()
    state = json.loads(FERNET.decrypt(row[0])) if row else {"turns": 0}
    state["turns"] += 1
    state["last"] = request.form.get("Body", "")
    encrypted = FERNET.encrypt(json.dumps(state).encode()).decode()
    connection.execute(
        f"INSERT INTO floor_conversation (address_index, state, version) VALUES ({mark}, {mark}, 1) "
        "ON CONFLICT (address_index) DO UPDATE SET state = excluded.state, "
        "version = floor_conversation.version + 1", (index, encrypted))
    connection.commit()
    return Response(REPLY, mimetype="text/xml")
