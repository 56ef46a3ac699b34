"""A seeded market for the fake venue: correlated random walks with sectors and scripted regime shifts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from adapters.fake.calendar import ArraySessionCalendar, NyseCalendar, ns_at
from adapters.fake.market_paths import DayPath, PathSource, seeded_rng, to_cents, u_shape_split
from core.model import NS_PER_S

FLASH_CRASH_SPREAD_MULT = 5.0  # spreads widen while a flash crash runs


@dataclass(frozen=True, slots=True)
class Regime:
    """A generator regime shift: at ET wall time ``at`` on session ``day`` (0-based; None = every day)."""

    at: str
    kind: Literal["calm", "trend", "flash_crash"]
    size_pct: float = 0.0  # trend: total move in %, signed; flash_crash: depth in %; calm: vol in % of normal
    duration_s: float = 600.0
    day: int | None = None


class GeneratorSource(PathSource):
    """Correlated geometric Brownian motion with sector structure and scripted regime shifts.

    ``correlation`` is one number (pairwise correlation inside a sector; across sectors
    ``cross_sector_correlation``) or a full matrix in symbol order. Sessions follow the calendar from
    ``start_date`` (minus ``history_days`` warm-up sessions); each session's path is seeded by
    (seed, date) and starts at the previous session's close, so any day can be rebuilt alone.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        sectors: Mapping[str, str] | None = None,
        seed: int = 0,
        *,
        drift_bps_per_day: float = 0.0,
        vol_pct_per_day: float = 2.0,
        correlation: float | Sequence[Sequence[float]] = 0.3,
        cross_sector_correlation: float = 0.0,
        spread_bps: float = 2.0,
        regimes: Sequence[Regime] = (),
        bar_interval_s: int = 60,
        start_date: str = "2014-06-02",
        history_days: int = 0,
        start_prices: Mapping[str, Decimal | float] | None = None,
        volume_per_day: int = 2_000_000,
        calendar: ArraySessionCalendar | None = None,
    ) -> None:
        super().__init__(
            symbols=symbols, sectors=sectors, bar_interval_s=bar_interval_s, seed=seed, spread_bps=spread_bps
        )
        if not symbols:
            raise ValueError("GeneratorSource needs at least one symbol")
        if vol_pct_per_day < 0:
            raise ValueError("vol_pct_per_day must be >= 0")
        self._cal = calendar if calendar is not None else NyseCalendar()
        self._drift = drift_bps_per_day / 10_000.0
        self._vol = vol_pct_per_day / 100.0
        self._regimes = tuple(regimes)
        for r in self._regimes:
            dt.time.fromisoformat(r.at)
            if r.kind not in ("calm", "trend", "flash_crash"):
                raise ValueError(f"unknown regime kind {r.kind!r}")
        self._volume = volume_per_day
        self._chol = np.linalg.cholesky(self._correlation(correlation, cross_sector_correlation))
        self._start = self._cal.first_session_on_or_after(start_date)
        self._first = max(0, self._start - history_days)
        prices = dict(start_prices or {})
        self._opening = [np.array([float(prices.get(s, 100.0)) for s in self._symbols])]  # per session
        self._all_days: dict[int, dict[str, DayPath]] = {}

    def _correlation(self, corr: float | Sequence[Sequence[float]], cross: float) -> NDArray[Any]:
        m = len(self._symbols)
        if isinstance(corr, (int, float)):
            mat = np.full((m, m), float(cross))
            for i, a in enumerate(self._symbols):
                for j, b in enumerate(self._symbols):
                    if self.sector(a) == self.sector(b):
                        mat[i, j] = float(corr)
            np.fill_diagonal(mat, 1.0)
        else:
            mat = np.array(corr, dtype=float)
            if mat.shape != (m, m) or not np.allclose(mat, mat.T) or not np.allclose(np.diag(mat), 1.0):
                raise ValueError(f"correlation matrix must be symmetric {m}x{m} with ones on the diagonal")
        if np.any(np.abs(mat) > 1.0) or np.min(np.linalg.eigvalsh(mat)) <= 0:
            raise ValueError("correlation matrix is not positive definite")
        return mat

    def _sessions(self, symbol: str) -> ArraySessionCalendar:
        return self._cal

    def _build(self, symbol: str, index: int) -> DayPath | None:
        if index < self._first:
            return None
        if index not in self._all_days:
            self._all_days = {index: self._build_all(index)}  # one day of all symbols at a time
            for s, day in self._all_days[index].items():
                self._remember((s, index), day)
        return self._all_days[index][symbol]

    def _opening_prices(self, index: int) -> NDArray[Any]:
        """Open of session index = close of the one before; walk forward once, remember the opens."""
        rel = index - self._first
        while len(self._opening) <= rel:
            d = self._first + len(self._opening) - 1
            closes, _ = self._log_path(d, self._opening[-1])
            self._opening.append(np.exp(closes[:, -1]))
        return self._opening[rel]

    def _log_path(self, index: int, opening: NDArray[Any]) -> tuple[NDArray[Any], NDArray[Any]]:
        """(log prices (m, n+1), spread multiplier (n,)) for session index starting at ``opening``."""
        date, open_ns, close_ns = self._cal.session(index)
        n = max(1, (close_ns - open_ns) // self._interval_ns)
        rng = seeded_rng(self.seed, "generator", date)
        m = len(self._symbols)
        sigma = np.full(n, self._vol / np.sqrt(n))
        mu = np.full(n, self._drift / n - 0.5 * (self._vol**2) / n)
        offset = np.zeros(n + 1)
        spread = np.ones(n)
        day_number = index - self._start
        for r in self._regimes:
            if r.day is not None and r.day != day_number:
                continue
            k0 = (ns_at(date, r.at) - open_ns) // self._interval_ns
            length = max(1, int(r.duration_s * NS_PER_S // self._interval_ns))
            k1 = min(n, k0 + length)
            if k0 >= n or k1 <= 0:
                continue
            k0 = max(0, k0)
            if r.kind == "calm":
                sigma[k0:k1] *= max(0.0, r.size_pct) / 100.0 if r.size_pct else 0.2
            elif r.kind == "trend":
                mu[k0:k1] += np.log1p(r.size_pct / 100.0) / (k1 - k0)
            else:
                depth = np.log1p(-min(abs(r.size_pct), 95.0) / 100.0)
                fall = max(1, (k1 - k0) // 3)
                profile = np.concatenate(
                    (np.linspace(0.0, depth, fall + 1), np.linspace(depth, 0.0, k1 - k0 - fall + 1)[1:])
                )
                offset[k0 : k0 + len(profile)] += profile[: n + 1 - k0]
                spread[k0:k1] = FLASH_CRASH_SPREAD_MULT
        z = rng.standard_normal((m, n))
        steps = mu + sigma * (self._chol @ z)
        logp = np.log(opening)[:, None] + np.concatenate((np.zeros((m, 1)), np.cumsum(steps, axis=1)), axis=1)
        return logp + offset, spread

    def _build_all(self, index: int) -> dict[str, DayPath]:
        date, open_ns, _close_ns = self._cal.session(index)
        logp, spread = self._log_path(index, self._opening_prices(index))
        n = logp.shape[1] - 1
        rng = seeded_rng(self.seed, "generator-bars", date)
        out: dict[str, DayPath] = {}
        for i, symbol in enumerate(self._symbols):
            pts = np.exp(logp[i])
            bo, bc = pts[:-1], pts[1:]
            wig = rng.exponential(np.maximum(pts[:-1], 1e-9) * self._vol / np.sqrt(n) * 0.25, size=(2, n))
            bh = np.maximum(bo, bc) + wig[0]
            bl = np.maximum(np.minimum(bo, bc) - wig[1], np.minimum(bo, bc) * 0.5)
            out[symbol] = DayPath(
                symbol=symbol,
                date=date,
                open_ns=open_ns,
                interval_ns=self._interval_ns,
                o=to_cents(bo),
                h=to_cents(bh),
                lo=to_cents(bl),
                c=to_cents(bc),
                volume=u_shape_split(self._volume, n, rng),
                has_bar=np.ones(n, dtype=bool),
                rng=rng,
                spread_bps=self.spread_bps,
                spread_mult=spread,
            )
        return out
