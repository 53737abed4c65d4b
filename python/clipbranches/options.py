"""The options of a search and of a refine round: defaults, ranges and validation, in one place.

The engine, the CLI and the terminal UI all read them here, so a default or a range is changed
once. :class:`RefineOptions` validates on construction: an instance is always a valid round.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

from clipbranches.exceptions import InvalidArgumentError

__all__ = ["DEFAULT_K", "MAX_RANDOM_NEGATIVES", "RefineOptions", "check_integer"]

#: Items a first (nearest-neighbour) search returns: one page of the UI, as the original's.
DEFAULT_K = 60
#: The most random negatives a round may ask for (the size of the catalog's fixed random pool).
MAX_RANDOM_NEGATIVES = 10_000


@dataclass(frozen=True)
class RefineOptions:
    """How a refine round trains: the model, the random negatives, the negatives' weight, the seed.

    Attributes
    ----------
    model
        A registry name (:data:`clipbranches.learn.MODELS`); default
        :data:`clipbranches.learn.DEFAULT_MODEL`.
    random_negatives
        Random catalog items added as negatives, as the original does (0..10,000; default 500).
    negative_weight
        Weight of each labelled negative (1..100; default 1).
    seed
        Seed of the random negatives and the model; ``None`` draws one per round (recorded in
        the round's ``params``, so it can be redone).

    Raises
    ------
    InvalidArgumentError
        An unknown model or a value out of range, naming it.
    """

    model: str = ""  # "" stands for the registry's default (resolved in __post_init__)
    random_negatives: int = 500
    negative_weight: int = 1
    seed: int | None = None

    #: Accepted ranges, inclusive.
    RANDOM_NEGATIVES: ClassVar[tuple[int, int]] = (0, MAX_RANDOM_NEGATIVES)
    NEGATIVE_WEIGHT: ClassVar[tuple[int, int]] = (1, 100)

    def __post_init__(self) -> None:
        from clipbranches.learn.registry import DEFAULT_MODEL, MODELS  # the registry needs this module

        model = self.model or DEFAULT_MODEL
        if not isinstance(model, str) or model not in MODELS:
            raise InvalidArgumentError(f"unknown model {model!r}; choose one of {', '.join(MODELS)}")
        object.__setattr__(self, "model", model)
        check_integer("random_negatives", self.random_negatives, *self.RANDOM_NEGATIVES)
        check_integer("negative_weight", self.negative_weight, *self.NEGATIVE_WEIGHT)
        if self.seed is not None:
            check_integer("seed", self.seed, 0, 2**64 - 1)

    @classmethod
    def parse(cls, model: object, random_negatives: object, negative_weight: object) -> RefineOptions:
        """Options from raw values (a form's strings, say); errors name the field."""
        return cls(
            model if isinstance(model, str) else repr(model),
            _integer(random_negatives, "random_negatives"),
            _integer(negative_weight, "negative_weight"),
        )

    def replace(self, **changes: Any) -> RefineOptions:
        """A copy with ``changes`` (validated); ``None`` values leave a field as it is."""
        given = {k: v for k, v in changes.items() if v is not None}
        return dataclasses.replace(self, **given)


def _integer(value: object, name: str) -> int:
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            raise InvalidArgumentError(f"{name} must be a whole number, not {value!r}") from None
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InvalidArgumentError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def check_integer(name: str, value: object, low: int, high: int) -> None:
    """Raise :class:`InvalidArgumentError` naming ``name`` unless ``value`` is an integer in ``low..high``."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}")
    if not low <= int(value) <= high:
        raise InvalidArgumentError(f"{name} must be in {low}..{high:,}, got {value}")
