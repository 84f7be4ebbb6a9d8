"""Rule-based rewards, as DeepSeek-R1 uses them: no neural reward model.

Kinds: math (boxed answer against gold), choice (multiple-choice letter), code (run against tests in a
sandbox), format (the R1-Zero `<think>`/`<answer>` template) and language consistency. Every checker
returns a `RewardResult` (see `verdict.py`). This package imports no torch.
"""
