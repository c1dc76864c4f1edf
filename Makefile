# dkv: `make run` starts a node, `make test` runs every test.
VENV ?= .venv
PYTHON ?= python3

.PHONY: test test-rust test-python run bench clippy

test: test-rust test-python

test-rust:
	cargo test --workspace

$(VENV)/.ready:
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet pytest redis
	touch $@

test-python: $(VENV)/.ready
	cargo build --bin dkv-node
	DKV_NODE_BIN=$(CURDIR)/target/debug/dkv-node $(VENV)/bin/python -m pytest -q tests/python

run:
	cargo run --release --bin dkv-node -- --dev

bench:
	cargo bench -p dkv

clippy:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
