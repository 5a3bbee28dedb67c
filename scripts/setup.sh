#!/usr/bin/env bash
# Installs what Rea2Seg Studio needs on a Debian machine with Python 3.11:
# the system libraries Qt and the tests use (apt), then a virtual environment in .venv
# with the project, all its extras (gui, dev, ray) and the exact builds in constraints.txt.
# Safe to re-run: finished steps are skipped.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# Qt's xcb/offscreen platforms, Xvfb + ImageMagick for the window screenshot test,
# PostgreSQL for the team-store tests.
APT_PKGS="libegl1 libgl1 libopengl0 libxkbcommon0 libxkbcommon-x11-0 libfontconfig1 libdbus-1-3
libglib2.0-0 libxcb-cursor0 libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-render-util0
libxcb-shape0 libxcb-xinerama0 libxcb-randr0 libxcb-xkb1 xvfb xauth imagemagick postgresql"
PY="${PYTHON:-python3}"
if ! "$PY" -c "import ensurepip, venv" >/dev/null 2>&1; then APT_PKGS="$APT_PKGS python3-venv"; fi

missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ] && command -v apt-get >/dev/null 2>&1; then
  echo "setup: installing system packages:$missing"
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  # shellcheck disable=SC2086
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp="$(cat pyproject.toml setup.py constraints.txt scripts/setup.sh | sha256sum | cut -d' ' -f1)"
if [ -f .venv/.setup-stamp ] && [ "$(cat .venv/.setup-stamp)" = "$stamp" ]; then
  exit 0
fi
PIP=".venv/bin/python -m pip"
# -c constraints.txt: the exact torch / torchvision builds (the package states ranges).
$PIP install -q --upgrade pip "setuptools>=77" wheel
$PIP install -q -c constraints.txt torch torchvision
# sam2 ships only a source archive; build it against the torch above, without CUDA kernels.
SAM2_BUILD_CUDA=0 $PIP install -q -c constraints.txt --no-build-isolation sam2==1.1.0
# the headless core plus every extra: the app (gui), the tests and linters (dev), Ray (ray)
$PIP install -q -c constraints.txt -e ".[gui,dev,ray]"
echo "$stamp" > .venv/.setup-stamp
echo "setup: done (.venv)"
