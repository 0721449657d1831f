#!/usr/bin/env bash
# Set up .venv with the project and its extras, then run the main job:
# baseline → (pretrained classifier) → fine-tune → (ready model) → hybrid → report, on local data and
# models when present.
set -euo pipefail
cd "$(dirname "$0")"

if [ ! -x .venv/bin/imdb-sentiment ]; then
  python3 -m venv .venv
  .venv/bin/python -m pip install -q --upgrade pip
  # Prefer a CPU build of torch where one is at hand; pip resolves torch from pyproject otherwise.
  .venv/bin/python -m pip install -q "torch==2.13.0" 2>/dev/null || true
  .venv/bin/python -m pip install -q -e ".[dev]"
fi

args=(--output outputs/quickstart)
[ -d ../shared/data/imdb ] && args+=(--data ../shared/data/imdb)
[ -d ../shared/models/all-MiniLM-L6-v2 ] && args+=(--model ../shared/models/all-MiniLM-L6-v2)
# A model fine-tuned on the full data on a GPU, scored next to this machine's quick run.
[ -d ../shared/models/minilm-imdb-fast ] && args+=(--ready-model ../shared/models/minilm-imdb-fast)
exec .venv/bin/imdb-sentiment quickstart "${args[@]}" --overwrite "$@"
