"""Where the files that ship with webdet are, in a checkout and in an installed wheel alike."""
from importlib.resources import files
from pathlib import Path


def config_dir() -> Path:
    """The built-in YAML configs (configs/ in the repository)."""
    return Path(str(files("webdet.configs")))


def webapp_dir() -> Path:
    """The web app's folder: dist/ (the bundle) and, in a checkout, its sources and node_modules/."""
    return Path(str(files("webdet.webapp")))


def app_dist() -> Path:
    return webapp_dir() / "dist"
