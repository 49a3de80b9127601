"""Deploy a stored model to the running service: `python -m model.deploy [--tag T] [--force]`.

`make train` only stores a new version; this switches the service to it on purpose:

1. resolves the candidate (`--tag`, default the newest `car_price_xgb`) in the store;
2. asks the service which model it serves (`POST /model`) and compares holdout MAEs,
   refusing a candidate more than `MAX_MAE_REGRESSION` worse unless `--force`;
3. writes the tag to `$BENTOML_HOME/serving-model`; the service watches that file and
   swaps the model in place (no restart, so no request is refused or fails);
4. waits until the service answers with the new version.

Existing predictions keep their old version until `make rescore` re-prices them.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from dataclasses import dataclass
from typing import Any

import bentoml
import httpx

from config.settings import ServiceSettings
from config.waiting import wait_until
from model.client import serving_info
from model.settings import MODEL_NAME
from model.store import MODEL_TAG_ENV_VAR, write_deployed_tag

#: A candidate may be at most this much worse (holdout MAE, relative) than the serving one.
MAX_MAE_REGRESSION = 0.02
SWITCH_TIMEOUT_S = 60.0


class DeployRefused(Exception):
    """The candidate is worse than the serving model, or cannot be deployed."""


@dataclass(frozen=True)
class ModelFacts:
    tag: str
    mae: float | None
    data_sha256: str | None


def stored_facts(tag: str | None) -> ModelFacts:
    """Resolve `tag` (default: newest) in the BentoML store, with its holdout metrics."""
    try:
        stored = bentoml.models.get(tag or f"{MODEL_NAME}:latest")
    except bentoml.exceptions.NotFound as exc:
        raise DeployRefused(f"no model {tag or MODEL_NAME} in the BentoML store") from exc
    metrics: dict[str, Any] = dict(stored.info.metadata.get("metrics", {}))
    return ModelFacts(str(stored.tag), metrics.get("mae"), metrics.get("data_sha256"))


def check_quality(candidate: ModelFacts, serving: ModelFacts, force: bool) -> str:
    """Raise DeployRefused when the candidate's holdout MAE regresses too much."""
    if candidate.mae is None or serving.mae is None:
        verdict = "holdout MAE unknown for one of the models"
        if force:
            return verdict + " (forced)"
        raise DeployRefused(verdict + "; FORCE=1 deploys anyway")
    change = candidate.mae / serving.mae - 1
    verdict = (
        f"holdout MAE {candidate.mae:,.1f} vs {serving.mae:,.1f} serving "
        f"({change:+.1%}, limit +{MAX_MAE_REGRESSION:.0%})"
    )
    if candidate.data_sha256 != serving.data_sha256:
        verdict += "; note: trained on different data, so the holdouts differ"
    if candidate.mae > serving.mae * (1 + MAX_MAE_REGRESSION):
        if force:
            return verdict + " - worse, deployed because forced"
        raise DeployRefused(verdict + " - refused; FORCE=1 deploys anyway")
    return verdict


def wait_until_serving(base_url: str, tag: str, timeout: float = SWITCH_TIMEOUT_S) -> float:
    """Seconds until the service reports `tag`; raises TimeoutError."""
    started = time.monotonic()
    wait_until(
        lambda: serving_info(base_url)["model_version"],
        lambda serving: serving == tag,
        timeout=timeout,
        interval=0.2,
        message=lambda serving: (
            f"the service still does not serve {tag} after {timeout:.0f}s "
            f"(serves {serving}; see .state/logs/bentoml.log)"
        ),
    )
    return time.monotonic() - started


def deploy(tag: str | None, force: bool, base_url: str) -> str:
    """Deploy and return the tag now served."""
    if os.environ.get(MODEL_TAG_ENV_VAR):
        raise DeployRefused(f"${MODEL_TAG_ENV_VAR} pins the service's model; unset it first")
    candidate = stored_facts(tag)
    current = serving_info(base_url)
    serving = ModelFacts(
        current["model_version"],
        current["metrics"].get("mae"),
        current["metrics"].get("data_sha256"),
    )
    if candidate.tag == serving.tag:
        write_deployed_tag(candidate.tag)  # make the choice durable across restarts
        print(f"{candidate.tag} is already serving")
        return candidate.tag
    print(f"candidate {candidate.tag}: {check_quality(candidate, serving, force)}")
    write_deployed_tag(candidate.tag)
    try:
        seconds = wait_until_serving(base_url, candidate.tag)
    except TimeoutError:
        write_deployed_tag(serving.tag)  # the service kept it; keep the file telling the truth
        raise
    print(f"serving {candidate.tag} (was {serving.tag}; switched in {seconds:.1f}s, no restart)")
    print("existing predictions keep their version until `make rescore`")
    return candidate.tag


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.deploy", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tag", help=f"{MODEL_NAME}:<version> (default: the newest)")
    parser.add_argument(
        "--force",
        action="store_true",
        help=f"deploy even if the holdout MAE is > {MAX_MAE_REGRESSION:.0%} worse",
    )
    parser.add_argument(
        "--url",
        default=ServiceSettings().bentoml_url,
        help="the running service (default: from .env)",
    )
    args = parser.parse_args(argv)
    try:
        deploy(args.tag or None, args.force, args.url)
    except DeployRefused as exc:
        print(f"refused: {exc}", file=sys.stderr)
        return 2
    except (httpx.HTTPError, TimeoutError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
