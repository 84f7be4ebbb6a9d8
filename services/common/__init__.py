"""The bootstrap every service shares: server, health, reflection, metrics, auth, TLS, errors, drain."""
