"""A catalog's items table (``items.parquet``): its standard columns, what it may not hold, and
its checks, at create (the table given) and at open (the file, from its metadata and ids)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from clipbranches.exceptions import CatalogFormatError, DimensionMismatchError, InvalidArgumentError

__all__ = [
    "schema_problem",
    "ITEMS_FILE",
    "ITEM_COLUMNS",
    "RESERVED_COLUMNS",
    "check_schema",
    "checked_ids",
    "parquet_errors",
    "prepare_items",
]

#: The standard item columns and their types; a catalog may carry more (e.g. ``label``).
ITEM_COLUMNS: dict[str, type[pl.DataType]] = {
    "id": pl.Int64,
    "uri": pl.String,
    "caption": pl.String,
    "width": pl.Int32,
    "height": pl.Int32,
}


#: Column names the results tables add to the items (``to_polars``, exports, CLI search), so an
#: items table may not carry them.
RESERVED_COLUMNS = ("score", "rank", "labelled")
#: The file of the items table inside a catalog.
ITEMS_FILE = "items.parquet"
_INT64_MAX = 2**63 - 1


def _type_fits(expected: type[pl.DataType], actual: pl.DataType) -> bool:
    """Whether a column of type ``actual`` can stand for a standard column of type ``expected``."""
    return actual.is_integer() if expected in (pl.Int64, pl.Int32) else actual in (pl.String, pl.Null)


def schema_problem(schema: Mapping[str, pl.DataType]) -> str | None:
    """What is wrong with an items table of this schema (a reserved column, a standard column of
    another type, no ``id``), or None: one rule for the table given at create and the file at open."""
    if "id" not in schema:
        return "no 'id' column (every item needs an integer id)"
    for name, actual in schema.items():
        if name in RESERVED_COLUMNS:
            return f"has a column {name!r}, a name reserved for results ({', '.join(RESERVED_COLUMNS)})"
        expected = ITEM_COLUMNS.get(name)
        if expected is not None and not _type_fits(expected, actual):
            return f"column {name!r} has type {actual}; expected {expected.__name__}"
    return None


def check_schema(schema: Mapping[str, pl.DataType], rows: int, count: int, path: Path) -> None:
    """An items file's schema and row count against its catalog's ``count`` codes."""
    if rows != count:
        raise CatalogFormatError(f"{path}: has {rows} rows but the catalog has {count} codes")
    problem = schema_problem(schema)
    if problem is not None:
        raise CatalogFormatError(f"{path}: {problem}")


_PanicException: type[BaseException] = getattr(pl.exceptions, "PanicException", RuntimeError)


@contextmanager
def parquet_errors(path: Path) -> Iterator[None]:
    """Whatever reading a damaged parquet file raises (polars even panics on some) as a
    :class:`CatalogFormatError` naming the file."""
    try:
        yield
    except CatalogFormatError:
        raise
    except (pl.exceptions.PolarsError, OSError, ValueError, TypeError, OverflowError, IndexError) as err:
        raise CatalogFormatError(f"{path}: unreadable parquet: {err}") from err
    except _PanicException as err:  # a BaseException: polars' panic on corrupt input
        raise CatalogFormatError(f"{path}: unreadable parquet (the reader failed: {err})") from err


def checked_ids(ids: pl.Series, path: Path) -> NDArray[np.int64]:
    """The ids as a read-only int64 array, if they are integers, non-null, unique and in range."""
    if not ids.dtype.is_integer():
        raise CatalogFormatError(f"{path}: column 'id' has type {ids.dtype}; expected integers")
    nulls = ids.null_count()
    if nulls:
        raise CatalogFormatError(f"{path}: column 'id' has {nulls} null ids (every item needs one)")
    if len(ids) and ids.dtype == pl.UInt64 and int(ids.max()) > _INT64_MAX:  # type: ignore[arg-type]
        raise CatalogFormatError(f"{path}: column 'id' has ids above {_INT64_MAX} (ids are int64)")
    if ids.n_unique() != len(ids):
        duplicated = ids.filter(ids.is_duplicated()).unique().sort().head(5).to_list()
        raise CatalogFormatError(f"{path}: column 'id' has duplicate ids: {duplicated}")
    array = ids.cast(pl.Int64).to_numpy().astype(np.int64, copy=True)
    array.flags.writeable = False
    return array


def prepare_items(items: pl.DataFrame | None, count: int) -> pl.DataFrame:
    """Validate the items table against the codes and fill in the standard columns."""
    if items is None:
        items = pl.DataFrame({"id": pl.int_range(0, count, dtype=pl.Int64, eager=True)})
    if items.height != count:
        raise DimensionMismatchError(f"items has {items.height} rows but there are {count} codes (one row per code)")
    if "id" not in items.columns:
        items = items.with_row_index("id").with_columns(pl.col("id").cast(pl.Int64))
    for name in items.columns:
        if name in RESERVED_COLUMNS:
            raise InvalidArgumentError(
                f"items column {name!r} is reserved for results ({', '.join(RESERVED_COLUMNS)}); rename it"
            )
    ids = items["id"]
    if ids.dtype == pl.UInt64 and ids.len() and (ids.max() or 0) > _INT64_MAX:  # type: ignore[operator]
        raise InvalidArgumentError(f"items column 'id' has ids above {_INT64_MAX}; ids must fit int64")
    columns = []
    for name, dtype in ITEM_COLUMNS.items():
        if name not in items.columns:
            columns.append(pl.lit(None, dtype=dtype).alias(name))
            continue
        actual = items.schema[name]
        if not _type_fits(dtype, actual):
            raise InvalidArgumentError(f"items column {name!r} has type {actual}; expected {dtype.__name__}")
        columns.append(pl.col(name).cast(dtype))
    try:
        items = items.with_columns(columns)
    except pl.exceptions.PolarsError as err:
        raise InvalidArgumentError(f"items columns {list(ITEM_COLUMNS)} do not fit their types: {err}") from err
    if items["id"].null_count() or items["id"].n_unique() != items.height:
        raise InvalidArgumentError("items column 'id' must hold unique, non-null integers")
    rest = [c for c in items.columns if c not in ITEM_COLUMNS]
    return items.select([*ITEM_COLUMNS, *rest])
