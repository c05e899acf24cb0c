"""The triples reader: split by image, bad images skipped and counted, paths confined, URLs refused."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from semclip_train.errors import SemClipError
from semclip_train.training.data import GlobalBatchSampler, check_images, split_by_image
from semclip_train.triples import read_triples


def test_split_is_by_image_and_reproducible(triples_file):
    triples = read_triples(triples_file)
    train, val = split_by_image(triples, 0.25, seed=3)
    train_keys = {triples.images[i].key for i in train.image_index}
    val_keys = {triples.images[i].key for i in val.image_index}
    assert train_keys and val_keys and not train_keys & val_keys
    assert len(val_keys) == 3 and len(train) + len(val) == len(triples) == 24
    again = split_by_image(triples, 0.25, seed=3)[1]
    assert again.ids == val.ids
    assert split_by_image(triples, 0.25, seed=4)[1].ids != val.ids


def test_missing_and_corrupt_images_are_skipped_and_counted(triples_file):
    folder = triples_file.parent / "img"
    (folder / "red_circle.png").unlink()
    (folder / "blue_square.png").write_bytes(b"not a png at all")
    triples = check_images(read_triples(triples_file), strict=False)
    assert triples.skipped_images == {"img/red_circle.png": "missing",
                                      "img/blue_square.png": "unreadable (UnidentifiedImageError)"}
    assert triples.skipped_rows == 4 and len(triples) == 20
    assert all(ref.open().size == (40, 48) for ref in triples.images)
    assert not {"img/red_circle.png", "img/blue_square.png"} & {ref.key for ref in triples.images}


def test_strict_images_fails_on_the_first_bad_image(triples_file):
    (triples_file.parent / "img" / "green_triangle.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(SemClipError, match="green_triangle.png is unreadable .*--strict-images"):
        check_images(read_triples(triples_file), strict=True)


def _rewrite_image(path, index, value):
    table = pq.read_table(path).to_pylist()
    table[index]["image"] = value
    pq.write_table(pa.Table.from_pylist(table), path)


@pytest.mark.parametrize("escape", ["../outside.png", "img/../../outside.png", "/etc/passwd"])
def test_path_escaping_the_image_root_is_refused(triples_file, escape):
    _rewrite_image(triples_file, 5, escape)
    with pytest.raises(SemClipError, match="row id 2-1: image path .* escapes --image-root"):
        read_triples(triples_file, image_root=triples_file.parent)


def test_url_is_refused_with_a_clear_message(triples_file):
    _rewrite_image(triples_file, 0, "https://example.com/cat.jpg")
    with pytest.raises(SemClipError, match="is a URL; only local files are read"):
        read_triples(triples_file)


def test_embedded_image_bytes(embedded_triples_file):
    triples = check_images(read_triples(embedded_triples_file), strict=True)
    assert len(triples.images) == 12 and len(triples) == 24
    assert all(ref.data and ref.key.startswith("sha1:") for ref in triples.images)
    assert triples.images[0].open().getpixel((20, 24)) == (220, 30, 30)  # the red circle's centre


def test_image_root_other_than_the_file_folder(triples_file, tmp_path):
    triples = read_triples(triples_file, image_root=tmp_path / "img" / "..")
    assert triples.images[0].path == (tmp_path / "img" / "red_circle.png").resolve()


def test_global_batches_do_not_depend_on_the_number_of_ranks():
    single = GlobalBatchSampler(21, 6, rank=0, world_size=1, seed=1)
    ranks = [GlobalBatchSampler(21, 3, rank=r, world_size=2, seed=1) for r in range(2)]
    for sampler in (single, *ranks):
        sampler.set_epoch(2)
    split = [a + b for a, b in zip(*ranks)]
    assert list(single) == split and len(split) == 3  # 21 // 6: the short batch is dropped
    single.set_epoch(2, start=1)
    assert list(single) == split[1:]
