#!/bin/sh
# Builds the Debian package libapache2-mod-wsgi-rs (Cargo.toml's
# [package.metadata.deb], made with cargo-deb) and prints the path of the .deb.
# Installs what is missing first (scripts/deps.sh --deb: the build's packages,
# dpkg-dev for dpkg-shlibdeps, cargo-deb).
# Usage: scripts/build-deb.sh    then: sudo dpkg -i <the .deb>; sudo a2enmod wsgi_rs
set -eu
cd "$(dirname "$0")/.."
scripts/deps.sh --deb >&2
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

# The Apache module ABI the package depends on is the one of the headers it is
# built with; Cargo.toml names it (cargo-deb has no variables in depends).
mmn=$(sed -n 's/^#define MODULE_MAGIC_NUMBER_MAJOR \([0-9]*\).*/\1/p' "$(apxs -q INCLUDEDIR)/ap_mmn.h")
if ! grep -q "^depends = .*apache2-api-$mmn[,\"]" Cargo.toml; then
    echo "build-deb.sh: the httpd headers are ABI apache2-api-$mmn; update depends in Cargo.toml's [package.metadata.deb]" >&2
    exit 1
fi

cargo build --release --locked >&2
out=$(cargo deb --no-build --locked --strip --output target/debian)
echo "$out" | tail -n 1
