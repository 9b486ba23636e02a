"""Finding a department in a 49-department hospital, the way patients and their children ask.

tests/data/department_requests.toml holds 120 requests (40 a language) written as people
write them: everyday names, symptoms, typos, pinyin, sentences with numbers in them. Each
is sent at the department question of config/large_hospital.toml. The measure: a request
reaches its department at once, or through one "did you mean" list of at most five that
holds it; none ever reaches a wrong one.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from pathlib import Path

import pytest

from assistant.engine.flow import Step
from tests.fakes import FakeBackend
from tests.unit.test_engine import NEW_PATIENT, drive, key_for, send

ROOT = Path(__file__).resolve().parents[2]
LARGE = ROOT / "config" / "large_hospital.toml"
REQUESTS = tomllib.loads((ROOT / "tests" / "data" / "department_requests.toml").read_text("utf-8"))["requests"]
CODES = [d["code"] for d in tomllib.loads(LARGE.read_text("utf-8"))["departments"]]
LOCALES = ("en", "zh_Hans", "es")
TARGET = 0.8


def department_question(locale: str):
    fake = FakeBackend.from_hospital_file(LARGE)
    turn = drive(fake, NEW_PATIENT, locale=locale)
    assert turn.state.step == Step.DEPARTMENT
    return fake, turn


def outcome(text: str, wanted: str, locale: str) -> str:
    """at_once, listed (in a did-you-mean list of at most 5), missed, or wrong."""
    fake, turn = department_question(locale)
    after = send(fake, turn.state, text)
    assert after.error is None
    wanted_id = CODES.index(wanted) + 1
    if after.state.step == Step.SOONEST:
        return "at_once" if after.state.department_id == wanted_id else "wrong"
    if after.state.candidates:
        assert len(after.state.candidates) <= 5
        return "listed" if wanted_id in after.state.candidates else "missed"
    return "missed"


@pytest.fixture(scope="module")
def outcomes() -> dict[str, Counter]:
    found: dict[str, Counter] = {locale: Counter() for locale in LOCALES}
    for request in REQUESTS:
        found[request["lang"]][outcome(request["text"], request["department"], request["lang"])] += 1
    return found


def test_there_are_forty_requests_in_each_language():
    assert Counter(r["lang"] for r in REQUESTS) == {locale: 40 for locale in LOCALES}


@pytest.mark.parametrize("locale", LOCALES)
def test_most_requests_find_their_department_at_once_or_in_one_short_list(outcomes, locale):
    counts = outcomes[locale]
    print(locale, dict(counts))
    assert (counts["at_once"] + counts["listed"]) / 40 >= TARGET, dict(counts)


@pytest.mark.parametrize("locale", LOCALES)
def test_no_request_ever_reaches_a_wrong_department(outcomes, locale):
    assert outcomes[locale]["wrong"] == 0


@pytest.mark.parametrize("text,wanted", [
    ("Cardiolgy", "cardiology"), ("cardiology", "cardiology"), ("heart", "cardiology"),
    ("dermatolgy", "dermatology"), ("eyes", "ophthalmology"), ("心脏", "cardiology"),
    ("眼睛", "ophthalmology"), ("耳鼻候科", "ent"), ("corazón", "cardiology"), ("corazon", "cardiology"),
    ("oftalmologia", "ophthalmology"), ("pediatria", "pediatrics"), ("yanke", "ophthalmology"),
])
def test_typos_synonyms_and_pinyin_find_the_department(text, wanted):
    assert outcome(text, wanted, "en") in ("at_once", "listed")


def test_an_area_then_a_department_from_its_menu():
    fake, turn = department_question("en")
    assert [value for _, value in turn.state.menu][:5] == [
        "group:medicine", "group:surgery", "group:women_children", "group:senses", "group:other"]
    area = send(fake, turn.state, key_for(turn.state, "group:senses"))
    assert area.state.step == Step.DEPARTMENT and area.state.department_group == "senses"
    chosen = send(fake, area.state, "1")
    assert chosen.state.step == Step.SOONEST and chosen.state.department_group is None
    # `*` inside an area goes back to the areas, not out of the question.
    back = send(fake, area.state, "*")
    assert back.state.step == Step.DEPARTMENT and back.state.department_group is None


def test_a_number_inside_a_sentence_is_never_a_menu_choice():
    fake, turn = department_question("en")
    after = send(fake, turn.state, "I have 3 questions")
    assert after.state.step == Step.DEPARTMENT and after.state.department_group is None
