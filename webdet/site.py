"""`webdet build-webapp`: the bundled app and an exported web model as one static folder for any host."""
import shutil
from pathlib import Path

from webdet.errors import WebdetError
from webdet.service.settings import APP_DIST, web_model_dir


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
    return out_dir
