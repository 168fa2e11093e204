#!/bin/sh
# The image's builder stage (docker/Dockerfile), also runnable outside Docker:
#
#   docker/build.sh [SRC [OUT]]
#
# builds the module and the mod_wsgi_rs command in the checkout SRC (default:
# this script's) with `cargo build --release --locked` and installs them under
# OUT (default SRC/target/docker-out) where the image has them:
#
#   OUT/usr/lib/apache2/modules/mod_wsgi_rs.so   (apxs -q LIBEXECDIR)
#   OUT/usr/local/bin/mod_wsgi_rs
#
# Cargo's target dir is CARGO_TARGET_DIR, else SRC/target, so in a checkout
# that is already built this is a no-op rebuild. Needs what scripts/deps.sh
# installs (the Dockerfile runs that first).
set -eu
SRC=$(cd "${1:-$(dirname "$0")/..}" && pwd)
OUT=${2:-$SRC/target/docker-out}
case "$OUT" in /*) ;; *) OUT=$(pwd)/$OUT ;; esac
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

cd "$SRC"
cargo build --release --locked
RELEASE=${CARGO_TARGET_DIR:-$SRC/target}/release
case "$RELEASE" in /*) ;; *) RELEASE=$SRC/$RELEASE ;; esac
MODULES_DIR=$(apxs -q LIBEXECDIR)

install -D -m 644 "$RELEASE/libmod_wsgi_rs.so" "$OUT$MODULES_DIR/mod_wsgi_rs.so"
install -D -m 755 "$RELEASE/mod_wsgi_rs" "$OUT/usr/local/bin/mod_wsgi_rs"
echo "build.sh: installed $OUT$MODULES_DIR/mod_wsgi_rs.so and $OUT/usr/local/bin/mod_wsgi_rs"
