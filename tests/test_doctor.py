"""`webdet doctor` reports the real environment and names what is missing or mismatched."""
import importlib.metadata
import shutil

from webdet import doctor
from webdet.cli import main


def line_for(out: str, name: str) -> str:
    return next(line for line in out.splitlines() if line.split("  ")[0] == name)


def test_prints_the_versions_that_matter_and_exits_by_what_is_essential(capsys):
    checks = doctor.checks()
    code = main(["doctor"])
    out = capsys.readouterr().out
    for name in ("Python", "tensorflow", "tf-models-official", "tensorflowjs", "Node.js", "npm", "Chromium"):
        assert line_for(out, name)
    assert importlib.metadata.version("tensorflow") in line_for(out, "tensorflow")
    assert importlib.metadata.version("tf-models-official") in line_for(out, "tf-models-official")
    assert code == (1 if any(c.essential and c.status != "ok" for c in checks) else 0)


def test_the_installed_set_matches_the_lock_file():
    pins = doctor.pinned_versions()
    assert pins["tensorflow"] == importlib.metadata.version("tensorflow")
    assert [c.name for c in doctor.package_checks(pins) if c.status != "ok"] == []


def test_a_missing_package_is_named_with_the_fix(monkeypatch, capsys):
    real = importlib.metadata.version

    def version(name):
        if name == "tensorflowjs":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(doctor.importlib.metadata, "version", version)
    assert main(["doctor"]) == 1
    line = line_for(capsys.readouterr().out, "tensorflowjs")
    assert "MISSING" in line and "make test" in line


def test_a_version_other_than_the_pinned_one_is_a_mismatch(tmp_path, monkeypatch, capsys):
    lock = tmp_path / "constraints.txt"
    lock.write_text("tensorflow==2.99.0\nnumpy==1.0.0  # old\n")
    monkeypatch.setattr(doctor, "CONSTRAINTS", lock)
    assert main(["doctor"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in line_for(out, "tensorflow") and "constraints.txt pins 2.99.0" in line_for(out, "tensorflow")
    assert "MISMATCH" in line_for(out, "numpy")


def test_missing_node_fails_missing_chromium_is_only_named(monkeypatch, capsys):
    real_which = shutil.which
    monkeypatch.setattr(doctor.shutil, "which", lambda cmd: None if cmd in ("node", "npm") else real_which(cmd))
    assert main(["doctor"]) == 1
    assert "MISSING" in line_for(capsys.readouterr().out, "Node.js")

    monkeypatch.setattr(doctor.shutil, "which",
                        lambda cmd: None if cmd.startswith("chromium") else real_which(cmd))
    checks = {c.name: c for c in doctor.checks()}
    assert checks["Chromium"].status == "MISSING" and not checks["Chromium"].essential
    assert "apt-get install chromium" in checks["Chromium"].problem
