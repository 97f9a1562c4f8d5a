"""Find a runnable interpreter of a given Python version: `python3.12` on PATH, or one that pyenv installed but
has not selected (its shim on PATH then fails to run). `python tests/interpreters.py 3.12` prints its path, or
nothing; the Makefile and tests/test_python312.py both ask here, so they agree on whether there is one."""
import glob
import os
import shutil
import subprocess
import sys

PROBE = "import sys; print(sys.executable, '%d.%d' % sys.version_info[:2])"


def find_python(version: str) -> str | None:
    pyenv_root = os.environ.get("PYENV_ROOT", os.path.expanduser("~/.pyenv"))
    candidates = [shutil.which(f"python{version}"),
                  *sorted(glob.glob(os.path.join(pyenv_root, "versions", f"{version}.*", "bin", f"python{version}")),
                          reverse=True)]
    for candidate in filter(None, candidates):
        try:
            result = subprocess.run([candidate, "-c", PROBE], capture_output=True, text=True, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        executable, _, found = result.stdout.strip().rpartition(" ")
        if result.returncode == 0 and found == version:
            return executable
    return None


if __name__ == "__main__":
    print(find_python(sys.argv[1]) or "")
