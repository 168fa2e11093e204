#!/bin/sh
# The image's runtime stage (docker/Dockerfile), also runnable as root on a
# Debian 12 host: installs what the module and the mod_wsgi_rs command need
# at run time, creates the user the server runs as, and /app.
#
#   apache2        Apache httpd 2.4 (the mod_wsgi_rs command runs it)
#   libpython3.11  the libpython the module links (bookworm's python3-dev)
#   python3        its standard library and python3 itself (also handy for
#                  health checks: the image has no curl)
#
# The user: wsgi, UID and GID 10001 (APP_UID overrides), no login shell,
# home /app. Nothing runs as root in the image.
set -eu
PKGS="apache2 libpython3.11 python3"
APP_UID=${APP_UID:-10001}
APP_USER=${APP_USER:-wsgi}

missing=
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $missing
    apt-get clean
    rm -rf /var/lib/apt/lists/*
fi

getent group "$APP_USER" >/dev/null || groupadd --gid "$APP_UID" "$APP_USER"
getent passwd "$APP_USER" >/dev/null || useradd --uid "$APP_UID" --gid "$APP_USER" \
    --home-dir /app --no-create-home --shell /usr/sbin/nologin "$APP_USER"
# /app belongs to root: the application cannot rewrite its own code.
install -d -m 755 /app
