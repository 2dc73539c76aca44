#!/usr/bin/env bash
# Installs g2c's build and test dependencies (Debian 12 packages). Idempotent: quiet when all are present.
set -euo pipefail
# python3: tools/check_layers.py; clang-format-14: make format-check; python3-jsonschema: grammar_generate_test
# validates constrained-decoding outputs with it; python3-jinja2: the reference renderer of the chat-template
# tests (tests/tokenizer/jinja_reference.py, run by /usr/bin/python3); pybind11-dev, python3-dev: the Python
# module (python/); python3-pytest, -venv, -setuptools, -pip: its tests and the README's venv install.
PKGS=(build-essential cmake ninja-build pkg-config python3 clang-format-14
      nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libfmt-dev
      libgtest-dev libgmock-dev libbenchmark-dev libpcre2-dev python3-jsonschema python3-jinja2
      pybind11-dev python3-dev python3-pytest python3-venv python3-setuptools python3-pip
      jupyter-nbconvert python3-ipykernel python3-nbformat)
# `scripts/setup.sh fuzz`: the libFuzzer stage (make fuzz, make test-fuzz-smoke) also needs clang 14 with its
# sanitizer runtimes and libFuzzer.
if [ "${1:-}" = fuzz ]; then PKGS=(clang-14 libclang-rt-14-dev libfuzzer-14-dev); fi
# `setup.sh arm`: the ARM64 cross build and qemu (make test-arm).
if [ "${1:-}" = arm ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    SUDO=""; [ "$(id -u)" != 0 ] && SUDO=sudo
    $SUDO dpkg --add-architecture arm64
  fi
  PKGS=(g++-aarch64-linux-gnu qemu-user libpcre2-dev:arm64)
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
echo "setup: installing ${missing[*]}"
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
