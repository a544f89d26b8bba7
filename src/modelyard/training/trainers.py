"""The built-in trainers: one table of name → (entry point, hyperparameter schema, task).

The schemas live here, not in the trainer modules, so the server validates a spec without
importing torch; the trainers read the same models inside the job.
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from modelyard.core.errors import InvalidArgument
from modelyard.training.models import TrainerInfo


def _model_name() -> Any:
    """Every built-in trainer's `model_name` (one field object per model: pydantic owns it)."""
    return Field(default=None, pattern=r"^[a-z0-9][a-z0-9._-]{0,99}$",
                 description="the model to register the version under (default: the "
                 "trainer's name)")


class DigitsCnnParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(default=0.01, gt=0, le=1.0, description="Adam learning rate")
    epochs: int = Field(default=12, ge=1, le=200)
    batch_size: int = Field(default=64, ge=1, le=4096)
    channels: int = Field(default=16, ge=1, le=256, description="channels of the first conv layer")
    seed: int = Field(default=0, ge=0)
    model_name: str | None = _model_name()


class IntentClassifierParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(default=0.02, gt=0, le=1.0)
    epochs: int = Field(default=15, ge=1, le=500)
    batch_size: int = Field(default=32, ge=1, le=4096)
    embedding_dim: int = Field(default=64, ge=2, le=1024)
    max_vocab: int = Field(default=5000, ge=10, le=200_000)
    max_len: int = Field(default=32, ge=1, le=1024)
    seed: int = Field(default=0, ge=0)
    model_name: str | None = _model_name()


class TabularMlpParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lr: float = Field(default=0.01, gt=0, le=1.0)
    epochs: int = Field(default=30, ge=1, le=1000)
    batch_size: int = Field(default=64, ge=1, le=4096)
    hidden: int = Field(default=64, ge=1, le=4096, description="units of each hidden layer")
    layers: int = Field(default=2, ge=1, le=8, description="hidden layers")
    seed: int = Field(default=0, ge=0)
    model_name: str | None = _model_name()


@dataclass(frozen=True)
class Builtin:
    name: str
    module: str  # run as `module:main`
    params: type[BaseModel]
    task: str
    description: str

    def info(self) -> TrainerInfo:
        return TrainerInfo(name=self.name, description=self.description, task=self.task,
                           hyperparameters=self.params.model_json_schema(),
                           defaults=self.params().model_dump())

    def code_hash(self) -> str:
        """sha256 of the trainer's source: the code identity recorded for lineage."""
        spec = importlib.util.find_spec(self.module)
        assert spec is not None and spec.origin is not None
        return hashlib.sha256(Path(spec.origin).read_bytes()).hexdigest()


BUILTINS: dict[str, Builtin] = {
    b.name: b
    for b in (
        Builtin("digits-cnn", "modelyard.training.builtin.digits_cnn", DigitsCnnParams,
                "image_classification",
                "a small CNN for 8x8 grayscale digits (sklearn digits); DDP with workers > 1"),
        Builtin("intent-classifier", "modelyard.training.builtin.intent_classifier",
                IntentClassifierParams, "text_intent",
                "a bag-of-embeddings intent classifier over a word vocabulary"),
        Builtin("tabular-mlp", "modelyard.training.builtin.tabular_mlp", TabularMlpParams,
                "tabular",
                "an MLP for tabular classes or numbers; learns standardisation, imputation and "
                "one-hot encoding from the train split and exports them with the network"),
    )
}


def get_builtin(name: str) -> Builtin:
    try:
        return BUILTINS[name]
    except KeyError:
        raise InvalidArgument(
            f"unknown trainer {name!r}: use one of {', '.join(sorted(BUILTINS))} "
            "(GET .../trainers lists them), or upload a code package",
            {"field": "trainer", "value": name},
        ) from None


def validate_params(builtin: Builtin, values: dict[str, Any]) -> dict[str, Any]:
    """The hyperparameters with defaults filled in; InvalidArgument naming the bad field."""
    try:
        return builtin.params.model_validate(values).model_dump()
    except ValidationError as e:
        problems = [{"field": "hyperparameters." + ".".join(str(p) for p in err["loc"]),
                     "problem": err["msg"]} for err in e.errors()]
        summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
        raise InvalidArgument(
            f"invalid hyperparameters for trainer {builtin.name!r}: {summary}",
            {"field": problems[0]["field"], "errors": problems},
        ) from None
