"""The YAML loader: YAML 1.2 scalars, positions for every node, and its limits."""

from __future__ import annotations

import datetime

import pytest

from engine.base.diagnostics import InputError
from engine.load import source


def load(text: str) -> source.Document:
    return source.parse(text.encode(), "t.yaml")


def test_unquoted_yes_and_no_are_words_not_booleans():
    doc = load("a: yes\nb: no\nc: on\nd: off\ne: true\n")
    assert doc.data == {"a": "yes", "b": "no", "c": "on", "d": "off", "e": True}


def test_scalars_resolve_as_yaml_1_2():
    doc = load("d: 2016-05-04\ni: 12\nf: 1.5\nn: ~\ns: '12'\nv: \"2.0\"\nx: 0x1f\n")
    assert doc.data == {"d": datetime.date(2016, 5, 4), "i": 12, "f": 1.5, "n": None, "s": "12", "v": "2.0", "x": 31}


def test_positions_of_keys_values_and_list_items():
    doc = load("case: NW-1\nevidence:\n  3.1.a:\n    answer: no\nflags: [a, b]\n")
    assert doc.where(("case",)) == (1, 7)
    assert doc.where(("evidence", "3.1.a"), key=True) == (3, 3)
    assert doc.where(("evidence", "3.1.a", "answer")) == (4, 13)
    assert doc.where(("flags", 1)) == (5, 12)
    assert doc.where(("evidence", "3.1.a", "missing")) == (4, 5)  # nearest existing ancestor


def test_small_aliases_are_allowed_and_expanded():
    doc = load("base: &b [oasys, interview]\nother: *b\n")
    assert doc.data["other"] == ["oasys", "interview"]


def test_sha256_is_of_the_raw_bytes():
    import hashlib
    raw = b"case: NW-1\n"
    assert source.parse(raw, "t.yaml").sha256 == hashlib.sha256(raw).hexdigest()


def test_byte_order_mark_is_accepted():
    assert source.parse(b"\xef\xbb\xbfcase: NW-1\n", "t.yaml").data == {"case": "NW-1"}


@pytest.mark.parametrize("depth, ok", [(source.MAX_DEPTH - 1, True), (source.MAX_DEPTH + 5, False)])
def test_depth_limit(depth, ok):
    text = "a: " + "[" * depth + "]" * depth + "\n"
    if ok:
        load(text)
    else:
        with pytest.raises(InputError) as caught:
            load(text)
        assert caught.value.diagnostics[0].code == "too_deep"


def test_very_deep_nesting_does_not_exhaust_the_stack():
    with pytest.raises(InputError) as caught:
        load("a: " + "[" * 100_000 + "]" * 100_000)
    assert caught.value.diagnostics[0].code == "too_deep"


def test_billion_laughs_is_stopped_quickly():
    levels = ["a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    levels += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    with pytest.raises(InputError) as caught:
        load("\n".join(levels) + "\n")
    assert [d.code for d in caught.value.diagnostics] == ["too_many_nodes"]
