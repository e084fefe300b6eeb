# One entry point for humans and CI. `make help` lists the targets.
VENV ?= .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export CARGO_TARGET_DIR ?= $(CURDIR)/target

.PHONY: help venv build serve test test-rust test-python test-wasm test-matrix check-pythons sandbox-examples lint lint-rust lint-python wasm fuzz fuzz-smoke bench autobahn autobahn-ci capi capi-install clean

help:
	@echo "make serve   set everything up and serve examples/fastapi_app.py on http://127.0.0.1:8000"
	@echo "make test    set everything up and run the whole test suite (Rust, C API, Python, wasm-host)"
	@echo "make lint    cargo fmt --check, clippy -D warnings, wasm32-wasip1 build of core; ruff, mypy --strict, stubtest"
	@echo "make test-matrix  build and run the pytest suite on every CPython here, 3.9 to 3.14 (PYTHONS=\"3.9 3.13\" for some; MATRIX_REQUIRE=1 fails on a missing one)"
	@echo "make check-pythons  the extension compiles against the C API of every supported CPython, 3.9 to 3.14 (no interpreter needed)"
	@echo "make test-wasm  wasm-host tests: the core under wasmtime byte for byte against native, apps in the sandbox"
	@echo "make sandbox-examples  run the example apps' scenarios with cormorant-sandbox (wasm-host/examples)"
	@echo "make bench   cormorant vs granian vs uvicorn (see bench/run.py --help)"
	@echo "make fuzz    run the h1_server fuzz target for 5 minutes"
	@echo "make fuzz-smoke  every fuzz target for FUZZ_SECONDS (10) each, as CI does"
	@echo "make capi    build the C library (c-api/); make capi-install PREFIX=/usr/local installs it with its header and pkg-config file"
	@echo "make autobahn     Autobahn|Testsuite, all 517 WebSocket cases, against cormorant (writes tests/autobahn/SUMMARY.md)"
	@echo "make autobahn-ci  the CI subset: cases 1-7, 12.1 and 13.1 (282 cases, about 2 minutes; at most 10), over HTTP/1.1 and then through WebSocket over HTTP/2"

$(VENV)/.installed: requirements-dev.txt tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements-dev.txt
	touch $@

venv: $(VENV)/.installed

build: venv
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(VENV)/bin/maturin develop --release -q

serve: build
	$(VENV)/bin/cormorant examples.fastapi_app:app --host 127.0.0.1 --port 8000

test: test-rust test-python test-wasm

test-rust:
	cargo test -p cormorant-core
	cargo test -p cormorant-server
	cargo test -p cormorant --lib
	cargo test -p cormorant-capi

test-python: build
	$(PY) -m pytest tests -q

# The sandbox's tools: componentize-py in the venv, the example apps'
# pure-Python dependencies in a directory of their own.
SANDBOX_DEPS := $(VENV)/sandbox-deps
SANDBOX_ENV := CORMORANT_COMPONENTIZE_PY=$(CURDIR)/$(VENV)/bin/componentize-py \
	CORMORANT_SANDBOX_DEPS=$(CURDIR)/$(SANDBOX_DEPS)
SANDBOX := $(SANDBOX_ENV) cargo run -q -p cormorant-wasm-host --bin cormorant-sandbox --

$(VENV)/.sandbox: wasm-host/requirements.txt wasm-host/examples/requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q -r wasm-host/requirements.txt
	rm -rf $(SANDBOX_DEPS)
	$(PY) -m pip install -q --target $(SANDBOX_DEPS) -r wasm-host/examples/requirements.txt
	touch $@

# wasm-host is not a default member (wasmtime's cold build is slow).
test-wasm: $(VENV)/.sandbox
	rustup target add wasm32-wasip1
	$(SANDBOX_ENV) cargo test -p cormorant-wasm-host

sandbox-examples: $(VENV)/.sandbox
	$(SANDBOX) run plain_app:app wasm-host/examples/plain_app.toml --app-dir wasm-host/examples
	$(SANDBOX) run starlette_app:app wasm-host/examples/starlette_app.toml \
		--app-dir wasm-host/examples --python-path $(SANDBOX_DEPS) \
		--read-dir wasm-host/examples/data::/data

lint: lint-rust lint-python

lint-rust:
	cargo fmt --all --check
	cargo clippy --workspace --all-targets -- -D warnings
	# The server the C API links has no Python in its dependency tree.
	! cargo tree -p cormorant-capi -e normal | grep -w pyo3
	rustup target add wasm32-wasip1
	cargo build -p cormorant-core --target wasm32-wasip1

# ruff over the Python sources; mypy --strict over the package and the
# typed-keyword checks (tests/typecheck); the stub against the extension.
lint-python: build
	$(VENV)/bin/ruff check python tests examples bench
	$(VENV)/bin/mypy
	$(PY) -m mypy.stubtest cormorant._cormorant

PYTHONS ?= 3.9 3.10 3.11 3.12 3.13 3.14
test-matrix:
	$(PYTHON) tests/matrix.py test --versions "$(PYTHONS)" $(if $(MATRIX_REQUIRE),--require)

check-pythons:
	$(PYTHON) tests/matrix.py check

wasm:
	rustup target add wasm32-wasip1
	cargo build -p cormorant-core --target wasm32-wasip1

fuzz:
	cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	sh fuzz/seed.sh
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run h1_server corpus/h1_server -- -max_total_time=300 -rss_limit_mb=2048

# A short run of every target: a crash, a hang (-timeout) or unbounded
# memory (-rss_limit_mb) fails it. cargo-fuzz keeps its own target
# directory (fuzz/target), apart from the main build.
FUZZ_SECONDS ?= 10
FUZZ_TARGETS := h1_server ws_frame asgi_message server_conn proxy_protocol
fuzz-smoke:
	cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
	sh fuzz/seed.sh
	cd fuzz && for t in $(FUZZ_TARGETS); do \
		mkdir -p corpus/$$t && \
		env -u CARGO_TARGET_DIR RUSTC_BOOTSTRAP=1 cargo fuzz run $$t corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 || exit 1; \
	done

bench: build
	$(PY) -m pip install -q -r bench/requirements.txt
	$(PY) bench/run.py

# wstest needs Python 2.7: setup.sh keeps its virtualenv in ~/.cache/cormorant (AUTOBAHN_VENV).
autobahn: build
	sh tests/autobahn/setup.sh
	$(PY) tests/autobahn/run.py --server cormorant --no-setup --write-summary

autobahn-ci: build
	sh tests/autobahn/setup.sh
	$(PY) tests/autobahn/run.py --server cormorant --no-setup --cases ci --timeout 600 --case-timeout 30
	$(PY) tests/autobahn/run.py --server cormorant --no-setup --cases ci --timeout 600 --case-timeout 30 --over-h2

clean:
	rm -rf $(VENV) .matrix target

# The C ABI: libcormorant.a and libcormorant.so, c-api/include/cormorant.h.
PREFIX ?= /usr/local
CAPI_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)

capi:
	cargo build --release -p cormorant-capi

capi-install: capi
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 644 $(CARGO_TARGET_DIR)/release/libcormorant.a $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(CARGO_TARGET_DIR)/release/libcormorant.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 c-api/include/cormorant.h $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(CAPI_VERSION)|' c-api/cormorant.pc.in \
		> $(DESTDIR)$(PREFIX)/lib/pkgconfig/cormorant.pc
