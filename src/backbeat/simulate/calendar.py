"""When people listen: the daily and weekly activity cycle used to thin session starts.

Local time is solar time from longitude (15 degrees per hour), which is close enough for
synthetic data and needs no time-zone database. Activity follows a cosine peaking at
``PEAK_HOUR`` local time with depth ``damping``; weekends (Saturday and Sunday, starting
``weekend-damping-offset`` minutes early, with linear ramps ``weekend-damping-scale`` minutes
wide) lose a share ``weekend-damping`` of their activity, as in eventsim.

Next: ``engine.py`` accepts a candidate session start with probability ``activity(...)``;
``steady.py`` integrates activity back from the start.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from backbeat.simulate.config import EventsimConfig

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

PEAK_HOUR: Final = 15.5
_MS_PER_MIN: Final = 60_000
_WEEK_MIN: Final = 7 * 1440
_SATURDAY_MIN: Final = 5 * 1440  # minutes from Monday 00:00
_EPOCH_WEEKDAY: Final = 3  # 1970-01-01 was a Thursday (Monday = 0)


def local_offset_ms(lon: F64) -> I64:
    """Offset of solar local time from UTC, per longitude."""
    return np.rint(lon / 15.0 * 3_600_000).astype(np.int64)


def local_hour(ts_ms: I64, lon: F64) -> F64:
    """Hour of day (float, [0, 24)) in the user's local solar time."""
    local = ts_ms + local_offset_ms(lon)
    return (local % 86_400_000) / 3_600_000.0


def weekend_share(ts_ms: I64, lon: F64, config: EventsimConfig) -> F64:
    """How much of the weekend applies at this local time (0 weekday, 1 weekend, ramps)."""
    minutes = (ts_ms + local_offset_ms(lon)) // _MS_PER_MIN + _EPOCH_WEEKDAY * 1440
    m = ((minutes + int(config.weekend_damping_offset)) % _WEEK_MIN).astype(np.float64)
    half = config.weekend_damping_scale / 2.0
    scale = max(config.weekend_damping_scale, 1e-9)
    ramp_in = np.clip((m - _SATURDAY_MIN + half) / scale, 0.0, 1.0)
    ramp_out = np.clip((m - _WEEK_MIN + half) / scale, 0.0, 1.0)
    tail = np.clip((half - m) / scale, 0.0, 1.0)
    return np.clip(ramp_in - ramp_out + tail, 0.0, 1.0)


class ActivityTable:
    """``activity`` precomputed per local minute of the week: one gather per lookup."""

    def __init__(self, config: EventsimConfig) -> None:
        monday = 4 * 86_400_000  # 1970-01-05 was a Monday
        minutes = monday + np.arange(_WEEK_MIN, dtype=np.int64) * _MS_PER_MIN
        self.table = activity(minutes + _MS_PER_MIN // 2, np.zeros(_WEEK_MIN), config)

    def __call__(self, ts_ms: I64, lon: F64) -> F64:
        minute = (ts_ms + local_offset_ms(lon)) // _MS_PER_MIN - 4 * 1440
        out: F64 = self.table[minute % _WEEK_MIN]
        return out

    def since(self, t_ms: int, lon: F64, amount: F64) -> F64:
        """How long before ``t_ms`` (ms, per user) the activity integrated back from ``t_ms``
        reaches ``amount`` (activity x ms); ``inf`` beyond a week back."""
        week = self.table
        cum = np.concatenate([[0.0], np.cumsum(np.tile(week, 2))])  # two weeks of minutes
        now = ((t_ms + local_offset_ms(lon)) / _MS_PER_MIN - 4 * 1440) % _WEEK_MIN + _WEEK_MIN
        whole = now.astype(np.int64)
        at_now = cum[whole] + (now - whole) * week[whole % _WEEK_MIN]
        target = at_now - amount / _MS_PER_MIN
        j = np.clip(np.searchsorted(cum, target, side="right") - 1, 0, len(cum) - 2)
        then = j + (target - cum[j]) / week[j % _WEEK_MIN]
        out: F64 = np.where(target >= 0, (now - then) * _MS_PER_MIN, np.inf)
        return out


def activity(ts_ms: I64, lon: F64, config: EventsimConfig) -> F64:
    """Relative activity in (0, 1] at these times for users at these longitudes."""
    hour = local_hour(ts_ms, lon)
    daily = 1.0 - config.damping * 0.5 * (1.0 - np.cos(2 * np.pi * (hour - PEAK_HOUR) / 24.0))
    return daily * (1.0 - config.weekend_damping * weekend_share(ts_ms, lon, config))
