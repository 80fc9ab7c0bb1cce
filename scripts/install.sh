#!/usr/bin/env bash
# Fresh-machine install: system packages (Mesa lavapipe for ManiSkill's CPU renderer, Chromium
# for the browser tests) and a Python venv at .venv with requirements.txt. Idempotent.
#   bash scripts/install.sh            # then: .venv/bin/python app.py   or   .venv/bin/python -m pytest
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v apt-get >/dev/null 2>&1; then
  bash scripts/setup_system.sh
else
  echo "no apt-get: install a Vulkan driver (Mesa >= 25 lavapipe) and chromium yourself" >&2
fi
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -r requirements.txt
# the project itself, editable, so `import rla` works from any folder (its dependencies came from requirements.txt)
.venv/bin/python -m pip install -q --no-deps --no-build-isolation -e .
(root=$PWD; cd / && "$root/.venv/bin/python" -c "import rla, torch; print('rla', rla.__version__, 'from', rla.__file__, '| torch', torch.__version__)")
