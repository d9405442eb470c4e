"""In-band DTMF: the dual tones a phone keypad makes, written to a WAV file a test phone can play into a call."""

from __future__ import annotations

import math
import struct
import wave
from pathlib import Path

RATE = 8000
ROWS = (697, 770, 852, 941)
COLUMNS = (1209, 1336, 1477, 1633)
KEYPAD = ("123A", "456B", "789C", "*0#D")
FREQUENCIES = {key: (ROWS[row], COLUMNS[column]) for row, keys in enumerate(KEYPAD) for column, key in enumerate(keys)}


def write_dtmf_wav(
    digits: str,
    path: str | Path,
    *,
    tone_ms: int = 120,
    gap_ms: int = 120,
    level_dbfs: float = -10.0,
    lead_ms: int = 300,
) -> Path:
    """Write ``digits`` as DTMF tones (8 kHz, 16-bit mono) with silence between them and before the first."""
    unknown = [digit for digit in digits.upper() if digit not in FREQUENCIES]
    if not digits or unknown:
        raise ValueError(f"DTMF digits '{digits}' must be 0-9, *, # or A-D.")
    if tone_ms < 40 or gap_ms < 40:
        raise ValueError(f"Tones and gaps of {tone_ms}/{gap_ms} ms are too short to detect; use at least 40 ms.")
    amplitude = 32767 * 10 ** (level_dbfs / 20) / 2  # two tones share the level
    samples: list[int] = [0] * (RATE * lead_ms // 1000)
    for digit in digits.upper():
        low, high = FREQUENCIES[digit]
        for n in range(RATE * tone_ms // 1000):
            t = n / RATE
            samples.append(round(amplitude * (math.sin(2 * math.pi * low * t) + math.sin(2 * math.pi * high * t))))
        samples.extend([0] * (RATE * gap_ms // 1000))
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return target
