"""bench/leak_bias: what the Latin constraint for Chinese output costs the llama.cpp backend.

A Chinese target bans every Latin token (about 94,000 of Qwen2.5's 151,643 ordinary tokens)
except those that can spell the sentence's names and glossary targets, through ``logit_bias``.
This measures, with the packaged 0.5B model:

* reading the Latin tokens from the GGUF (once; then cached in the model folder) and indexing
  them;
* finding the banned ids for a new allowed set, and for one already seen (kept per set);
* one request for a single token on a cached prompt without a bias, with the CJK ban, with
  the full Latin ban in the request, and as the backend does it (tokens banned on demand: the
  request bans only the Latin tokens the model has tried before, and is repeated when it tries
  a new one);
* one step of a sentence the model leaks a word of ("millennia"), full ban and on demand, and
  whether both give the same text.

    python bench/leak_bias.py --repeats 20

It ends with one summary line.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from simulinterp.leaks import allowed_latin
from simulinterp.llm import llamacpp
from simulinterp.llm.llamacpp import LlamaCppBackend
from simulinterp.llm.models import ensure_model
from simulinterp.translate.prompts import STOP_STRINGS, build_prompt

SOURCE = "NASA's Kepler mission has discovered thousands of potential planets around other stars."
LEAKY = "Glaciers and sea ice that have been with us for millennia are now disappearing."


@contextmanager
def _full_ban() -> Iterator[None]:
    """Every request bans all disallowed Latin tokens at once (no rounds on demand)."""
    saved = llamacpp._ON_DEMAND_ROUNDS
    llamacpp._ON_DEMAND_ROUNDS = 0
    try:
        yield
    finally:
        llamacpp._ON_DEMAND_ROUNDS = saved


def _ms(fn, repeats: int) -> float:
    """Median wall time of ``fn()`` in milliseconds."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(1000 * (time.perf_counter() - started))
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    llm = LlamaCppBackend(ensure_model(args.model), threads=args.threads)
    started = time.perf_counter()
    tokens = llm._latin_tokens
    index_s = time.perf_counter() - started
    allowed = allowed_latin(SOURCE, ["Galaxy Media"])
    fresh_ms = _ms(lambda: tokens.banned(allowed), args.repeats)
    llm._latin_bias(frozenset(allowed))
    cached_ms = _ms(lambda: llm._latin_bias(frozenset(allowed)), args.repeats)
    prompt = build_prompt("en", "zh", SOURCE)

    def request(**options) -> None:
        llm.continue_text(prompt, max_tokens=1, stop=STOP_STRINGS, **options)

    request()  # fill the key/value cache
    plain = _ms(request, args.repeats)
    cjk = _ms(lambda: request(ban_cjk=True), args.repeats)
    with _full_ban():
        full = _ms(lambda: request(allow_latin=allowed), args.repeats)
    on_demand = _ms(lambda: request(allow_latin=allowed), args.repeats)
    leaky = build_prompt("en", "zh", LEAKY)
    leaky_allowed = allowed_latin(LEAKY)

    def step() -> str:
        return llm.continue_text(
            leaky, max_tokens=24, stop=STOP_STRINGS, allow_latin=leaky_allowed
        ).text

    free = llm.continue_text(leaky, max_tokens=24, stop=STOP_STRINGS).text
    with _full_ban():
        full_step, full_text = _ms(step, 3), step()
    llm._latin_seen.clear()
    started = time.perf_counter()
    first_text = step()  # learns the leaked token
    first_step = 1000 * (time.perf_counter() - started)
    later_step = _ms(step, 3)
    banned = len(tokens.banned(allowed))
    print(f"Latin tokens: {len(tokens.ids)}, banned for {sorted(allowed)}: {banned}")
    print(f"read + index the Latin tokens: {index_s:.2f} s (first run reads the GGUF)")
    print(
        f"banned ids for a new allowed set: {fresh_ms:.2f} ms; for a known one: {cached_ms:.4f} ms"
    )
    print(
        f"one-token request: {plain:.1f} ms plain, {cjk:.1f} ms with the CJK ban, "
        f"{full:.1f} ms with the full Latin ban, {on_demand:.1f} ms with the ban on demand"
    )
    print(f"free: {free!r}\nconstrained: {first_text!r}")
    print(
        f"24-token step of a leaky sentence: {full_step:.0f} ms full ban, {first_step:.0f} ms "
        f"on demand the first time, {later_step:.0f} ms after; same text: {first_text == full_text}"
    )
    print(
        f"summary: a full ban adds {full - plain:.1f} ms per request ({banned} ids), the ban on "
        f"demand {on_demand - plain:.1f} ms; a new allowed set costs {fresh_ms:.1f} ms once"
    )
    llm.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
