"""The demo: a catalog of real images built end to end on a machine without hub access.

``build_demo`` takes OpenClipArt (Debian's openclipart-png/-svg, 8,121 images, titles and
keywords from the SVGs) or Fashion-MNIST (Debian's dataset-fashion-mnist, captions from the
class names), encodes every image once with the offline towers (resumable, with thumbnails),
trains the heads on the demo's own captions, writes the catalog (heads and thumbnails inside)
and builds its index. A second call finds the catalog and returns at once.

``demo_round`` is the main job without a UI: a text search, then one refine round with the
labels a user would give (the first page's items of the wanted class positive, the rest
negative), and what each returned.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from clipbranches.datasets import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_DIR,
    OPENCLIPART_DIR,
    load_fashion_mnist,
    openclipart_items,
    require,
    stratified_split,
)
from clipbranches.embed.chunks import encode_resumable
from clipbranches.embed.codes import project, write_catalog
from clipbranches.exceptions import InvalidArgumentError
from clipbranches.store.catalog import HEAD_FILE, Catalog
from clipbranches.store.quantize import FixedRangeQuantizer

if TYPE_CHECKING:
    from clipbranches.embed.encoders import Encoder

__all__ = ["DATASETS", "DemoItems", "build_demo", "demo_items", "demo_round"]

#: Data set (:mod:`clipbranches.datasets`) -> (the query of the demo round, the class it asks for).
DATASETS: dict[str, tuple[str, str]] = {
    "openclipart": ("an animal", "animals"),
    "fashion-mnist": ("a photo of a sneaker", "Sneaker"),
}
TEMPLATES = ("a photo of a {}", "a {}", "a picture of a {}", "an image of a {}", "a product photo of a {}")
Log = Callable[[str], None]


@dataclass
class DemoItems:
    """What the demo catalog is built from: one entry per image."""

    uris: list[str]
    titles: list[str]  # shown in the UI
    captions: list[str]  # what the heads train on
    labels: list[str]  # the class (OpenClipArt: the top folder)


def demo_items(name: str, workdir: Path, limit: int | None, root: Path | None = None) -> DemoItems:
    """The demo's images, captions and classes (``limit``: a subset spread over every class)."""
    if name == "openclipart":
        items = openclipart_items(root or OPENCLIPART_DIR)
        keep = _spread(np.array([i.category for i in items]), limit)
        chosen = [items[k] for k in keep]
        return DemoItems(
            [str(i.path) for i in chosen],
            [i.title for i in chosen],
            [f"{i.title} ({', '.join(i.keywords)})" if i.keywords else i.title for i in chosen],
            [i.category for i in chosen],
        )
    if name == "fashion-mnist":
        from PIL import Image

        images, labels = load_fashion_mnist(root or FASHION_MNIST_DIR)
        _, test = stratified_split(labels, seed=0)  # the half no benchmark trains on
        keep = test[_spread(labels[test], limit)]
        folder = workdir / "fashion-mnist-images"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(0)
        uris, captions = [], []
        for k in keep.tolist():
            path = folder / f"{k}.png"
            if not path.is_file():  # 4x upscaled so previews show something
                Image.fromarray(images[k]).resize((112, 112), Image.Resampling.NEAREST).save(path)
            uris.append(str(path))
            name_ = FASHION_MNIST_CLASSES[labels[k]].lower()
            captions.append(TEMPLATES[rng.integers(len(TEMPLATES))].format(name_))
        classes = [FASHION_MNIST_CLASSES[labels[k]] for k in keep.tolist()]
        return DemoItems(uris, classes, captions, classes)
    raise InvalidArgumentError(f"unknown demo dataset {name!r}; choose one of {', '.join(DATASETS)}")


def _spread(labels: np.ndarray, limit: int | None) -> np.ndarray:
    """All positions, or ``limit`` of them taken round-robin over the classes (ascending)."""
    if limit is None or limit >= len(labels):
        return np.arange(len(labels))
    if limit < 1:
        raise InvalidArgumentError(f"limit must be >= 1, got {limit}")
    groups = [np.flatnonzero(labels == c) for c in np.unique(labels)]
    picked: list[int] = []
    for rank in range(max(len(g) for g in groups)):
        picked += [int(g[rank]) for g in groups if rank < len(g)]
        if len(picked) >= limit:
            break
    return np.sort(np.array(picked[:limit], np.int64))


def build_demo(
    workdir: str | os.PathLike[str],
    dataset: str = "openclipart",
    *,
    limit: int | None = None,
    epochs: int = 30,
    root: Path | None = None,
    encoder: Encoder | None = None,
    progress: bool = True,
    log: Log = print,
) -> Path:
    """Build the demo catalog under ``workdir`` (or find the one built before) and return its path.

    ``encoder``: the towers (default: the offline pair; an ``OpenClipEncoder`` where weights
    are available). Catalogs of other encoders get their own name, so none is reused wrongly.
    """
    from clipbranches.embed.encoders import OfflineEncoder
    from clipbranches.embed.head import HeadConfig, TrainConfig, train_heads

    work = Path(workdir)
    name = dataset + (f"-{limit}" if limit else "")
    if encoder is not None and encoder.identity.get("kind") != "offline":
        name += "-" + "-".join(str(v) for k, v in sorted(encoder.identity.items()) if k in ("model", "weights"))
    target = work / name.replace("/", "_")
    if _complete(target):
        log(f"reusing {target} (delete it to rebuild)")
        return target
    if dataset not in DATASETS:
        raise InvalidArgumentError(f"unknown demo dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    require(dataset, root)
    work.mkdir(parents=True, exist_ok=True)
    items = demo_items(dataset, work, limit, root)
    encoder = encoder if encoder is not None else OfflineEncoder()
    log(f"{dataset}: {len(items.uris):,} images; encoding them with {encoder.identity} (resumable)")
    started = time.perf_counter()
    features_dir = target.with_name(f".{target.name}.features")
    positions, features = encode_resumable(
        encoder,
        items.uris,
        features_dir,
        transform=lambda f: f.astype(np.float16),
        width=encoder.image_dim,
        dtype=np.float16,
        fingerprint={"uris": len(items.uris), "first": items.uris[:1], "encoder": encoder.identity},
        progress=progress,
    )
    log(f"encoded {len(positions):,} images in {time.perf_counter() - started:.0f} s")
    kept = positions.tolist()
    texts = encoder.encode_texts([items.captions[p] for p in kept])
    image_features = features.astype(np.float32)
    started = time.perf_counter()
    config = TrainConfig(epochs=epochs, batch_size=min(1024, max(2, len(kept) // 4)))
    result = train_heads(image_features, texts, HeadConfig(encoder.image_dim, encoder.text_dim), config)
    log(
        f"trained the heads in {time.perf_counter() - started:.0f} s "
        f"(best epoch {result.best_epoch}, validation R@1 {result.val_recall_at_1:.3f})"
    )
    heads = result.heads.cpu().eval()
    table = pl.DataFrame(
        {
            "id": np.arange(len(kept), dtype=np.int64),
            "uri": [items.uris[p] for p in kept],
            "caption": [items.titles[p] for p in kept],
            "label": [items.labels[p] for p in kept],
        }
    )
    catalog = write_catalog(
        target,
        project(heads, image_features, "image", FixedRangeQuantizer()),
        table,
        encoder=encoder.identity,
        heads=heads,
        thumbnails=(features_dir / "thumbs", positions),
        overwrite=True,
    )
    catalog.build_index()
    shutil.rmtree(features_dir, ignore_errors=True)
    log(f"wrote {target}: {len(catalog):,} items, index built")
    return target


def _complete(path: Path) -> bool:
    try:
        catalog = Catalog.open(path)
    except Exception:  # noqa: BLE001 (missing or unreadable: build it again)
        return False
    return catalog.has_index and (path / HEAD_FILE).is_file()


def demo_round(engine: Any, query: str, wanted: str, *, model: str | None = None, log: Log = print) -> dict[str, Any]:
    """A text search, then one refine round labelled as a user would: the first page's
    items of class ``wanted`` positive, the others negative. Returns what each found."""
    from clipbranches.learn.registry import DEFAULT_MODEL
    from clipbranches.options import DEFAULT_K
    from clipbranches.session import Session

    labels = engine.catalog.items["label"].to_numpy()
    total_wanted = int((labels == wanted).sum())
    first = engine.search_text(query, k=DEFAULT_K)
    first_share = float((labels[first.rows] == wanted).mean())
    stages = ", ".join(f"{k} {v:.0f}" for k, v in first.timings.items() if k != "train")
    log(f'\nsearch "{query}": the {first.total} nearest ({stages} ms; the first query loads the towers)')
    for row in first.page(0, 10).to_polars().iter_rows(named=True):
        log(f"  {row['rank']:>3}  {row['label']:<18} {str(row['caption'])[:60]}")
    log(f"  {first_share:.0%} of the {DEFAULT_K} are {wanted}")

    session = Session.for_engine(engine)
    session.label(first.ids[labels[first.rows] == wanted].tolist(), "positive")
    session.label(first.ids[labels[first.rows] != wanted].tolist(), "negative")
    if not session.positives:
        raise InvalidArgumentError(f"the first page holds no {wanted}: nothing to refine on")
    chosen = model or DEFAULT_MODEL
    refined = session.refine(engine, model=chosen, seed=0)
    top = refined.rows[:DEFAULT_K]
    share = float((labels[top] == wanted).mean()) if len(top) else 0.0
    accepted_wanted = int((labels[refined.rows] == wanted).sum())
    timings = ", ".join(f"{k} {v:.0f}" for k, v in refined.timings.items())
    log(
        f"\nrefined ({chosen}) on {len(session.positives)} positive + {len(session.negatives)} negative "
        f"labels: {refined.total:,} items accepted ({timings} ms)"
    )
    for row in refined.page(0, 10).to_polars().iter_rows(named=True):
        log(f"  {row['rank']:>3}  {row['label']:<18} {str(row['caption'])[:60]}")
    log(
        f"  {share:.0%} of the first {len(top)} are {wanted}; {accepted_wanted:,} of the catalog's "
        f"{total_wanted:,} {wanted} were accepted"
    )
    return {
        "query": query,
        "first_share": first_share,
        "refined_share": share,
        "accepted": refined.total,
        "accepted_wanted": accepted_wanted,
        "total_wanted": total_wanted,
        "timings_ms": refined.timings,
    }
