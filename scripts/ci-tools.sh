#!/bin/sh
# Installs the Python tools that tests/test_docker.py and tests/test_telemetry.py
# need (scripts/ci-tools.txt: kubernetes-validate, check-jsonschema,
# dockerfile-parse, mod_wsgi-telemetry) from PyPI into a venv,
# ${WSGI_RS_CI_TOOLS:-target/ci-tools}: Debian's python3 is externally
# managed. Needs python3-venv. Called by scripts/deps.sh --tests. Idempotent:
# quick when the venv was made from the same ci-tools.txt.
set -eu
cd "$(dirname "$0")/.."
VENV=${WSGI_RS_CI_TOOLS:-target/ci-tools}
REQS=scripts/ci-tools.txt
if [ -x "$VENV/bin/python" ] && cmp -s "$REQS" "$VENV/ci-tools.txt"; then
    exit 0
fi
echo "ci-tools.sh: installing the tools of $REQS into $VENV" >&2
rm -rf "$VENV"
/usr/bin/python3 -m venv "$VENV"
"$VENV/bin/pip" install -q --disable-pip-version-check -r "$REQS"
cp "$REQS" "$VENV/ci-tools.txt"
