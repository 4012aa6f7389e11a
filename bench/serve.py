"""bench/serve: N clients streaming a real recording at real time into ``simulinterp serve``.

The bench starts the server itself (``--replicas R --llm-server``: llama.cpp's server, R serve
workers on its OpenAI API, and nginx from Debian in front of them, all on loopback), then
streams FILE from N concurrent WebSocket clients, each sending 100 ms PCM16 frames when they
would have been captured (sessions start 0.5 s apart). Without ``--audio`` a talk of
``--minutes`` is built by concatenating the shared recordings of the source language, as
bench/s2s does (no long talk exists in the data; say so with the figures).

It reports per session the lag over time (the server's ``lag`` messages: audio received minus
audio recognized and translated), the commit lag (a word's arrival to its translation), the
committed target units, audio dropped by the backpressure rule, and how long after ``stop`` the
session ended; the CPU use of the server's processes (of all cores) and their memory, at the
start and at the end. A session is real time when it kept pace: the rule never dropped audio,
its mean lag stayed under 2 s, and it finished within 15 s of the end of its audio (a lag peak
on a long sentence is latency, not falling behind; the table shows the peaks).

    python bench/serve.py --sessions 2 --audio talk.flac --from zh --to en
    python bench/serve.py --sessions 2 --minutes 3 --from en --to zh --voice
    python bench/serve.py --sessions 2 --replicas 2 --llm-server --minutes 3
    python bench/serve.py --sessions 8 --replicas 2 --llm-url http://gpu-host:8000  # your GPU
    python bench/serve.py --sessions 2 --minutes 60 --from zh --to en     # the soak

Ends with one line: ``sessions=N realtime=yes|no max_lag_s=X subtitles=K`` (K: committed target
units received per session, the least over sessions). Run it alone: every figure is CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np

from simulinterp.audio import SAMPLE_RATE, load_file
from simulinterp.lang import split_units
from simulinterp.server.protocol import pcm16_bytes

FRAME_S = 0.1
REALTIME_MEAN_LAG_S = 2.0
REALTIME_FINISH_S = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Servers:
    """The processes of one layout; stopped on exit."""

    def __init__(self, out: Path) -> None:
        self.out, self.procs = out, []

    def start(self, name: str, argv: list[str]) -> subprocess.Popen:
        log = (self.out / f"{name}.log").open("w")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append((name, proc))
        return proc

    def wait_http(self, url: str, name: str, timeout_s: float = 600) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for who, proc in self.procs:
                if proc.poll() is not None:
                    log = (self.out / f"{who}.log").read_text()[-2000:]
                    raise SystemExit(f"{who} exited ({proc.returncode}):\n{log}")
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                time.sleep(0.5)
        raise SystemExit(f"{name} did not answer {url} in {timeout_s:.0f} s")

    def pids(self) -> list[int]:
        return [p.pid for _, p in self.procs if p.poll() is None]

    def stop(self) -> None:
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def start_layout(args, out: Path, servers: Servers) -> str:
    """Start the server(s); the WebSocket URL clients use."""
    py = [sys.executable, "-m", "simulinterp"]
    common = ["--max-sessions", str(args.sessions), "--max-lag", str(args.max_lag)]
    if not args.voice:
        common.append("--no-voice")
    else:
        common += ["--tts", args.tts]
    if args.replicas == 1 and not (args.llm_server or args.llm_url):
        port = free_port()
        servers.start("serve", [*py, "serve", "--port", str(port), "--model", args.model, *common])
        servers.wait_http(f"http://127.0.0.1:{port}/health", "serve")
        return f"ws://127.0.0.1:{port}/ws"
    llm_port = free_port()
    llm_url = args.llm_url or f"http://127.0.0.1:{llm_port}"
    if args.llm_server and not args.llm_url:
        servers.start(
            "llm-server",
            [*py, "llm-server", "--port", str(llm_port), "--model", args.model,
             "--parallel", str(args.sessions), "--log", str(out / "llm-native.log")],
        )  # fmt: skip
        servers.wait_http(f"http://127.0.0.1:{llm_port}/v1/models", "llm-server")
    backend = (
        ["--backend", "openai", "--base-url", llm_url]
        if args.llm_server or args.llm_url
        else ["--model", args.model]
    )
    ports = []
    for i in range(args.replicas):
        ports.append(free_port())
        servers.start(f"serve-{i}", [*py, "serve", "--port", str(ports[-1]), *backend, *common])
    for i, port in enumerate(ports):
        servers.wait_http(f"http://127.0.0.1:{port}/health", f"serve-{i}")
    front = free_port()
    conf = nginx_conf(out, front, ports)
    (out / "nginx.conf").write_text(conf)
    (out / "nginx-tmp").mkdir(exist_ok=True)
    servers.start("nginx", ["nginx", "-p", str(out), "-c", str(out / "nginx.conf"), "-e", "stderr"])
    servers.wait_http(f"http://127.0.0.1:{front}/health", "nginx")
    return f"ws://127.0.0.1:{front}/ws"


def nginx_conf(out: Path, port: int, workers: list[int]) -> str:
    """nginx in front of the workers: WebSockets proxied, the least busy worker first."""
    upstream = "\n".join(f"    server 127.0.0.1:{p};" for p in workers)
    tmp = out / "nginx-tmp"
    return f"""daemon off;
worker_processes 1;
pid {out}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
  uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  upstream simulinterp {{
    least_conn;
{upstream}
  }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://simulinterp;
      proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header Host $host:$server_port;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }}
  }}
}}
"""


async def client(index: int, url: str, audio: np.ndarray, args, started: float) -> dict:
    """One session: stream ``audio`` at real time, record what comes back."""
    import websockets

    await asyncio.sleep(0.5 * index)
    record = {"session": index, "lags": [], "units": 0, "errors": [], "speech_s": 0.0}
    config = {"type": "config", "version": 1, "from": args.source, "to": args.target,
              "voice": args.voice, "client_id": f"bench-{index}"}  # fmt: skip
    async with websockets.connect(url, max_size=None, ping_interval=None) as ws:
        await ws.send(json.dumps(config))
        ready = json.loads(await ws.recv())
        if ready["type"] != "ready":
            raise SystemExit(f"session {index} refused: {ready}")
        receiver = asyncio.create_task(receive(ws, record, args.target, started))
        step = int(FRAME_S * SAMPLE_RATE)
        begin = time.monotonic()
        for k in range(0, len(audio), step):
            due = begin + (k + step) / SAMPLE_RATE  # a frame is sent once it was captured
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            await ws.send(pcm16_bytes(audio[k : k + step]))
        await ws.send(json.dumps({"type": "stop"}))
        record["stop_at"] = time.monotonic() - started
        await receiver
    return record


async def receive(ws, record: dict, target: str, started: float) -> None:
    async for message in ws:
        if isinstance(message, bytes):
            record["speech_s"] += len(message) / 2 / 24000
            continue
        event = json.loads(message)
        kind = event["type"]
        now = time.monotonic() - started
        if kind == "translation":
            record["units"] += len(split_units(event["text"], target))
        elif kind == "lag":
            record["lags"].append(
                [round(now, 2), event["lag_s"], event["mode"], event["commit_lag_s"],
                 event["dropped_s"]]
            )  # fmt: skip
        elif kind == "error":
            record["errors"].append(event)
        elif kind == "done":
            record["done_at"] = now
            record["translation"] = event["translation"]


def sample_processes(pids: list[int]) -> tuple[float, float]:
    """(CPU seconds so far, resident MB) of ``pids`` and their children's finished work."""
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = rss = 0.0
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += sum(int(x) for x in stat[11:15]) / ticks
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss += int(line.split()[1]) / 1024
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


async def monitor(pids: list[int], samples: list, started: float, stop: asyncio.Event) -> None:
    while not stop.is_set():
        cpu, rss = sample_processes(pids)
        samples.append([round(time.monotonic() - started, 1), round(cpu, 2), round(rss, 1)])
        try:
            await asyncio.wait_for(stop.wait(), timeout=5.0)
        except TimeoutError:
            pass


async def run_clients(url: str, audio: np.ndarray, args, pids: list[int]) -> tuple[list, list]:
    started = time.monotonic()
    samples: list = []
    stop = asyncio.Event()
    watcher = asyncio.create_task(monitor(pids, samples, started, stop))
    records = await asyncio.gather(
        *(client(i, url, audio, args, started) for i in range(args.sessions))
    )
    stop.set()
    await watcher
    return list(records), samples


def summarize(records: list, samples: list, audio_s: float) -> dict:
    sessions = []
    for r in records:
        lags = [row[1] for row in r["lags"]]
        commit = [row[3] for row in r["lags"] if row[3] is not None]
        modes = {row[2] for row in r["lags"]}
        finish = r.get("done_at", float("inf")) - r.get("stop_at", 0.0)
        tenth = max(1, len(lags) // 10)
        sessions.append(
            {
                "session": r["session"],
                "max_lag_s": max(lags, default=0.0),
                "mean_lag_s": float(np.mean(lags)) if lags else 0.0,
                "lag_first_tenth_s": float(np.mean(lags[:tenth])) if lags else 0.0,
                "lag_last_tenth_s": float(np.mean(lags[-tenth:])) if lags else 0.0,
                "mean_commit_lag_s": float(np.mean(commit)) if commit else None,
                "max_commit_lag_s": max(commit, default=None),
                "modes": sorted(modes),
                "dropped_s": r["lags"][-1][4] if r["lags"] else 0.0,
                "units": r["units"],
                "speech_s": round(r["speech_s"], 1),
                "finish_after_stop_s": round(finish, 2),
                "errors": r["errors"],
                "realtime": "dropping" not in modes
                and (float(np.mean(lags)) if lags else 0.0) < REALTIME_MEAN_LAG_S
                and finish < REALTIME_FINISH_S
                and not r["errors"],
            }
        )
    wall = samples[-1][0] - samples[0][0] if len(samples) > 1 else 1.0
    cpu_share = (samples[-1][1] - samples[0][1]) / wall / (os.cpu_count() or 1) if wall else 0
    window = max(1, len(samples) // 10)
    return {
        "audio_s": round(audio_s, 1),
        "sessions": sessions,
        "cpu_share_of_all_cores": round(cpu_share, 3),
        "rss_mb_start": float(np.mean([s[2] for s in samples[1 : 1 + window]] or [0])),
        "rss_mb_end": float(np.mean([s[2] for s in samples[-window:]] or [0])),
        "samples": samples,
    }


def llm_load(log: Path, audio_s: float, sessions: int) -> dict | None:
    """What the LLM server did, from llama.cpp's per-request timings in its log: requests,
    prompt tokens evaluated (after the prompt cache) and tokens generated, per second of audio
    per session (the load one live session puts on an LLM server)."""
    import re

    if not log.is_file():
        return None
    prompt = re.compile(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
    generated = re.compile(r"(?<!prompt )eval time =\s*([\d.]+) ms /\s*(\d+) tokens")
    totals = {"requests": 0, "prompt_tokens": 0, "generated_tokens": 0, "busy_s": 0.0}
    for line in log.read_text(errors="replace").splitlines():
        if m := prompt.search(line):
            totals["requests"] += 1
            totals["prompt_tokens"] += int(m.group(2))
            totals["busy_s"] += float(m.group(1)) / 1000
        elif m := generated.search(line):
            totals["generated_tokens"] += int(m.group(2))
            totals["busy_s"] += float(m.group(1)) / 1000
    per = audio_s * sessions
    return {
        **totals,
        "requests_per_session_s": round(totals["requests"] / per, 3),
        "prompt_tokens_per_session_s": round(totals["prompt_tokens"] / per, 1),
        "generated_tokens_per_session_s": round(totals["generated_tokens"] / per, 2),
    }


def plot(records: list, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    for r in records:
        rows = r["lags"]
        ax.plot([x[0] for x in rows], [x[1] for x in rows], label=f"session {r['session']}")
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("lag (s): audio received - processed")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def source_audio(args, out: Path) -> np.ndarray:
    if args.audio:
        return load_file(args.audio, max_s=24 * 3600)
    sys.path.insert(0, str(Path(__file__).parent))
    from s2s import build_talk

    path, _, _ = build_talk(args.source, args.minutes, out)
    return load_file(path, max_s=args.minutes * 60 + 60)  # an hour is 230 MB: fine here


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=2)
    parser.add_argument("--audio", help="recording to stream (default: a talk of --minutes)")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of the built talk")
    parser.add_argument("--from", dest="source", default="zh")
    parser.add_argument("--to", dest="target", default=None)
    parser.add_argument("--voice", action="store_true", help="sessions ask for speech output")
    parser.add_argument("--tts", default="kokoro", help="the server's voice backend (--voice)")
    parser.add_argument("--model", default="auto", help="as serve's (auto: by --sessions)")
    parser.add_argument("--replicas", type=int, default=1, help="serve workers behind nginx")
    parser.add_argument(
        "--llm-server", action="store_true", help="workers share llama.cpp's server (openai)"
    )
    parser.add_argument(
        "--llm-url", help="use this OpenAI-compatible LLM server (e.g. vLLM on a GPU) instead"
    )
    parser.add_argument("--max-lag", type=float, default=8.0)
    parser.add_argument("--output", default="runs/serve")
    args = parser.parse_args()
    args.target = args.target or ("en" if args.source == "zh" else "zh")
    if args.model == "auto":  # serve's rule, also for the shared llm-server
        args.model = "quality" if args.sessions == 1 else "fast"
    out = Path(args.output).resolve()  # nginx reads paths from its own prefix
    out.mkdir(parents=True, exist_ok=True)
    audio = source_audio(args, Path(tempfile.mkdtemp(prefix="bench-serve-")))
    audio_s = len(audio) / SAMPLE_RATE
    print(
        f"{args.sessions} session(s), {args.source}->{args.target}, {audio_s:.0f} s of audio each, "
        f"voice {args.tts if args.voice else 'off'}, model {args.model}, "
        f"{args.replicas} worker(s){' + llm-server + nginx' if args.llm_server else ''}",
        file=sys.stderr,
    )
    servers = Servers(out)
    try:
        url = start_layout(args, out, servers)
        records, samples = asyncio.run(run_clients(url, audio, args, servers.pids()))
    finally:
        servers.stop()
    report = summarize(records, samples, audio_s)
    keys = ("sessions", "source", "target", "voice", "tts", "model", "replicas", "llm_server")
    report["layout"] = {k: getattr(args, k) for k in keys}
    report["llm"] = llm_load(out / "llm-native.log", audio_s, args.sessions)
    (out / "serve.json").write_text(json.dumps({**report, "records": records}, indent=1))
    plot(records, out / "lag.png")
    print("session  max_lag  mean_lag  first/last tenth  commit_lag  dropped  units  finish")
    for s in report["sessions"]:
        commit = "-" if s["mean_commit_lag_s"] is None else f"{s['mean_commit_lag_s']:.2f}"
        print(
            f"{s['session']:7d}  {s['max_lag_s']:7.2f}  {s['mean_lag_s']:8.2f}  "
            f"{s['lag_first_tenth_s']:6.2f}/{s['lag_last_tenth_s']:<6.2f}     {commit:>10}  "
            f"{s['dropped_s']:7.1f}  {s['units']:5d}  {s['finish_after_stop_s']:6.1f}"
        )
    print(
        f"cpu {report['cpu_share_of_all_cores']:.0%} of {os.cpu_count()} cores; memory "
        f"{report['rss_mb_start']:.0f} MB at the start, {report['rss_mb_end']:.0f} MB at the end; "
        f"wrote {out / 'serve.json'} and {out / 'lag.png'}"
    )
    if report["llm"]:
        llm = report["llm"]
        print(
            f"llm server: {llm['requests']} requests; per session and second of audio "
            f"{llm['requests_per_session_s']} requests, {llm['prompt_tokens_per_session_s']} "
            f"prompt tokens, {llm['generated_tokens_per_session_s']} generated tokens"
        )
    realtime = all(s["realtime"] for s in report["sessions"])
    max_lag = max(s["max_lag_s"] for s in report["sessions"])
    units = min(s["units"] for s in report["sessions"])
    print(
        f"sessions={args.sessions} realtime={'yes' if realtime else 'no'} "
        f"max_lag_s={max_lag:.2f} subtitles={units}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
