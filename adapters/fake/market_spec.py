"""A fake market source from a scenario's ``[market]`` table: replayed files or the seeded generator."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adapters.fake.calendar import ArraySessionCalendar
from adapters.fake.market import KNOWN_FILES
from adapters.fake.market_generator import GeneratorSource, Regime
from adapters.fake.market_paths import PathSource
from adapters.fake.market_replay import ReplaySource


def market_from_spec(
    spec: Any,
    *,
    symbols: Sequence[str],
    sectors: Mapping[str, str],
    seed: int,
    bar_interval_s: int,
    start_date: str,
    calendar: ArraySessionCalendar | None = None,
    default_ticks: str = "bar",
) -> PathSource:
    """A MarketSource from a scenario's ``[market]`` table (any object with those attributes).

    source = "replay": ``files`` maps symbol -> file (relative to the data dir); symbols without an entry
    use KNOWN_FILES. source = "generator": drift_bps_per_day, vol_pct_per_day, correlation, spread_bps,
    regimes (objects with at, kind, size_pct, duration_s).
    ticks = "bar" | "realistic" (None or absent: ``default_ticks``, which is "bar" for the in-process simulation
    and "realistic" for ``ttlive fake-alpaca``) and tick_rate (realistic arrival-rate scale) choose the ticks
    between bars (PathSource.set_ticks).
    """
    market = _source(spec, symbols, sectors, seed, bar_interval_s, start_date, calendar)
    market.set_ticks(getattr(spec, "ticks", None) or default_ticks, float(getattr(spec, "tick_rate", 1.0)))
    return market


def _source(
    spec: Any,
    symbols: Sequence[str],
    sectors: Mapping[str, str],
    seed: int,
    bar_interval_s: int,
    start_date: str,
    calendar: ArraySessionCalendar | None,
) -> PathSource:
    source = getattr(spec, "source", "replay")
    spread_bps = float(getattr(spec, "spread_bps", 2.0))
    if source == "replay":
        files = dict(getattr(spec, "files", {}) or {})
        missing = [s for s in symbols if s not in files and s not in KNOWN_FILES]
        if missing:
            raise ValueError(
                f"no market file for {', '.join(missing)} (known: {', '.join(sorted(KNOWN_FILES))})"
            )
        chosen = {s: files.get(s, KNOWN_FILES.get(s, "")) for s in symbols}
        return ReplaySource(chosen, sectors, bar_interval_s, seed, spread_bps=spread_bps, calendar=calendar)
    if source == "generator":
        regimes = [
            Regime(
                at=r.at,
                kind=r.kind,
                size_pct=float(r.size_pct),
                duration_s=float(r.duration_s),
                day=getattr(r, "day", None),
            )
            for r in getattr(spec, "regimes", ())
        ]
        return GeneratorSource(
            symbols,
            sectors,
            seed,
            drift_bps_per_day=float(getattr(spec, "drift_bps_per_day", 0.0)),
            vol_pct_per_day=float(getattr(spec, "vol_pct_per_day", 2.0)),
            correlation=getattr(spec, "correlation", 0.3),
            spread_bps=spread_bps,
            regimes=regimes,
            bar_interval_s=bar_interval_s,
            start_date=start_date,
            calendar=calendar,
        )
    if source == "recorded":  # a replayed capture's bars (files already resolved to paths by the loader)
        from adapters.fake.market_recorded import RecordedSource

        if calendar is None:
            raise ValueError("a recorded market needs the world's calendar")
        files = dict(getattr(spec, "files", {}) or {})
        return RecordedSource({s: files[s] for s in symbols}, sectors, bar_interval_s, seed, spread_bps=spread_bps,
                              calendar=calendar)
    raise ValueError(f"unknown market source {source!r} (replay | generator | recorded)")
