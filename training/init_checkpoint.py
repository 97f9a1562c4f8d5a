"""Starting weights: Model Garden's COCO-pretrained MobileNetV2-SSD 320, a local checkpoint, or none.

Everything but the class-prediction layer is restored: its size depends on the number of classes,
so it stays freshly initialised.
"""
import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import tensorflow as tf

from webdet.errors import WebdetError

COCO_URL = ("https://storage.googleapis.com/tf_model_garden/vision/qat/mobilenetv2_ssd_coco/"
            "mobilenetv2_ssd_i320_ckpt.tar.gz")
COCO_PREFIX = "ckpt-277200"  # the trainer's checkpoint inside that archive


def cache_dir() -> Path:
    return Path(os.environ.get("WEBDET_CACHE", Path.home() / ".cache" / "webdet"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _check_archive(path: Path) -> None:
    """Read the whole gzip/tar stream, so a truncated or corrupt archive fails here, not in training."""
    with tarfile.open(path) as tar:
        for member in tar:
            if member.isfile():
                tar.extractfile(member).read()


def _unusable(path: Path, why: str) -> WebdetError:
    path.unlink(missing_ok=True)
    Path(str(path) + ".sha256").unlink(missing_ok=True)
    return WebdetError(f"{path}: {why}; deleted it, run again to download it anew (or --init-checkpoint none)")


def cached(dest: Path) -> Path | None:
    """The cached archive if its SHA-256 is still the one recorded at download; a changed one is deleted."""
    if not dest.is_file():
        return None
    recorded = Path(str(dest) + ".sha256")
    if not recorded.is_file() or recorded.read_text().split()[0] != _sha256(dest):
        raise _unusable(dest, "the cached checkpoint archive changed since it was downloaded (SHA-256 differs)")
    return dest


def download(url: str, dest: Path) -> Path:
    """Download once into the cache. The body must have the announced Content-Length and be a whole
    tar.gz before it is moved into place; its SHA-256 is recorded and checked on every later use."""
    if cached(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    try:
        with urllib.request.urlopen(url, timeout=30) as response, open(part, "wb") as out:
            announced = response.headers.get("Content-Length")
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        part.unlink(missing_ok=True)
        reason = getattr(exc, "reason", None) or type(exc).__name__
        raise WebdetError(
            f"cannot download the COCO checkpoint from {url} ({reason}); train from scratch with "
            "--init-checkpoint none, or pass a local checkpoint directory, ckpt-N prefix or .tar.gz") from None
    got = part.stat().st_size
    if announced is not None and got != int(announced):
        raise _unusable(part, f"the download from {url} was cut short ({got} of {announced} bytes)")
    try:
        _check_archive(part)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise _unusable(part, f"the download from {url} is not a readable tar.gz ({type(exc).__name__})") from None
    Path(str(dest) + ".sha256").write_text(f"{_sha256(part)}  {dest.name}\n")
    part.rename(dest)
    return dest


def _extract_all(tar: tarfile.TarFile, target: Path) -> None:
    """Unpack with tarfile's `data` filter where this Python has it (3.10.12+, 3.11.4+); elsewhere
    refuse the members that filter would: absolute paths, `..`, links and devices."""
    if hasattr(tarfile, "data_filter"):
        tar.extractall(target, filter="data")
        return
    for member in tar.getmembers():
        name = Path(member.name)
        if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
            raise tarfile.TarError(f"unsafe member {member.name!r}")
    tar.extractall(target)


def extract(archive: Path) -> Path:
    """Unpack a checkpoint tar.gz into the cache (keyed by its content hash) and return the folder."""
    digest = _sha256(archive)[:16]
    target = cache_dir() / "checkpoints" / digest
    if not target.is_dir():
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            with tarfile.open(archive) as tar:
                _extract_all(tar, tmp)
        except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise WebdetError(f"{archive}: not a readable checkpoint archive ({exc})") from None
        tmp.rename(target)
    return target


def find_prefix(path: Path, expected: str | None = None) -> str:
    """A checkpoint prefix from a directory, a `ckpt-N` prefix or a tar.gz; with `expected` (a
    prefix name such as ckpt-277200) exactly that one, or an error."""
    if path.is_file() and path.name.endswith((".tar.gz", ".tgz", ".tar")):
        path = extract(path)
    if expected:
        found = sorted(path.rglob(f"{expected}.index"))
        if not found:
            raise WebdetError(f"{path}: no {expected} checkpoint in the archive")
        return str(found[0])[: -len(".index")]
    if Path(str(path) + ".index").is_file():
        return str(path)
    if path.is_dir():
        latest = tf.train.latest_checkpoint(str(path))
        if latest:
            return latest
        indexes = sorted(path.rglob("*.index"), key=lambda p: p.stat().st_mtime)
        if indexes:
            return str(indexes[-1])[: -len(".index")]
    raise WebdetError(f"{path}: no TensorFlow checkpoint found (expected a directory, a ckpt-N prefix or a .tar.gz)")


def resolve(spec: str) -> str | None:
    """`none` → None, `coco` → the downloaded COCO checkpoint, anything else → a local path."""
    if spec in (None, "", "none"):
        return None
    if spec == "coco":
        return find_prefix(download(COCO_URL, cache_dir() / Path(COCO_URL).name), COCO_PREFIX)
    path = Path(spec).expanduser()
    if not path.exists() and not Path(str(path) + ".index").exists():
        raise WebdetError(f"--init-checkpoint {spec}: no such file or directory")
    return find_prefix(path)


# Everything in RetinaNetHead but `_classifier`, whose size depends on the number of classes.
HEAD_RESTORED = ("_cls_convs", "_cls_norms", "_box_convs", "_box_norms", "_box_regressor")


def _restorable_parts(model) -> dict:
    children = model.head._trackable_children()
    missing = [name for name in HEAD_RESTORED if name not in children]
    if missing:
        raise WebdetError(f"the model's head has no {', '.join(missing)}: it is not the RetinaNet head a COCO "
                          "warm start restores into")
    head = {name: children[name] for name in HEAD_RESTORED}
    return {"backbone": model.backbone, "decoder": model.decoder, "head": tf.train.Checkpoint(**head)}


def _variable_count(parts: dict) -> int:
    """Variables under the restored parts (the head's as a checkpoint, the others as layers)."""
    head = parts["head"]._trackable_children().values()
    return len(parts["backbone"].variables) + len(parts["decoder"].variables) + sum(len(m.variables) for m in head)


def restore_pretrained(model, prefix: str) -> dict:
    """Restore backbone, decoder and head (but not the class layer) from a training checkpoint;
    returns what was restored: {"restored", "total", "fresh"} variable counts.

    Accepts the layout of Model Garden's trainer (`model/_backbone`, …) and that of its exported
    module checkpoints (`backbone`, `decoder`, `head` at the root). Every variable of those parts
    must come from the checkpoint, or it is an error naming the mismatch.
    """
    parts = _restorable_parts(model)
    restored, total = _variable_count(parts), len(model.variables)
    layouts = (
        tf.train.Checkpoint(model=tf.train.Checkpoint(**{f"_{k}": v for k, v in parts.items()})),
        tf.train.Checkpoint(**parts),
    )
    errors = []
    for layout in layouts:
        try:
            layout.read(prefix).expect_partial().assert_existing_objects_matched()
            return {"restored": restored, "total": total, "fresh": total - restored}
        except (AssertionError, ValueError, tf.errors.OpError) as exc:
            errors.append(str(exc).splitlines()[0][:200])
    raise WebdetError(f"{prefix}: checkpoint does not match this model ({errors[-1]})")
