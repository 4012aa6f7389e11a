"""Vocabulary helpers shared by the backends that ban Chinese tokens for English output."""

from __future__ import annotations

# UTF-8 lead bytes of U+3000..U+9FFF (CJK punctuation, kana, ideographs) and of U+FF00..U+FFEF.
CJK_LEAD_BYTES = frozenset(range(0xE3, 0xEA)) | {0xEF}


def byte_decoder() -> dict[str, int]:
    """The inverse of GPT-2's reversible byte-to-unicode table used by byte-level BPE."""
    printable = (
        list(range(ord("!"), ord("~") + 1))
        + list(range(ord("¡"), ord("¬") + 1))
        + list(range(ord("®"), ord("ÿ") + 1))
    )
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return {chr(code): byte for byte, code in zip(printable, codes, strict=True)}
