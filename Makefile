# g2c: the two README commands. `make run` and `make test` do all set-up on a fresh Debian 12 machine.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD_RELEASE := build/release
BUILD_ASAN := build/asan
# Models: $G2C_MODELS_DIR, else ../shared/models beside the repository.
G2C_MODELS_DIR ?= $(abspath $(CURDIR)/../shared/models)
export G2C_MODELS_DIR
DEFAULT_MODEL ?= stories260K.gguf

.PHONY: setup build run test test-asan test-ref fuzz clean

setup:
	@bash scripts/setup.sh

build: setup
	@cmake --preset release >/dev/null
	@cmake --build $(BUILD_RELEASE) -j$(JOBS)

# The main job on the default model; it grows as the issues land.
run: build
	@bash scripts/main_job.sh $(BUILD_RELEASE)/apps/g2c/g2c "$(G2C_MODELS_DIR)/$(DEFAULT_MODEL)"

# Every test, release build: once with the kernel table the CPU picks, then again with the portable
# reference kernels (G2C_ISA=ref), which are the specification. Ends with CTest's summary line.
test: build
	@cd $(BUILD_RELEASE) && set -o pipefail && ctest --output-on-failure -j$(JOBS) --timeout 900 2>&1 | tee ctest-native.log | tail -n 25
	@echo "== the same suite with G2C_ISA=ref =="
	@cd $(BUILD_RELEASE) && set -o pipefail && G2C_ISA=ref ctest --output-on-failure -j$(JOBS) --timeout 900 2>&1 | tee ctest-ref.log | tail -n 25

test-asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	@cd $(BUILD_ASAN) && ctest --output-on-failure -j$(JOBS) --timeout 1800

fuzz: setup
	@cmake --preset fuzz >/dev/null
	@bash fuzz/run.sh build/fuzz

clean:
	rm -rf build
