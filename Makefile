# One command per job; each installs what it needs first.
.PHONY: up test check
up:
	bash scripts/up.sh
test:
	bash scripts/test.sh
check:
	bash scripts/setup.sh test && .venv/bin/python -m pip install -q ruff import-linter
	.venv/bin/ruff check .
	.venv/bin/lint-imports
	.venv/bin/mypy
