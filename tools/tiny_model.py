"""Write the tests' tiny random Qwen2 checkpoint (2 layers, width 32, its own tokenizer) to a
folder: a model for trying ``simulinterp train sft`` / ``train rl`` in seconds on a fresh
clone (it translates nothing; the packaged 0.5B is ``--model default``).

    python tools/tiny_model.py runs/tiny
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    sys.path.insert(0, str(ROOT / "tests"))
    from tiny_qwen import save_checkpoint

    folder = save_checkpoint(Path(sys.argv[1]))
    config = json.loads((folder / "config.json").read_text())
    config["max_position_embeddings"] = 4096  # room for whole sentences (RoPE)
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    print(f"wrote {folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
