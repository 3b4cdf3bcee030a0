"""Text metrics: likelihood in nats/bits per character, novelty, distinct-n and the length gap."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from aigc.data.text import PAD, text_dataset
from aigc.metrics.text import distinct_n, evaluate_text_run, length_gap, nll_per_char, novelty
from aigc.run import build_model


def test_distinct_n_counts_unique_character_ngrams():
    assert distinct_n(["abab"], 1) == 2 / 4
    assert distinct_n(["abab"], 2) == 2 / 3          # ab, ba, ab
    assert distinct_n(["abc", "abd"], 3) == 1.0
    assert distinct_n(["a"], 2) == 0.0


def test_novelty_for_lines_and_for_continuous_text():
    assert novelty(["ann", "bob", "zed", "amy"], ["ann", "amy", "eve"]) == 0.5
    assert novelty(["the cat", "dog sat"], ["the cat sat", "on the mat"], kind="text") == 0.5


def test_length_gap_is_zero_for_equal_lengths_and_grows_with_shift():
    same = length_gap(["ab", "abc"], ["xy", "xyz"])
    assert same["length_w1"] == 0.0 and same["length_ks"] == 0.0
    shifted = length_gap(["abcd", "abcde"], ["xy", "xyz"])
    assert shifted["length_w1"] == pytest.approx(2.0) and shifted["length_mean_generated"] == 4.5


def test_nll_per_char_is_the_mean_cross_entropy_over_real_targets():
    torch.manual_seed(0)
    data = text_dataset("t", {"train": ["abc", "a", "bcbcbca"]}, kind="lines", block_size=16)
    model = build_model({"name": "lstm", "embed": 8, "hidden": 8}, data.meta).eval()
    x = data.train["x"]
    logits, _ = model(x[:, :-1])
    expected = F.cross_entropy(logits.flatten(0, 1), x[:, 1:].flatten(), ignore_index=PAD)
    nll, count = nll_per_char(model, x, batch_size=2)
    assert count == 4 + 2 + 8                         # characters plus one end token each
    assert nll == pytest.approx(expected.item(), rel=1e-5)


def test_an_untrained_uniform_model_scores_log_vocab():
    data = text_dataset("t", {"train": ["abc", "cab"], "test": ["bca"]}, kind="lines", block_size=8)
    model = build_model({"name": "transformer", "layers": 1, "heads": 1, "width": 8, "tie_weights": False},
                        data.meta)
    with torch.no_grad():
        for p in model.head.parameters():
            p.zero_()                                  # every logit 0: p = 1 / vocab everywhere
    scores = evaluate_text_run(model, data, n=20)
    assert scores["nll"] == pytest.approx(math.log(model.vocab_size))
    assert scores["bpc"] == pytest.approx(math.log2(model.vocab_size))
    assert scores["perplexity"] == pytest.approx(model.vocab_size)
    assert scores["samples"] == 20 and 0.0 <= scores["novelty"] <= 1.0
    assert {"distinct_1", "distinct_2", "distinct_3", "length_w1", "length_ks"} <= set(scores)
