"""annotations.layers owns a layer's storage: create is idempotent, every bump is counted, and
writing a whole layer changes its version once."""
from __future__ import annotations

import threading
from typing import Any

import numpy as np
import pytest
from django.db import connection

from annotations.imaging import omezarr
from annotations.layer_names import LayerName
from annotations.layers import class_colors, layer_bump, layer_create, layer_get, layer_write_whole
from annotations.models import LabelLayer
from annotations.storage import volume_zarr_path
from tests.factories import make_volume

SHAPE = (6, 32, 40)


@pytest.fixture
def volume(cast: Any, tmp_path: Any) -> Any:
    return make_volume(cast.project, tmp_path, data=np.zeros(SHAPE, np.uint8))


@pytest.mark.django_db
def test_creating_a_layer_twice_returns_the_first_and_keeps_its_contents(volume: Any) -> None:
    first = layer_create(volume, LayerName.CELLS_AUTO, kind=LabelLayer.Kind.INSTANCES, editable=False)
    level0 = omezarr.open_label_level(volume_zarr_path(volume), LayerName.CELLS_AUTO, 0, mode="r+")
    level0[1, :4, :4] = 9
    again = layer_create(volume, LayerName.CELLS_AUTO)  # other arguments do not remake it
    assert again.pk == first.pk and again.kind == LabelLayer.Kind.INSTANCES and not again.editable
    assert LabelLayer.objects.filter(volume=volume, name="cells_auto").count() == 1
    assert int(omezarr.open_label_level(volume_zarr_path(volume), "cells_auto", 0)[1, 0, 0]) == 9
    assert layer_get(volume, LayerName.CELLS_AUTO) == first and layer_get(volume, "no such layer") is None


@pytest.mark.django_db
def test_the_layers_code_names_have_their_kind_and_editability_decided_once(volume: Any) -> None:
    made = {name: layer_create(volume, name) for name in LayerName}
    assert {n for n, layer in made.items() if layer.kind == LabelLayer.Kind.INSTANCES} == {
        LayerName.CELLS, LayerName.CELLS_AUTO, LayerName.CELLS_TRUTH}
    assert {n for n, layer in made.items() if layer.editable} == {LayerName.MANUAL, LayerName.CELLS}
    assert omezarr.open_label_level(volume_zarr_path(volume), LayerName.CELLS_TRUTH, 0).dtype == np.uint32
    with pytest.raises(ValueError, match="instances"):
        layer_create(volume, LayerName.CELLS_AUTO, kind=LabelLayer.Kind.LABELS)
    other = layer_create(volume, "imported")
    assert other.kind == LabelLayer.Kind.LABELS and other.editable


@pytest.mark.django_db
def test_a_bump_adds_its_count_from_the_database_not_from_a_stale_copy(volume: Any) -> None:
    layer = layer_create(volume, LayerName.PREDICTION, editable=False)
    stale = LabelLayer.objects.get(pk=layer.pk)  # read before the other copy bumps
    assert layer_bump(layer, max_value=5) == 1
    assert layer_bump(stale, count=3) == 4 and stale.max_value == 5  # max_value never goes down
    assert layer_bump(layer, max_value=2) == 5 and layer.max_value == 5
    assert LabelLayer.objects.values_list("version", "max_value").get(pk=layer.pk) == (5, 5)


@pytest.mark.django_db(transaction=True)
def test_bumps_from_several_threads_at_once_are_all_counted(volume: Any) -> None:
    layer = layer_create(volume, LayerName.PREDICTION, editable=False)
    threads, per_thread, start = 4, 25, threading.Barrier(4)
    errors: list[BaseException] = []

    def bump_many(top: int) -> None:
        try:
            start.wait()
            mine = LabelLayer.objects.get(pk=layer.pk)
            for _ in range(per_thread):
                layer_bump(mine, max_value=top)
        except BaseException as exc:  # reported below: a thread's failure must fail the test
            errors.append(exc)
        finally:
            connection.close()

    workers = [threading.Thread(target=bump_many, args=(10 * (i + 1),)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(timeout=60)
    assert not errors
    layer.refresh_from_db()
    assert (layer.version, layer.max_value) == (threads * per_thread, 10 * threads)


@pytest.mark.django_db
def test_writing_a_whole_layer_writes_every_level_and_bumps_the_version_once(cast: Any, tmp_path: Any) -> None:
    wide = make_volume(cast.project, tmp_path, data=np.zeros((4, 16, 600), np.uint8), name="wide")  # two levels
    layer = layer_create(wide, LayerName.CELLS_TRUTH, kind=LabelLayer.Kind.INSTANCES, editable=False)
    data = np.zeros((4, 16, 600), np.uint32)
    data[:, 4:12, 100:300] = 3
    data[2:4, :4, :4] = 7
    assert layer_write_whole(wide, layer, data) == 1
    dest = volume_zarr_path(wide)
    assert np.array_equal(np.asarray(omezarr.open_label_level(dest, "cells_truth", 0)[:]), data)
    coarse = np.asarray(omezarr.open_label_level(dest, "cells_truth", 1)[:])
    assert coarse.shape == (4, 8, 300) and (coarse[:, 2:6, 50:150] == 3).all()  # the coarser level follows
    assert LabelLayer.objects.values_list("version", "max_value").get(pk=layer.pk) == (1, 7)


@pytest.mark.django_db
def test_writing_a_whole_layer_refuses_data_of_another_shape(volume: Any) -> None:
    layer = layer_create(volume, LayerName.TRUTH, editable=False)
    with pytest.raises(ValueError, match="shape"):
        layer_write_whole(volume, layer, np.zeros((2, 2, 2), np.uint16))
    assert LabelLayer.objects.get(pk=layer.pk).version == 0


@pytest.mark.django_db
def test_class_colours_are_the_project_classes_rgba(cast: Any) -> None:
    colors = class_colors(cast.project.pk)
    nucleus = cast.project.label_classes.get(name="nucleus")
    assert colors[nucleus.value] == (0xFF, 0xD4, 0x00, 255) == nucleus.rgba
    assert len(colors) == cast.project.label_classes.count()


def test_layer_names_are_the_strings_stored_and_sent() -> None:
    assert LayerName.CELLS_TRUTH == "cells_truth" and f"{LayerName.TRUTH}" == "truth"
    assert len({n.value for n in LayerName}) == len(LayerName)
