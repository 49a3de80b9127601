"""What the price service reads at start. The bento ships model/ only, so the class lives
here rather than in config/settings.py; light to import, so the stack can read it too."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

#: The model's name in the BentoML store; versions are `car_price_xgb:<version>`.
MODEL_NAME = "car_price_xgb"


class ServingSettings(BaseSettings):
    """BENTOML_MODEL_TAG pins the served model; CAR_PRICE_PREDICT_THREADS: XGBoost threads
    per prediction (2 cores are shared with Kafka on the dev box)."""

    model_config = SettingsConfigDict(extra="ignore")

    bentoml_model_tag: str = ""
    car_price_predict_threads: int = Field(2, ge=1)
