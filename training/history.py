"""What a run records as it goes: `history.csv`, TensorBoard logs and the end-of-run plots."""
import csv
import math
from pathlib import Path

import tensorflow as tf

FIELDS = ("step", "epoch", "seconds", "loss", "cls_loss", "box_loss", "learning_rate", "images_per_sec",
          "AP", "AP50", "AR100")


class History:
    """Appends one row per logged interval to `history.csv` and mirrors it to TensorBoard."""

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / "history.csv"
        self.rows = read_history(self.path)
        logs = Path(run_dir) / "logs"
        self.train_writer = tf.summary.create_file_writer(str(logs / "train"))
        self.eval_writer = tf.summary.create_file_writer(str(logs / "eval"))

    def log(self, row: dict) -> None:
        self.rows.append({k: row.get(k) for k in FIELDS})
        new = not self.path.exists()
        with open(self.path, "a", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=FIELDS)
            if new:
                writer.writeheader()
            writer.writerow({k: "" if row.get(k) is None else row[k] for k in FIELDS})
        step = int(row["step"])
        with self.train_writer.as_default(step=step):
            for key in ("loss", "cls_loss", "box_loss", "learning_rate", "images_per_sec"):
                if row.get(key) is not None:
                    tf.summary.scalar(key, row[key])
        if row.get("AP") is not None:
            with self.eval_writer.as_default(step=step):
                for key in ("AP", "AP50", "AR100"):
                    tf.summary.scalar(key, row[key])
        self.train_writer.flush()
        self.eval_writer.flush()

    def evaluations(self) -> list[dict]:
        return [r for r in self.rows if r.get("AP") is not None]

    def best(self) -> dict | None:
        evals = self.evaluations()
        return max(evals, key=lambda r: r["AP"]) if evals else None


def read_history(path: Path) -> list[dict]:
    if not Path(path).is_file():
        return []
    with open(path, newline="", encoding="utf-8") as f:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(f)]


def _number(value: str):
    if value in ("", None):
        return None
    number = float(value)
    return int(number) if number.is_integer() and abs(number) < 2**53 and "." not in value else number


def plot_history(rows: list[dict], out_dir: Path) -> list[Path]:
    """`losses.png` (total, class, box) and `ap.png` (AP, AP50, AR100 over steps)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    train_rows = [r for r in rows if r.get("loss") is not None and math.isfinite(r["loss"])]
    if train_rows:
        fig, ax = plt.subplots(figsize=(7, 4))
        steps = [r["step"] for r in train_rows]
        for key, label in (("loss", "total"), ("cls_loss", "class (focal)"), ("box_loss", "box (Huber)")):
            ax.plot(steps, [r[key] for r in train_rows], label=label)
        ax.set(xlabel="step", ylabel="loss", title="Training loss", yscale="log")
        ax.legend()
        ax.grid(alpha=0.3)
        written.append(_save(fig, out_dir / "losses.png"))
    evals = [r for r in rows if r.get("AP") is not None]
    if evals:
        fig, ax = plt.subplots(figsize=(7, 4))
        steps = [r["step"] for r in evals]
        for key in ("AP", "AP50", "AR100"):
            ax.plot(steps, [r[key] for r in evals], marker="o", label=key)
        ax.set(xlabel="step", ylabel="COCO metric (test split)", title="Evaluation", ylim=(0, 1))
        ax.legend()
        ax.grid(alpha=0.3)
        written.append(_save(fig, out_dir / "ap.png"))
    return written


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
