#!/usr/bin/env bash
# Downloads into .whl/ (repo root, ignored through .git/info/exclude) the Python packages that
# benchmarks/gpu_check.py imports and that the lent GPU machine (Python 3.12, torch 2.11, no
# network) lacks. Versions are those pinned in pyproject.toml / installed in .venv.
# Not carried: torch, torchvision, torchmetrics, numpy, scipy, scikit-learn, pandas, narwhals,
# matplotlib, psutil, httpx, tqdm, packaging, requests, filelock, tensorboard, PIL (all there).
# Not carried on purpose: wandb (~20 MB plus an OpenTelemetry chain); Avalanche imports it at
# module level only for its W&B confusion-matrix helper, so gpu_check.py puts an empty stub in
# sys.modules when wandb cannot be imported.
# On the GPU machine:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
#     --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qxF '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
PY=${PY:-.venv/bin/python}
mkdir -p .whl
DL=(-m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64
    --platform manylinux2014_x86_64 --platform manylinux1_x86_64 -d .whl)
for spec in \
    avalanche-lib==0.6.0 \
    dill==0.4.1 \
    gdown==6.5.1 \
    beautifulsoup4==4.15.0 \
    soupsieve==4.1.3 \
    pytorchcv==0.0.74 \
    qpsolvers==4.13.0 \
    river==0.26.1 \
    pydantic==2.14.3 \
    pydantic-core==2.50.4 \
    pydantic-settings==2.16.3 \
    annotated-types==0.8.0 \
    typing-inspection==0.4.5 \
    typing-extensions==4.16.0 \
    python-dotenv==1.2.4 \
    structlog==26.1.0
do
    "$PY" "${DL[@]}" "$spec"
done
# GPUtil 1.4.0 is published as an sdist only: build its (pure-Python) wheel here.
ls .whl/[Gg][Pp][Uu][Tt]il-1.4.0-*.whl >/dev/null 2>&1 || "$PY" -m pip wheel -q --no-deps -w .whl GPUtil==1.4.0
ls -1 .whl
du -sh .whl
