"""r1-stack: the DeepSeek-R1 recipe as a library.

`import r1` is cheap on purpose: no torch, no model, no I/O. Subpackages are imported where they are used:

- `r1.model`   teacher (DeepSeek-V3 family) and students, tokenizer
- `r1.engine`  generation backends behind one Protocol
- `r1.rewards` math, choice, code, format and language rewards; the code sandbox
- `r1.rl`      group advantages, policy losses, the RL loop
- `r1.sft`     SFT stages, rejection sampling
- `r1.data`    benchmark loaders, prompts, synthetic tasks
- `r1.eval`    pass@k, cons@k, reports
- `r1.cli`     the `r1` command (the composition root)

The library never imports grpc, protobuf or `services` (checked by import-linter in the test suite).
"""

__version__ = "0.1.0"
