"""The teacher (DeepSeek-V3 family) and its tokenizer."""
