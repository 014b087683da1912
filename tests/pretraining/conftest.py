"""Pre-training tests (EMD, replaced-token detection, masking, packing): both frameworks, tiny configs."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def pytest_configure(config):
    # Keras' own .keras saving converts variables with np.array(), which numpy 2 warns about.
    config.addinivalue_line(
        "filterwarnings", "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning")
