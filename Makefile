# kyosei: the README's commands. Needs only python3.11 and make; everything else is
# installed into .tools/ (uv) and .venv/ (the workspace, from uv.lock).
PYTHON ?= python3.11
UV_VERSION := 0.13.9
UV := .tools/bin/uv
EXAMPLES ?= 200
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := $(PYTHON)
export UV_LINK_MODE := copy

.PHONY: dev test fuzz lint typecheck format bench schemas deploy-files new-service clean

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet "uv==$(UV_VERSION)"

.venv/.synced: $(UV) uv.lock pyproject.toml libs/*/pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --all-extras
	touch $@

dev: .venv/.synced ## run every service on the embedded default (SQLite + in-process broker)
	$(UV) run --frozen kyosei dev

test: .venv/.synced ## the whole test suite
	$(UV) run --frozen pytest

fuzz: .venv/.synced ## schemathesis against every service, $(EXAMPLES) cases per operation and mode; prints the figures
	$(UV) run --frozen python -m tests.fuzz.run --examples $(EXAMPLES)

lint: .venv/.synced
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy  # every libs/*/src and services/*/src ([tool.mypy] files)

format: .venv/.synced
	$(UV) run --frozen ruff format .
	$(UV) run --frozen ruff check --fix .

bench: .venv/.synced ## throughput against the eventsourcing library and the raw driver, side by side; a 1M-event rebuild; registration; intake soak
	$(UV) run --frozen python tests/bench/run.py

schemas: .venv/.synced ## regenerate the published JSON Schemas and AsyncAPI document
	$(UV) run --frozen python -m kyosei_events.schemas

deploy-files: .venv/.synced ## regenerate the per-service parts of compose, Kubernetes and deploy/README.md
	$(UV) run --frozen python -m kyosei_platform.deploy

new-service: .venv/.synced ## services/$(NAME) from the template, then every generated list (NAME=x [TITLE=...])
	@test -n "$(NAME)" || { echo "usage: make new-service NAME=<name> [TITLE=<title>]" >&2; exit 2; }
	$(UV) run --frozen python -m kyosei_platform.scaffold $(NAME) $(if $(TITLE),--title "$(TITLE)")
	$(UV) lock
	$(UV) sync --frozen --all-packages --all-extras
	touch .venv/.synced
	$(UV) run --frozen ruff check --fix --quiet services/$(NAME)
	$(UV) run --frozen ruff format --quiet services/$(NAME)
	$(UV) run --frozen python -m kyosei_platform.deploy
	$(UV) run --frozen python -m kyosei_events.schemas
	@echo "services/$(NAME) is installed: make test, make lint, then commit it with the files above"

clean:
	rm -rf .venv .tools data
