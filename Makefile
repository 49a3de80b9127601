# Car price pipeline — the commands people use. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# .env holds every setting (ports, passwords, data path) and is never committed. On first
# use config/new_env.py creates it from .env.example with random passwords (mode 0600).
# make never parses it (a password may hold `#`, `$` or `\`): a recipe that needs a setting
# asks config/settings.py, the one place each is declared (`$(call setting,NAME)`).
$(shell test -f .env || python3 config/new_env.py)

PY      := .venv/bin/python
setting = $(shell $(PY) -m config $(1))
export BENTOML_HOME ?= $(CURDIR)/.state/bentoml
PYTEST_ARGS ?=

include docker/compose.mk

.PHONY: help bootstrap up down status restart logs migrate deploy-connectors watch watch-dlq demo train bench bench-model bench-pipeline test test-unit test-faults lint deploy-model rescore reconcile chaos rolling-restart

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

bootstrap: ## install what is missing: Debian packages (as root), .venv, Kafka/Debezium jars
	@bash stack/bootstrap.sh

up: bootstrap ## start the whole pipeline (idempotent): stack, migrations, connectors
	@$(PY) -m stack up
	@$(MAKE) --no-print-directory migrate
	@$(MAKE) --no-print-directory deploy-connectors
	@$(PY) -m operations.status
	@$(PY) -m stack urls

down: ## stop every process of the stack cleanly
	@if [ -x $(PY) ]; then $(PY) -m stack down; else echo "stack was never set up"; fi

status: ## one line per component, each connector's and task's state, the slot, firing alerts
	@$(PY) -m operations.status

restart: ## restart one program after a code change (P=transformer|bentoml|connect|...)
	@$(PY) -m stack restart $(P)

rolling-restart: ## KAFKA_BROKERS=3: restart the brokers one at a time, each once every ISR is complete
	@$(PY) -m operations.rolling_restart

logs: ## follow the logs of every component (.state/logs/)
	@tail -n 20 -F .state/logs/*.log

migrate: ## apply the Alembic migrations (alembic upgrade head)
	@$(PY) -m alembic upgrade head

deploy-connectors: ## PUT connectors/*.json to Kafka Connect and wait until RUNNING
	@$(PY) -m operations.connectors

reconcile: ## re-send listings that have no prediction of their latest state; print them
	@$(PY) -m operations.reconcile

TOPIC ?= $(call setting,cdc_topic)
WATCH_ARGS ?=
CONSOLE_CONSUMER = java -cp ".cache/jvm/kafka/libs/*" -Dlog4j2.configurationFile=stack/tools-log4j2.properties \
	  org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server $(call setting,bootstrap_servers) \
	  --command-config "$(call setting,admin_client_properties)" \
	  --from-beginning --property print.key=true --property print.headers=true
watch: ## print a topic's records as they arrive (TOPIC=car_price_predictions, default the CDC topic; WATCH_ARGS: more consumer options)
	@$(CONSOLE_CONSUMER) --topic "$(TOPIC)" $(WATCH_ARGS)

watch-dlq: ## print both dead-letter topics: transformer's (dlq.* headers) and JDBC sink's (__connect.errors.*)
	@$(CONSOLE_CONSUMER) --include '$(subst .,\.,$(call setting,dlq_topic))|$(subst .,\.,$(call setting,sink_dlq_topic))' $(WATCH_ARGS)

demo: ## insert a few listings and print their predicted prices once they arrive
	@$(PY) -m operations.demo

train: ## train the XGBoost model on FORD_CSV (.env) and store it in BentoML
	@$(PY) -m model.train --data "$(call setting,ford_csv_path)"

TAG ?=
deploy-model: ## serve a stored model (TAG=car_price_xgb:…, default newest; FORCE=1, RESCORE=1)
	@$(PY) -m model.deploy $(if $(TAG),--tag "$(TAG)") $(if $(filter 1,$(FORCE)),--force)
	@$(if $(filter 1,$(RESCORE)),$(MAKE) --no-print-directory rescore)

rescore: ## re-price every listing with the serving model (Debezium incremental snapshot)
	@$(PY) -m operations.rescore

bench: bench-pipeline ## the pipeline benchmark: one table, raw JSON and a latency CDF in reports/bench/

bench-pipeline: ## bulk and steady rates, per-hop latency, seed-style bridge, memory (BENCH_STEADY_SECONDS=60)
	@$(PY) -m bench

bench-model: ## latency and throughput of the running BentoML service
	@$(PY) -m model.bench

test: up ## start what the tests need, then run the whole test suite, the fault matrix last
	@$(PY) -m pytest $(PYTEST_ARGS)

test-faults: up ## the fault matrix (tests/faults): real faults on the running stack under load
	@$(PY) -m pytest tests/faults $(PYTEST_ARGS)

CHAOS_LISTINGS ?= 20000
chaos: up ## the fault matrix (tests/faults) with a larger load (KAFKA_BROKERS=3: the cluster faults too); prints its table
	@rm -f test-artifacts/chaos.jsonl
	@FAULT_LISTINGS=$(CHAOS_LISTINGS) $(PY) -m pytest tests/faults -p no:cacheprovider -q || true
	@$(PY) -m tests.faults.chaos_table test-artifacts/chaos.jsonl

test-unit: ## the tests that need no running service and train no model (seconds, for quick edits)
	@$(PY) -m pytest -m "not stack and not slow" $(PYTEST_ARGS)

PACKAGES := config model transformer stack operations bench
lint: ## ruff check, ruff format --check, and the import layers (pyproject.toml [tool.importlinter])
	@.venv/bin/ruff check $(PACKAGES) migrations tests
	@.venv/bin/ruff format --check $(PACKAGES) migrations tests
	@.venv/bin/lint-imports
