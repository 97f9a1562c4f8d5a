"""The web contract's post-processing: Python and JavaScript reproduce the same worked cases."""
import json
import subprocess

import pytest

from webdet.export.postprocess import postprocess

CASES = json.loads((__import__("pathlib").Path(__file__).parent / "fixtures" / "postprocess_cases.json").read_text())["cases"]


@pytest.mark.parametrize("case", CASES, ids=[c["name"][:40] for c in CASES])
def test_python_reproduces_the_worked_case(case):
    width, height = case["frame"]
    got = postprocess(case["boxes"], case["scores"], case["metadata"], width, height)
    assert len(got) == len(case["expected"])
    for g, e in zip(got, case["expected"]):
        assert g["box"] == pytest.approx(e["box"], abs=1e-6)
        assert (g["score"], g["label_id"], g["label"]) == (pytest.approx(e["score"]), e["label_id"], e["label"])


def test_javascript_gives_the_same_detections_as_python(repo_dir):
    script = """
    import fs from 'node:fs';
    import { postprocess } from './src/postprocess.js';
    const { cases } = JSON.parse(fs.readFileSync(process.argv[1], 'utf8'));
    const out = cases.map((c) => postprocess(Float32Array.from(c.boxes.flat()), Float32Array.from(c.scores.flat()),
      c.metadata, c.frame[0], c.frame[1]));
    process.stdout.write(JSON.stringify(out));
    """
    fixture = repo_dir / "tests" / "fixtures" / "postprocess_cases.json"
    result = subprocess.run(["node", "--input-type=module", "-e", script, str(fixture)], cwd=repo_dir / "webapp",
                            capture_output=True, text=True, check=True)
    for case, js in zip(CASES, json.loads(result.stdout)):
        width, height = case["frame"]
        python = postprocess(case["boxes"], case["scores"], case["metadata"], width, height)
        assert len(js) == len(python)
        for j, p in zip(js, python):
            assert j["box"] == pytest.approx(p["box"], abs=1e-3)  # float32 in JS
            assert (j["label_id"], j["label"]) == (p["label_id"], p["label"])
            assert j["score"] == pytest.approx(p["score"], abs=1e-6)


@pytest.mark.parametrize("height,width", [(680, 1024), (319, 450), (501, 750), (1024, 683)])
def test_letterbox_size_is_the_savedmodel_preprocessing_size(height, width):
    """The contract's letterbox size is Model Garden's own (float32, ties to even: 680x1024 → 212x320), so the
    web model sees the image at the size the SavedModel does."""
    import numpy as np
    import tensorflow as tf

    from webdet.export.postprocess import fit_transform
    from webdet.training.model import preprocess

    _, info = preprocess(tf.zeros([height, width, 3], tf.uint8), 320)
    scale_y, scale_x, _, _ = fit_transform({"input": {"shape": [1, 320, 320, 3], "fit": "letterbox"}}, width, height)
    assert np.allclose([scale_y, scale_x], info[2].numpy(), rtol=1e-6)
    assert round(scale_y * height) == round(float(info[2][0]) * height)
