"""`webdet kaggle OWNER/DATASET`: download and unpack a dataset with the official `kaggle` package."""
import os
from pathlib import Path

from webdet.errors import WebdetError

HOW_TO_AUTH = ("put your API token in ~/.kaggle/kaggle.json (kaggle.com → Settings → Create New Token) "
               "or set KAGGLE_USERNAME and KAGGLE_KEY")


def _has_credentials() -> bool:
    config_dir = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle"))
    return bool(os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")) or \
        (config_dir / "kaggle.json").is_file()


def _api():
    if not _has_credentials():
        raise WebdetError(f"no Kaggle credentials: {HOW_TO_AUTH}")
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ImportError:
        raise WebdetError("the kaggle package is not installed: pip install kaggle") from None
    api = KaggleApi()
    try:
        api.authenticate()
    except (OSError, ValueError, KeyError) as exc:
        raise WebdetError(f"Kaggle credentials rejected ({exc}): {HOW_TO_AUTH}") from None
    return api


def download(dataset: str, out_dir) -> Path:
    """Download OWNER/DATASET into `out_dir` and unzip it."""
    if dataset.count("/") != 1 or not all(dataset.split("/")):
        raise WebdetError(f"{dataset}: expected OWNER/DATASET, e.g. hugozanini1/kangaroodataset")
    api = _api()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        api.dataset_download_files(dataset, path=str(out), unzip=True, quiet=False)
    except Exception as exc:  # the client raises requests/urllib3/HTTP errors of many types
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if any(word in text for word in ("403", "401", "Forbidden", "Unauthorized")):
            raise WebdetError(f"Kaggle refused {dataset} ({text}): check the name and accept its rules on kaggle.com") from None
        if "404" in text or "Not Found" in text:
            raise WebdetError(f"{dataset}: no such Kaggle dataset ({text})") from None
        raise WebdetError(f"cannot reach Kaggle to download {dataset} (no network? {text})") from None
    return out
