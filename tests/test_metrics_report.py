"""The evaluation's plain-language warnings: mode collapse and memorization, only where the numbers say so."""
from __future__ import annotations

from aigc.metrics.report import diagnose, format_table, markdown


def result(kind="run", **values):
    prdc = {k: values.pop(k) for k in ("precision", "recall", "density", "coverage") if k in values}
    sections = [{"name": "prdc", "values": prdc, "n": 100, "against": "test", "features": "f", "note": ""},
                {"name": "memorization", "values": values, "n": 100, "against": "train", "features": "f",
                 "note": ""}]
    return {"kind": kind, "n": 100, "run": "r", "checkpoint": "c", "against": "test split",
            "features": {"name": "f"}, "data": "d", "sections": sections}


def test_a_collapsed_generator_is_named_as_such():
    # the document's MLP GAN after 10,000 steps (benchmarks/results/recipes.md): real-looking, few modes
    r = result(precision=0.87, recall=0.0, density=0.9, coverage=0.035, copies=0.0)
    (warning,) = diagnose(r)
    assert "mode collapse" in warning and "recall 0.00" in warning
    assert "mode collapse" in format_table(r) and "mode collapse" in markdown(r)


def test_a_healthy_gan_and_the_real_floor_get_no_warning():
    # fashion-dcgan's figures, and the real-data floor (which is not a generator)
    assert diagnose(result(precision=0.72, recall=0.265, density=0.67, coverage=0.28, copies=0.0)) == []
    assert diagnose(result("real", precision=0.87, recall=0.05, coverage=0.05, copies=0.0)) == []


def test_noise_is_not_mode_collapse_and_copies_are_memorization():
    # an untrained generator: low recall and coverage, but its samples do not look real either
    assert diagnose(result(precision=0.02, recall=0.0, density=0.01, coverage=0.0, copies=0.0)) == []
    (warning,) = diagnose(result(precision=0.95, recall=0.9, density=1.0, coverage=0.95, copies=0.4))
    assert "memorization" in warning and "40.0%" in warning
