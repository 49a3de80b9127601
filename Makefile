# Car price pipeline — the commands people use. `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# .env holds every setting (ports, passwords, data path) and is never committed. On first
# use stack/new_env.py creates it from .env.example with random passwords (mode 0600).
# make never parses it whole (a password may hold `#`, `$` or `\`): Python reads .env
# itself, make reads only the plain values its recipes use.
$(shell test -f .env || python3 stack/new_env.py)
env_value = $(shell sed -n 's/^$(1)=//p' .env | tail -n 1 | sed -E "s/^(['\"])(.*)\1$$/\2/")

PY      := .venv/bin/python
export FORD_CSV ?= $(or $(call env_value,FORD_CSV),../shared/data/ford.csv)
KAFKA_HOST ?= $(call env_value,KAFKA_HOST)
KAFKA_PORT ?= $(call env_value,KAFKA_PORT)
CDC_TOPIC ?= $(call env_value,CDC_TOPIC)
export BENTOML_HOME ?= $(CURDIR)/.state/bentoml
PYTEST_ARGS ?=

include docker/compose.mk

.PHONY: help bootstrap up down status restart logs migrate deploy-connectors watch demo train bench bench-model bench-pipeline test lint

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

bootstrap: ## install what is missing: Debian packages (as root), .venv, Kafka/Debezium jars
	@bash stack/bootstrap.sh

up: bootstrap ## start the whole pipeline (idempotent): stack, migrations, connectors
	@$(PY) -m stack up
	@$(MAKE) --no-print-directory migrate
	@$(MAKE) --no-print-directory deploy-connectors
	@$(PY) -m stack status
	@$(PY) -m stack urls

down: ## stop every process of the stack cleanly
	@if [ -x $(PY) ]; then $(PY) -m stack down; else echo "stack was never set up"; fi

status: ## one line per component, plus each connector's and task's state
	@$(PY) -m stack status

restart: ## restart one program after a code change (P=transformer|bentoml|connect|...)
	@$(PY) -m stack restart $(P)

logs: ## follow the logs of every component (.state/logs/)
	@tail -n 20 -F .state/logs/*.log

migrate: ## apply the Alembic migrations (alembic upgrade head)
	@$(PY) -m alembic upgrade head

deploy-connectors: ## PUT connectors/*.json to Kafka Connect and wait until RUNNING
	@$(PY) -m stack deploy-connectors

TOPIC ?= $(CDC_TOPIC)
watch: ## print a topic's records as they arrive (TOPIC=car_price_predictions, default the CDC topic)
	@java -cp ".cache/jvm/kafka/libs/*" -Dlog4j2.configurationFile=stack/tools-log4j2.properties \
	  org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server $(KAFKA_HOST):$(KAFKA_PORT) \
	  --topic "$(TOPIC)" --from-beginning --property print.key=true --property print.headers=true

demo: ## insert a few listings and print their predicted prices once they arrive
	@$(PY) -m stack demo

train: ## train the XGBoost model on $(FORD_CSV) and store it in BentoML
	@$(PY) -m model.train --data "$(FORD_CSV)"

bench: bench-model bench-pipeline ## every benchmark, printed as tables

bench-pipeline: ## insert→prediction latency and throughput, memory per component
	@$(PY) -m stack.bench

bench-model: ## latency and throughput of the running BentoML service
	@$(PY) -m model.bench

test: up ## start what the tests need, then run the whole test suite
	@$(PY) -m pytest $(PYTEST_ARGS)

lint: ## ruff
	@.venv/bin/ruff check stack migrations transformer model tests
