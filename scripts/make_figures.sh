#!/bin/sh
# Regenerate the README's figures under docs/figures/ from keraslab runs.
# Usage: scripts/make_figures.sh   (about 2 minutes on 2 cores)
set -eu
cd "$(dirname "$0")/.."
keraslab=".venv/bin/keraslab"
runs=$(mktemp -d)
trap 'rm -rf "$runs"' EXIT
figures=docs/figures

"$keraslab" noisy --optimizer adam --lr 0.01 --normalize --seed 3 --outputs "$runs" --name overfitting --quiet
cp "$runs/noisy/overfitting/loss.png" "$figures/noisy-overfitting-loss.png"
cp "$runs/noisy/overfitting/fit.png" "$figures/noisy-overfitting-fit.png"

"$keraslab" noisy --optimizer adam --lr 0.01 --normalize --seed 3 --early-stopping 200 --outputs "$runs" --name early --quiet
cp "$runs/noisy/early/loss.png" "$figures/noisy-early-stopping-loss.png"

"$keraslab" approx --optimizer sgd --lr 0.05 --outputs "$runs" --name constant --quiet
cp "$runs/approx/constant/loss.png" "$figures/sgd-constant-loss.png"
"$keraslab" approx --optimizer sgd --lr 0.05 --lr-schedule exponential --outputs "$runs" --name exponential --quiet
cp "$runs/approx/exponential/loss.png" "$figures/sgd-exponential-loss.png"

"$keraslab" sweep noisy --optimizer adam --lr 0.01 --normalize true --seed 3 --l2 0,0.001,0.01 --dropout 0,0.1 --outputs "$runs" --name regularization --quiet
cp "$runs/sweep/regularization/fits.png" "$figures/sweep-regularization-fits.png"
