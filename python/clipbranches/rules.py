"""A box model as readable rules and as the equivalent SQL.

A fitted decision branch is a union of boxes; an ensemble accepts an item when more than
``threshold x members`` of its members have a box containing it. Both read as conditions on the
item's code bytes ``c0 .. c{dim-1}`` (uint8), written the way a person would (an open side,
0 or 255, is left out), and as a ``WHERE`` clause over a table with one column per byte:

    SELECT id FROM codes WHERE (c3 BETWEEN 12 AND 200 AND c7 >= 40) OR (c1 <= 90)

A round's answer also holds every labelled positive and no labelled negative, whatever the
boxes say; rules made for a round carry those item ids, so the SQL selects exactly the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from clipbranches.store.boxes import Box

__all__ = ["Rules"]


def _condition(dim: int, lo: int, hi: int) -> str | None:
    column = f"c{dim}"
    if lo <= 0 and hi >= 255:
        return None  # no constraint at all
    if lo <= 0:
        return f"{column} <= {hi}"
    if hi >= 255:
        return f"{column} >= {lo}"
    if lo == hi:
        return f"{column} = {lo}"
    return f"{column} BETWEEN {lo} AND {hi}"


@dataclass(frozen=True)
class Rules:
    """The rules of a fitted box model.

    Attributes
    ----------
    boxes
        The model's boxes (``group``: the ensemble member).
    members
        Ensemble members (1 for a single branch).
    threshold
        Fraction of members that must contain an item (a single branch: any box, 0).
    positives, negatives
        Item ids the user labelled: always in the answer / never in it.
    """

    boxes: Sequence[Box]
    members: int = 1
    threshold: float = 0.0
    positives: Sequence[int] = ()
    negatives: Sequence[int] = ()

    def conditions(self) -> list[str]:
        """One line per box: its conditions joined by AND (``TRUE`` for a box that constrains
        nothing)."""
        return [self._box_sql(box) for box in self.boxes]

    def _box_sql(self, box: Box) -> str:
        parts = [c for c in (_condition(d, lo, hi) for d, lo, hi in zip(box.dims, box.lo, box.hi, strict=True)) if c]
        return " AND ".join(parts) if parts else "TRUE"

    @property
    def votes_needed(self) -> int:
        """Members that must contain an item for it to be accepted (strictly more than
        ``threshold x members``)."""
        return int(self.threshold * self.members) + 1 if self.members > 1 else 1

    def where(self) -> str:
        """The SQL condition that accepts exactly the items the model accepts."""
        if not self.boxes:
            return "FALSE"
        groups = sorted({b.group for b in self.boxes})
        per_group = {g: " OR ".join(f"({self._box_sql(b)})" for b in self.boxes if b.group == g) for g in groups}
        if self.members <= 1:
            return " OR ".join(per_group.values())
        votes = " + ".join(f"(CASE WHEN {cond} THEN 1 ELSE 0 END)" for cond in per_group.values())
        return f"({votes}) >= {self.votes_needed}"

    def sql(self, table: str = "codes", id_column: str = "id") -> str:
        """A query over ``table`` (columns ``id_column`` and ``c0`` ..) that selects the accepted
        ids (with the labelled positives, without the labelled negatives)."""
        where = self.where()
        if self.negatives:
            where = f"({where}) AND {id_column} NOT IN ({', '.join(str(int(i)) for i in self.negatives)})"
        if self.positives:
            where = f"({where}) OR {id_column} IN ({', '.join(str(int(i)) for i in self.positives)})"
        return f"SELECT {id_column} FROM {table} WHERE {where}"

    def __str__(self) -> str:
        lines = []
        if self.members > 1:
            lines.append(f"accepted when boxes of at least {self.votes_needed} of {self.members} members contain it:")
        else:
            lines.append("accepted when any box contains it:")
        for box in self.boxes:
            prefix = f"member {box.group}: " if self.members > 1 else ""
            lines.append(f"  {prefix}{self._box_sql(box)}")
        if self.positives or self.negatives:
            lines.append(
                f"plus the {len(self.positives)} labelled positives, minus the {len(self.negatives)} labelled negatives"
            )
        return "\n".join(lines)
