#!/bin/sh
# Quick start: builds the module and serves apache/example/app.wsgi with the
# system's Apache on http://127.0.0.1:${PORT:-8000} (foreground; Ctrl-C stops).
# Everything Apache reads is copied to a temp dir that its children can read.
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"
cargo build --release --locked

PORT=${PORT:-8000}
HTTPD="$(apxs -q SBINDIR)/$(apxs -q TARGET)"
MODULES="$(apxs -q LIBEXECDIR)"
RUN=$(mktemp -d /tmp/mod_wsgi_rs-example.XXXXXX)
chmod 755 "$RUN"
mkdir "$RUN/example"
cp apache/example/app.wsgi "$RUN/example/"
cp target/release/libmod_wsgi_rs.so "$RUN/mod_wsgi_rs.so"
USER_LINES=
[ "$(id -u)" -eq 0 ] && USER_LINES="User www-data
Group www-data"

cat > "$RUN/httpd.conf" <<CONF
ServerRoot $RUN
LoadModule mpm_event_module $MODULES/mod_mpm_event.so
LoadModule authz_core_module $MODULES/mod_authz_core.so
LoadModule mime_module $MODULES/mod_mime.so
LoadModule wsgi_rs_module $RUN/mod_wsgi_rs.so
$USER_LINES
ServerName 127.0.0.1
Listen 127.0.0.1:$PORT
PidFile $RUN/httpd.pid
DefaultRuntimeDir $RUN
ErrorLog /dev/stderr
LogLevel info
TypesConfig /etc/mime.types
DocumentRoot $RUN/example
$(sed "s|@EXAMPLE@|$RUN/example|g" apache/example/site.conf)
CONF

echo "Serving apache/example/app.wsgi on http://127.0.0.1:$PORT/ (config: $RUN/httpd.conf; Ctrl-C stops)"
"$HTTPD" -f "$RUN/httpd.conf" -DFOREGROUND &
pid=$!
trap 'kill -TERM $pid 2>/dev/null || true' INT TERM
status=0
wait $pid || status=$?
# wait returns early when a trapped signal arrives: wait again for the exit.
kill -0 $pid 2>/dev/null && { wait $pid || true; }
rm -rf "$RUN"
exit $status
