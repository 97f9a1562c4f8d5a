"""`webdet train`: checkpoints, resume, live COCO evaluation, warm starts and the errors a user can hit."""
import csv
import json
import shutil
import tarfile

import numpy as np
import pytest
import tensorflow as tf

from webdet.training import init_checkpoint
from webdet.training.config import apply_overrides, load_config, read_run_config
from webdet.training.detector import load_checkpoint_detector
from webdet.training.evaluate import evaluate_detector
from webdet.training.history import read_history
from webdet.training.model import build_model
from webdet.training.train import Trainer, train
from webdet.cli import main

from conftest import TINY_RUN_STEPS
from webdet.errors import WebdetError


def tiny(*overrides):
    return apply_overrides(load_config("tiny"), list(overrides))


def quiet(*_):
    pass


def test_tiny_run_writes_what_evaluate_and_export_need(tiny_run):
    config = read_run_config(tiny_run)
    assert config["train"]["steps"] == TINY_RUN_STEPS
    assert config["data"]["labels"] == {1: "circle", 2: "square", 3: "triangle"}
    assert (tiny_run / "label_map.pbtxt").is_file()
    assert tf.train.latest_checkpoint(str(tiny_run / "checkpoints")).endswith(f"ckpt-{TINY_RUN_STEPS}")
    assert tf.train.latest_checkpoint(str(tiny_run / "checkpoints" / "best"))
    for name in ("losses.png", "ap.png"):
        assert (tiny_run / "plots" / name).stat().st_size > 5000
    assert list((tiny_run / "logs" / "train").glob("events.out.tfevents.*"))
    summary = json.loads((tiny_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["steps"] == TINY_RUN_STEPS


def test_live_evaluation_is_recorded_and_the_model_learns(tiny_run):
    with open(tiny_run / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    evals = [r for r in rows if r["AP"]]
    assert [int(r["step"]) for r in evals] == sorted({int(r["step"]) for r in evals})
    assert len(evals) >= 2
    for row in evals:
        for key in ("AP", "AP50", "AR100"):
            assert 0.0 <= float(row[key]) <= 1.0
    losses = [float(r["loss"]) for r in rows]
    assert np.mean(losses[-3:]) < 0.7 * np.mean(losses[:3]), "the loss should fall"
    best = json.loads((tiny_run / "summary.json").read_text())["best_AP50"]
    assert best > 0.3, f"the tiny model should find the synthetic shapes (AP50 {best})"


def test_the_best_checkpoint_scores_in_webdet_evaluate_what_training_recorded(tiny_run, prepared_dir, tmp_path):
    """One evaluator: the live numbers of the best checkpoint are `webdet evaluate --run`'s, exactly."""
    summary = json.loads((tiny_run / "summary.json").read_text())
    detector = load_checkpoint_detector(tiny_run, "best")
    assert detector.prefix.endswith(f"ckpt-{summary['best_step']}")
    metrics = evaluate_detector(detector, prepared_dir, tmp_path / "eval")
    recorded = next(r for r in read_history(tiny_run / "history.csv") if r["step"] == summary["best_step"])
    for key in ("AP", "AP50", "AR100"):
        assert summary[f"best_{key}"] == recorded[key] == metrics[key], key
    assert metrics["AP"] > 0


def test_interrupted_run_resumes_with_step_count_and_optimizer_state(prepared_dir, tmp_path, monkeypatch):
    run = tmp_path / "run"
    config = tiny("train.steps=12", "train.log_every_steps=4", "train.eval_every_epochs=100")
    real_steps = Trainer.train_steps
    calls = []

    def interrupted(self, iterator, count):
        calls.append(count)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_steps(self, iterator, count)

    monkeypatch.setattr(Trainer, "train_steps", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(prepared_dir, run, config, progress=False, log=quiet)
    saved = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert saved.endswith("ckpt-4")
    saved_slots = {name: tf.train.load_checkpoint(saved).get_tensor(name)
                   for name, _ in tf.train.list_variables(saved) if "OPTIMIZER_SLOT/optimizer/m/" in name}
    assert saved_slots, "the optimizer's moments are in the checkpoint"

    monkeypatch.setattr(Trainer, "train_steps", real_steps)
    messages = []
    restored = {}
    real_restore = Trainer.restore_or_initialize

    def spy(self, spec, log):
        real_restore(self, spec, log)
        restored["iterations"] = int(self.optimizer.iterations.numpy())

    monkeypatch.setattr(Trainer, "restore_or_initialize", spy)
    summary = train(prepared_dir, run, config, progress=False, log=messages.append)
    assert restored["iterations"] == 4
    assert any("Resumed from" in m and "ckpt-4" in m for m in messages)
    assert summary["steps"] == 12 and summary["steps_this_session"] == 8
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(str(run / "checkpoints")))
    moved = [not np.array_equal(reader.get_tensor(n), v) for n, v in saved_slots.items()]
    assert any(moved), "training went on from the restored optimizer state"


def test_resumed_run_takes_more_steps_and_refuses_other_changes(prepared_dir, tmp_path):
    """`--steps 60` on a finished 30-step run trains 30 more; a change a resumed run cannot take is an
    error naming the key, not silently ignored."""
    run = tmp_path / "run"
    config = tiny("train.steps=6", "train.log_every_steps=3", "train.eval_every_epochs=100")
    train(prepared_dir, run, config, progress=False, log=quiet)
    messages = []
    again = train(prepared_dir, run, config, progress=False, log=messages.append)
    assert again["steps_this_session"] == 0 and any("nothing to train; pass --steps N (more than 6)" in m
                                                    for m in messages)
    messages.clear()
    longer = train(prepared_dir, run, tiny("train.steps=9"), progress=False, log=messages.append,
                   overrides=["train.steps=9"])
    assert longer["steps"] == 9 and longer["steps_this_session"] == 3
    assert any("train.steps 6 → 9" in m for m in messages) and read_run_config(run)["train"]["steps"] == 9
    with pytest.raises(WebdetError, match=r"train.learning_rate=0.5: a resumed run keeps its saved config, where "
                                          r"it is 0.004 .*use a new --run folder"):
        train(prepared_dir, run, tiny("train.learning_rate=0.5"), progress=False, log=quiet,
              overrides=["train.learning_rate=0.5"])
    assert read_run_config(run)["train"]["learning_rate"] == 0.004


def test_mosaic_closes_for_the_last_epochs_and_stays_closed_on_resume(prepared_dir, tmp_path, monkeypatch):
    """With train.augment.close_mosaic_epochs the last epochs train on plain photos: every picture before the
    close is a collage at the input size, none after it, and a run resumed past the close starts without it."""
    from webdet.training.experiment import steps_per_epoch
    from webdet.training.train import read_data_dir

    per_epoch = steps_per_epoch(read_data_dir(prepared_dir).train_images, int(tiny()["train"]["batch_size"]))
    size = tiny()["model"]["input_size"]
    run = tmp_path / "run"
    config = tiny("train.steps=6", "train.log_every_steps=4", "train.eval_every_epochs=100",
                  "train.augment.mosaic=1.0", f"train.augment.close_mosaic_epochs={2 / per_epoch}")
    real_steps, collages = Trainer.train_steps, []

    def peeking(self, iterator, count):
        _, labels = next(iterator)  # one extra batch, to see what the next steps train on
        collages.append((self.step, bool((labels["image_info"].numpy()[:, 0] == size).all())))
        return real_steps(self, iterator, count)

    monkeypatch.setattr(Trainer, "train_steps", peeking)
    messages = []
    summary = train(prepared_dir, run, config, progress=False, log=messages.append)
    assert summary["steps"] == 6
    assert collages == [(0, True), (4, False)]
    assert "Step 4: mosaic off for the last 2 steps (train.augment.close_mosaic_epochs=" in "\n".join(messages)
    assert sum(m.startswith("Anchors: ") for m in messages) == 1, "a new run reports its anchor fit"

    collages.clear()
    messages.clear()
    longer = train(prepared_dir, run, tiny("train.steps=8"), progress=False, log=messages.append,
                   overrides=["train.steps=8"])
    assert longer["steps"] == 8 and collages == [(6, False)]
    assert any(m.startswith("Step 6: mosaic off for the last 2 steps") for m in messages)
    assert not any(m.startswith("Anchors: ") for m in messages), "a resumed run does not check them again"


def checkpoint_tensors(prefix: str, part: str) -> dict:
    """The tensors of one checkpoint whose names contain `part`, by name."""
    reader = tf.train.load_checkpoint(prefix)
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(prefix) if part in name}


def test_moving_average_is_what_checkpoints_hold_and_a_resume_trains_the_raw_weights(prepared_dir, tmp_path):
    """With train.ema_decay a checkpoint's model is the moving average of the weights (what evaluate, export and
    --init-checkpoint read), the raw weights ride in the optimizer's slot, and a resumed run trains those."""
    run, decay = tmp_path / "run", 0.9
    settings = ["train.log_every_steps=1", "train.eval_every_epochs=100", "train.checkpoint_every_minutes=0",
                f"train.ema_decay={decay}"]
    train(prepared_dir, run, tiny("train.steps=5", *settings), progress=False, log=quiet)
    five = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert five.endswith("ckpt-5")
    raw5 = checkpoint_tensors(five, "/average/")
    assert raw5, "the raw weights are kept beside the average"
    # model/…/kernel/.OPTIMIZER_SLOT/optimizer/average/… is the raw twin of model/…/kernel/.ATTRIBUTES/…
    average_name = {slot: slot.split("/.OPTIMIZER_SLOT")[0] + "/.ATTRIBUTES/VARIABLE_VALUE" for slot in raw5}

    restored = {}
    real_restore = Trainer.restore_or_initialize

    def spy(self, spec, log):
        real_restore(self, spec, log)
        kernel = self.model.trainable_variables[0]
        restored["model"] = kernel.numpy()
        restored["average"] = self.optimizer.get_slot(kernel, "average").numpy()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Trainer, "restore_or_initialize", spy)
        summary = train(prepared_dir, run, tiny("train.steps=6", *settings), progress=False, log=quiet,
                        overrides=["train.steps=6"])
    assert summary["steps"] == 6 and summary["steps_this_session"] == 1
    saved5 = tf.train.load_checkpoint(five)
    assert any(np.array_equal(restored["model"], raw) for raw in raw5.values()), "training resumed on raw weights"
    assert any(np.array_equal(restored["average"], saved5.get_tensor(name)) for name in average_name.values())

    six = tf.train.latest_checkpoint(str(run / "checkpoints"))
    saved6, raw6 = tf.train.load_checkpoint(six), checkpoint_tensors(six, "/average/")
    step_decay = min(decay, (1 + 6) / (10 + 6))  # Model Garden's ramp: (1 + step) / (10 + step), capped
    moved = 0
    for slot, name in average_name.items():
        average5, average6 = saved5.get_tensor(name), saved6.get_tensor(name)
        np.testing.assert_allclose(average6, step_decay * average5 + (1 - step_decay) * raw6[slot], atol=1e-6)
        moved += not np.allclose(average6, raw6[slot])
    assert moved, "the checkpoint holds the average, not the raw weights"


def test_checkpoints_are_written_between_evaluations(prepared_dir, tmp_path):
    run = tmp_path / "run"
    config = tiny("train.steps=9", "train.log_every_steps=3", "train.eval_every_epochs=100",
                  "train.checkpoint_every_minutes=0")
    train(prepared_dir, run, config, progress=False, log=quiet)
    kept = tf.train.get_checkpoint_state(str(run / "checkpoints")).all_model_checkpoint_paths
    assert [p.rsplit("-", 1)[1] for p in kept] == ["3", "6", "9"]


def test_a_hard_killed_run_resumes_from_its_last_periodic_checkpoint(prepared_dir, tmp_path):
    """kill -9 in the middle of training loses at most the steps since the last periodic checkpoint."""
    import signal
    import subprocess
    import sys
    import time

    run = tmp_path / "run"
    command = [sys.executable, "-m", "webdet.cli", "train", "--data", str(prepared_dir), "--run", str(run),
               "--config", "tiny", "--steps", "400", "--init-checkpoint", "none", "--no-progress",
               "--set", "train.log_every_steps=2", "--set", "train.eval_every_epochs=1000",
               "--set", "train.checkpoint_every_minutes=0"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while not tf.train.latest_checkpoint(str(run / "checkpoints")) and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(2)
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    kept = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert kept, "no checkpoint written before the kill"
    step = int(kept.rsplit("-", 1)[1])
    resumed = subprocess.run(command[:11] + [str(step + 2)] + command[12:], capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"Resumed from {kept} at step {step}" in resumed.stdout
    assert "train.steps 400 → " in resumed.stdout and f"Training completed at step {step + 2}" in resumed.stdout


def test_warm_start_restores_all_but_the_class_layer(tiny_run, tmp_path):
    config = read_run_config(tiny_run)
    source = tf.train.latest_checkpoint(str(tiny_run / "checkpoints"))
    archive = tmp_path / "pretrained.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for path in (tiny_run / "checkpoints").glob(f"ckpt-{TINY_RUN_STEPS}*"):
            tar.add(path, arcname=f"pretrained/{path.name}")
    trained = build_model(config, 3)
    tf.train.Checkpoint(model=trained).read(source).expect_partial()
    fresh = build_model(config, 1)  # another dataset: one class
    fresh_classifier = [v.numpy().copy() for v in fresh.head._classifier.variables]
    prefix = init_checkpoint.resolve(str(archive))
    counts = init_checkpoint.restore_pretrained(fresh, prefix)
    assert counts == {"restored": len(fresh.variables) - len(fresh.head._classifier.variables),
                      "total": len(fresh.variables), "fresh": len(fresh.head._classifier.variables)}
    for a, b in zip(trained.backbone.variables, fresh.backbone.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for a, b in zip(trained.head._box_regressor.variables, fresh.head._box_regressor.variables):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    for before, var in zip(fresh_classifier, fresh.head._classifier.variables):
        np.testing.assert_array_equal(before, var.numpy())
    shapes = lambda m: [v.shape for v in m.head._classifier.variables]  # noqa: E731
    assert shapes(fresh) != shapes(trained), "the class layer has the new dataset's size"


def test_coco_download_without_network_says_how_to_continue(monkeypatch, tmp_path):
    monkeypatch.setenv("WEBDET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(init_checkpoint, "COCO_URL", "http://127.0.0.1:9/mobilenetv2_ssd_i320_ckpt.tar.gz")
    with pytest.raises(WebdetError, match="--init-checkpoint none") as err:
        init_checkpoint.resolve("coco")
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "cache").glob("*.part"))


def test_mismatched_checkpoint_is_a_clear_error(tmp_path):
    other = tf.Module()
    other.w = tf.Variable([1.0])
    prefix = tf.train.Checkpoint(model=other).write(str(tmp_path / "other"))
    model = build_model(tiny(), 2)
    with pytest.raises(WebdetError, match="does not match this model"):
        init_checkpoint.restore_pretrained(model, prefix)


def test_diverging_loss_stops_with_a_message_and_keeps_the_last_good_checkpoint(prepared_dir, tmp_path):
    config = tiny("train.steps=30", "train.log_every_steps=2", "train.eval_every_epochs=100",
                  "train.optimizer=sgd", "train.learning_rate=1e12", "train.warmup_steps=0",
                  "train.gradient_clip_norm=1e30")
    with pytest.raises(WebdetError, match="diverged at step .*learning_rate") as err:
        train(prepared_dir, tmp_path / "run", config, progress=False, log=quiet)
    assert "\n" not in str(err.value)


def test_resume_with_another_label_map_is_refused(tiny_run, prepared_dir, tmp_path):
    other = tmp_path / "data"
    shutil.copytree(prepared_dir, other)
    (other / "label_map.pbtxt").write_text("item {\n  id: 1\n  name: 'kangaroo'\n}\n")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    with pytest.raises(WebdetError, match="differ from the run"):
        train(other, run, tiny(), progress=False, log=quiet)


@pytest.mark.parametrize("setup, message", [
    (lambda d: None, "no such data folder"),
    (lambda d: d.mkdir(), "label_map.pbtxt: missing"),
])
def test_bad_data_dir_is_one_line(tmp_path, capsys, setup, message):
    data = tmp_path / "data"
    setup(data)
    code = main(["train", "--data", str(data), "--run", str(tmp_path / "run"), "--config", "tiny"])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err


def test_data_dir_without_shards(prepared_dir, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(prepared_dir / "label_map.pbtxt", data)
    assert main(["train", "--data", str(data), "--run", str(tmp_path / "run"), "--config", "tiny"]) == 2
    assert "no train-*.tfrecord shards" in capsys.readouterr().err


def test_unknown_override_names_the_key(tmp_path, capsys):
    code = main(["train", "--data", str(tmp_path), "--run", str(tmp_path / "r"), "--set", "train.learnig_rate=1"])
    assert code == 2
    assert "unknown key 'train.learnig_rate'" in capsys.readouterr().err


def test_config_rejects_input_size_that_the_pyramid_cannot_use():
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match="multiple of 64"):
        validate(tiny("model.input_size=100"))


@pytest.mark.parametrize("value", [1.5, 0, "fast"])
def test_config_rejects_a_moving_average_decay_outside_zero_to_one(value):
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match=f"train.ema_decay={value}: must be null"):
        validate(tiny(f"train.ema_decay={value}"))


def test_config_rejects_an_unknown_augmentation_policy_and_two_at_once():
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match="train.augment.policy=autoaug: must be null, autoaugment or randaugment"):
        validate(tiny("train.augment.policy=autoaug"))
    with pytest.raises(WebdetError, match="cannot be combined with train.augment.random_crop=true"):
        validate(tiny("train.augment.policy=randaugment", "train.augment.random_crop=true"))


@pytest.mark.parametrize("value", ["-1", ".nan", ".inf", "yes", "last"])
def test_config_rejects_a_mosaic_close_that_is_not_a_number_of_epochs(value):
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match=r"train.augment.close_mosaic_epochs=.*: must be a number of epochs, 0 or more"):
        validate(tiny(f"train.augment.close_mosaic_epochs={value}"))


@pytest.mark.parametrize("value", ["0", "-50", "75.5", ".nan", "yes", "heavy"])
def test_config_rejects_a_box_loss_weight_that_is_not_a_positive_whole_number(value):
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match=r"train.box_loss_weight=.*: must be a whole number, 1 or more"):
        validate(tiny(f"train.box_loss_weight={value}"))


@pytest.mark.parametrize("value", ["-2", ".nan", ".inf", "yes", "tight"])
def test_config_rejects_a_giou_loss_weight_that_is_not_a_number_from_zero(value):
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match=r"train.giou_loss_weight=.*: must be a number, 0 \(off\) or more"):
        validate(tiny(f"train.giou_loss_weight={value}"))


@pytest.mark.parametrize("value", ["1.5", "-0.1", ".nan", "yes", "often"])
def test_config_rejects_a_mosaic_that_is_not_a_probability(value):
    from webdet.training.config import validate

    with pytest.raises(WebdetError, match=r"train.augment.mosaic=.*: must be a probability from 0 \(off\) to 1"):
        validate(tiny(f"train.augment.mosaic={value}"))
