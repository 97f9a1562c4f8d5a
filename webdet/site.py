"""`webdet build-webapp`: the bundled app and an exported web model as one static folder for any host.

The app's service worker (sw.js) makes the folder cross-origin isolated on a host that sends no special
headers and caches it for offline use, the model keyed by metadata.json's `version`; an export written before
that field existed gets it in the copied metadata.json, computed as the exporter does."""
import json
import shutil
from pathlib import Path

from webdet.errors import WebdetError
from webdet.export.metadata import web_model_version
from webdet.service.settings import APP_DIST, web_model_dir


def _add_version(model_dir: Path) -> None:
    """metadata.json with a `version` (the copy only; the export is left as it is)."""
    path = model_dir / "metadata.json"
    if not path.is_file():
        return  # a TF2 OD API export comes without one; the service worker then leaves the model uncached
    try:
        metadata = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise WebdetError(f"{path}: not valid JSON ({exc})") from exc
    if isinstance(metadata, dict) and not metadata.get("version"):
        metadata["version"] = web_model_version(model_dir)
        path.write_text(json.dumps(metadata, indent=2), encoding="utf-8")


def build_site(export_dir, out_dir, app_root: Path = APP_DIST) -> Path:
    """The app at the root of `out_dir`, the model in model/ (where the app looks by default)."""
    export_dir, out_dir = Path(export_dir), Path(out_dir)
    model_root = web_model_dir(export_dir)
    if not (Path(app_root) / "index.html").is_file():
        raise WebdetError(f"{app_root}: the web app is not built; run `make webapp` first")
    if not (model_root / "model.json").is_file():
        raise WebdetError(f"{export_dir}: no web_model/model.json; run `webdet export` first")
    shutil.rmtree(out_dir, ignore_errors=True)
    shutil.copytree(app_root, out_dir, ignore=shutil.ignore_patterns("*.map"))
    shutil.copytree(model_root, out_dir / "model")
    _add_version(out_dir / "model")
    return out_dir
