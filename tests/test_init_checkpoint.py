"""The COCO warm start's download, served by a real local HTTP server: checked length, a whole tar.gz
before it enters the cache, a recorded SHA-256 checked on every use, and the known ckpt-277200 prefix."""
import io
import tarfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

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
