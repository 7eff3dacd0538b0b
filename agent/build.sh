#!/usr/bin/env bash
# Builds the standalone agent: agent/dist/onestop-agent (one file, this machine's OS and CPU).
# PYTHON must have PyInstaller and psutil; the default is the repository's dev venv.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON="${PYTHON:-../.venv/bin/python}"
"$PYTHON" -m PyInstaller --onefile --clean --noconfirm --log-level WARN \
    --name onestop-agent --paths src \
    --distpath dist --workpath build --specpath build \
    src/onestop_agent/__main__.py
echo "built $(pwd)/dist/onestop-agent"
