# EM Portal: `make run` starts the app with a demo project; `make test` runs every test.
# All setup lives in scripts/; each script installs what it needs and is safe to rerun.
.PHONY: run test test-postgres setup bench

run:
	bash scripts/run.sh

test:
	bash scripts/test.sh $(ARGS)

test-postgres:
	bash scripts/test_postgres.sh $(ARGS)

setup:
	bash scripts/setup.sh
