"""Smoke test of an installed wheel, run from outside the repository by `make wheel-check`.

It proves the wheel carries the native module, the Python package (every subpackage) and its
type information, that a catalog can be written and read back with it, and that the default
model refines with only the wheel's own dependencies (numpy, polars).
"""

import pathlib
import sys
import tempfile

import numpy as np

import clipbranches
from clipbranches import Catalog, MissingDependencyError, SearchEngine

package_dir = pathlib.Path(clipbranches.__file__).parent
assert "site-packages" in str(package_dir), f"imported from {package_dir}, not from the wheel"
assert (package_dir / "py.typed").exists(), "py.typed missing from the wheel"
assert (package_dir / "_core.pyi").exists(), "_core.pyi missing from the wheel"
for sub in ("store", "learn", "embed", "embed/encoders", "embed/head", "cli"):
    assert (package_dir / sub / "__init__.py").exists(), f"subpackage {sub} missing from the wheel"

with tempfile.TemporaryDirectory() as tmp:
    codes = np.arange(64, dtype=np.uint8).reshape(2, 32)
    catalog = Catalog.create(pathlib.Path(tmp) / "c", codes)
    assert np.array_equal(Catalog.open(pathlib.Path(tmp) / "c").codes, codes)
    catalog.verify()
    many = np.random.default_rng(0).integers(0, 256, size=(2000, 32), dtype=np.uint8)
    engine = SearchEngine(Catalog.create(pathlib.Path(tmp) / "many", many))
    results = engine.refine([0, 1, 2], [3], seed=0)
    assert results.labelled[:3].all(), "the labelled positives come first"
    assert 3 not in results.ids, "a labelled negative never comes back"

    # Without the towers' extra, a text query says what to install (a typed error, not ModuleNotFoundError).
    def head(staging: pathlib.Path) -> None:
        (staging / "head.safetensors").write_bytes(b"unread")

    towered = Catalog.create(pathlib.Path(tmp) / "towered", many, encoder={"kind": "offline"}, attach=head)
    message = "no error: a text query without torch must say how to install it"
    try:
        SearchEngine(towered).search_text("a dog")
    except MissingDependencyError as e:
        message = str(e)
    assert "pip install 'clipbranches[offline]'" in message, message
print(f"wheel OK: clipbranches {clipbranches.__version__} on Python {sys.version.split()[0]}")
