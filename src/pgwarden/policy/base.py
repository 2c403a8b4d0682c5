"""The base of every policy model: frozen values, strict types, no key the model does not know."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)
