"""Helpers shared by SipLibrary's tests (a module name of its own, so no other test folder's helpers shadow it)."""

from __future__ import annotations

import math
import struct
import sys
import wave
from pathlib import Path

PYTHON = sys.executable
HERE = Path(__file__).resolve().parent
LIBRARIES = HERE.parents[2] / "libraries"
PEER = HERE / "sip_peer.py"


def write_tone(path: Path, *, seconds: float, frequency: float = 440.0, rate: int = 8000) -> Path:
    """A 16-bit mono sine WAV written with the standard library."""
    frames = int(seconds * rate)
    with wave.open(str(path), "wb") as writer:
        writer.setnchannels(1)
        writer.setsampwidth(2)
        writer.setframerate(rate)
        writer.writeframes(
            b"".join(
                struct.pack("<h", int(12000 * math.sin(2 * math.pi * frequency * i / rate))) for i in range(frames)
            )
        )
    return path
