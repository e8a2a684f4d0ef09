#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image, in /autograder/source
# (where the zip is unpacked). It installs what the grader imports and nothing else: NumPy and the
# two array-API packages of autograder/requirements.txt (no matplotlib, no training dependencies).
set -euo pipefail
cd "$(dirname "$0")"
command -v pip3 >/dev/null || { apt-get update -qq && apt-get install -y -qq python3-pip; }
pip3 install --quiet -r autograder/requirements.txt \
    || pip3 install --quiet --break-system-packages -r autograder/requirements.txt  # Ubuntu 23.04+ (PEP 668)
