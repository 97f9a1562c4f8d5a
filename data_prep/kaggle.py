"""`webdet kaggle OWNER/DATASET`: download and unpack a dataset with the official `kaggle` package.

The package authenticates as soon as it is imported and, without credentials, prints a page of help
and exits (older releases raise instead). Both are caught here and turned into one line that says
what is missing and how to fix it; a network failure is told apart from a credentials problem.
"""
import contextlib
import io
from pathlib import Path

from webdet.errors import WebdetError

HOW_TO_AUTH = ("put your API token in ~/.kaggle/kaggle.json (kaggle.com → Settings → API → Create New Token) "
               "or set KAGGLE_USERNAME and KAGGLE_KEY")
NETWORK_WORDS = ("connection", "resolve", "timed out", "timeout", "unreachable", "proxy", "max retries",
                 "temporary failure", "name or service not known")


def _is_network_error(exc: BaseException) -> bool:
    """True when the error, or one it was raised from, is a failure to reach the server."""
    import requests

    while exc is not None:
        if isinstance(exc, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
            return True
        if any(word in str(exc).lower() for word in NETWORK_WORDS):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def authenticated_api():
    """A `KaggleApi` that has accepted the user's credentials, or a one-line WebdetError saying why not."""
    quiet = io.StringIO()
    try:
        with contextlib.redirect_stdout(quiet), contextlib.redirect_stderr(quiet):
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            api.authenticate()
    except ImportError:
        raise WebdetError("the kaggle package is not installed: pip install kaggle") from None
    except SystemExit:
        raise WebdetError(f"no Kaggle credentials found: {HOW_TO_AUTH}") from None
    except Exception as exc:  # the client raises OSError, ValueError, HTTP errors… depending on the release
        if _is_network_error(exc):
            raise WebdetError(f"cannot reach kaggle.com to check the credentials (no network?): "
                              f"{_first_line(exc)}") from None
        raise WebdetError(f"Kaggle credentials not usable ({_first_line(exc)}): {HOW_TO_AUTH}") from None
    return api


def _download_error(dataset: str, exc: Exception) -> WebdetError:
    text = _first_line(exc)
    if _is_network_error(exc):
        return WebdetError(f"cannot reach kaggle.com to download {dataset} (no network?): {text}")
    if any(word in text for word in ("401", "Unauthorized")):
        return WebdetError(f"Kaggle rejected the credentials ({text}): {HOW_TO_AUTH}")
    if any(word in text for word in ("403", "Forbidden")):
        return WebdetError(f"{dataset}: Kaggle refused the download ({text}); accept the dataset's rules on kaggle.com")
    if any(word in text for word in ("404", "Not Found")):
        return WebdetError(f"{dataset}: no such Kaggle dataset ({text})")
    return WebdetError(f"{dataset}: download failed ({text})")


def download(dataset: str, out_dir) -> Path:
    """Download OWNER/DATASET into `out_dir` and unzip it; returns `out_dir`."""
    if dataset.count("/") != 1 or not all(part.strip() for part in dataset.split("/")):
        raise WebdetError(f"{dataset}: expected OWNER/DATASET, e.g. hugozanini1/kangaroodataset")
    api = authenticated_api()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    try:
        api.dataset_download_files(dataset, path=str(out), unzip=True, quiet=False)
    except Exception as exc:  # requests/urllib3/HTTP/zip errors of many types
        raise _download_error(dataset, exc) from None
    return out
