#!/usr/bin/env bash
# Makes (once) the Python environment of the microscopy tests and prints its python:
# tifffile and imagecodecs write the test slides (tests/fixtures/make-slides.py), OpenSlide
# (openslide-python with the openslide-bin wheel) reads them as the oracle
# (tests/fixtures/openslide-oracle.py); jpylyzer, the JP2 validator of the digital archives,
# checks the JP2 files that `iipsrv convert` writes. SLIDE_VENV sets where (default
# /tmp/peers/slide-venv).
set -euo pipefail
venv=${SLIDE_VENV:-/tmp/peers/slide-venv}
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9
if ! "$venv/bin/python" -c 'import tifffile, imagecodecs, numpy, openslide, jpylyzer' 2>/dev/null; then
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q tifffile==2026.3.3 imagecodecs==2026.3.6 numpy==2.4.6 \
    openslide-python==1.4.7 openslide-bin==4.0.1.2 jpylyzer==2.2.1 >&2
fi
echo "$venv/bin/python"
