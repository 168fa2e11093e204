#!/bin/sh
# Installs the built module where Apache keeps its modules, as mod_wsgi_rs.so
# (`apxs -q LIBEXECDIR`), and on Debian/Ubuntu the a2enmod files.
# Usage: cargo build --release && sudo scripts/install.sh [DESTDIR]
set -eu
cd "$(dirname "$0")/.."
DESTDIR=${1:-}
LIBEXECDIR=$(apxs -q LIBEXECDIR)
install -D -m 644 target/release/libmod_wsgi_rs.so "$DESTDIR$LIBEXECDIR/mod_wsgi_rs.so"
echo "installed $DESTDIR$LIBEXECDIR/mod_wsgi_rs.so"
if [ -d "$DESTDIR/etc/apache2/mods-available" ] || [ -n "$DESTDIR" ]; then
    # apache/wsgi_rs.load names Debian's module directory (the .deb ships it as is).
    sed "s|/usr/lib/apache2/modules/|$LIBEXECDIR/|" apache/wsgi_rs.load > wsgi_rs.load.tmp
    install -D -m 644 wsgi_rs.load.tmp "$DESTDIR/etc/apache2/mods-available/wsgi_rs.load"
    rm -f wsgi_rs.load.tmp
    install -D -m 644 apache/wsgi_rs.conf "$DESTDIR/etc/apache2/mods-available/wsgi_rs.conf"
    echo "installed $DESTDIR/etc/apache2/mods-available/wsgi_rs.{load,conf}: a2dismod wsgi; a2enmod wsgi_rs"
fi
