"""The text audit on generated samples with planted problems."""
from __future__ import annotations

import pytest

from aigc.data.text_audit import audit_text, char_script, suspicious_kind


def test_text_audit_finds_planted_problems():
    train = ["anna", "bob", "carla", "bob", "", "dav\x07id", "ma\ufffdria", "zo\u200be", "p\u0430ypal"]
    test = ["anna", "eve", "Carla ", "frank"]
    r = audit_text({"train": train, "test": test}, "generated")

    tr = r["splits"]["train"]
    assert tr["samples"] == 9 and tr["characters"] == sum(map(len, train))
    assert tr["empty"] == 1 and tr["duplicate_extra_copies"] == 1 and tr["top_duplicates"] == [["bob", 2]]
    assert tr["lengths"]["min"] == 0 and tr["lengths"]["max"] == 6
    kinds = {k for _, _, k, _ in r["suspicious"]["characters"]}
    assert kinds == {"control", "replacement", "invisible"} and r["suspicious"]["samples"] == 3
    assert r["suspicious"]["mixed_script_samples"] == 1          # Latin p + Cyrillic a
    assert "CYRILLIC+LATIN" in r["suspicious"]["mixed_script_examples"][0]
    assert r["overlap"]["test_samples_in_train"] == 1
    assert r["overlap"]["test_samples_in_train_ignoring_case_and_spaces"] == 1   # 'Carla '
    counts = dict(r["charset"]["counts"])
    assert counts["a"] == sum(s.count("a") for s in train + test)
    advice = "\n".join(r["advice"])
    assert "1 of 4 test samples" in advice and "empty" in advice and "suspicious" in advice


def test_clean_text_gets_a_clean_bill():
    r = audit_text({"train": ["alpha", "beta", "gamma"], "test": ["delta"]})
    assert r["advice"] == ["No problems found: no overlap, suspicious characters, empty or duplicate samples."]


@pytest.mark.parametrize("ch,kind", [("\n", None), ("\t", None), ("\r", "control"), ("\ufeff", "invisible"),
                                     ("\ufffd", "replacement"), ("é", None)])
def test_suspicious_kinds(ch, kind):
    assert suspicious_kind(ch) == kind


def test_scripts():
    assert [char_script(c) for c in "a\u0430\u03b1 1"] == ["LATIN", "CYRILLIC", "GREEK", None, None]
