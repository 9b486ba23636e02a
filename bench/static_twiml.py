"""The floor for bench/webhooks.py: a bare Flask app whose POST /sms answers fixed TwiML.

It parses the form (as any webhook must) and does nothing else: no signature check, no
database, no engine. Served by the same gunicorn settings as CareLine, so the ratio
between the two is what CareLine's own work costs per request.
"""

from __future__ import annotations

from flask import Flask, Response, request

app = Flask(__name__)

REPLY = ('<?xml version="1.0" encoding="UTF-8"?><Response><Message>'
         "Welcome to CareLine. Reply 1 to book, 2 to see your bookings.</Message></Response>")


@app.post("/sms")
def sms() -> Response:
    request.form.get("Body", "")
    return Response(REPLY, mimetype="text/xml")
