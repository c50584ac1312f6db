"""What the learned models (retrieval.question.ranker, retrieval.question.judgement) share:
their file inside the package, written as sorted JSON, and an identity that changes with
their weights but not with what they say of their training (`about`)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from importlib import resources


class Stored:
    """A learned model as its file: its `weights()` and what its `about` says of its training
    (both given by the frozen dataclass that inherits this)."""

    about: Mapping[str, object]

    def weights(self) -> dict[str, object]:
        raise NotImplementedError

    @property
    def identity(self) -> str:
        """Changes whenever any weight does (shown by `retrieval stats`)."""
        return identity(self.weights())

    def to_json(self) -> str:
        return as_json(self.weights(), self.about)


def as_json(weights: Mapping[str, object], about: Mapping[str, object] | None) -> str:
    """A model's file: its weights, and what it says of its training unless `about` is None."""
    data = dict(weights) if about is None else {**weights, "about": dict(about)}
    return json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def identity(weights: Mapping[str, object]) -> str:
    """Twelve hex digits that change whenever any weight does (shown by `retrieval stats`)."""
    return hashlib.sha256(as_json(weights, None).encode()).hexdigest()[:12]


def packaged(file: str) -> str:
    """A model file shipped inside the package (retrieval/data/)."""
    return (resources.files("retrieval") / "data" / file).read_text(encoding="utf-8")
