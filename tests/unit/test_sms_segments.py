"""SMS segment counting on the published GSM-7 and UCS-2 boundaries."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from assistant.channels.sms_segments import (
    GSM7_BASIC,
    GSM7_EXTENSION,
    SegmentCount,
    count_segments,
    is_gsm7,
)

CJK = "你"
EMOJI = "\U0001F600"  # 😀, outside the BMP: a surrogate pair in UTF-16


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_gsm7_boundaries(length, segments):
    assert count_segments("a" * length) == SegmentCount("GSM-7", length, segments)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries_for_chinese(length, segments):
    assert count_segments(CJK * length) == SegmentCount("UCS-2", length, segments)


def test_one_i_acute_forces_ucs2_for_the_whole_message():
    # é is in GSM 03.38; í is not, so Spanish "Sí" costs UCS-2.
    assert count_segments("Sí").encoding == "UCS-2"
    assert count_segments("café").encoding == "GSM-7"
    assert count_segments("a" * 69 + "í") == SegmentCount("UCS-2", 70, 1)
    assert count_segments("a" * 70 + "í") == SegmentCount("UCS-2", 71, 2)
    assert count_segments("é" * 160) == SegmentCount("GSM-7", 160, 1)


@pytest.mark.parametrize("char", sorted(GSM7_EXTENSION))
def test_extension_characters_count_two_units(char):
    assert count_segments(char) == SegmentCount("GSM-7", 2, 1)
    assert count_segments(char * 80) == SegmentCount("GSM-7", 160, 1)
    assert count_segments(char * 81) == SegmentCount("GSM-7", 162, 2)


def test_escape_pair_is_not_split_across_parts():
    # 152 + 2 + 152 = 306 units would divide into 2 parts, but the euro's
    # escape pair does not fit in the 1 unit left in part one.
    text = "a" * 152 + "€" + "a" * 152
    assert count_segments(text) == SegmentCount("GSM-7", 306, 3)


def test_escape_pair_that_ends_exactly_at_a_part_boundary_fits():
    text = "a" * 151 + "€" + "a" * 153
    assert count_segments(text) == SegmentCount("GSM-7", 306, 2)


def test_emoji_counts_two_utf16_units():
    assert count_segments(EMOJI) == SegmentCount("UCS-2", 2, 1)
    assert count_segments(EMOJI * 35) == SegmentCount("UCS-2", 70, 1)
    assert count_segments(EMOJI * 36) == SegmentCount("UCS-2", 72, 2)


def test_surrogate_pair_is_not_split_across_parts():
    text = CJK * 66 + EMOJI + CJK * 66
    assert count_segments(text) == SegmentCount("UCS-2", 134, 3)


def test_empty_text_is_billed_as_one_segment():
    assert count_segments("") == SegmentCount("GSM-7", 0, 1)


def test_the_basic_set_is_gsm7_and_one_unit_each():
    assert len(GSM7_BASIC) == 127
    text = "".join(sorted(GSM7_BASIC))
    assert count_segments(text) == SegmentCount("GSM-7", 127, 1)


def test_greek_capitals_are_greek_not_latin_lookalikes():
    greek = {char for char in GSM7_BASIC if 0x0391 <= ord(char) <= 0x03A9}
    assert greek == set("ΔΦΓΛΩΠΨΣΘΞ")
    assert count_segments("A").encoding == "GSM-7"


@pytest.mark.parametrize(
    "char",
    ["`", "á", "ç", "\u202f", "\u00a0", "\x1b", "’", "“", "…"],
)
def test_common_lookalikes_outside_gsm7_force_ucs2(char):
    # Curly quotes, the narrow no-break space CLDR puts before "AM", and á
    # all look harmless and each one halves the room in a message.
    assert not is_gsm7(char)
    assert count_segments("Hello " + char).encoding == "UCS-2"


def test_lone_surrogate_is_counted_not_raised():
    assert count_segments("\ud83d") == SegmentCount("UCS-2", 1, 1)


def test_non_string_input_is_counted_as_text():
    assert count_segments(None) == SegmentCount("GSM-7", 0, 1)  # type: ignore[arg-type]
    assert count_segments(12345) == SegmentCount("GSM-7", 5, 1)  # type: ignore[arg-type]


@given(st.text())
def test_units_and_segments_agree_with_the_encoding(text):
    count = count_segments(text)
    single, per_part = (160, 153) if count.encoding == "GSM-7" else (70, 67)
    if count.encoding == "UCS-2":
        assert count.units == len(text.encode("utf-16-le", "surrogatepass")) // 2
    if count.units <= single:
        assert count.segments == 1
    else:
        # Packing can only waste the last unit of a part, never more.
        assert math.ceil(count.units / per_part) <= count.segments
        assert count.segments <= math.ceil(count.units / (per_part - 1))


@given(st.text(), st.text())
def test_appending_text_never_lowers_the_cost(head, tail):
    assert count_segments(head).segments <= count_segments(head + tail).segments
