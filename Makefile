# dkv: `make run` starts a node, `make test` runs every test,
# `make install-lib PREFIX=...` installs libdkv for C and C++.
VENV ?= .venv
PYTHON ?= python3

.PHONY: test deps test-rust test-python run bench clippy install-lib

test: deps test-rust test-python

# What the tests use that a fresh Debian machine lacks, with apt-get.
deps:
	scripts/install-deps.sh

test-rust: deps
	cargo test --workspace

$(VENV)/.ready: | deps
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet pytest redis mypy django
	touch $@

# Builds the Python package into the virtualenv from source every time (a
# debug build, no cached wheel), and libdkv for the mixed-language test's
# C++ writer; then runs the package's suite and the repository's Python
# tests (two runs: each directory has its own conftest).
test-python: deps $(VENV)/.ready
	cargo build --bin dkv-node
	cargo build -p dkv-ffi
	MATURIN_PEP517_ARGS="--profile dev" $(VENV)/bin/pip install --quiet --no-cache-dir --force-reinstall ./bindings/python
	$(VENV)/bin/python -m pytest -q bindings/python/tests
	DKV_NODE_BIN=$(CURDIR)/target/debug/dkv-node DKV_REQUIRE_CPP=1 $(VENV)/bin/python -m pytest -q tests/python

run:
	cargo run --release --bin dkv-node -- --dev

bench:
	cargo bench -p dkv

# Formatting and lints of both cargo workspaces (the Python extension is a
# workspace of its own); .ci/run runs this before make test.
clippy:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	# The release build too: debug assertions compile away there.
	cargo clippy --workspace --release -- -D warnings
	cd bindings/python && cargo fmt -- --check && cargo clippy --all-targets -- -D warnings

# libdkv for C and C++: libraries, headers, pkg-config file, CMake config.
PREFIX ?= /usr/local
DKV_VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' dkv-ffi/Cargo.toml | head -n 1)

install-lib:
	cargo build --release -p dkv-ffi
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/lib/cmake/Dkv $(DESTDIR)$(PREFIX)/include
	install -m 755 target/release/libdkv.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 target/release/libdkv.a $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/dkv.h bindings/cpp/dkv.hpp $(DESTDIR)$(PREFIX)/include/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(DKV_VERSION)|' dkv-ffi/dkv.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/dkv.pc
	install -m 644 dkv-ffi/cmake/DkvConfig.cmake $(DESTDIR)$(PREFIX)/lib/cmake/Dkv/
