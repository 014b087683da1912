"""The optimizer both framework loops take."""

from __future__ import annotations


def test_keras_adamw_takes_the_pytorch_step():
    """deberta-train's Keras optimizer is torch.optim.AdamW step for step, also where gradients are near
    epsilon (where Keras' own AdamW, epsilon before the bias correction, moves weights differently)."""
    import keras
    import numpy as np
    import torch

    from deberta_tf.train import _adamw_class

    rng = np.random.default_rng(0)
    start = rng.normal(size=(4, 3)).astype(np.float32)
    grads = [rng.normal(size=(4, 3)).astype(np.float32) * scale for scale in (1e-8, 3e-8, 1.0)]
    weight = torch.nn.Parameter(torch.tensor(start))
    reference = torch.optim.AdamW([weight], lr=1e-2, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.1)
    variable = keras.Variable(start)
    ours = _adamw_class()(learning_rate=1e-2, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.1)
    stock = keras.optimizers.AdamW(learning_rate=1e-2, beta_1=0.9, beta_2=0.999, epsilon=1e-8, weight_decay=0.1)
    stock_variable = keras.Variable(start)
    for g in grads:
        weight.grad = torch.tensor(g)
        reference.step()
        ours.apply_gradients([(keras.ops.convert_to_tensor(g), variable)])
        stock.apply_gradients([(keras.ops.convert_to_tensor(g), stock_variable)])
    expected = weight.detach().numpy()
    assert np.abs(np.asarray(variable) - expected).max() < 1e-6
    assert np.abs(np.asarray(stock_variable) - expected).max() > 1e-4  # the difference this fixes
