"""The server as a process: ``kill -9`` loses nothing already committed (``--save-dir``), and
TLS serves HTTPS and WSS."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from websockets.sync.client import connect

from server_fakes import CONFIG, SCRIPT, frames, speak

TESTS = Path(__file__).parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(port: int, server: subprocess.Popen, *, tls=None) -> None:
    scheme = "https" if tls is not None else "http"
    for _ in range(200):
        if server.poll() is not None:
            raise AssertionError(f"the server died: {server.stderr.read().decode()}")
        try:
            url = f"{scheme}://127.0.0.1:{port}/health"
            with urllib.request.urlopen(url, timeout=1, context=tls) as answer:
                if answer.status == 200:
                    return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the server never answered /health")


def test_kill_9_mid_session_keeps_every_committed_sentence(tmp_path):
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    server = subprocess.Popen(
        [sys.executable, str(TESTS / "server_fakes.py"), str(port), str(tmp_path)],
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_healthy(port, server)
        with connect(f"ws://127.0.0.1:{port}/ws") as ws:
            ws.send(json.dumps(CONFIG))
            session = json.loads(ws.recv(timeout=10))["session_id"]
            # the first sentence, its pause, and the start of the second
            audio = speak([SCRIPT[0], ["he", "likes"]])
            for frame in frames(audio[: int(16000 * 4.3)]):
                ws.send(frame)
                time.sleep(0.05)  # twice real time: the pause is heard as one
            committed = []
            deadline = time.monotonic() + 20
            while not any(e.get("final") for e in committed):
                assert time.monotonic() < deadline, f"no complete sentence: {committed}"
                event = json.loads(ws.recv(timeout=10))
                if event["type"] == "translation":
                    committed.append(event)
            os.kill(server.pid, signal.SIGKILL)  # mid-session: the second sentence is open
            server.wait(timeout=10)
    finally:
        if server.poll() is None:
            server.kill()
    spoken = "".join(e["text"] for e in committed)
    log = [json.loads(line) for line in (tmp_path / f"{session}.zh.jsonl").open(encoding="utf-8")]
    logged = "".join(e["text"] for e in log if e["type"] == "translation")
    assert logged.startswith(spoken) and spoken.replace("，", "") == "们去今公园"
    document = json.loads((tmp_path / f"{session}.zh.json").read_text(encoding="utf-8"))
    assert document["translation"].startswith("们去今公园")  # rewritten at the sentence's end
    srt = (tmp_path / f"{session}.zh.srt").read_text(encoding="utf-8")
    assert "-->" in srt and "公园" in srt


def test_tls_serves_https_and_wss(tmp_path):
    import shutil
    import ssl

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    tls = ssl.create_default_context(cafile=str(cert))
    tls.check_hostname = False  # the certificate names no IP address
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    server = subprocess.Popen(
        [sys.executable, str(TESTS / "server_fakes.py"), str(port), str(tmp_path), str(cert),
         str(key)],
        env=env,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_healthy(port, server, tls=tls)
        with connect(f"wss://127.0.0.1:{port}/ws", ssl=tls) as ws:
            ws.send(json.dumps(CONFIG))
            assert json.loads(ws.recv(timeout=10))["type"] == "ready"
        with pytest.raises(OSError):  # plain HTTP is not served on the TLS port
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2).read()
    finally:
        server.kill()
        server.wait(timeout=10)
