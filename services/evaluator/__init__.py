"""The evaluator: `r1 eval` wired to the services (run.py), its gauges (metrics.py), lm-eval over generation."""
