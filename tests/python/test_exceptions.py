"""The exception tree: one root, public names, the same classes from Rust and Python."""

from __future__ import annotations

import clipbranches
from clipbranches import _core, exceptions

#: Errors only Python code raises (defined in exceptions.py, on the native bases, not in the
#: native core); the others are the classes Rust raises.
PYTHON_ONLY = {
    "CatalogChangedError",
    "OutputError",
    "DatasetNotFoundError",
    "EncoderError",
    "EncoderMismatchError",
    "IndexNotFoundError",
    "MissingDependencyError",
    "SessionFormatError",
    "ShardCorruptError",
    "ShardMissingError",
    "UnknownItemError",
}


def test_every_exception_derives_from_the_root_and_has_its_public_name() -> None:
    for name in exceptions.__all__:
        cls = getattr(exceptions, name)
        assert issubclass(cls, clipbranches.ClipBranchesError)
        assert cls.__module__ == "clipbranches.exceptions"
        assert getattr(clipbranches, name) is cls
        if name in PYTHON_ONLY:
            assert not hasattr(_core, name), "a Python-only error stays out of the native core"
        else:
            assert cls is getattr(_core, name), "native errors are the very classes Rust raises"


def test_catalog_errors_group_under_catalog_error() -> None:
    for cls in (
        exceptions.CatalogNotFoundError,
        exceptions.CatalogExistsError,
        exceptions.CatalogFormatError,
        exceptions.ChecksumError,
        exceptions.CatalogIOError,
    ):
        assert issubclass(cls, exceptions.CatalogError)
    assert not issubclass(exceptions.InvalidArgumentError, exceptions.CatalogError)


def test_python_only_errors_keep_their_place_in_the_tree() -> None:
    assert issubclass(exceptions.IndexNotFoundError, exceptions.CatalogError)
    assert issubclass(exceptions.EncoderMismatchError, exceptions.EncoderError)
    assert issubclass(exceptions.UnknownItemError, exceptions.InvalidArgumentError)
    for name in ("DatasetNotFoundError", "EncoderError", "MissingDependencyError", "SessionFormatError"):
        assert getattr(exceptions, name).__bases__ == (exceptions.ClipBranchesError,)


def test_the_native_core_defines_no_exception_outside_the_public_list() -> None:
    native = {name for name in dir(_core) if name.endswith("Error")}
    assert native == set(exceptions.__all__) - PYTHON_ONLY
