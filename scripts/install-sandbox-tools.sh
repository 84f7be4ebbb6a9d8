#!/usr/bin/env bash
# Install what the code sandbox needs (bubblewrap, util-linux, g++, python3) with apt-get; idempotent.
#
# Behaviour:
# - Every tool present (bwrap, prlimit, /usr/bin/python3, g++): installs nothing, never touches the network.
# - Something missing, apt-get present: `apt-get update` once, then
#   `apt-get install -y --no-install-recommends` of just the missing packages (bubblewrap, util-linux,
#   python3, g++), as root or through `sudo -n`.
# - Something missing and no apt-get (another distro, macOS), or not root and no password-less sudo:
#   names the packages to install and exits 1.
# - Finally runs one bwrap smoke test: the namespaces the sandbox uses, as uid 65534 when run as root. If
#   namespaces are forbidden here (for example by Docker's default seccomp profile) it prints a warning but
#   still exits 0: the tools are installed, and r1.rewards.sandbox fails closed at run time
#   (SandboxUnavailable) unless told to allow degraded mode.
set -euo pipefail

missing=()
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
[ -x /usr/bin/python3 ] || missing+=(python3)
command -v g++ >/dev/null 2>&1 || missing+=(g++)

if [ "${#missing[@]}" -gt 0 ]; then
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install-sandbox-tools: no apt-get here; install these packages yourself: ${missing[*]}" >&2
        exit 1
    fi
    if [ "$(id -u)" -eq 0 ]; then
        as_root=()
    elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
        as_root=(sudo -n)
    else
        echo "install-sandbox-tools: need root (or password-less sudo) to apt-get install: ${missing[*]}" >&2
        exit 1
    fi
    echo "install-sandbox-tools: installing ${missing[*]}"
    ${as_root[@]+"${as_root[@]}"} apt-get update -qq
    ${as_root[@]+"${as_root[@]}"} env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

echo "install-sandbox-tools: $(bwrap --version), prlimit, python3, g++ present"
as_sandbox_user=()  # the sandbox starts bwrap as nobody when it runs as root: test it the same way
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
    as_sandbox_user=(setpriv --reuid 65534 --regid 65534 --clear-groups)
fi
if ${as_sandbox_user[@]+"${as_sandbox_user[@]}"} bwrap --unshare-user --unshare-pid --unshare-net \
        --unshare-ipc --unshare-uts --as-pid-1 --die-with-parent --ro-bind /usr /usr --symlink usr/bin /bin \
        --symlink usr/lib /lib --symlink usr/lib64 /lib64 --proc /proc --dev /dev --tmpfs /tmp \
        -- /usr/bin/true 2>/dev/null; then
    echo "install-sandbox-tools: bwrap can create the sandbox's namespaces here"
else
    echo "install-sandbox-tools: WARNING: bwrap cannot create namespaces here; the sandbox will fail closed" \
         "(SandboxConfig.allow_degraded runs it without them)" >&2
fi
