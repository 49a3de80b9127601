"""Save the price model to, and load it from, the BentoML model store.

The store location follows $BENTOML_HOME (the Makefile points it at .state/bentoml),
so tests can use a throw-away store by setting that variable. Beside the store, the file
`serving-model` names the version the service serves: `make deploy-model` writes it and
the running service follows it (model/service.py), so the choice survives restarts. What the service
reads at start is declared once, in model/settings.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bentoml

from model.predictor import PricePredictor
from model.settings import MODEL_NAME, ServingSettings

#: Env var that pins the served model; unset means the deployed one, else the newest.
MODEL_TAG_ENV_VAR = "BENTOML_MODEL_TAG"
#: File (in $BENTOML_HOME) holding the deployed tag, one line.
SERVING_FILE_NAME = "serving-model"


def serving_file() -> Path:
    """Where `make deploy-model` records the tag to serve."""
    home = os.environ.get("BENTOML_HOME") or str(Path.home() / "bentoml")
    return Path(home) / SERVING_FILE_NAME


def deployed_tag() -> str | None:
    """The tag last deployed with `make deploy-model`, if any."""
    try:
        return serving_file().read_text().strip() or None
    except FileNotFoundError:
        return None


def write_deployed_tag(tag: str) -> None:
    """Record `tag` as the one to serve (atomically: the service may read it any time)."""
    path = serving_file()
    path.parent.mkdir(parents=True, exist_ok=True)
    scratch = path.with_suffix(".tmp")
    scratch.write_text(tag + "\n")
    scratch.replace(path)


def served_tag() -> str:
    """The tag the service should load: $BENTOML_MODEL_TAG (a pin), the deployed one,
    else the newest version."""
    return ServingSettings().bentoml_model_tag or deployed_tag() or f"{MODEL_NAME}:latest"


def save_predictor(
    predictor: PricePredictor, metadata: dict[str, Any], labels: dict[str, str] | None = None
) -> str:
    """Write the predictor as a new model version; returns 'car_price_xgb:<version>'."""
    with bentoml.models.create(MODEL_NAME, metadata=metadata, labels=labels or {}) as stored:
        predictor.save(Path(stored.path))
    return str(stored.tag)


if __name__ == "__main__":  # `python -m model.store --deploy-newest`, used by `make up`
    import sys

    if sys.argv[1:] != ["--deploy-newest"]:
        sys.exit("usage: python -m model.store --deploy-newest")
    write_deployed_tag(str(bentoml.models.get(f"{MODEL_NAME}:latest").tag))
