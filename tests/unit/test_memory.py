"""glibc's allocator settings for long runs."""

from __future__ import annotations

import sys

import pytest

from simulinterp.memory import limit_heap_growth


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")
def test_glibc_takes_the_settings():
    assert limit_heap_growth() is True


def test_elsewhere_nothing_changes(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    assert limit_heap_growth() is False
