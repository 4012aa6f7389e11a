import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A tiny random Qwen2 checkpoint with its tokenizer (see ``tiny_qwen``)."""
    pytest.importorskip("transformers")
    from tiny_qwen import save_checkpoint

    return save_checkpoint(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="session")
def tiny_parallel(tmp_path_factory) -> Path:
    """A folder of parallel text in both directions: ``toy_zh-en`` and ``toy_en-zh``."""
    from tiny_qwen import PAIRS, write_parallel

    root = tmp_path_factory.mktemp("data")
    write_parallel(root, "toy_zh-en", PAIRS)
    write_parallel(root, "toy_en-zh", [(b, a) for a, b in PAIRS])
    return root
