"""Voice-quality arithmetic: a MOS estimate from loss and jitter, and what a WAV file holds.

MOS uses the simplified ITU-T G.107 E-model that is common in monitoring tools::

    effective latency = one-way delay + 2 * jitter + 10 ms         (one-way delay = RTCP round trip / 2, or 0)
    R = 93.2 - effective latency / 40                               if effective latency < 160 ms
    R = 93.2 - (effective latency - 120) / 10                       otherwise
    R = R - 2.5 * packet loss in percent
    MOS = 1 + 0.035 R + 0.000007 R (R - 60) (100 - R)               (1.0 for R <= 0, 4.5 for R >= 100)

It ignores the codec's own impairment (G.711 has none), so it is an upper bound for other codecs.
"""

from __future__ import annotations

import array
import math
import sys
import wave
from pathlib import Path
from typing import Any


def r_factor(loss_percent: float, jitter_ms: float, delay_ms: float = 0.0) -> float:
    effective = delay_ms + 2 * jitter_ms + 10
    r = 93.2 - effective / 40 if effective < 160 else 93.2 - (effective - 120) / 10
    return r - 2.5 * loss_percent


def mos(loss_percent: float, jitter_ms: float, delay_ms: float = 0.0) -> float:
    """The MOS estimate (1.0 to 4.5) for the given loss, mean jitter and one-way delay."""
    r = r_factor(loss_percent, jitter_ms, delay_ms)
    if r <= 0:
        return 1.0
    if r >= 100:
        return 4.5
    return round(1 + 0.035 * r + 7e-6 * r * (r - 60) * (100 - r), 2)


def wav_info(path: str | Path) -> dict[str, Any]:
    """Duration, format and loudness of a 16-bit PCM WAV file; ``ValueError`` for anything else."""
    file = Path(path)
    if not file.is_file():
        raise ValueError(f"WAV file '{file}' does not exist.")
    try:
        with wave.open(str(file), "rb") as reader:
            channels, width, rate, frames = (
                reader.getnchannels(),
                reader.getsampwidth(),
                reader.getframerate(),
                reader.getnframes(),
            )
            data = reader.readframes(frames)
    except (wave.Error, EOFError) as error:
        raise ValueError(
            f"'{file}' is not a readable WAV file ({error}). Use 16-bit PCM, e.g. sox in.wav -b 16 -e signed out.wav."
        ) from None
    if width != 2:
        raise ValueError(
            f"'{file}' has {width * 8}-bit samples; pjsua2 plays 16-bit PCM. Convert it, e.g. sox in.wav -b 16 out.wav."
        )
    samples = array.array("h")
    samples.frombytes(data[: len(data) - len(data) % 2])
    if sys.byteorder == "big":  # pragma: no cover - WAV is little-endian
        samples.byteswap()
    peak = max((abs(value) for value in samples), default=0)
    rms = math.sqrt(sum(value * value for value in samples) / len(samples)) if samples else 0.0
    return {
        "path": str(file),
        "duration": round(frames / rate, 3) if rate else 0.0,
        "sample_rate": rate,
        "channels": channels,
        "frames": frames,
        "peak": peak,
        "rms": round(rms, 1),
        "rms_dbfs": round(20 * math.log10(rms / 32768), 1) if rms > 0 else -math.inf,
    }
