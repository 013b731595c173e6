"""Shared pytest setup: the `real_data` marker, fixtures locating the real datasets (skipped when absent), and a
fixture that runs a test in MindSpore graph mode."""
import os

import pytest

SHARED_DATA = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "data"))


def pytest_configure(config):
    config.addinivalue_line("markers", "real_data: reads the real datasets in <repo>/../shared/data (skips if absent)")


@pytest.fixture(scope="session")
def shared_data():
    if not os.path.isdir(SHARED_DATA):
        pytest.skip(f"real data folder {SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ernie_vocab(shared_data):
    path = os.path.join(shared_data, "ernie_1.0", "vocab.txt")
    if not os.path.isfile(path):
        pytest.skip(f"ERNIE vocabulary {path} is absent")
    return path


def write_micro_config(folder, dropout):
    """A 1-layer, hidden-32 ERNIE config for the character fixtures' 140-token vocabulary; returns its path."""
    import json
    path = folder / "ernie_config.json"
    path.write_text(json.dumps({"vocab_size": 140, "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                                "intermediate_size": 64, "hidden_act": "relu", "max_position_embeddings": 64,
                                "type_vocab_size": 2, "hidden_dropout_prob": dropout,
                                "attention_probs_dropout_prob": dropout, "initializer_range": 0.02}))
    return str(path)


def custom_kernels_unavailable():
    """Why the custom CPU kernels (src/kernels) cannot be used here, or "" where they build."""
    from src.kernels.build import KernelUnavailable, kernel_library
    try:
        kernel_library()
    except KernelUnavailable as error:
        return str(error)
    return ""


@pytest.fixture
def graph_mode():
    import mindspore as ms
    previous = ms.get_context("mode")
    ms.set_context(mode=ms.GRAPH_MODE)
    yield
    ms.set_context(mode=previous)
