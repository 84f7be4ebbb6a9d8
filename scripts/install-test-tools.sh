#!/usr/bin/env bash
# Install the deployment tests' Prometheus (promtool and the server, Debian's `prometheus` package); idempotent.
#
# Behaviour:
# - promtool and prometheus present: installs nothing, never touches the network.
# - Missing, apt-get present and root (or password-less sudo): `apt-get update`, then
#   `apt-get install -y --no-install-recommends prometheus` (no node-exporter). The package's systemd unit is
#   not started in containers (policy-rc.d); the tests start their own server on 127.0.0.1.
# - Missing otherwise: a warning naming the package, exit 0. tests/deploy/test_observability.py then skips
#   its Prometheus tests with that reason; nothing else needs Prometheus.
set -euo pipefail

if command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1; then
    echo "install-test-tools: $(promtool --version 2>&1 | head -1)"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-test-tools: WARNING: no apt-get; install Prometheus (promtool + server) yourself, or the" \
         "Prometheus tests skip" >&2
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-test-tools: WARNING: need root to apt-get install prometheus; the Prometheus tests skip" >&2
    exit 0
fi
echo "install-test-tools: installing prometheus"
${as_root[@]+"${as_root[@]}"} apt-get update -qq
${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends prometheus
echo "install-test-tools: $(promtool --version 2>&1 | head -1)"
