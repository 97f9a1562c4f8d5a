"""The COCO warm start's download, served by a real local HTTP server: checked length, a whole tar.gz
before it enters the cache, a recorded SHA-256 checked on every use, and the known ckpt-277200 prefix."""
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
import tensorflow as tf

from webdet.errors import WebdetError
from webdet.training import init_checkpoint


def checkpoint_archive(tmp_path, name="ckpt-277200") -> bytes:
    """A tar.gz holding a checkpoint written under `name`, as Model Garden's archive holds its own."""
    folder = tmp_path / "src"
    tf.train.Checkpoint(v=tf.Variable([1.0, 2.0])).write(str(folder / name))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in folder.iterdir():
            tar.add(path, arcname=f"mobilenetv2_ssd_i320_ckpt/{path.name}")
    return buffer.getvalue()


class ArchiveServer:
    """Serves `body` at any path; `announce` overrides the Content-Length it claims."""

    def __init__(self, body: bytes, announce: int | None = None):
        self.body, self.announce, self.requests = body, announce, 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                outer.requests += 1
                self.send_response(200)
                self.send_header("Content-Length", str(outer.announce or len(outer.body)))
                self.end_headers()
                self.wfile.write(outer.body)
                self.close_connection = True

            def log_message(self, *_):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/mobilenetv2_ssd_i320_ckpt.tar.gz"

    def __enter__(self):
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBDET_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_coco_archive_is_downloaded_once_checked_and_its_known_prefix_used(cache, tmp_path, monkeypatch):
    with ArchiveServer(checkpoint_archive(tmp_path)) as server:
        monkeypatch.setattr(init_checkpoint, "COCO_URL", server.url)
        prefix = init_checkpoint.resolve("coco")
        again = init_checkpoint.resolve("coco")
    assert prefix == again and prefix.endswith("ckpt-277200") and server.requests == 1
    archive = cache / "mobilenetv2_ssd_i320_ckpt.tar.gz"
    assert (cache / "mobilenetv2_ssd_i320_ckpt.tar.gz.sha256").read_text().split()[0] == init_checkpoint._sha256(archive)
    assert tf.train.load_checkpoint(prefix).get_tensor("v/.ATTRIBUTES/VARIABLE_VALUE").tolist() == [1.0, 2.0]


def test_a_download_cut_short_leaves_nothing_in_the_cache(cache, tmp_path):
    body = checkpoint_archive(tmp_path)
    with ArchiveServer(body[: len(body) // 2], announce=len(body)) as server:
        with pytest.raises(WebdetError) as err:
            init_checkpoint.download(server.url, cache / "a.tar.gz")
    message = str(err.value)
    assert "\n" not in message and ("cut short" in message or "IncompleteRead" in message)
    assert not list(cache.glob("*"))


def test_a_download_that_is_not_a_tar_gz_is_deleted_with_one_line(cache):
    with ArchiveServer(b"<html>quota exceeded</html>" * 40) as server:
        with pytest.raises(WebdetError, match=r"is not a readable tar.gz .*deleted it, run again") as err:
            init_checkpoint.download(server.url, cache / "a.tar.gz")
    assert "\n" not in str(err.value) and not list(cache.glob("*"))


def test_a_cached_archive_that_changed_is_refused_and_deleted(cache, tmp_path):
    with ArchiveServer(checkpoint_archive(tmp_path)) as server:
        archive = init_checkpoint.download(server.url, cache / "a.tar.gz")
    archive.write_bytes(archive.read_bytes()[:-10] + b"0123456789")
    with pytest.raises(WebdetError, match="changed since it was downloaded"):
        init_checkpoint.download(server.url, archive)
    assert not archive.exists() and not (cache / "a.tar.gz.sha256").exists()


def test_an_archive_without_the_known_prefix_is_named(cache, tmp_path):
    path = tmp_path / "other.tar.gz"
    path.write_bytes(checkpoint_archive(tmp_path, name="ckpt-5"))
    with pytest.raises(WebdetError, match="no ckpt-277200 checkpoint in the archive"):
        init_checkpoint.find_prefix(path, init_checkpoint.COCO_PREFIX)


@pytest.mark.parametrize("has_data_filter", [True, False])
def test_an_archive_reaching_outside_its_folder_is_refused(cache, tmp_path, monkeypatch, has_data_filter):
    """With tarfile's `data` filter (Python 3.10.12+, 3.11.4+) or without it, `..` never escapes."""
    if not has_data_filter:
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    path = tmp_path / "evil.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(WebdetError, match="not a readable checkpoint archive"):
        init_checkpoint.extract(path)
    assert not (cache / "checkpoints" / "escaped.txt").exists() and not (cache / "escaped.txt").exists()


def model_garden_coco_model(max_level: int = 6):
    """Model Garden's `retinanet_mobile_coco` experiment set to the architecture of its published COCO
    MobileNetV2-SSD 320 checkpoint (MobileNetV2, FPN 128 separable Keras layers, head 4×128 separable,
    levels 3–6, 91 classes), with random weights."""
    from official.core import exp_factory
    from official.vision.configs import backbones, decoders
    from official.vision.tasks.retinanet import RetinaNetTask

    experiment = exp_factory.get_exp_config("retinanet_mobile_coco")
    m = experiment.task.model
    m.input_size, m.min_level, m.max_level = [320, 320, 3], 3, max_level
    m.backbone = backbones.Backbone(type="mobilenet", mobilenet=backbones.MobileNet(model_id="MobileNetV2"))
    m.decoder = decoders.Decoder(type="fpn", fpn=decoders.FPN(num_filters=128, use_separable_conv=True,
                                                              use_keras_layer=True))
    m.head.num_convs, m.head.num_filters, m.head.use_separable_conv = 4, 128, True
    m.norm_activation.activation, m.norm_activation.use_sync_bn = "relu6", False
    model = RetinaNetTask(experiment.task).build_model()
    model(tf.zeros([1, 320, 320, 3]), training=False)
    return model


def archived(tmp_path, name: str, checkpoint: tf.train.Checkpoint) -> str:
    folder = tmp_path / name
    checkpoint.write(str(folder / "ckpt-277200"))
    path = tmp_path / f"{name}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.add(folder, arcname=name)
    return str(path)


@pytest.fixture(scope="module")
def coco_source(tmp_path_factory):
    """The Model Garden model and its checkpoint as the trainer writes it and as exported modules write it."""
    tmp = tmp_path_factory.mktemp("coco")
    source = model_garden_coco_model()
    return source, {"trainer": archived(tmp, "trainer", tf.train.Checkpoint(model=source)),
                    "root": archived(tmp, "root", tf.train.Checkpoint(backbone=source.backbone, decoder=source.decoder,
                                                                      head=source.head))}


@pytest.mark.parametrize("layout", ["trainer", "root"])
@pytest.mark.parametrize("classes", [1, 3])
def test_model_garden_coco_checkpoint_restores_into_webdet_but_the_class_layer(coco_source, cache, layout, classes):
    from webdet.training.config import load_config
    from webdet.training.model import build_model

    source, archives = coco_source
    model = build_model(load_config("ssd_mobilenet_v2_320"), classes)
    classifier = [v.numpy().copy() for v in model.head._classifier.variables]
    counts = init_checkpoint.restore_pretrained(model, init_checkpoint.resolve(archives[layout]))
    assert counts == {"restored": len(model.variables) - 3, "total": len(model.variables), "fresh": 3}
    pairs = [(source.backbone, model.backbone), (source.decoder, model.decoder)]
    pairs += [(getattr(source.head, n), getattr(model.head, n)) for n in init_checkpoint.HEAD_RESTORED]
    compared = 0
    for theirs, ours in pairs:
        mine = ours.variables if hasattr(ours, "variables") else [v for layer in ours for v in layer.variables]
        source_vars = theirs.variables if hasattr(theirs, "variables") else [v for layer in theirs for v in layer.variables]
        assert len(mine) == len(source_vars)
        for a, b in zip(source_vars, mine):
            np.testing.assert_array_equal(a.numpy(), b.numpy())
            compared += 1
    assert compared == counts["restored"]
    for before, variable in zip(classifier, model.head._classifier.variables):
        np.testing.assert_array_equal(before, variable.numpy())


def test_a_checkpoint_with_another_pyramid_is_refused(cache, tmp_path):
    from webdet.training.config import load_config
    from webdet.training.model import build_model

    source = model_garden_coco_model(max_level=7)
    archive = archived(tmp_path, "levels37", tf.train.Checkpoint(model=source))
    model = build_model(load_config("ssd_mobilenet_v2_320"), 1)
    with pytest.raises(WebdetError, match="checkpoint does not match this model") as err:
        init_checkpoint.restore_pretrained(model, init_checkpoint.resolve(archive))
    assert "\n" not in str(err.value)
