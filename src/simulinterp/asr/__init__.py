"""Streaming speech recognition: whisper on short windows, VAD endpoints, LocalAgreement."""
