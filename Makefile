.PHONY: demo test lint format bench serve migrate

demo:            ## run the bot on SQLite wired to the built-in WeCom simulator
	bash scripts/demo.sh

test:            ## install, check PostgreSQL and Redis, lint, run every test on both databases
	bash scripts/test.sh

lint:
	bash scripts/bootstrap.sh && .venv/bin/ruff check . && .venv/bin/ruff format --check .

format:
	.venv/bin/ruff format . && .venv/bin/ruff check --fix .

serve:           ## run against a real WeCom app (WECOM_* settings in the environment or .env)
	bash scripts/bootstrap.sh && .venv/bin/wecrm db upgrade && .venv/bin/wecrm serve

bench:           ## run the benchmarks and write docs/BENCHMARKS.md (QUICK=1: smaller, faster)
	bash scripts/bootstrap.sh && bash scripts/services.sh && .venv/bin/python -m bench.run $(if $(QUICK),--quick,)
