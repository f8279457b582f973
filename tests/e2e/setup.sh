#!/usr/bin/env bash
# Set up the real clients for the e2e suite (called by `make e2e-setup`; see README.md here).
#   .venv-oceanpy/               ocean.py 3.1.2 in its own venv (Python 3.10 if available)
#   tests/e2e/oceanjs/node_modules   ocean.js 3.4.6 + ethers 5 from package-lock.json (npm ci)
#   tests/e2e/oceanjs8/node_modules  ocean.js 8.6.2 + ethers 6 from package-lock.json (npm ci)
# Each part is redone only when its inputs changed (a stamp file records them), so a
# rerun takes well under a second.
set -euo pipefail
cd "$(dirname "$0")/../.."

E2E=tests/e2e
VENV=${OCEANPY_VENV:-.venv-oceanpy}
REQS=$E2E/oceanpy/requirements.txt
FIX=$E2E/oceanpy/enforce_typing_fix.py
JS=$E2E/oceanjs

say() { printf 'e2e-setup: %s\n' "$*"; }

# A Python for ocean.py: OCEANPY_PYTHON, else a working python3.10 (ocean-lib 3.1.2's
# last supported version; pyenv's is found even when it is not the selected one), else
# python3 (>= 3.11: then the enforce_typing fix is installed, see enforce_typing_fix.py).
pick_python() {
    local candidate
    local -a candidates=()
    [[ -n "${OCEANPY_PYTHON:-}" ]] && candidates+=("$OCEANPY_PYTHON")
    candidates+=(python3.10)
    local pyenv_root=${PYENV_ROOT:-$HOME/.pyenv}
    for candidate in "$pyenv_root"/versions/3.10*/bin/python3.10; do
        [[ -x $candidate ]] && candidates+=("$candidate")
    done
    candidates+=(python3)
    for candidate in "${candidates[@]}"; do
        if "$candidate" -c 'import sys, venv, ensurepip; assert sys.version_info >= (3, 8)' \
            >/dev/null 2>&1; then
            "$candidate" -c 'import sys; print(sys.executable)'
            return 0
        fi
    done
    say "no usable Python found for ocean.py (tried: ${candidates[*]})" >&2
    return 1
}

setup_oceanpy() {
    local python stamp want
    python=$(pick_python)
    want=$(sha256sum < "$REQS" | cut -c1-16)-$("$python" -c \
        'import sys; print("%d.%d.%d" % sys.version_info[:3])')-$python
    stamp=$VENV/.e2e-installed
    if [[ ! -f $stamp || "$(cat "$stamp")" != "$want" || ! -x $VENV/bin/python ]]; then
        say "creating $VENV with $python"
        rm -rf "$VENV"
        "$python" -m venv "$VENV"
        # (This machine's pip config names local indexes that may be absent: drop those
        # warnings, keep everything else.)
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQS" \
            2> >(grep -v "^WARNING: Location 'file:" >&2)
        echo "$want" > "$stamp"
    fi
    install_enforce_typing_fix
}

# Python >= 3.11 only: a .pth file imports enforce_typing_fix.py at start-up (see there).
# Copied on every run (cheap), so an edit of the fix needs no reinstall.
install_enforce_typing_fix() {
    local site
    if ! "$VENV/bin/python" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)'
    then
        return 0
    fi
    site=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
    if ! cmp -s "$FIX" "$site/_tidegate_e2e_enforce_typing_fix.py"; then
        say "Python >= 3.11: installing the enforce_typing fix into $VENV"
        cp "$FIX" "$site/_tidegate_e2e_enforce_typing_fix.py"
        echo "import _tidegate_e2e_enforce_typing_fix" > "$site/_tidegate_e2e_enforce_typing_fix.pth"
    fi
}

setup_oceanjs() {
    local JS=${1:-$JS} stamp want
    if ! command -v npm >/dev/null 2>&1; then
        say "npm not found: it is needed for the ocean.js client tests" >&2
        return 1
    fi
    want=$(cat "$JS/package.json" "$JS/package-lock.json" "$JS/.npmrc" | sha256sum | cut -c1-16)
    stamp=$JS/node_modules/.e2e-installed
    if [[ -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    say "npm ci in $JS"
    (cd "$JS" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
}

setup_oceanpy
setup_oceanjs
# ocean.js 8.6.2 (Ocean Node's protocol). Its package.json overrides
# @oceanprotocol/ddo-js to 0.2.0: the ^0.3.0 it asks for is not on the registry we use
# (only DDO typing and validation; nothing of the Provider calls the driver makes).
setup_oceanjs "$E2E/oceanjs8"
