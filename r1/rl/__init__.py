"""Reinforcement learning for reasoning: group advantages and policy losses (pure functions), the RL loop."""
