"""Multi-Token Prediction: shapes and targets line up, and the MTP loss trains."""

from __future__ import annotations

import torch

from r1.model.deepseek_v3 import training_loss
from tests.model.conftest import random_model


def test_each_depth_is_one_shorter_and_predicts_one_further(tokens):
    model = random_model(num_nextn_predict_layers=2)
    with torch.no_grad():
        out = model(tokens)
        depths = model.mtp_hidden(tokens, out.hidden)
    assert [d.shape[1] for d in depths] == [tokens.shape[1] - 1, tokens.shape[1] - 2]
    _, parts = training_loss(model, tokens)
    assert set(parts) == {"main", "mtp1", "mtp2"}


def test_the_mtp_loss_falls_on_a_toy_sequence():
    torch.manual_seed(0)
    model = random_model(num_nextn_predict_layers=1).train()
    pattern = torch.tensor([5, 17, 42, 99, 123, 7, 64, 250] * 4)[None].repeat(4, 1)  # [4, 32]
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    history = []
    for _ in range(40):
        loss, parts = training_loss(model, pattern, mtp_weight=0.3)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        history.append(parts)
    assert history[-1]["mtp1"] < 0.2 * history[0]["mtp1"]
    assert history[-1]["main"] < 0.2 * history[0]["main"]


def test_labels_mask_positions_out_of_the_loss(tokens):
    model = random_model()
    labels = tokens.clone()
    labels[:, :12] = -100  # e.g. the prompt
    with torch.no_grad():
        masked, _ = training_loss(model, tokens, labels)
        full, _ = training_loss(model, tokens)
    assert masked != full and torch.isfinite(masked)


def test_the_shared_prefix_loss_equals_the_full_loss_and_its_gradients():
    from r1.model.deepseek_v3 import shared_prefix_loss

    model = random_model()
    generator = torch.Generator().manual_seed(5)
    prefix = torch.randint(3, 300, (20,), generator=generator)
    suffix = torch.randint(3, 300, (3, 15), generator=generator)
    labels = suffix.clone()
    labels[:, :4] = -100  # the question
    labels[1, 10:] = -100  # padding
    full = torch.cat([prefix[None].expand(3, -1), suffix], dim=1)
    full_labels = torch.cat([torch.full((3, 20), -100), labels], dim=1)
    expected, expected_parts = training_loss(model, full, full_labels)
    expected.backward()
    expected_grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    got, parts = shared_prefix_loss(model, prefix, suffix, labels)
    got.backward()
    assert torch.allclose(got, expected, atol=1e-5) and parts.keys() == expected_parts.keys()
    for name, param in model.named_parameters():
        if name in expected_grads:
            assert torch.allclose(param.grad, expected_grads[name], atol=1e-6), name
