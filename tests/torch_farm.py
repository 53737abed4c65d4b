"""Lend the project venv's torch to a throwaway venv, for `make wheel-check`'s ``all`` check.

Run with the project venv's Python: ``python tests/torch_farm.py FARM THROWAWAY_VENV``.

It makes ``FARM``, a folder of symlinks to exactly the import folders and ``*.dist-info``
folders of torch, torchvision and the torch-only packages they pull in (triton, ``nvidia-*``,
``cuda-*``), writes ``FARM/constraints.txt`` pinning each of them to the installed version, and
adds a ``.pth`` file naming ``FARM`` to the throwaway venv's site-packages. pip then sees torch
as installed (so ``pip install "<wheel>[all]" -c FARM/constraints.txt`` downloads none of the
CUDA build's gigabytes) and resolves every other dependency itself. Nothing else of the project
venv is exposed: not its editable clipbranches or clipbranches_tui, not numpy, not polars. A
``.pth`` entry comes after site-packages on ``sys.path``, so what pip installs there wins.

The farm must lie outside the throwaway venv: pip then counts what it holds as "outside
environment" and never uninstalls it (which would delete through the symlinks, in the project
venv); the constraints make sure pip never even wants to.
"""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import Requirement

#: Where the walk starts; the torch-only packages are what it follows from there.
ROOTS = ("torch", "torchvision")
LENT = re.compile(r"^(torch|torchvision|triton|nvidia-.*|cuda-.*)$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lent_distributions() -> dict[str, Distribution]:
    """torch, torchvision and every torch-only package they require, transitively (through
    extras too: torch needs ``cuda-toolkit[cublas,...]``, whose extras name the nvidia wheels)."""
    found: dict[str, Distribution] = {}
    seen: set[tuple[str, frozenset[str]]] = set()
    todo: list[tuple[str, frozenset[str]]] = [(name, frozenset()) for name in ROOTS]
    while todo:
        name, extras = todo.pop()
        if (canonical(name), extras) in seen:
            continue
        seen.add((canonical(name), extras))
        try:
            dist = found.setdefault(canonical(name), distribution(name))
        except PackageNotFoundError:
            sys.exit(f"torch_farm: {name} is not installed in {sys.prefix} (run `make setup`)")
        for line in dist.requires or []:
            req = Requirement(line)
            wanted = req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("", *extras))
            if wanted and LENT.match(canonical(req.name)):
                todo.append((req.name, frozenset(req.extras)))
    return found


def top_level(dist: Distribution) -> set[Path]:
    """The site-packages entries a distribution owns: its dist-info and its import folders."""
    if dist.files is None:
        sys.exit(f"torch_farm: {dist.metadata['Name']} has no RECORD: cannot tell which files are its own")
    site = Path(str(dist.locate_file(""))).resolve()
    # RECORD's first path parts: the dist-info folder, the import folders and modules; scripts
    # (``../../../bin/torchrun``) stay out, the venv's own python runs everything here.
    return {site / file.parts[0] for file in dist.files if file.parts[0] != ".." and (site / file.parts[0]).exists()}


def python_version(python: Path) -> str:
    code = "import sys; print('{}.{}'.format(*sys.version_info[:2]))"
    return subprocess.run([python, "-c", code], check=True, capture_output=True, text=True).stdout.strip()


def main(farm: Path, venv: Path) -> None:
    theirs = python_version(venv / "bin" / "python")
    ours = "{}.{}".format(*sys.version_info[:2])
    if theirs != ours:  # torch's compiled modules are built for one CPython
        sys.exit(f"torch_farm: {venv} runs Python {theirs}, the project venv {ours}: torch cannot be shared")
    dists = lent_distributions()
    farm.mkdir(parents=True, exist_ok=False)
    for entry in sorted(set().union(*(top_level(d) for d in dists.values()))):
        (farm / entry.name).symlink_to(entry)
    pins = sorted(f"{d.metadata['Name']}=={d.version}" for d in dists.values())
    (farm / "constraints.txt").write_text("\n".join(pins) + "\n")
    (site,) = (venv / "lib").glob("python*/site-packages")
    (site / "lent-torch.pth").write_text(f"{farm.resolve()}\n")
    print(f"torch_farm: lent {len(pins)} distributions ({', '.join(sorted(dists)[:3])}, ...) to {venv}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
