#!/usr/bin/env bash
# Install what rnnflow needs on Debian 12 (run as root). Safe to run again.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config
  libdnnl-dev          # oneDNN 2.6: recurrent layers and matrix products
  ocl-icd-opencl-dev   # OpenCL: Debian builds oneDNN with its OpenCL runtime, and dnnl-config.cmake
                       # requires OpenCL; libdnnl-dev only recommends it (not installed here)
  libtbb-dev           # oneTBB: the flow graph that runs the stages
  libyaml-cpp-dev      # graph files
  libboost-program-options-dev libboost-graph-dev   # command line; graph checks
  catch2               # tests
  libsqlite3-dev       # sweep state (sweep.db)
  libsentencepiece-dev # the subword stage: BPE / unigram models (SentencePiece)
  gnuplot-nox          # sweep plots (plot.png)
  libplplot-dev plplot-driver-cairo   # run-folder plots (PLplot; PNGs through its cairo driver)
  libsmf-dev           # generated music as Standard MIDI Files (frame_sampler; libsmf 1.3)
  graphviz             # `rnnflow report` draws the graph with dot (else it shows the DOT text)
  python3-yaml python3-jsonschema   # tests: graph files against `rnnflow schema`
  libopenmpi-dev openmpi-bin   # optional: sweeps across machines, data-parallel training (mpirun)
  clang-14 libclang-rt-14-dev libfuzzer-14-dev   # fuzzing (scripts/fuzz.sh): libFuzzer and clang's sanitizers
)
# Headless Chromium renders `rnnflow report` pages in tests/cli/report_html.sh (skipped without
# it). It is large (about 400 MB installed on Debian 12 with its dependencies): RNNFLOW_NO_BROWSER=1 leaves
# it out.
if [ "${RNNFLOW_NO_BROWSER:-0}" != 1 ]; then packages+=(chromium); fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
