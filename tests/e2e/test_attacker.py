"""The attacker who knows a patient's ID number and name, played through `assistant chat`.

A victim books from her own phone. An attacker who knows her ID number and name books
"for family" in her name, looks at his bookings, cancels, and books and cancels again
until his phone is suspended. Each of them is a real `assistant chat --jsonl` process
that reads every reply and answers by the label of the option it wants, as a person
would. Afterwards the victim still sees and keeps her booking, can book again (she is
not suspended), and notices about every booking and cancellation made in her name wait
in the outbox for her phone. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

from click.testing import CliRunner

from assistant import jobs
from assistant.bootstrap import parse_now
from assistant.cli import main
from assistant.config import PROJECT_ROOT
from tests.conftest import keys_environ

NOW = "2026-12-01T09:00"
VICTIM_PHONE = "+8613800000101"
ATTACKER_PHONE = "+8613900000202"
VICTIM_ID = "110101195203150034"  # valid: check character 4
VICTIM_NAME = "Wang Fang"


def env_for(app) -> dict[str, str]:
    return {**os.environ, "ASSISTANT_DATABASE_URL": app.settings.database_url,
            "ASSISTANT_INSTANCE_PATH": str(app.settings.instance_path),
            "ASSISTANT_GENERATE_SECRETS": "false", **keys_environ()}


class Chat:
    """One `assistant chat --jsonl` process: a person typing into SMS."""

    def __init__(self, app, address: str, channel: str = "sms") -> None:
        command = [sys.executable, "-c", "from assistant.cli import run; run()", "--now", NOW,
                   "chat", "--channel", channel, "--from", address, "--lang", "en", "--jsonl"]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, text=True, env=env_for(app),
                                        cwd=PROJECT_ROOT)
        self.last: dict = {}

    def send(self, text: str) -> dict:
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, self.process.stderr.read()
        self.last = json.loads(line)
        return self.last

    def choose(self, label: str) -> dict:
        """Answer with the key of the option whose label holds `label`."""
        keys = [o["key"] for o in self.last["options"] if label.lower() in o["label"].lower()]
        assert keys, f"no option {label!r} in {self.last}"
        return self.send(keys[0])

    def text(self) -> str:
        return "\n".join(self.last["replies"] + [o["label"] for o in self.last["options"]])

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)


def book(chat: Chat, *, for_whom: str, department: str) -> str:
    """Book the soonest time in `department`; returns the reply. `for_whom` is "For me",
    "For someone else" (the ID typed in) or a name the address booked for before."""
    chat.send("hello")
    if any(o["label"] == f"Book for {for_whom}" for o in chat.last["options"]):
        chat.choose(f"Book for {for_whom}")
    else:
        if not any(o["label"] == for_whom for o in chat.last["options"]):
            chat.choose("Book an appointment")  # a returning address: the menu first
        chat.choose(for_whom)
        if for_whom in ("For me", "For someone else"):
            chat.send(VICTIM_ID)
            chat.send(VICTIM_NAME)
    chat.send(department)
    chat.send(chat.last["options"][0]["key"])  # the soonest time offered
    assert "Book it?" in chat.text(), chat.text()
    return "\n".join(chat.send("yes")["replies"])


def cancel_first(chat: Chat) -> str:
    chat.choose("My bookings")
    chat.send(chat.last["options"][0]["key"])
    chat.choose("Cancel this booking")
    return "\n".join(chat.send("yes")["replies"])


def cli(app, *args: str) -> str:
    result = CliRunner().invoke(main, ["--now", NOW, *args], env=env_for(app))
    assert result.exit_code == 0, result.output
    return result.output


def test_an_attacker_who_knows_the_id_cannot_see_spoil_or_suspend_the_patient(app):
    app.clock = lambda: parse_now(NOW, app.settings.timezone)
    jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")

    victim = Chat(app, VICTIM_PHONE)
    assert "Your booking code is" in book(victim, for_whom="For me", department="general")
    victim_code = re.search(r"Your booking code is ([A-Z0-9]{8})", victim.text()).group(1)
    victim.close()

    attacker = Chat(app, ATTACKER_PHONE)
    for round_ in range(3):
        booked = book(attacker, for_whom="For someone else" if round_ == 0 else VICTIM_NAME,
                      department="cardiology")
        assert "Your booking code is" in booked, booked
        # His list shows the booking he made, never hers.
        attacker.choose("My bookings")
        assert victim_code not in attacker.text() and "General Medicine" not in attacker.text()
        attacker.send("menu")
        assert "is cancelled" in cancel_first(attacker)
    # The third cancellation suspends his phone, not her identity.
    refused = book(attacker, for_whom=VICTIM_NAME, department="cardiology")
    assert "This number can't book for now" in refused, refused
    attacker.close()

    victim = Chat(app, VICTIM_PHONE)
    victim.send("hello")
    victim.choose("My bookings")
    assert "General Medicine" in victim.text() and "Cardiology" not in victim.text()
    victim.send("menu")
    assert "Your booking code is" in book(victim, for_whom=VICTIM_NAME, department="bones")
    victim.close()

    waiting = cli(app, "outbox", "list")
    assert waiting.count("A booking was made in your name") == 3, waiting
    assert waiting.count("was cancelled by someone else") == 3, waiting
    assert waiting.count("+86*******0101") == 6 and "0202" not in waiting
    suspensions = cli(app, "suspensions", "list")
    assert "address" in suspensions and "+86*******0202" in suspensions
    assert "identity" not in suspensions


def test_the_patient_cancels_what_a_relative_booked_with_the_code_from_her_notice(app):
    """The mother books for herself once; her daughter books for her on Telegram. The
    notice in the outbox gives the mother the code; with it and her ID's last four she
    finds and cancels that booking from her own phone, and no notice tells her about
    what she did herself."""
    app.clock = lambda: parse_now(NOW, app.settings.timezone)
    jobs.seed_file(app, PROJECT_ROOT / "config" / "demo_hospital.toml")
    mother = Chat(app, VICTIM_PHONE)
    assert "Your booking code is" in book(mother, for_whom="For me", department="general")
    mother.close()
    daughter = Chat(app, "700100200", channel="telegram")
    assert "Your booking code is" in book(daughter, for_whom="For someone else", department="bones")
    daughter.close()

    [code] = re.findall(r"code ([A-Z0-9]{8})\.", cli(app, "outbox", "list"))
    mother = Chat(app, VICTIM_PHONE)
    mother.send("hello")
    mother.choose("My bookings")
    assert "Orthopedics" not in mother.text()  # her daughter's booking isn't hers to list
    mother.choose("someone made for me")
    mother.send(code)
    mother.send("1234")  # a wrong ending finds nothing, and says no more
    assert "No upcoming booking matches" in mother.text()
    mother.choose("someone made for me")
    mother.send(code.lower())
    mother.send(VICTIM_ID[-4:])
    assert code in mother.text() and "Orthopedics" in mother.text()
    mother.choose("Cancel this booking")
    assert f"The booking {code} is cancelled." in "\n".join(mother.send("yes")["replies"])
    mother.close()
    waiting = cli(app, "outbox", "list")
    assert waiting.count("A booking was made in your name") == 1
    assert "cancelled by someone else" not in waiting
