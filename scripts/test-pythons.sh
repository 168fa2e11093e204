#!/bin/sh
# The Python-version matrix: builds the module against each CPython 3.9-3.13
# that pyenv has on this machine and runs the integration suite with it
# (one MPM, event; no Flask/Django tests: their packages are Debian's, for
# /usr/bin/python3 only). A version that is not there is skipped, saying why.
#
#   WSGI_RS_TEST_PYTHONS="3.12 3.13"   the minor versions to run (default:
#       3.9 to 3.13, less the one /usr/bin/python3 is, which scripts/test.sh
#       covers; a version named here runs even then)
#   WSGI_RS_PYTHONS_DIR                where the readable copies go
#       (default /opt/wsgi-rs-pythons)
# Extra arguments go to pytest. Run as root (as CI does). Exit status: 1 if
# any version failed.
#
# Why copies: Apache's children run as www-data, which cannot read pyenv's
# Pythons under /root. Each one is copied (without its test suite and
# site-packages) to $WSGI_RS_PYTHONS_DIR/<version> and relocated there: the
# paths in its sysconfig data and scripts, and the RUNPATHs of its binaries,
# name the copy, so PYO3_PYTHON=<copy>/bin/python3.X gives the module an
# RPATH to the copy's libpython and the copy's python as program name (hence
# sys.prefix and the stdlib). Each version builds into target/py3.X.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
[ -f "$HOME/.cargo/env" ] && . "$HOME/.cargo/env"

COPIES=${WSGI_RS_PYTHONS_DIR:-/opt/wsgi-rs-pythons}
MAIN=$(/usr/bin/python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# Bump when the way a copy is made changes: older copies are then made anew.
COPY_FORMAT=1

say() { echo "test-pythons: $*"; }

if [ "$(id -u)" -ne 0 ]; then
    say "needs root, as CI has (copies under $COPIES, checks as www-data, Apache switching users)"
    exit 1
fi

pyenv_root() {
    if command -v pyenv >/dev/null 2>&1; then
        pyenv root
    elif [ -n "${PYENV_ROOT:-}" ]; then
        echo "$PYENV_ROOT"
    else
        echo "$HOME/.pyenv"
    fi
}

# The newest pyenv CPython X.Y.Z for X.Y (not -dev, t, debug builds), or nothing.
find_python() {
    re=$(echo "$1" | sed 's/\./\\./g')
    ls "$PYENV_VERSIONS" 2>/dev/null | grep -E "^$re\.[0-9]+\$" | sort -V | tail -n 1
}

need_patchelf() {
    command -v patchelf >/dev/null 2>&1 && return 0
    say "installing patchelf (to relocate the copies)"
    apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -q --no-install-recommends patchelf >/dev/null
}

# copy SRC DST X.Y: a relocated copy of the Python at SRC in DST (idempotent:
# kept while the stamp says it was made from the same SRC the same way).
make_copy() {
    src=$1 dst=$2 v=$3
    stamp="$src $(stat -c %Y "$src/lib/libpython$v.so.1.0") format=$COPY_FORMAT"
    if [ -f "$dst/.wsgi-rs-copy" ] && [ "$(cat "$dst/.wsgi-rs-copy")" = "$stamp" ]; then
        return 0
    fi
    need_patchelf || { say "cannot install patchelf"; return 1; }
    say "copying $src to $dst"
    tmp="$dst.tmp"
    rm -rf "$dst" "$tmp" "$tmp.files"
    mkdir -p "$tmp" && chmod 755 "$COPIES" || return 1
    (cd "$src" && tar -cf - --exclude="./lib/python$v/test" \
        --exclude="./lib/python$v/site-packages" .) | tar -C "$tmp" -xf - || return 1
    mkdir "$tmp/lib/python$v/site-packages"
    # Text files that name the old prefix (sysconfig data, python-config,
    # pkg-config files, script shebangs) name the copy instead.
    grep -rlIF --exclude-dir=__pycache__ "$src" "$tmp" > "$tmp.files"
    while IFS= read -r f; do
        sed -i "s|$src|$dst|g" "$f" || return 1
    done < "$tmp.files"
    # RUNPATHs into the old prefix's lib/ become $ORIGIN-relative.
    { find "$tmp/bin" -type f; find "$tmp/lib" -type f -name '*.so*'; } | while IFS= read -r f; do
        rp=$(patchelf --print-rpath "$f" 2>/dev/null) || continue
        case "$rp" in
            *"$src"*)
                rel=$(realpath --relative-to="$(dirname "$f")" "$tmp/lib")
                [ "$rel" = . ] && rel= || rel="/$rel"
                patchelf --set-rpath "\$ORIGIN$rel" "$f" || exit 1 ;;
        esac
    done || return 1
    # The edited modules' bytecode, else every interpreter start recompiles them.
    grep '\.py$' "$tmp.files" | xargs -r "$tmp/bin/python$v" -m compileall -q -o 0 -o 1 -o 2 >/dev/null \
        || return 1
    rm -f "$tmp.files"
    chmod -R a+rX "$tmp" && mv "$tmp" "$dst" && echo "$stamp" > "$dst/.wsgi-rs-copy"
}

# check_build SO COPY X.Y: the module loads libpython from the copy, and the
# copy's interpreter finds its prefix and stdlib, as www-data.
check_build() {
    so=$1 copy=$2 v=$3
    readelf -d "$so" | grep -q "R.*PATH.*\[$copy/lib\]" || { say "$so has no RPATH to $copy/lib"; return 1; }
    lib=$(runuser -u www-data -- ldd "$so" | awk '/libpython/ {print $3}')
    [ "$lib" = "$copy/lib/libpython$v.so.1.0" ] || { say "as www-data, $so loads libpython from '$lib'"; return 1; }
    runuser -u www-data -- "$copy/bin/python$v" -c "import sys, os; assert sys.prefix == '$copy', sys.prefix; \
assert os.__file__.startswith('$copy/lib/'), os.__file__" || { say "$copy does not run as www-data"; return 1; }
}

PYENV_VERSIONS="$(pyenv_root)/versions"
if [ -n "${WSGI_RS_TEST_PYTHONS:-}" ]; then
    VERSIONS=$WSGI_RS_TEST_PYTHONS
else
    VERSIONS="3.9 3.10 3.11 3.12 3.13"
fi

failed= passed= skipped= report=
for v in $VERSIONS; do
    start=$(date +%s)
    if [ -z "${WSGI_RS_TEST_PYTHONS:-}" ] && [ "$v" = "$MAIN" ]; then
        say "skip $v: scripts/test.sh runs the whole suite with /usr/bin/python3 ($MAIN)"
        skipped="$skipped $v"; continue
    fi
    case "$v" in
        3.[0-8]) say "skip $v: pyo3 needs Python 3.9 or newer"; skipped="$skipped $v"; continue ;;
    esac
    full=$(find_python "$v")
    if [ -z "$full" ]; then
        if [ -d "$PYENV_VERSIONS" ]; then
            say "skip $v: no CPython $v.x in $PYENV_VERSIONS"
        else
            say "skip $v: no pyenv Pythons ($PYENV_VERSIONS does not exist)"
        fi
        skipped="$skipped $v"; continue
    fi
    src="$PYENV_VERSIONS/$full"
    if [ ! -x "$src/bin/python$v" ] || [ ! -f "$src/lib/libpython$v.so.1.0" ]; then
        say "skip $v: $src has no bin/python$v or no lib/libpython$v.so.1.0 (built without --enable-shared)"
        skipped="$skipped $v"; continue
    fi
    copy="$COPIES/$full"
    target="$ROOT/target/py$v"
    so="$target/release/libmod_wsgi_rs.so"
    say "=== Python $full ($copy, $target)"
    status=ok
    if ! make_copy "$src" "$copy" "$v"; then
        status="failed (copy)"
    elif ! PYO3_PYTHON="$copy/bin/python$v" CARGO_TARGET_DIR="$target" cargo build --release --locked; then
        status="failed (build)"
    elif ! check_build "$so" "$copy" "$v"; then
        status="failed (libpython/prefix check)"
    elif ! WSGI_RS_MODULE="$so" WSGI_RS_TEST_PYTHON="$copy/bin/python$v" WSGI_RS_TEST_PY_VERSION="$v" \
            WSGI_RS_TEST_MPMS=event /usr/bin/python3 -m pytest tests -q -p no:cacheprovider \
            --ignore=tests/test_frameworks.py "$@"; then
        status="failed (tests)"
    fi
    took=$(( $(date +%s) - start ))
    report="$report
  $full: $status, ${took}s"
    if [ "$status" = ok ]; then passed="$passed $v"; else failed="$failed $v"; fi
done

say "Python matrix:${report:- nothing ran}"
[ -n "$skipped" ] && say "skipped:$skipped"
[ -z "$failed" ] || { say "FAILED:$failed"; exit 1; }
