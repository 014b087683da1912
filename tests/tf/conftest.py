"""Keras/TensorFlow tests: quiet TensorFlow's C++ logging before it is imported anywhere."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_configure(config):
    # Keras' own .keras saving converts variables with np.array(), which numpy 2 warns about.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
    # Keras warns that fit(shuffle=True), its default, does nothing for a tf.data.Dataset.
    config.addinivalue_line("filterwarnings", "ignore:`shuffle=True` was passed:UserWarning")
