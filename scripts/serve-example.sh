#!/bin/sh
# Quick start: installs what is missing, builds the module and the
# `mod_wsgi_rs` command, and serves apache/example/app.wsgi with the system's
# Apache on http://127.0.0.1:${PORT:-8000} (foreground; Ctrl-C stops):
#     mod_wsgi_rs serve apache/example/app.wsgi --host 127.0.0.1 --port 8000 --log-to-terminal --access-log
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked

APP=apache/example/app.wsgi
if [ "$(id -u)" -eq 0 ]; then
    # As root, Apache runs the app as www-data, who may not be able to read
    # this checkout (say under /root): serve a copy it can read.
    RUN=$(mktemp -d /tmp/mod_wsgi_rs-example.XXXXXX)
    trap 'rm -rf "$RUN"' EXIT
    chmod 755 "$RUN"
    cp "$APP" "$RUN/"
    chmod 644 "$RUN/app.wsgi"
    APP=$RUN/app.wsgi
fi
# Ctrl-C reaches mod_wsgi_rs too, which stops Apache and returns: wait for it.
trap : INT TERM
status=0
target/release/mod_wsgi_rs serve "$APP" --host 127.0.0.1 --port "${PORT:-8000}" \
    --log-to-terminal --access-log || status=$?
exit $status
