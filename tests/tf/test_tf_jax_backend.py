"""The models on Keras' JAX backend (deberta_tf keeps to keras.ops): parity with deberta_torch, predict
(jax.jit), fit and `.keras` reloading. Runs in a subprocess, since Keras picks its backend at import;
skipped where jax is not installed (it is not a dependency)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")

SCRIPT = textwrap.dedent("""
    import tempfile
    import keras, numpy as np, torch
    assert keras.config.backend() == "jax"
    from tests.tf.tf_cases import make_config
    from tests.tf.tf_helpers import max_diff, model_inputs, tf_class, torch_model

    for variant, head in [("v1_c2p_talking", "masked_lm"), ("v2_conv_unshared", "sequence_classification"),
                          ("v3_buckets_shared", "multiple_choice")]:
        config = make_config(variant, num_labels=3)
        pt = torch_model(config, head)
        directory = tempfile.mkdtemp()
        pt.save_pretrained(directory)
        model = tf_class(config.family, head).from_pretrained(directory)
        inputs = model_inputs(head, config)
        with torch.no_grad():
            expected = pt(**{k: torch.from_numpy(v) for k, v in inputs.items()}, output_hidden_states=True,
                          output_attentions=True)
        got = model(inputs, output_hidden_states=True, output_attentions=True)
        for name in expected.keys():
            assert max_diff(expected[name], got[name]) < 1e-5, (variant, head, name)

    config = make_config("v3_buckets_shared", num_labels=3)
    model = tf_class("v2", "sequence_classification")(config)
    inputs = model_inputs("sequence_classification", config)
    x, y = {k: v for k, v in inputs.items() if k != "labels"}, np.abs(inputs["labels"])
    assert max_diff(model(x).logits, model.predict(x, verbose=0)["logits"]) < 1e-5
    model.compile(optimizer="adam")
    assert np.isfinite(model.fit(x, y, epochs=2, verbose=0).history["loss"]).all()
    path = tempfile.mkdtemp() + "/model.keras"
    model.save(path)
    assert max_diff(model(x).logits, keras.saving.load_model(path)(x).logits) == 0.0
    print("jax backend ok")
""")


def test_models_run_on_the_jax_backend():
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": os.pathsep.join(
        [str(root)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])}
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=root, env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "jax backend ok" in done.stdout
