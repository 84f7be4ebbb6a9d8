"""Training and evaluation data: benchmark loaders, prompts and synthetic verifiable tasks."""
