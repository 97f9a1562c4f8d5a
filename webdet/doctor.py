"""`webdet doctor`: the versions that matter, and what is missing or mismatched."""
import importlib.metadata
import shutil
import subprocess
import sys
from pathlib import Path

WEBAPP = Path(__file__).resolve().parents[1] / "webapp"
# (distribution, version prefix the pinned set expects, essential)
PYTHON_PACKAGES = (("tensorflow", "2.19.", True), ("tf-keras", "2.19.", True), ("tf-models-official", "2.19.", True),
                   ("tensorflowjs", "4.22.", True), ("pycocotools", "", True), ("pandas", "", True),
                   ("lxml", "", True), ("matplotlib", "", True), ("Pillow", "", True), ("kaggle", "", False))


def register(subparsers):
    """Add `doctor` to the `webdet` parser."""
    p = subparsers.add_parser("doctor", help="print the versions that matter and name anything missing")
    p.set_defaults(func=run, needs_tensorflow=False)


def _command_version(command: list[str]) -> str | None:
    if not shutil.which(command[0]):
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[0] if out.returncode == 0 else None


def checks() -> list[tuple[str, str | None, str, bool]]:
    """(name, version or None, what is wrong or '', essential) for everything webdet relies on."""
    rows = [("Python", sys.version.split()[0], "" if sys.version_info[:2] in ((3, 10), (3, 11)) else
             "webdet's pinned set is for Python 3.11", True)]
    for name, prefix, essential in PYTHON_PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            rows.append((name, None, "not installed: run `make test` or `make demo` to set up .venv", essential))
            continue
        problem = f"expected {prefix}*" if prefix and not version.startswith(prefix) else ""
        rows.append((name, version, problem, essential))
    node = _command_version(["node", "--version"])
    rows.append(("Node.js", node, "" if node and int(node.lstrip("v").split(".")[0]) >= 18 else
                 "Node 18+ is needed for the web app and the export's parity check", True))
    rows.append(("npm", _command_version(["npm", "--version"]), "", False))
    tfjs = WEBAPP / "node_modules" / "@tensorflow" / "tfjs" / "package.json"
    rows.append(("web app packages", "installed" if tfjs.is_file() else None,
                 "" if tfjs.is_file() else "run `make webapp` (npm ci in webapp/)", True))
    built = (WEBAPP / "dist" / "index.html").is_file()
    rows.append(("web app bundle", "built" if built else None, "" if built else "run `make webapp`", False))
    chromium = _command_version(["chromium", "--version"])
    rows.append(("Chromium", chromium, "" if chromium else "apt-get install chromium (browser tests only)", False))
    return rows


def run(args) -> int:
    failed = False
    for name, version, problem, essential in checks():
        status = "ok" if version and not problem else ("MISSING" if not version else "MISMATCH")
        if status != "ok" and essential:
            failed = True
        note = f"  ← {problem}" if problem else ""
        print(f"{name:18s} {version or '-':40s} {status}{note}")
    print("Everything webdet needs is here." if not failed else "Fix the lines marked above.")
    return 1 if failed else 0
