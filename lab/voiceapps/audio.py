"""Audio without numpy: 16-bit mono PCM WAV files, tone synthesis, and the prompts the applications play.

Samples are ``array('h')`` (signed 16-bit). Every prompt is generated (no audio assets in the repository):
tones and short melodies that a listener, and a test, can tell apart.
"""

from __future__ import annotations

import math
import time
import wave
from array import array
from collections.abc import Iterable, Sequence
from pathlib import Path

FULL_SCALE = 32767
RATE = 8000


def dbfs_to_amplitude(level_dbfs: float) -> float:
    """The peak amplitude (0..1 of full scale) of a sine at ``level_dbfs`` (0 dBFS: a full-scale sine)."""
    return float(10 ** (level_dbfs / 20))


def tone(frequencies: Sequence[float], milliseconds: float, *, rate: int = RATE, level_dbfs: float = -10.0) -> array:
    """A sum of sines, each at ``level_dbfs``, with 5 ms raised-cosine edges (no clicks)."""
    count = round(rate * milliseconds / 1000)
    amplitude = dbfs_to_amplitude(level_dbfs) * FULL_SCALE
    ramp = min(count // 2, round(rate * 0.005))
    steps = [2 * math.pi * frequency / rate for frequency in frequencies]
    out = array("h", bytes(2 * count))
    for index in range(count):
        value = sum(math.sin(step * index) for step in steps) * amplitude
        if ramp and (index < ramp or index >= count - ramp):
            edge = index if index < ramp else count - 1 - index
            value *= 0.5 - 0.5 * math.cos(math.pi * edge / ramp)
        out[index] = max(-FULL_SCALE, min(FULL_SCALE, round(value)))
    return out


def silence(milliseconds: float, *, rate: int = RATE) -> array:
    return array("h", bytes(2 * round(rate * milliseconds / 1000)))


def concat(parts: Iterable[array]) -> array:
    out = array("h")
    for part in parts:
        out.extend(part)
    return out


def write_wav(path: str | Path, samples: array, rate: int = RATE) -> Path:
    """Write 16-bit mono PCM; returns the path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(target), "wb") as stream:
        stream.setnchannels(1)
        stream.setsampwidth(2)
        stream.setframerate(rate)
        stream.writeframes(samples.tobytes())
    return target


def read_wav(path: str | Path) -> tuple[array, int]:
    """(samples, rate) of a PCM WAV file; 8-bit is widened, stereo keeps the first channel.

    A WAV whose header was never finalised (a recorder killed mid-call) is read up to its last whole frame.
    """
    with wave.open(str(path), "rb") as stream:
        channels, width, rate = stream.getnchannels(), stream.getsampwidth(), stream.getframerate()
        data = stream.readframes(stream.getnframes())
    if width == 2:
        samples = array("h")
        samples.frombytes(data[: len(data) - len(data) % 2])
    elif width == 1:
        samples = array("h", ((octet - 128) << 8 for octet in data))
    else:
        raise ValueError(f"WAV file '{path}' has {8 * width}-bit samples; only 8 and 16 bit are read.")
    if channels > 1:
        samples = samples[::channels]
    return samples, rate


def read_closed_wav(path: str | Path, timeout: float = 3.0) -> tuple[array, int]:
    """`read_wav` of a file a recorder is still closing: pjmedia's conference removes (and so finalises) a
    recorder asynchronously, on its next clock tick after ``destroy``. Retries until ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return read_wav(path)
        except (wave.Error, EOFError, FileNotFoundError):
            if time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def duration_of(samples: Sequence[int], rate: int) -> float:
    return len(samples) / rate if rate else 0.0


def rms_dbfs(samples: Sequence[int]) -> float:
    """RMS level relative to a full-scale sine's RMS (so a full-scale sine reads 0 dBFS); -inf for silence."""
    if not samples:
        return -math.inf
    power = sum(value * value for value in samples) / len(samples)
    if power <= 0:
        return -math.inf
    return 10 * math.log10(power / (FULL_SCALE * FULL_SCALE / 2))


def active_seconds(samples: Sequence[int], rate: int, *, threshold_dbfs: float = -45.0, frame_ms: int = 20) -> float:
    """Seconds of ``samples`` whose 20 ms frames are louder than ``threshold_dbfs`` (how much was said)."""
    frame = max(1, rate * frame_ms // 1000)
    limit = (dbfs_to_amplitude(threshold_dbfs) * FULL_SCALE) ** 2 / 2
    loud = 0
    for start in range(0, len(samples) - frame + 1, frame):
        chunk = samples[start : start + frame]
        if sum(value * value for value in chunk) / frame > limit:
            loud += 1
    return loud * frame / rate


# --- the prompts -----------------------------------------------------------------------------------------


def greeting(rate: int = RATE) -> array:
    """Voicemail: a rising three-note chime, then the beep (about 1.4 s)."""
    return concat(
        [
            tone([523.25], 250, rate=rate, level_dbfs=-14),
            tone([659.25], 250, rate=rate, level_dbfs=-14),
            tone([783.99], 250, rate=rate, level_dbfs=-14),
            silence(200, rate=rate),
            tone([1000.0], 400, rate=rate, level_dbfs=-12),
        ]
    )


def notice(rate: int = RATE) -> array:
    """Callback: the call-back message (two 2-note pairs, about 1.6 s)."""
    pair = [tone([587.33], 300, rate=rate, level_dbfs=-14), tone([440.0], 300, rate=rate, level_dbfs=-14)]
    return concat([*pair, silence(200, rate=rate), *pair, silence(200, rate=rate)])


def prompt(rate: int = RATE) -> array:
    """Two-factor and IVR prompt: two short 880 Hz pips (0.5 s)."""
    pip = tone([880.0], 150, rate=rate, level_dbfs=-12)
    return concat([pip, silence(100, rate=rate), pip, silence(100, rate=rate)])


def success(rate: int = RATE) -> array:
    """Accepted: a rising major third (0.6 s)."""
    return concat([tone([659.25], 250, rate=rate), tone([830.61], 350, rate=rate)])


def failure(rate: int = RATE) -> array:
    """Rejected: a low falling pair (0.6 s)."""
    return concat([tone([392.0], 250, rate=rate), tone([311.13], 350, rate=rate)])


def music(rate: int = RATE) -> array:
    """Music on hold: a slow arpeggio of 4 s, played in a loop."""
    notes = [261.63, 329.63, 392.0, 523.25, 392.0, 329.63, 293.66, 349.23]
    return concat([tone([note], 480, rate=rate, level_dbfs=-18) for note in notes] + [silence(160, rate=rate)])


PROMPTS = {
    "greeting": greeting,
    "notice": notice,
    "prompt": prompt,
    "success": success,
    "failure": failure,
    "music": music,
}


def write_prompts(directory: str | Path, rate: int = RATE) -> dict[str, tuple[Path, float]]:
    """Generate every prompt as ``<name>.wav`` in ``directory``: name -> (path, seconds)."""
    folder = Path(directory)
    written: dict[str, tuple[Path, float]] = {}
    for name, make in PROMPTS.items():
        samples = make(rate)
        written[name] = (write_wav(folder / f"{name}.wav", samples, rate), duration_of(samples, rate))
    return written
