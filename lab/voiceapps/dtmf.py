"""In-band DTMF: tone synthesis and a Goertzel detector in pure Python (no numpy).

The detector slides a window of 25.6 ms (205 samples at 8 kHz, the classic Goertzel block) in 10 ms
steps and runs the Goertzel filter at the eight DTMF frequencies. A window holds a digit when:

* the strongest row and the strongest column tone each reach ``min_level_dbfs`` (a column tone is looked for
  at its nominal frequency and 1.5 % either side, the tolerance ITU-T Q.24 asks for);
* *twist*: the column tone is at most ``reverse_twist_db`` above and at most ``normal_twist_db`` below the row tone;
* *relative peak*: each beats every other tone of its group by ``relative_peak_db``;
* *purity*: the two tones carry at least ``purity`` of the window's energy (speech, music, noise, single
  tones and off-frequency tone pairs fail here; so does a window only partly covered by a tone).

Runs of windows holding the same digit become one `Detection` (a held key is one digit) when the run lasts
``min_tone_ms``; a run broken by at most ``max_dropout_ms`` of failing windows is the same tone; a digit
repeated after a real pause (``11``) is two digits.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lab.voiceapps.audio import FULL_SCALE, RATE, concat, dbfs_to_amplitude, read_wav, silence, tone

ROWS = (697.0, 770.0, 852.0, 941.0)
COLUMNS = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
DIGITS = "".join(KEYPAD)
TOLERANCE = 0.015  # ITU-T Q.24: tones within 1.5 % of nominal must be accepted


def frequencies_of(digit: str) -> tuple[float, float]:
    """(row, column) frequency of a DTMF key."""
    key = digit.upper()
    for row, keys in enumerate(KEYPAD):
        if key in keys:
            return ROWS[row], COLUMNS[keys.index(key)]
    raise ValueError(f"'{digit}' is not a DTMF key; use one of {DIGITS}.")


def dtmf_tones(
    digits: str,
    *,
    rate: int = RATE,
    tone_ms: float = 100.0,
    gap_ms: float = 100.0,
    level_dbfs: float = -10.0,
    lead_ms: float = 0.0,
    tail_ms: float = 0.0,
) -> array:
    """The audio of dialling ``digits`` in-band: each key a dual tone (both at ``level_dbfs``) and a pause."""
    parts = [silence(lead_ms, rate=rate)]
    for index, digit in enumerate(digits):
        parts.append(tone(frequencies_of(digit), tone_ms, rate=rate, level_dbfs=level_dbfs))
        if index < len(digits) - 1:
            parts.append(silence(gap_ms, rate=rate))
    parts.append(silence(tail_ms, rate=rate))
    return concat(parts)


@dataclass(frozen=True)
class DetectorSettings:
    """Thresholds of the detector (the defaults follow common practice, e.g. spandsp and ITU-T Q.24)."""

    window_ms: float = 25.6
    step_ms: float = 10.0
    min_level_dbfs: float = -36.0  # each tone's peak; about -33 dBm0 in G.711
    normal_twist_db: float = 8.0  # row (low group) louder than column
    reverse_twist_db: float = 4.0  # column (high group) louder than row
    relative_peak_db: float = 8.0
    purity: float = 0.6
    min_tone_ms: float = 40.0
    max_dropout_ms: float = 10.0


@dataclass(frozen=True)
class Detection:
    digit: str
    start: float  # seconds from the start of the audio
    duration: float  # seconds (the windows' span, so slightly longer than the tone)
    level_dbfs: float  # of the weaker tone, peak


class _Filter:
    """Goertzel filters for one sample rate: one per row tone; three per column tone (nominal and +-1.5 %),
    because 1.5 % of a column frequency is half a bin of a 25.6 ms window and would lose most of the power."""

    def __init__(self, rate: int) -> None:
        frequencies = [*ROWS]
        for column in COLUMNS:
            frequencies += [column * (1 - TOLERANCE), column, column * (1 + TOLERANCE)]
        self.coefficients = [2 * math.cos(2 * math.pi * frequency / rate) for frequency in frequencies]

    def powers(self, window: Sequence[float]) -> list[float]:
        """Power at the 8 DTMF tones (a column's best of its three filters)."""
        raw = []
        for coefficient in self.coefficients:
            previous = before = 0.0
            for sample in window:
                previous, before = sample + coefficient * previous - before, previous
            raw.append(previous * previous + before * before - coefficient * previous * before)
        return raw[:4] + [max(raw[index : index + 3]) for index in range(4, 16, 3)]


class DtmfDetector:
    def __init__(self, rate: int = RATE, settings: DetectorSettings | None = None) -> None:
        if rate < 4000:
            raise ValueError(f"Sample rate {rate} Hz is too low for DTMF (1633 Hz needs at least 4 kHz).")
        self.rate = rate
        self.settings = settings or DetectorSettings()
        self.size = max(32, round(rate * self.settings.window_ms / 1000))
        self.step = max(1, round(rate * self.settings.step_ms / 1000))
        self._filter = _Filter(rate)
        amplitude = dbfs_to_amplitude(self.settings.min_level_dbfs)
        # Goertzel power of a sine of amplitude a (in full-scale units) over N samples is (a * N / 2) ** 2.
        self._min_power = (amplitude * self.size / 2) ** 2
        self._min_energy = 2 * self.size * amplitude**2 / 2  # two tones at the minimum level

    def classify(self, window: Sequence[float]) -> tuple[str, float] | None:
        """The digit one window holds and the weaker tone's level in dBFS, or ``None``."""
        energy = math.fsum(sample * sample for sample in window)
        if energy < self._min_energy:
            return None
        powers = self._filter.powers(window)
        rows, columns = powers[:4], powers[4:]
        row = max(range(4), key=rows.__getitem__)
        column = max(range(4), key=columns.__getitem__)
        row_power, column_power = rows[row], columns[column]
        settings = self.settings
        if row_power < self._min_power or column_power < self._min_power:
            return None
        if column_power > row_power * 10 ** (settings.reverse_twist_db / 10):
            return None
        if row_power > column_power * 10 ** (settings.normal_twist_db / 10):
            return None
        peak = 10 ** (settings.relative_peak_db / 10)
        if any(power * peak > row_power for index, power in enumerate(rows) if index != row):
            return None
        if any(power * peak > column_power for index, power in enumerate(columns) if index != column):
            return None
        if 2 * (row_power + column_power) / (self.size * energy) < settings.purity:
            return None
        weaker = min(row_power, column_power)
        level = 20 * math.log10(max(2 * math.sqrt(weaker) / self.size, 1e-12))
        return KEYPAD[row][column], level

    def detect(self, samples: Sequence[int]) -> list[Detection]:
        """Every digit in ``samples`` (16-bit PCM at this detector's rate), in order."""
        scaled = [sample / FULL_SCALE for sample in samples]
        labels: list[tuple[str, float] | None] = []
        for start in range(0, len(scaled) - self.size + 1, self.step):
            labels.append(self.classify(scaled[start : start + self.size]))
        return self._runs(labels)

    def _runs(self, labels: list[tuple[str, float] | None]) -> list[Detection]:
        settings = self.settings
        bridge = int(settings.max_dropout_ms // settings.step_ms)
        step_s, window_s = self.step / self.rate, self.size / self.rate
        detections: list[Detection] = []
        digit: str | None = None
        first = last = 0
        levels: list[float] = []

        def close() -> None:
            if digit is None:
                return
            span = (last - first) * step_s + window_s
            if span * 1000 >= settings.min_tone_ms:
                detections.append(Detection(digit, round(first * step_s, 4), round(span, 4), round(max(levels), 1)))

        for index, label in enumerate(labels):
            if label is None:
                if digit is not None and index - last > bridge:
                    close()
                    digit = None
                continue
            key, level = label
            if key == digit and index - last <= bridge + 1:
                last = index
                levels.append(level)
                continue
            close()
            digit, first, last, levels = key, index, index, [level]
        close()
        return detections


def detect(samples: Sequence[int], rate: int = RATE, settings: DetectorSettings | None = None) -> list[Detection]:
    return DtmfDetector(rate, settings).detect(samples)


def detect_digits(samples: Sequence[int], rate: int = RATE, settings: DetectorSettings | None = None) -> str:
    return "".join(detection.digit for detection in detect(samples, rate, settings))


def detect_file(path: str | Path, settings: DetectorSettings | None = None) -> list[Detection]:
    """The digits in a WAV file (any rate of 4 kHz or more; 16-bit or 8-bit PCM)."""
    samples, rate = read_wav(path)
    return detect(samples, rate, settings)
