"""The CPU dropout mask: its keep rate, independence, expectation, gradient and determinism."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from liger_core.model.dropout import Dropout, keep_mask, keep_threshold

P = 0.2
N = 1_200_000


def test_keep_rate_is_one_minus_p_to_within_sampling_noise() -> None:
    torch.manual_seed(0)
    mask = keep_mask(torch.Size([N]), P)
    keep = keep_threshold(P) / 2**16
    assert keep == pytest.approx(1 - P, abs=1e-5)
    sigma = (keep * (1 - keep) / N) ** 0.5
    assert abs(mask.float().mean().item() - keep) < 5 * sigma


def test_each_chunk_of_a_draw_is_independent_and_uniform() -> None:
    # Neighbours come from one 64-bit draw three at a time, and every third entry from the
    # same 16 bits of consecutive draws: none may correlate, and each position keeps at 1 - p.
    torch.manual_seed(1)
    mask = keep_mask(torch.Size([N]), 0.5).float().view(-1, 3)
    sigma = (0.25 / len(mask)) ** 0.5
    for column in range(3):
        assert abs(mask[:, column].mean().item() - 0.5) < 5 * sigma
    centred = mask - 0.5  # +-0.5: a product of two independent ones has sd 0.25 / sqrt(n) = sigma / 2
    for a, b in ((0, 1), (1, 2), (0, 2)):
        assert abs((centred[:, a] * centred[:, b]).mean().item()) < 5 * sigma / 2


def test_kept_entries_are_scaled_so_the_expectation_is_unchanged() -> None:
    torch.manual_seed(2)
    x = torch.full((N,), 3.0)
    out = Dropout(P).train()(x)
    kept = out != 0
    assert torch.allclose(out[kept], torch.tensor(3.0 * 2**16 / keep_threshold(P)))
    assert out.mean().item() == pytest.approx(3.0, rel=5e-3)


def test_gradient_flows_through_kept_entries_only() -> None:
    torch.manual_seed(3)
    x = torch.randn(64, 33, requires_grad=True)
    out = Dropout(P).train()(x)
    out.sum().backward()
    assert x.grad is not None
    expected = (out != 0).float() * 2**16 / keep_threshold(P)
    assert torch.equal(x.grad, expected)


def test_same_seed_same_mask_and_shape_follows_the_input() -> None:
    layer = Dropout(P).train()
    x = torch.ones(7, 5, 11)
    torch.manual_seed(4)
    first = layer(x)
    torch.manual_seed(4)
    assert first.shape == x.shape and torch.equal(first, layer(x))
    assert not torch.equal(first, layer(x))  # the generator moved on


def test_eval_mode_and_zero_p_are_the_identity() -> None:
    x = torch.randn(10, 4)
    assert Dropout(P).eval()(x) is x
    assert Dropout(0.0).train()(x) is x


def test_no_parameters_so_nn_dropout_checkpoints_load() -> None:
    ours, theirs = nn.Sequential(nn.Linear(3, 3), Dropout(P)), nn.Sequential(nn.Linear(3, 3), nn.Dropout(P))
    ours.load_state_dict(theirs.state_dict())
    assert list(ours.state_dict()) == list(theirs.state_dict())


def test_p_outside_zero_one_is_refused() -> None:
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.0)
