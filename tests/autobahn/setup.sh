#!/bin/sh
# Install Autobahn|Testsuite's `wstest` (Python 2.7 only) into a virtualenv kept
# outside the repository clone, so that CI runs and fresh clones reuse it.
#
#   sh tests/autobahn/setup.sh        # prints the path of wstest on its last line
#
# Environment:
#   AUTOBAHN_VENV   where the virtualenv goes
#                   (default: ${XDG_CACHE_HOME:-$HOME/.cache}/cormorant/autobahn-venv)
#   AUTOBAHN_PY27   the Python 2.7 interpreter to build it from
#                   (default: ~/.pyenv/versions/2.7.18/bin/python, else python2.7 on PATH)
#
# Idempotent: when the virtualenv already holds exactly requirements-py27.txt
# (a stamp records its checksum) and wstest runs, nothing is done.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
REQS="$HERE/requirements-py27.txt"
CACHE_ROOT="${XDG_CACHE_HOME:-$HOME/.cache}/cormorant"
VENV="${AUTOBAHN_VENV:-$CACHE_ROOT/autobahn-venv}"
STAMP="$VENV/.cormorant-autobahn-stamp"
# virtualenv 16.7.12 runs on Python 2.7 without dependencies and bundles
# pip 20.3.4 and setuptools 44.1.1, the last releases for Python 2.7.
VIRTUALENV_VERSION=16.7.12
BOOT="$CACHE_ROOT/virtualenv-$VIRTUALENV_VERSION"

log() { echo "autobahn setup: $*" >&2; }
die() { log "error: $*"; exit 1; }

# --- Python 2.7 ---------------------------------------------------------------
is_py27() { [ -n "$1" ] && "$1" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; }
PY27="${AUTOBAHN_PY27:-}"
if [ -z "$PY27" ]; then
    for cand in "$HOME/.pyenv/versions/2.7.18/bin/python" "$(command -v python2.7 2>/dev/null || true)"; do
        if is_py27 "$cand"; then PY27=$cand; break; fi
    done
fi
is_py27 "$PY27" || die "no Python 2.7 found (tried AUTOBAHN_PY27, ~/.pyenv/versions/2.7.18/bin/python, python2.7)"

# The stamp covers the requirements, this script and the interpreter.
want=$( (cat "$REQS" "$0"; echo "$PY27"; "$PY27" -c 'import sys; print(sys.version)') | cksum | cut -d' ' -f1)

wstest_works() { [ -x "$VENV/bin/wstest" ] && "$VENV/bin/wstest" -a >/dev/null 2>&1; }

if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && wstest_works; then
    log "up to date in $VENV"
    echo "$VENV/bin/wstest"
    exit 0
fi

mkdir -p "$CACHE_ROOT"

# --- one setup at a time ------------------------------------------------------
if command -v flock >/dev/null 2>&1 && [ -z "${AUTOBAHN_SETUP_LOCKED:-}" ]; then
    AUTOBAHN_SETUP_LOCKED=1 exec flock "$CACHE_ROOT/autobahn-setup.lock" sh "$0" "$@"
fi

export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_PYTHON_VERSION_WARNING=1 PYTHONWARNINGS=ignore

# --- virtualenv bootstrap (a private copy, the interpreter is left untouched) --
if ! PYTHONPATH="$BOOT" "$PY27" -c 'import virtualenv' 2>/dev/null; then
    log "installing virtualenv==$VIRTUALENV_VERSION into $BOOT"
    rm -rf "$BOOT.tmp"
    "$PY27" -m pip install -q --no-deps --target "$BOOT.tmp" "virtualenv==$VIRTUALENV_VERSION"
    rm -rf "$BOOT"
    mv "$BOOT.tmp" "$BOOT"
fi

# --- the virtualenv ------------------------------------------------------------
if [ -e "$VENV" ]; then
    # Only ever delete something that is recognisably a virtualenv.
    if [ -f "$VENV/bin/activate" ] || [ -f "$STAMP" ]; then
        log "rebuilding $VENV"
        rm -rf "$VENV"
    else
        die "$VENV exists and is not a virtualenv; remove it or set AUTOBAHN_VENV"
    fi
fi
log "creating $VENV with $PY27"
mkdir -p "$(dirname "$VENV")"
PYTHONPATH="$BOOT" "$PY27" -m virtualenv -q --no-download -p "$PY27" "$VENV" >&2

# --no-deps: requirements-py27.txt is the complete, pinned tree.
# --no-build-isolation: the few sdists build with the venv's setuptools, so no
# unpinned build dependency is fetched (wsaccel ships its generated C sources).
PIP="$VENV/bin/python -m pip install -q --no-deps --no-build-isolation"
log "installing requirements-py27.txt"
if ! $PIP -r "$REQS" >&2; then
    log "install failed; retrying without the optional C accelerator wsaccel (slower, same verdicts)"
    filtered="$VENV/requirements-no-wsaccel.txt"
    grep -v '^wsaccel==' "$REQS" > "$filtered"
    $PIP -r "$filtered" >&2 || die "pip install failed"
fi
"$VENV/bin/python" -m pip check >&2 || die "pip check failed"
wstest_works || die "wstest does not run: $("$VENV/bin/wstest" -a 2>&1 | tail -5)"
"$VENV/bin/wstest" -a | sed 's/^/autobahn setup: /' >&2

echo "$want" > "$STAMP"
log "ready in $VENV"
echo "$VENV/bin/wstest"
