"""simulinterp: simultaneous interpretation between Chinese and English.

Nothing happens at import: models load only when a backend is built.
"""

__version__ = "0.1.0"
