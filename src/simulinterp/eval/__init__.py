"""Evaluation of simultaneous translation: latency and quality metrics."""
