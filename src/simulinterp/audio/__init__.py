"""Audio in: decode any recording or a live microphone to float32 mono 16 kHz chunks.

Nothing heavy is imported here: soundfile, PyAV, soxr and sounddevice load when first used.
"""

from simulinterp.audio.io import SAMPLE_RATE, AudioError, AudioInfo, load_file, probe, stream_file
from simulinterp.audio.sources import (
    AudioChunk,
    FileSource,
    MicrophoneSource,
    list_input_devices,
)

__all__ = [
    "SAMPLE_RATE",
    "AudioChunk",
    "AudioError",
    "AudioInfo",
    "FileSource",
    "MicrophoneSource",
    "list_input_devices",
    "load_file",
    "probe",
    "stream_file",
]
