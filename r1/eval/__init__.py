"""Evaluation: the R1 protocol (pass@1, cons@k, pass@k), Codeforces rating, prompts, reports."""
