"""`webdet doctor` reports the real environment and names what is missing."""
import importlib.metadata

from webdet import doctor
from webdet.cli import main


def test_doctor_reports_the_pinned_versions(capsys):
    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"tensorflow         {importlib.metadata.version('tensorflow')}" in out
    assert "tf-models-official" in out and "tensorflowjs" in out and "Node.js" in out


def test_doctor_names_a_missing_package(monkeypatch, capsys):
    real = importlib.metadata.version

    def version(name):
        if name == "tensorflowjs":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(doctor.importlib.metadata, "version", version)
    assert main(["doctor"]) == 1
    line = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("tensorflowjs"))
    assert "MISSING" in line and "make test" in line
