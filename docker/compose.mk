# The Docker path (compose.yaml), for people who run containers; the Makefile includes it
# with `include docker/compose.mk`. It needs nothing from the Makefile, so it also works on
# its own: make -f docker/compose.mk compose-up
# Our machines have no Docker engine: tests/docker/ checks this path statically.
COMPOSE ?= docker compose

.PHONY: compose-up compose-down compose-ps compose-logs

compose-up: ## Docker path: build the image, start everything, wait until healthy
	@test -f .env || python3 config/new_env.py
	$(COMPOSE) up --detach --build --wait

compose-down: ## Docker path: stop and remove the containers (the data volumes stay)
	$(COMPOSE) down

compose-ps: ## Docker path: every container with its state and health
	$(COMPOSE) ps --all

compose-logs: ## Docker path: follow the logs of every container
	$(COMPOSE) logs --follow --tail=20
