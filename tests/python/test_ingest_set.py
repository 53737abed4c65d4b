"""Ingest into a catalog set: 24 photos, 8 per shard -> 3 shards; the same ids and codes as one
catalog, search through the set, interrupted and resumed; on a local Ray, the shards through one
Ray Data pipeline (decode tasks, encode actors): the same ids and codes, unreadable files skipped
with their reasons, interrupted and resumed by shard and by chunk."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("wordllama")
data = pytest.importorskip("skimage.data")

from PIL import Image  # noqa: E402

from clipbranches import Catalog  # noqa: E402
from clipbranches.cli import main  # noqa: E402
from clipbranches.embed import ingest_set as ingest_set_module  # noqa: E402
from clipbranches.embed.ingest_set import ingest_set  # noqa: E402
from clipbranches.exceptions import CatalogExistsError, InvalidArgumentError  # noqa: E402
from clipbranches.store.catalog_set import CatalogSet  # noqa: E402

PHOTOS = ("chelsea", "coffee", "rocket", "astronaut", "camera", "coins", "clock", "moon")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Each photo whole and as two crops: 24 images, no captions."""
    root = tmp_path_factory.mktemp("photos")
    for name in PHOTOS:
        image = Image.fromarray(getattr(data, name)()).convert("RGB")
        w, h = image.size
        image.resize((96, 96)).save(root / f"{name}.png")
        image.crop((0, 0, w // 2, h // 2)).resize((64, 64)).save(root / f"{name}_a.png")
        image.crop((w // 2, h // 2, w, h)).resize((64, 64)).save(root / f"{name}_b.png")
    return root


@pytest.fixture(scope="module")
def encoder() -> Any:
    from clipbranches.embed.encoders import make_encoder

    return make_encoder("offline", device="cpu")


@pytest.fixture(scope="module")
def heads(encoder: Any) -> Any:
    from clipbranches.embed.head.defaults import default_heads

    return default_heads(encoder)  # fitted on the class prompts alone


@pytest.fixture(scope="module")
def single(folder: Path, encoder: Any, heads: Any, tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    from clipbranches.embed.ingest import ingest

    catalog, report = ingest(folder, tmp_path_factory.mktemp("one") / "one", encoder=encoder, heads=heads)
    assert report.skipped == []
    assert len(catalog) == 3 * len(PHOTOS)
    return catalog


def _same(catalog_set: CatalogSet, single: Catalog) -> None:
    assert len(catalog_set.shards) == 3
    assert [info.count for info in catalog_set.infos] == [8, 8, 8]
    assert catalog_set.item_ids.tolist() == single.item_ids.tolist()
    np.testing.assert_array_equal(catalog_set.codes[:], single.codes)
    assert catalog_set.items["uri"].to_list() == single.items["uri"].to_list()
    assert catalog_set.items["source_row"].to_list() == single.items["source_row"].to_list()


def test_shards_match_one_catalog_and_search(
    folder: Path, encoder: Any, heads: Any, single: Catalog, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made, report = ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=8)
    assert report.items == 24
    assert report.shards == 3
    assert report.shard_items == [8, 8, 8]
    _same(CatalogSet.open(tmp_path / "set"), single)
    assert made.path == tmp_path / "set"
    assert not (tmp_path / ".set.ingest-set").exists()  # the work folder is gone
    with pytest.raises(CatalogExistsError):
        ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=8)

    assert main(["search", str(tmp_path / "set"), "a cat", "-k", "3", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert Path(found["items"][0]["uri"]).stem.startswith("chelsea")


class _Bar:
    def __init__(self, total: int, initial: int) -> None:
        self.total, self.n, self.closed = total, initial, False

    def update(self, n: int = 1) -> None:
        self.n += n

    def close(self) -> None:
        self.closed = True


def test_default_heads_come_from_the_first_shard(
    folder: Path, encoder: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bars: list[_Bar] = []
    monkeypatch.setattr(
        ingest_set_module, "_progress_bar", lambda total, initial: bars.append(_Bar(total, initial)) or bars[-1]
    )
    catalog_set, report = ingest_set(
        folder, tmp_path / "set", encoder=encoder, shard_size=10, chunk_size=4, progress=True
    )
    assert [(bar.total, bar.n, bar.closed) for bar in bars] == [(24, 24, True)]  # one bar over all images
    assert report.shard_items == [10, 10, 4]
    assert report.default_heads.startswith("default")
    from clipbranches.embed.head import load_heads
    from clipbranches.embed.ingest import _weights_digest

    weights = {_weights_digest(load_heads(s.path / "head.safetensors")) for s in catalog_set.shards}
    assert len(weights) == 1  # the first shard's heads, in every shard


def test_interrupted_after_the_first_shard_resumes(
    folder: Path, encoder: Any, heads: Any, single: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def stop(done: int, shards: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=8, on_shard=stop)
    assert not (tmp_path / "set").exists()
    assert Catalog.open(tmp_path / ".set.ingest-set" / "shard-00000")

    encoded: list[int] = []
    original = ingest_set_module._ingest_slice

    def counting(listing: Any, start: int, *args: Any, **kwargs: Any) -> Any:
        encoded.append(start)
        return original(listing, start, *args, **kwargs)

    monkeypatch.setattr(ingest_set_module, "_ingest_slice", counting)
    _, report = ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=8)
    assert encoded == [8, 16]  # the finished shard is not encoded again
    assert report.resumed_shards == 1
    _same(CatalogSet.open(tmp_path / "set"), single)


def test_bad_input(folder: Path, encoder: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for bad in (0, -1, 1.5, True):
        with pytest.raises(InvalidArgumentError):
            ingest_set(folder, tmp_path / "s", encoder=encoder, shard_size=bad)  # type: ignore[arg-type]
    cpu = ["--device", "cpu", "--quiet"]
    assert main(["ingest", str(folder), str(tmp_path / "s"), "--shard-size", "0", *cpu]) == 2
    assert main(["ingest", str(folder), str(tmp_path / "s"), "--cluster", "local", *cpu]) == 2
    assert not (tmp_path / "s").exists()


def test_cli_makes_a_set(folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "cli-set"
    args = ["ingest", str(folder), str(target), "--shard-size", "8", "--device", "cpu", "--quiet", "--json"]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["shards"] == 3
    assert summary["items"] == 24
    assert summary["shard_items"] == [8, 8, 8]
    assert CatalogSet.open(target).item_ids.tolist() == list(range(24))
    assert main(args) == 2  # a finished set: --overwrite to replace it
    assert main([*args, "--overwrite"]) == 0


@pytest.fixture(scope="module")
def local_ray() -> Any:
    ray = pytest.importorskip("ray")
    for name in ("pandas", "pyarrow"):  # Ray Data's own dependencies (ray[data])
        pytest.importorskip(name, reason=f"ingest on Ray runs on Ray Data, which needs {name}")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def test_shards_on_ray_are_the_single_catalog(
    local_ray: Any,
    folder: Path,
    encoder: Any,
    heads: Any,
    single: Catalog,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    done: list[int] = []
    _, report = ingest_set(
        folder,
        tmp_path / "set",
        encoder=encoder,
        heads=heads,
        shard_size=8,
        cluster="auto",
        on_shard=lambda n, shards: done.append(n),
    )
    assert done == [1, 2, 3]
    assert report.items == 24
    _same(CatalogSet.open(tmp_path / "set"), single)

    from clipbranches.embed.head import save_heads

    save_heads(heads, tmp_path / "heads.safetensors")
    args = ["ingest", str(folder), str(tmp_path / "cli"), "--shard-size", "8", "--cluster", "auto"]
    assert main([*args, "--head", str(tmp_path / "heads.safetensors"), "--device", "cpu", "--quiet", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shard_items"] == [8, 8, 8]
    _same(CatalogSet.open(tmp_path / "cli"), single)


def test_interrupted_inside_a_shard_resumes_from_its_chunks(
    folder: Path, encoder: Any, heads: Any, single: Catalog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = ingest_set_module.ingest

    def stop_in_shard_two(*args: Any, **kwargs: Any) -> Any:
        def on_chunk(done: int, chunks: int) -> None:
            if kwargs["first_row"] == 8 and done == 1:
                raise KeyboardInterrupt

        return original(*args, **{**kwargs, "on_chunk": on_chunk})

    monkeypatch.setattr(ingest_set_module, "ingest", stop_in_shard_two)
    run = {"encoder": encoder, "heads": heads, "shard_size": 8, "chunk_size": 4}
    with pytest.raises(KeyboardInterrupt):
        ingest_set(folder, tmp_path / "set", **run)
    monkeypatch.setattr(ingest_set_module, "ingest", original)
    _, report = ingest_set(folder, tmp_path / "set", **run)
    assert report.resumed_shards == 1  # shard 0 kept
    assert report.resumed_chunks == 1  # shard 1's first chunk kept
    _same(CatalogSet.open(tmp_path / "set"), single)


def test_other_settings_discard_the_finished_shards(folder: Path, encoder: Any, heads: Any, tmp_path: Path) -> None:
    def stop(done: int, shards: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=8, on_shard=stop)
    _, report = ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=12)
    assert report.resumed_shards == 0
    assert report.shard_items == [12, 12]


def test_the_cluster_path_is_a_ray_data_pipeline(
    local_ray: Any, folder: Path, encoder: Any, heads: Any, single: Catalog, tmp_path: Path, monkeypatch: Any
) -> None:
    """Decode tasks, then a pool of encode actors (CPU here: no GPU), as Ray Data operators;
    one bar over all images; the shards are the single catalog's."""
    from clipbranches.embed import ingest_ray

    made: list[Any] = []
    original = ingest_ray.pipeline

    def capture(*args: Any, **kwargs: Any) -> Any:
        made.append(original(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(ingest_ray, "pipeline", capture)
    bars: list[_Bar] = []
    monkeypatch.setattr(
        ingest_set_module, "_progress_bar", lambda total, initial: bars.append(_Bar(total, initial)) or bars[-1]
    )
    _, report = ingest_set(
        folder,
        tmp_path / "set",
        encoder=encoder,
        heads=heads,
        shard_size=8,
        chunk_size=4,
        cluster="auto",
        progress=True,
    )
    assert len(made) == 1  # one pipeline for all the shards
    encode = made[0]._logical_plan.dag  # the last operator, then the one feeding it
    decode = encode.input_dependencies[0]
    assert (type(encode).__name__, encode.name) == ("MapBatches", "MapBatches(EncodeBatch)")
    assert (type(decode).__name__, decode.name) == ("MapBatches", "MapBatches(decode_batch)")
    assert type(encode.compute).__name__ == "ActorPoolStrategy"  # the encoder lives in actors
    assert type(decode.compute).__name__ == "TaskPoolStrategy"  # decoding: tasks on CPU workers
    assert encode.ray_remote_args["num_gpus"] == 0  # no GPU in this cluster
    assert decode.ray_remote_args["num_cpus"] == 1
    assert [(bar.total, bar.n, bar.closed) for bar in bars] == [(24, 24, True)]
    assert report.resumed_chunks == 0
    _same(CatalogSet.open(tmp_path / "set"), single)


def test_the_pipeline_skips_files_it_cannot_decode_with_their_reason(
    local_ray: Any, folder: Path, encoder: Any, heads: Any, tmp_path: Path
) -> None:
    import shutil

    from clipbranches.embed.ingest import ingest

    mixed = tmp_path / "mixed"
    shutil.copytree(folder, mixed)
    (mixed / "broken.png").write_bytes(b"not an image at all")
    (mixed / "empty.jpg").write_bytes(b"")
    one, expected = ingest(mixed, tmp_path / "one", encoder=encoder, heads=heads)
    assert len(expected.skipped) == 2
    _, report = ingest_set(mixed, tmp_path / "set", encoder=encoder, heads=heads, shard_size=9, cluster="auto")
    assert [uri for uri, _ in report.skipped] == [uri for uri, _ in expected.skipped]
    # The single ingest's reason (it names the file descriptor PIL read, so compare up to it).
    assert all(reason.startswith("cannot decode: cannot identify image file") for _, reason in report.skipped)
    assert len(report.shard_items) == 3  # 26 files, 9 per shard
    assert sum(report.shard_items) == len(one) == 24
    catalog_set = CatalogSet.open(tmp_path / "set")
    np.testing.assert_array_equal(catalog_set.codes[:], one.codes)
    assert catalog_set.items["uri"].to_list() == one.items["uri"].to_list()
    # Ids count from each shard's first row (a skipped file leaves a gap): the local set's.
    ingest_set(mixed, tmp_path / "local", encoder=encoder, heads=heads, shard_size=9)
    local = CatalogSet.open(tmp_path / "local")
    assert catalog_set.item_ids.tolist() == local.item_ids.tolist()
    assert catalog_set.items.equals(local.items)


def test_the_pipeline_interrupted_resumes_from_its_shards_and_chunks(
    local_ray: Any, folder: Path, encoder: Any, heads: Any, single: Catalog, tmp_path: Path, monkeypatch: Any
) -> None:
    from clipbranches.embed import ingest_ray

    run = {"encoder": encoder, "heads": heads, "shard_size": 8, "chunk_size": 4, "cluster": "auto"}

    def stop(done: int, shards: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # after the first finished shard
        ingest_set(folder, tmp_path / "set", on_shard=stop, **run)
    assert not (tmp_path / "set").exists()
    written: list[int] = []
    original = ingest_ray._write

    def stop_after_one_chunk(*args: Any, **kwargs: Any) -> None:
        if written:
            raise KeyboardInterrupt
        original(*args, **kwargs)
        written.append(1)

    monkeypatch.setattr(ingest_ray, "_write", stop_after_one_chunk)
    with pytest.raises(KeyboardInterrupt):  # inside the next shard
        ingest_set(folder, tmp_path / "set", **run)
    monkeypatch.setattr(ingest_ray, "_write", original)
    fed: list[int] = []
    pipeline = ingest_ray.pipeline

    def counting(ray: Any, rows: Any, *rest: Any) -> Any:
        fed.append(len(rows))
        return pipeline(ray, rows, *rest)

    monkeypatch.setattr(ingest_ray, "pipeline", counting)
    _, report = ingest_set(folder, tmp_path / "set", **run)
    assert report.resumed_shards == 1
    assert report.resumed_chunks >= 1  # the chunk of the second run (and any the first wrote)
    assert fed == [24 - 8 - 4 * report.resumed_chunks]  # only the missing chunks' rows
    _same(CatalogSet.open(tmp_path / "set"), single)


def test_default_heads_on_ray_come_from_the_first_shard(
    local_ray: Any, folder: Path, encoder: Any, tmp_path: Path
) -> None:
    catalog_set, report = ingest_set(folder, tmp_path / "set", encoder=encoder, shard_size=10, cluster="auto")
    assert report.shard_items == [10, 10, 4]
    assert report.default_heads.startswith("default")
    from clipbranches.embed.head import load_heads
    from clipbranches.embed.ingest import _weights_digest

    weights = {_weights_digest(load_heads(s.path / "head.safetensors")) for s in catalog_set.shards}
    assert len(weights) == 1  # the first shard's heads (fitted here), in the shards the pipeline made
    local, _ = ingest_set(folder, tmp_path / "local", encoder=encoder, shard_size=10)
    np.testing.assert_array_equal(catalog_set.codes[:], local.codes[:])


def test_without_ray_data_the_cluster_path_says_what_to_install(
    folder: Path, encoder: Any, heads: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from clipbranches.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # not installed, as far as imports go
    with pytest.raises(MissingDependencyError, match="pyarrow"):
        ingest_set(folder, tmp_path / "set", encoder=encoder, heads=heads, shard_size=8, cluster="auto")
    assert not (tmp_path / "set").exists()
