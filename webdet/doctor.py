"""`webdet doctor`: the versions that matter, and what is missing or does not match the pinned set.

Python packages are compared with `constraints.txt` (the verified lock) when the project checkout has
it; Node, npm and Chromium are asked for their versions. The exit code is non-zero when something
essential is missing or mismatched; optional pieces (Chromium, kaggle…) are only named.
"""
import importlib.metadata
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import canonicalize_name

from webdet.resources import webapp_dir

REPO = Path(__file__).resolve().parents[1]
WEBAPP = webapp_dir()
CONSTRAINTS = REPO / "constraints.txt"  # in a checkout; an installed wheel has none to compare with
SETUP_HINT = "run `make test` or `make demo` to set up .venv"
# (distribution, essential): what webdet's stages import, and the pins that broke before (DESIGN.md).
PYTHON_PACKAGES = (("tensorflow", True), ("tf-keras", True), ("tf-models-official", True), ("tensorflowjs", True),
                   ("protobuf", True), ("numpy", True), ("pycocotools", True), ("pandas", True), ("lxml", True),
                   ("matplotlib", True), ("Pillow", True), ("tensorflow-decision-forests", False),
                   ("ydf", False), ("tensorflow-metadata", False), ("fastapi", True), ("uvicorn", True),
                   ("python-multipart", True), ("rq", True), ("redis", True), ("kaggle", False))
MIN_NODE_MAJOR = 18


@dataclass
class Check:
    """One line of the doctor's table."""
    name: str
    version: str | None       # None: not found
    problem: str = ""         # what is wrong, and how to fix it
    essential: bool = True

    @property
    def status(self) -> str:
        if self.version and not self.problem:
            return "ok"
        return "MISSING" if not self.version else "MISMATCH"


def pinned_versions(constraints: Path | None = None) -> dict[str, str]:
    """{canonical name: version} for every `name==version` line of the lock file (empty without it)."""
    constraints = constraints or CONSTRAINTS
    if not constraints.is_file():
        return {}
    pins = {}
    for line in constraints.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\s*([A-Za-z0-9_.\-]+)\s*==\s*([^\s;#]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def command_version(command: list[str]) -> str | None:
    """First line a program prints for its version, or None when it is absent or fails."""
    if not shutil.which(command[0]):
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    lines = (out.stdout or out.stderr).strip().splitlines()
    if out.returncode != 0 or not lines:
        return None
    number = re.search(r"v?\d+(\.\d+)+", lines[0])  # "Chromium 156.0.8078.79 built on Debian…" → 156.0.8078.79
    return number[0] if number else lines[0]


def python_check() -> Check:
    version = sys.version.split()[0]
    ok = sys.version_info[:2] in ((3, 10), (3, 11))
    return Check("Python", version, "" if ok else "webdet's pinned set is for Python 3.11")


def package_checks(pins: dict[str, str]) -> list[Check]:
    checks = []
    for name, essential in PYTHON_PACKAGES:
        try:
            version = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            checks.append(Check(name, None, f"not installed: {SETUP_HINT}", essential))
            continue
        pinned = pins.get(canonicalize_name(name))
        problem = f"constraints.txt pins {pinned}: {SETUP_HINT}" if pinned and version != pinned else ""
        checks.append(Check(name, version, problem, essential))
    return checks


def _node_check() -> Check:
    version = command_version(["node", "--version"])
    major = re.match(r"v?(\d+)", version or "")
    if version and major and int(major[1]) >= MIN_NODE_MAJOR:
        return Check("Node.js", version)
    return Check("Node.js", version, f"Node {MIN_NODE_MAJOR}+ (20 tested) is needed for the web app and the "
                                     "export's parity check")


def tool_checks() -> list[Check]:
    tfjs_installed = (WEBAPP / "node_modules" / "@tensorflow" / "tfjs" / "package.json").is_file()
    bundle_built = all((WEBAPP / "dist" / name).is_file() for name in ("index.html", "main.js", "node/run_model.mjs"))
    chromium = command_version(["chromium", "--version"]) or command_version(["chromium-browser", "--version"])
    return [
        _node_check(),
        Check("npm", command_version(["npm", "--version"]), "", False),
        Check("web app bundle", "built" if bundle_built else None, "" if bundle_built else "run `make webapp`"),
        Check("web app npm packages", "installed" if tfjs_installed else None,
              "" if tfjs_installed else "needed only to rebuild the app: `make webapp` (npm ci in webapp/)", False),
        Check("Chromium", chromium, "" if chromium else "apt-get install chromium (browser tests only)", False),
    ]


def checks() -> list[Check]:
    """Everything webdet relies on, in the order it is printed."""
    return [python_check(), *package_checks(pinned_versions()), *tool_checks()]


def register(subparsers):
    """Add `doctor` to the `webdet` parser."""
    p = subparsers.add_parser("doctor", help="print the versions that matter and name anything missing",
                              description="Print the versions of Python, TensorFlow, Model Garden, tensorflowjs, "
                                          "Node, npm and Chromium; name what is missing or does not match "
                                          "constraints.txt. Exits non-zero when something essential is wrong.")
    p.set_defaults(func=run, needs_tensorflow=False)


def run(args) -> int:
    failed = False
    for check in checks():
        failed |= check.status != "ok" and check.essential
        note = f"  ← {check.problem}" if check.problem else ""
        optional = "" if check.essential or check.status == "ok" else " (optional)"
        print(f"{check.name:28s} {check.version or '-':44s} {check.status}{optional}{note}")
    print("Everything webdet needs is here." if not failed else "Fix the lines marked MISSING or MISMATCH above.")
    return 1 if failed else 0
