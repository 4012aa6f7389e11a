"""``kill -9`` in the middle of ``interpret --speak`` keeps what was produced up to then."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

pytestmark = pytest.mark.integration


def test_kill_9_midway_leaves_the_text_and_the_speech(tmp_path):
    from simulinterp.audio import load_file
    from simulinterp.cli.interpret import demo_audio

    jfk = load_file(demo_audio())
    gap = np.zeros(16000, np.float32)
    sf.write(tmp_path / "talk.wav", np.concatenate([jfk, gap] * 8), 16000)  # about 96 s
    env = {**os.environ, "SIMULINTERP_NATIVE_LOGS": "stderr"}
    cmd = [sys.executable, "-m", "simulinterp", "interpret", str(tmp_path / "talk.wav"),
           "--from", "en", "--to", "zh", "--speak", "--no-play"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    log = tmp_path / "talk.zh.jsonl"
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            lines = log.read_text(encoding="utf-8").splitlines() if log.exists() else []
            events = [json.loads(x) for x in lines if x.endswith("}")]
            speech = [e for e in events if e["type"] == "speech"]
            final = [e for e in events if e["type"] == "translation" and e["final"]]
            if len(speech) >= 2 and final:
                break
            time.sleep(0.5)
        assert proc.poll() is None, "the run ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    events = [json.loads(x) for x in log.read_text(encoding="utf-8").splitlines()]
    spoken = [e for e in events if e["type"] == "speech"]
    assert len(spoken) >= 2 and any(e["type"] == "translation" for e in events)
    audio, rate = sf.read(tmp_path / "talk.interp.wav", dtype="float32")
    assert len(audio) / rate >= spoken[1]["end_s"] - 0.05  # the speech logged is in the file
    assert np.abs(audio).max() > 0.05
    doc = json.loads((tmp_path / "talk.zh.json").read_text(encoding="utf-8"))
    assert doc["translation"]  # rewritten at each finished sentence
