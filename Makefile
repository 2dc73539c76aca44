# g2c: the two README commands. `make run` and `make test` do all set-up on a fresh Debian 12 machine.
SHELL := /bin/bash
JOBS ?= $(shell nproc)
BUILD_RELEASE := build/release
BUILD_ASAN := build/asan
# Models: $G2C_MODELS_DIR, else ../shared/models beside the repository.
G2C_MODELS_DIR ?= $(abspath $(CURDIR)/../shared/models)
export G2C_MODELS_DIR
DEFAULT_MODEL ?= stories260K.gguf
# Every C++ file of the repository but the generated Unicode tables.
FORMAT_FILES = git ls-files -z '*.cpp' '*.hpp' '*.h' '*.inc' ':!:src/g2c/tokenizer/unicode_tables.inc'

.PHONY: setup configure build run test format-check layer-check test-native test-ref test-python test-asan-parsers \
        test-asan fuzz test-fuzz-smoke clean clients-deps test-arm

setup:
	@bash scripts/setup.sh

configure: setup
	@cmake --preset release >/dev/null

build: configure
	@cmake --build $(BUILD_RELEASE) -j$(JOBS)

# The main job on the default model; it grows as the issues land. Builds the g2c command only.
run: configure
	@cmake --build $(BUILD_RELEASE) -j$(JOBS) --target g2c
	@bash scripts/main_job.sh $(BUILD_RELEASE)/apps/g2c/g2c "$(G2C_MODELS_DIR)/$(DEFAULT_MODEL)"

# CI, cheapest stage first: format and layer checks, the release build, every test with the kernel
# table the CPU picks, again with the portable reference kernels (G2C_ISA=ref, the specification),
# then the parsers under ASan+UBSan. Ends with CTest's summary line of the last stage.
test: format-check layer-check build
	@$(MAKE) --no-print-directory test-native
	@$(MAKE) --no-print-directory test-ref
	@$(MAKE) --no-print-directory test-python
	@$(MAKE) --no-print-directory test-asan-parsers

format-check: setup
	@$(FORMAT_FILES) | xargs -0 clang-format-14 --dry-run --Werror
	@echo "format ok"

layer-check:
	@python3 tools/check_layers.py
	@python3 tools/check_layers.py --self-test

test-native: build clients-deps
	@cd $(BUILD_RELEASE) && set -o pipefail && ctest --output-on-failure -j$(JOBS) --timeout 900 2>&1 | tee ctest-native.log | tail -n 25

test-ref: build clients-deps
	@echo "== the same suite with G2C_ISA=ref =="
	@cd $(BUILD_RELEASE) && set -o pipefail && G2C_ISA=ref ctest --output-on-failure -j$(JOBS) --timeout 900 2>&1 | tee ctest-ref.log | tail -n 25

# `import g2c` (python/): pytest under Debian's python3 (never the python3 first on PATH) against the
# module the build laid out in build/release/python; G2C_BIN is the g2c the served tests start.
test-python: build
	@echo "== Python: import g2c (pytest) =="
	@cd $(BUILD_RELEASE) && G2C_BIN=$$PWD/apps/g2c/g2c PYTHONPATH=$$PWD/python \
	  /usr/bin/python3 -m pytest -q -p no:cacheprovider $(CURDIR)/python/tests
	@echo "== the module's notebook, executed (notebooks/16-inference.ipynb) =="
	@cd $(BUILD_RELEASE) && rm -f notebooks/16-inference.ipynb && G2C_BIN=$$PWD/apps/g2c/g2c PYTHONPATH=$$PWD/python \
	  /usr/bin/jupyter-nbconvert --to notebook --execute --ExecutePreprocessor.kernel_name=python3 \
	  --ExecutePreprocessor.timeout=300 --output-dir $$PWD/notebooks $(CURDIR)/notebooks/16-inference.ipynb \
	  > notebook.log 2>&1 || { cat notebook.log; exit 1; }
	@test -s $(BUILD_RELEASE)/notebooks/16-inference.ipynb && echo "notebook ok (executed copy: $(BUILD_RELEASE)/notebooks/16-inference.ipynb)"

# The npm clients that CTest's `clients` test runs against `g2c serve` (tests/clients): `npm ci` when
# package-lock.json is newer than node_modules, or node_modules is absent (the stamp goes with it).
CLIENTS_STAMP := tests/clients/node_modules/.g2c-installed
clients-deps: $(CLIENTS_STAMP)

$(CLIENTS_STAMP): tests/clients/package-lock.json tests/clients/package.json
	@command -v npm >/dev/null || { echo "clients-deps: npm not found: the clients test needs Node.js 20 and npm"; exit 1; }
	@npm ci --prefix tests/clients --no-audit --no-fund --loglevel=error
	@touch $@

# The parsing libraries' tests (GGUF reader, tokenizers, HTTP transport and stream parsers: CMake's
# parser_tests, label `parsers`) under ASan+UBSan, with G2C_DCHECK on. Builds those test binaries and
# the layers under them only, not the kernels or the engine.
test-asan-parsers: setup
	@echo "== the parsers under ASan+UBSan =="
	@cmake --preset asan >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS) --target parser_tests
	@cd $(BUILD_ASAN) && set -o pipefail && ctest -L parsers --output-on-failure -j$(JOBS) --timeout 900 2>&1 | tee ctest-asan-parsers.log | tail -n 25

# Every test under ASan+UBSan (before a change to parsing or memory; not part of CI: too slow here).
test-asan: setup
	@cmake --preset asan >/dev/null
	@cmake --build $(BUILD_ASAN) -j$(JOBS)
	@cd $(BUILD_ASAN) && ctest --output-on-failure -j$(JOBS) --timeout 1800

# ARM64: core..engine cross-built with g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake, static
# executables) and the kernel parity, thread pool and model golden tests run under qemu-aarch64 -cpu max.
BUILD_ARM := build/arm
ARM_TESTS := kernels_test kernels_isa_test thread_pool_test model_test arch_goldens_test
test-arm:
	@bash scripts/setup.sh arm
	@cmake --preset arm >/dev/null
	@cmake --build $(BUILD_ARM) -j$(JOBS) --target $(ARM_TESTS)
	@cd $(BUILD_ARM) && set -o pipefail && ctest -R '^($(subst $(eval) ,|,$(ARM_TESTS)))$$' --output-on-failure -j$(JOBS) --timeout 600 2>&1 | tee ctest-arm.log | tail -n 15

# The libFuzzer targets (clang 14, ASan+UBSan; docs/fuzzing.md): `make fuzz` runs each for FUZZ_SECONDS
# (default 60); test-fuzz-smoke (CI) builds only the fuzz targets and the layers they parse with, and runs
# each 30 s, two at a time.
FUZZ_SECONDS ?= 60
fuzz: setup
	@bash scripts/setup.sh fuzz
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j$(JOBS) --target fuzz_targets
	@FUZZ_SECONDS=$(FUZZ_SECONDS) bash fuzz/run.sh build/fuzz

test-fuzz-smoke: setup
	@echo "== fuzz smoke: every target 30 s under ASan+UBSan =="
	@bash scripts/setup.sh fuzz
	@cmake --preset fuzz >/dev/null
	@cmake --build build/fuzz -j$(JOBS) --target fuzz_targets
	@FUZZ_SECONDS=30 FUZZ_JOBS=2 bash fuzz/run.sh build/fuzz

clean:
	rm -rf build
