"""Model versions travel between installs: the downloaded file carries its provenance and imports
as a new version elsewhere with the same weights; ONNX comes out with the same metadata."""
from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client

from annotations.models import Role
from emportal.tokens.services import token_create
from segmentation.core.classes import ClassSpec
from segmentation.core.modelfile import Normalization, TrainedModel, load_model, save_model
from segmentation.core.resunet import ResUNet, ResUNetConfig
from segmentation.models import ModelVersion
from tests.factories import MembershipFactory, ProjectFactory, UserFactory

pytestmark = pytest.mark.django_db


def _client(user: Any) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def version(cast: Any) -> ModelVersion:
    """A version of the cast's project whose file holds the project's own classes."""
    torch.manual_seed(0)
    values = dict(cast.project.label_classes.filter(kind="semantic").values_list("name", "value"))
    classes = ClassSpec.build(values)
    config = ResUNetConfig(in_slices=1, out_channels=len(classes.heads), base_width=4, depth=2)
    trained = TrainedModel(net=ResUNet(config).eval(), config=config, classes=classes,
                           normalization=Normalization(lo=10.0, hi=240.0), meta={"thresholds": {"nucleus": 0.45}})
    path = Path(settings.MEDIA_ROOT) / "models" / "v.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_model(path, trained)
    return ModelVersion.objects.create(project=cast.project, weights="models/v.pt", classes=classes.values,
                                       hierarchy=classes.parents, labels_hash="c0ffee" * 10 + "abcd",
                                       labeled_voxels=1234, val_dice={"nucleus": 0.8}, created_by=cast.annotator)


def test_a_downloaded_version_imports_into_another_project_with_its_weights_and_provenance(
        cast: Any, version: ModelVersion) -> None:
    response = _client(cast.viewer).get(f"/api/models/{version.pk}/model.pt")
    assert response.status_code == 200 and "attachment" in response["Content-Disposition"]
    payload = torch.load(io.BytesIO(response.content), weights_only=True)
    provenance = payload["meta"]["provenance"]
    assert provenance["labels_sha256"] == version.labels_hash and provenance["project"] == cast.project.name
    assert provenance["labeled_voxels"] == 1234 and provenance["trained_by"] == cast.annotator.username

    elsewhere: Any = ProjectFactory(name="Other lab")
    manager = MembershipFactory(project=elsewhere, role=Role.MANAGER, user=UserFactory(username="lab2")).user
    (Path(settings.MEDIA_ROOT) / version.weights).unlink()  # the file alone must be enough
    upload = SimpleUploadedFile("bx1.pt", response.content)
    created = _client(manager).post(f"/api/projects/{elsewhere.pk}/models/import/", {"file": upload})
    assert created.status_code == 201, created.content
    row = ModelVersion.objects.get(pk=created.json()["id"])
    assert row.project == elsewhere and not row.active and row.created_by == manager
    assert row.classes == version.classes and row.hierarchy == version.hierarchy
    assert row.labels_hash == version.labels_hash and row.val_dice == {"nucleus": 0.8}
    assert row.config["imported_from"]["project"] == cast.project.name and row.config["thresholds"] == {"nucleus": 0.45}
    original = torch.load(io.BytesIO(response.content), weights_only=True)["state_dict"]
    imported = load_model(Path(settings.MEDIA_ROOT) / row.weights).net.state_dict()
    assert all(torch.equal(original[k], imported[k]) for k in original)


def test_the_onnx_download_carries_the_provenance(cast: Any, version: ModelVersion) -> None:
    _, key = token_create(cast.viewer, "script")
    response = Client(HTTP_AUTHORIZATION=f"Token {key}").get(f"/api/models/{version.pk}/model.onnx")
    assert response.status_code == 200
    graph = onnx.load_from_string(response.content)
    meta = {p.key: json.loads(p.value) for p in graph.metadata_props}
    assert meta["provenance"]["labels_sha256"] == version.labels_hash
    assert meta["classes"]["values"] == version.classes and meta["thresholds"] == {"nucleus": 0.45}
    assert [i.name for i in graph.graph.input] == ["image"]


def test_an_import_of_something_else_or_of_other_classes_is_refused_and_leaves_nothing(
        cast: Any, version: ModelVersion) -> None:
    client = _client(cast.annotator)
    url = f"/api/projects/{cast.project.pk}/models/import/"
    before = ModelVersion.objects.count()
    bad = client.post(url, {"file": SimpleUploadedFile("x.pt", b"not a model")})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "not_a_model"
    values = {"background": 1, "nucleus": 9}
    config = ResUNetConfig(in_slices=1, out_channels=1, base_width=4, depth=2)
    other = TrainedModel(net=ResUNet(config), config=config, classes=ClassSpec.build(values),
                         normalization=Normalization(lo=0.0, hi=1.0))
    buffer = Path(settings.MEDIA_ROOT) / "other.pt"
    save_model(buffer, other)
    mismatch = client.post(url, {"file": SimpleUploadedFile("o.pt", buffer.read_bytes())})
    assert mismatch.status_code == 400 and mismatch.json()["error"]["code"] == "model_classes_mismatch"
    assert "nucleus=9" in mismatch.json()["error"]["message"]
    assert client.post(url, {}).json()["error"]["code"] == "invalid"
    assert ModelVersion.objects.count() == before
    assert sorted(p.name for p in (Path(settings.MEDIA_ROOT) / "models").iterdir()) == ["v.pt"]


def test_roles_download_and_import_as_they_read_and_write_models(cast: Any, version: ModelVersion) -> None:
    content = _client(cast.viewer).get(f"/api/models/{version.pk}/model.pt").content
    url = f"/api/projects/{cast.project.pk}/models/import/"
    assert _client(cast.viewer).post(url, {"file": SimpleUploadedFile("m.pt", content)}).status_code == 403
    assert _client(cast.outsider).get(f"/api/models/{version.pk}/model.pt").status_code == 404
    assert Client().get(f"/api/models/{version.pk}/model.pt").status_code == 401
    assert _client(cast.annotator).post(url, {"file": SimpleUploadedFile("m.pt", content)}).status_code == 201
    assert ModelVersion.objects.filter(project=cast.project).count() == 2
