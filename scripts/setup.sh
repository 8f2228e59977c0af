#!/usr/bin/env bash
# One setup script for the README and CI (Debian 12).
#   scripts/setup.sh deps    install missing Debian packages only
#   scripts/setup.sh build   deps, then configure and build into build/ (default)
# Installs only what is missing; with everything present it runs no apt-get at all.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

PACKAGES=(
  build-essential cmake flex bison clang gcc zlib1g-dev
  libpng-dev                  # the runtime: `BIN sample` writes PNG grids
  libclang-rt-14-dev          # sanitizer runtimes for clang
  dataset-fashion-mnist       # /usr/share/datasets/fashion-mnist/*.gz
  fortunes                    # /usr/share/games/fortunes: examples/char_lstm.dln, bench lstm
  python3-torch python3-numpy # bench/ reference (run with /usr/bin/python3)
  libopenblas0-pthread        # bench: PyTorch's BLAS
  libdnnl-dev                 # bench/gemm_bench's oneDNN column (optional: built without it)
  scdoc pkg-config            # man pages; tests/install (pkg-config of the installed runtime)
  graphviz                    # tests/inspect: dlnc graph output rendered by dot
  python3-onnx python3-opencv # tests/onnx: onnx.checker, then OpenCV's DNN runs the export
  gnuplot-nox                 # scripts/plot_metrics: loss and accuracy per epoch to PNG or SVG
  openmpi-bin libopenmpi-dev  # dlnc build --mpi; tests/mpi (mpirun -np 2 and 4 on loopback)
  mpich libmpich-dev          # tests/mpi's MPICH case (mpicc.mpich, mpirun.mpich: their
                              # alternatives' priority is below Open MPI's, which stays mpicc)
)

usage() { echo "usage: $0 [deps|build]" >&2; exit 2; }

install_deps() {
  local missing=() p
  for p in "${PACKAGES[@]}"; do
    if [[ "$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)" != "install ok installed" ]]; then
      missing+=("$p")
    fi
  done
  if ((${#missing[@]} == 0)); then
    echo "setup: all ${#PACKAGES[@]} packages already installed"
    return 0
  fi
  echo "setup: installing missing packages: ${missing[*]}"
  local sudo=()
  if [[ "$(id -u)" != 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
      sudo=(sudo)
    else
      echo "setup: not root and no sudo; install as root: apt-get install ${missing[*]}" >&2
      exit 1
    fi
  fi
  "${sudo[@]}" apt-get update
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y --no-install-recommends "${missing[@]}"
}

build() {
  echo "setup: configuring and building into build/"
  cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
  cmake --build build -j"$(nproc)"
  # The first `dlnc build` compiles the runtime into dlnc's cache (~6 s);
  # do it now so that building a model takes well under a second afterwards.
  build/dlnc build examples/xor.dln -o build/xor
  echo "setup: build done"
}

case "${1:-build}" in
  deps)  install_deps ;;
  build) install_deps; build ;;
  *)     usage ;;
esac
