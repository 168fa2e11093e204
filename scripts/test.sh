#!/bin/sh
# The test command: installs what is missing, builds the module, runs the
# Rust unit tests and the integration tests (real Apache, real HTTP).
# Extra arguments go to pytest, e.g. scripts/test.sh -k environ -x
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --tests
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cargo build --release --locked
cargo test --release --locked
# Debian's python3 on purpose: the one the module links and the one that has
# python3-pytest/flask/django, whatever python3 comes first on PATH.
exec /usr/bin/python3 -m pytest tests -q -p no:cacheprovider "$@"
