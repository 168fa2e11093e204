#!/bin/sh
# Installs what building and testing mod_wsgi_rs needs, when it is missing:
# Apache with its headers and apxs, Python headers, libclang (bindgen), a C
# compiler, the test tools, and a Rust toolchain (rustup) if there is no cargo.
# --tests also: the Python tools of tests/test_docker.py (scripts/ci-tools.sh).
# Idempotent and quick when everything is present. Debian/Ubuntu (apt).
#   scripts/deps.sh          building the module
#   scripts/deps.sh --deb    also building the .deb (scripts/build-deb.sh):
#                            dpkg-dev (dpkg-shlibdeps) and cargo-deb
#   scripts/deps.sh --tests  also the tests (which build the .deb too)
set -eu

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

PKGS="apache2 apache2-dev python3 python3-dev libclang-dev gcc libc6-dev curl ca-certificates"
DEB=
case "${1:-}" in
    --tests) DEB=1; PKGS="$PKGS python3-pytest python3-flask python3-django openssl strace curl python3-venv python3-prometheus-client" ;;
    --deb) DEB=1 ;;
esac
[ -n "$DEB" ] && PKGS="$PKGS dpkg-dev"

missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "deps.sh: installing$missing" >&2
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

# Rust: Debian's rustc is too old (the crate needs >= 1.85), so use rustup.
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
if ! command -v cargo >/dev/null 2>&1; then
    echo "deps.sh: installing Rust with rustup" >&2
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y -q --profile minimal
    . "$HOME/.cargo/env"
fi

# cargo-deb (the .deb), built from crates.io: a few minutes, once.
if [ -n "$DEB" ] && ! command -v cargo-deb >/dev/null 2>&1; then
    echo "deps.sh: installing cargo-deb (cargo install)" >&2
    cargo install cargo-deb --locked --version '^3'
fi

if [ "${1:-}" = "--tests" ]; then
    "$(dirname "$0")/ci-tools.sh"
fi
