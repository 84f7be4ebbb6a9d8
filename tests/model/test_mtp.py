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
