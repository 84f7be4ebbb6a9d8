"""DeepSeekMoE routing against a hand-worked example; the bias update balances a skewed load."""

from __future__ import annotations

import torch

from r1.model.config import preset
from r1.model.moe import MoE, bias_update, load_imbalance, route, update_routing_bias


def test_routing_matches_the_hand_worked_example():
    # 8 experts in 4 groups of 2; keep 2 groups, then 2 experts; weights normalised, times 2.
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.6, 0.2, 0.3, 0.8, 0.05]])
    bias = torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -0.5, 0.6])
    # biased: .9 .1 | .5 .6 | .2 .3 | .3 .65 -> group scores 1.0, 1.1, 0.5, 0.95 -> groups 1 and 0 kept;
    # expert 6 (unbiased .8) lost to its bias, expert 7 (biased .65) to its group; top 2 of 0..3: 0 and 3;
    # weights from the unbiased scores: .9 and .6 -> .6 and .4 -> x2 = 1.2 and .8.
    weights, indices = route(scores, bias, n_group=4, topk_group=2, top_k=2, normalize=True, scaling=2.0)
    chosen = dict(zip(indices[0].tolist(), weights[0].tolist()))
    assert chosen.keys() == {0, 3}
    assert abs(chosen[0] - 1.2) < 1e-6 and abs(chosen[3] - 0.8) < 1e-6


def test_without_normalisation_the_weights_are_the_scores_times_the_scaling():
    scores = torch.tensor([[0.9, 0.1, 0.5, 0.6]])
    weights, indices = route(scores, torch.zeros(4), n_group=1, topk_group=1, top_k=2, normalize=False, scaling=2.5)
    assert sorted(zip(indices[0].tolist(), weights[0].tolist())) == [(0, 2.25), (3, 1.5)]


def test_bias_update_moves_against_the_load_error():
    bias = bias_update(torch.zeros(4), torch.tensor([10.0, 2.0, 4.0, 4.0]), speed=0.1)
    assert torch.allclose(bias, torch.tensor([-0.1, 0.1, 0.1, 0.1]))  # mean 5: only expert 0 is over it
    assert bias_update(torch.zeros(2), torch.tensor([3.0, 3.0]), 0.1).tolist() == [0.0, 0.0]


def test_the_bias_update_balances_a_skewed_router():
    torch.manual_seed(0)
    config = preset("tiny", n_routed_experts=8, n_group=2, topk_group=2, num_experts_per_tok=2)
    moe = MoE(config)
    with torch.no_grad():
        moe.gate.weight[:2] += 0.5  # experts 0 and 1 score high for inputs with a positive mean
    x = torch.randn(512, config.hidden_size) + 0.3

    def imbalance() -> float:
        with torch.no_grad():
            moe(x)
        load = moe.load.clone()
        update_routing_bias(moe, speed=0.02)
        return load_imbalance(load)

    before = imbalance()
    for _ in range(60):
        after = imbalance()
    assert before > 2.5 and after < 1.5
    assert moe.gate.e_score_correction_bias[:2].max() < 0 < moe.gate.e_score_correction_bias[2:].min()


def test_load_counts_every_routed_token(model, tokens):
    for module in model.modules():
        if isinstance(module, MoE):
            module.load.zero_()
    with torch.no_grad():
        model(tokens)
    loads = update_routing_bias(model, speed=0.0)
    per_layer = tokens.numel() * model.config.num_experts_per_tok
    assert loads and all(int(load.sum()) == per_layer for load in loads.values())


def test_packed_experts_compute_what_the_expert_loop_computes():
    torch.manual_seed(0)
    layer = MoE(preset("tiny")).eval()
    x = torch.randn(3, 5, layer.config.hidden_size)
    with torch.no_grad():
        looped = layer(x)
        layer.pack()
        packed = layer(x)  # 15 tokens x 2 experts = 30 <= PACKED_LIMIT: the packed path
        assert torch.allclose(packed, looped, atol=1e-6)
        layer.experts[0].up_proj.weight.mul_(2)
        assert torch.allclose(layer(x), packed)  # stale until packed again
        layer.pack()
        assert not torch.allclose(layer(x), packed)
    with torch.enable_grad():
        assert layer(x).requires_grad  # training never takes the packed path
