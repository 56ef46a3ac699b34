"""Swarm testing (FoundationDB / TigerBeetle VOPR style): one seed drives a whole randomly configured world.

Run i of a swarm uses world seed ``derive_seed(root, i)``. ``generate_world(seed)`` turns that seed into an
ordinary scenario (session date, symbols and sectors, account, policy, risk limits, a random subset of every
fault the fake supports) written as TOML, so ``ttlive sim OUT/worlds/<name>.toml`` replays a run exactly.
"Swarm" means most features are off in any one world and a few are on hard: a bug that needs two faults at once
and a third absent is found by some world, where a fixed all-faults-on scenario would mask it.

Only the always-on invariants judge a swarm run (a generated world expects nothing), and every failure is
shrunk: timed events, probabilities, symbols, days and tuned limits are dropped greedily while the run still
fails with the same kind of violation. The summary counts what the runs exercised (halts per trigger, retries,
reconnects, the report's coverage counters), so a swarm cannot pass by testing nothing.
"""

from __future__ import annotations

import concurrent.futures
import copy
import functools
import hashlib
import json
import math
import random
import re
import shutil
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

from adapters.fake.calendar import NyseCalendar, et_from_ns
from adapters.fake.faults import CLOSE_CODES, EVENT_KINDS, PROBABILITY_KEYS, STREAMS
from adapters.fake.market import market_data_dir
from adapters.fake.market_replay import last_close_before
from sim.sweep import failed_run, ignore_sigint, init_ray, run_one

# --- the world generator --------------------------------------------------------------------------------------

FIRST_DATE = "2000-01-03"  # every replay file has months of history before this (features, correlations)
LAST_DATE = "2014-12-15"  # and sessions after it, for two-day worlds (NVDA/ORCL files end 2014-12-31)
REPLAY_FILES = {"NVDA": "nvda-1999-2014.txt", "ORCL": "orcl-1995-2014.txt", "YHOO": "yhoo-1996-2015.txt"}
GENERATED_SYMBOLS = ("SWA", "SWB", "SWC", "SWD", "SWE", "SWF")
SECTORS = ("semiconductors", "software", "internet", "banks", "energy")
# Drawn from random streams of their own (see _foreign_orders, _account_activities): the main stream never sees them.
OWN_STREAM_KINDS = frozenset({"foreign_order", "dividend", "fee", "journal", "interest", "transfer", "split"})
OUTSIDE_TRADE_MIN_POSITION = 1500  # shares: 1 share is below the 0.1 % alert threshold (spec 1.3) from here on
GENERATOR_START_PRICE = 100.0  # adapters.fake.market_generator.GeneratorSource opens every symbol here
FEATURE_P = 0.25  # each fault key / event kind is on in about a quarter of the worlds
DEFAULT_RISK_P = 0.6  # most worlds run the shipped limits
TRIGGER_LIMITS = {  # the risk key that makes each limit-driven kill-switch trigger easier to reach
    "daily_loss": "daily_loss_halt_pct",
    "weekly_loss": "weekly_loss_halt_pct",
    "consecutive_losses": "max_consecutive_losses",
    "connectivity_lost": "connectivity_lost_halt_s",
}
OPERATOR = "swarm.operator"


def derive_seed(root: int, index: int) -> int:
    """Run ``index``'s world seed: a hash, so neighbouring runs share nothing, and short enough to type."""
    digest = hashlib.sha256(f"ttlive-swarm:{root}:{index}".encode()).digest()
    return int.from_bytes(digest[:6], "big")


def world_name(seed: int) -> str:
    return f"swarm-{seed}"


@functools.cache
def _sessions() -> list[tuple[str, int, int]]:
    """NYSE sessions (date, open ns, close ns) from FIRST_DATE to a few days past LAST_DATE."""
    calendar = NyseCalendar()
    first = calendar.first_session_on_or_after(FIRST_DATE)
    last = calendar.first_session_on_or_after(LAST_DATE)
    return [calendar.session(i) for i in range(first, last + 3)]


def generate_world(seed: int) -> dict[str, Any]:
    """The scenario (as the TOML document's tables) that world ``seed`` runs: a pure function of the seed."""
    rng = random.Random(seed)
    sessions = _sessions()
    first = rng.randrange(len(sessions) - 3)
    days = 1 if rng.random() < 0.85 else 2
    windows = [_trading_window(*sessions[first + d][1:]) for d in range(days)]
    instruments, market = _market(rng, windows[0])
    symbols = [i["symbol"] for i in instruments]
    world: dict[str, Any] = {
        "schema_version": 1,
        "name": world_name(seed),
        "description": f"Swarm world of seed {seed} (ttlive swarm): judged by the always-on invariants only.",
        "seed": seed,
        "session": {"start": sessions[first][0], "days": days, "bar_interval_s": 60},
        "account": _account(rng),  # the starting book is added below, from its own random stream
        "instruments": instruments,
        "market": market,
        "policy": _policy(rng),
        "risk": _risk(rng),
        "execution": _optional(rng, {"brackets": False, "on_reject": "give_up",
                                     "submit_timeout_s": rng.choice([1.0, 2.0, 10.0])}),
        "reconcile": _optional(rng, {"interval_s": float(rng.choice([15, 30, 120]))}),
        "faults": _faults(rng, windows, symbols),
        "expect": {},
    }
    book = _starting_book(seed, world["account"], market, symbols, sessions[first][0])
    if book:
        world["account"]["positions"] = book
        _outside_trade(seed, world, book, windows)
    _foreign_orders(seed, world, symbols, windows)
    _realistic_ticks(seed, world)
    _order_features(seed, world)
    _protect_on_halt(seed, world, windows)
    _open_orders_at_start(seed, world, market, symbols, sessions[first][0])
    _account_activities(seed, world, windows)
    return {key: value for key, value in world.items() if value != {} or key == "expect"}


def _starting_book(seed: int, account: dict[str, Any], market: dict[str, Any], symbols: list[str],
                   start: str) -> list[dict[str, str]]:
    """About a quarter of the worlds start on a real account's book: positions of 2-15 % of the cash each, shorts
    too on margin accounts, bought earlier at +-20 % of the eve's close. Drawn from a stream of its own, so the
    rest of every world stays what it was before books existed."""
    rng = random.Random(f"ttlive-swarm-book:{seed}")
    if rng.random() >= FEATURE_P:
        return []
    files: dict[str, str] = market.get("files", {})
    cash = Decimal(account["cash_usd"])
    book = []
    for symbol in sorted(rng.sample(symbols, rng.randint(1, len(symbols)))):
        eve = last_close_before(str(market_data_dir() / files[symbol]), start) if files else GENERATOR_START_PRICE
        if not eve:
            continue
        qty = max(1, int(cash * Decimal(str(round(rng.uniform(0.02, 0.15), 4))) / Decimal(str(eve))))
        if account["type"] != "cash" and rng.random() < 0.3:
            qty = -qty
        entry = Decimal(str(eve)) * Decimal(str(round(rng.uniform(0.8, 1.2), 4)))
        book.append({"symbol": symbol, "qty": str(qty), "avg_entry_price": str(entry.quantize(Decimal("0.01")))})
    return book


def _foreign_orders(seed: int, world: dict[str, Any], symbols: list[str], windows: list[tuple[int, int]]) -> None:
    """A quarter of the worlds see the account's owner place 1-2 resting limit orders of their own (not ttlive's):
    they must be left alone (no reconciliation mismatch, no cancel) until a kill switch cancels everything."""
    rng = random.Random(f"ttlive-swarm-foreign-orders:{seed}")
    if rng.random() >= FEATURE_P:
        return
    for _ in range(rng.randint(1, 2)):
        day = rng.randrange(len(windows))
        event = {"kind": "foreign_order", "symbol": rng.choice(symbols),
                 "qty": str(rng.choice((-1, 1)) * rng.randint(1, 100))}
        _add_event(world, event, day, rng.randint(*windows[day]), len(windows))
    if rng.random() < 0.5:  # an account the policy must own alone: ttlive cancels what it did not place
        world.setdefault("reconcile", {})["foreign_orders"] = "cancel"


def _realistic_ticks(seed: int, world: dict[str, Any]) -> None:
    """A tenth of the worlds run realistic ticks between bars (quotes and trades the venue fills against, the
    in-process clock waking at each), thinned for speed: the engine must hold its invariants on a busy feed."""
    rng = random.Random(f"ttlive-swarm-ticks:{seed}")
    if rng.random() >= 0.1:
        return
    world["market"]["ticks"] = "realistic"
    world["market"]["tick_rate"] = rng.choice((0.01, 0.02, 0.05))


def _order_features(seed: int, world: dict[str, Any]) -> None:
    """Issue 20's order features, each in about a quarter of the worlds (own random stream, so every other world
    stays byte-identical): fractional or notional sizing (now and then an instrument Alpaca lists as not
    fractionable, which stays in whole shares), and trailing stops as the entries' protective exit."""
    rng = random.Random(f"ttlive-swarm-order-features:{seed}")
    execution = world.setdefault("execution", {})
    if rng.random() < FEATURE_P:
        execution["sizing"] = rng.choice(("fractional", "notional"))
        if rng.random() < 0.3:
            rng.choice(world["instruments"])["fractionable"] = False
    if rng.random() < FEATURE_P:
        execution["protective_exit"] = "trailing_stop"
        execution["trail_percent"] = rng.choice(("1.0", "2.0", "5.0"))


def _protect_on_halt(seed: int, world: dict[str, Any], windows: list[tuple[int, int]]) -> None:
    """A quarter of the worlds halt with risk.on_halt = "protect" (not where the tightened limits already chose
    liquidate_on_halt); half of those get an operator's kill, so the protective stops are placed amid the world's
    other faults: invariant 5e wants a working stop for every position of a halted book at the end."""
    rng = random.Random(f"ttlive-swarm-protect:{seed}")
    if rng.random() >= FEATURE_P or world["risk"].get("liquidate_on_halt"):
        return
    world["risk"]["on_halt"] = "protect"
    if rng.random() < 0.5:
        day = rng.randrange(len(windows))
        event = {"kind": "manual_kill", "operator": OPERATOR, "reason": "swarm: protect the book"}
        _add_event(world, event, day, rng.randint(*windows[day]), len(windows))


def _open_orders_at_start(seed: int, world: dict[str, Any], market: dict[str, Any], symbols: list[str],
                          start: str) -> None:
    """A quarter of the worlds start with 1-4 resting buy limits open at the account, 30 % under the eve's close:
    some ttlive's own from an earlier life (adopted into order machines), some the owner's (listed, left alone or
    cancelled, counted by RiskGuard); one in five of the owner's is a dollar-amount (notional) order."""
    rng = random.Random(f"ttlive-swarm-open-orders:{seed}")
    if rng.random() >= FEATURE_P:
        return
    files: dict[str, str] = market.get("files", {})
    cash = Decimal(world["account"]["cash_usd"])
    whole_shares = {i["symbol"] for i in world["instruments"] if i.get("fractionable") is False}
    # Buys on a symbol the book holds short may only cover it (the venue refuses the rest: "insufficient qty")
    short_left = {p["symbol"]: -Decimal(p["qty"]) for p in world["account"].get("positions", [])
                  if Decimal(p["qty"]) < 0}
    orders = []
    for n in range(rng.randint(1, 4)):
        symbol = rng.choice(symbols)
        eve = last_close_before(str(market_data_dir() / files[symbol]), start) if files else GENERATOR_START_PRICE
        if not eve:
            continue
        limit = (Decimal(str(eve)) * Decimal("0.7")).quantize(Decimal("0.01"))
        ours = rng.random() < 0.5
        coid = (f"tt-{uuid.UUID(int=rng.getrandbits(128), version=4)}-0" if ours
                else f"desk-{seed}-{n}")
        order: dict[str, Any] = {"symbol": symbol, "side": "buy", "type": "limit", "limit_price": str(limit),
                                 "time_in_force": "gtc", "client_order_id": coid}
        budget = cash * Decimal(str(round(rng.uniform(0.005, 0.02), 4)))
        if not ours and rng.random() < 0.2 and symbol not in whole_shares:  # Alpaca: no notional on those
            if symbol in short_left:
                continue  # a dollar amount could buy past the short
            order["notional"] = str(max(Decimal(1), budget.quantize(Decimal(1))))
            order["time_in_force"] = "day"
        else:
            qty = max(1, int(budget / limit))
            if symbol in short_left:
                qty = min(qty, int(short_left[symbol]))
                if qty < 1:
                    continue
                short_left[symbol] -= qty
            order["qty"] = str(qty)
        orders.append(order)
    if orders:
        world["account"]["orders"] = orders


def _account_activities(seed: int, world: dict[str, Any], windows: list[tuple[int, int]]) -> None:
    """A quarter of the worlds see money move without a trade: fees and cash journals during the session, a
    dividend on a long and a 2:1 (or 3:1) split of a held position before an open (when the book has them). Each
    reconciliation must explain the difference from the activities, not alert or halt on it."""
    rng = random.Random(f"ttlive-swarm-activities:{seed}")
    if rng.random() >= FEATURE_P:
        return
    book = world["account"].get("positions", [])
    longs = [p["symbol"] for p in book if not p["qty"].startswith("-")]
    days = len(windows)
    for kind in ("fee", "journal", "dividend", "split", "interest", "transfer"):
        if rng.random() >= 0.5:
            continue
        day = rng.randrange(days)
        at = rng.randint(*windows[day])
        if kind == "fee":
            event: dict[str, Any] = {"kind": "fee", "amount": f"{rng.uniform(0.5, 50):.2f}"}
        elif kind == "journal":
            event = {"kind": "journal", "amount": f"{rng.choice((-1, 1)) * rng.uniform(100, 5000):.2f}"}
        elif kind == "interest":
            event = {"kind": "interest", "amount": f"{rng.uniform(0.01, 20):.2f}"}
        elif kind == "transfer":
            event = {"kind": "transfer", "amount": f"{rng.choice((-1, 1)) * rng.uniform(100, 5000):.2f}"}
        elif kind == "dividend" and longs:
            event = {"kind": "dividend", "symbol": rng.choice(longs), "amount": f"{rng.uniform(0.01, 1.0):.3f}"}
        elif kind == "split" and book:
            at = windows[day][0] - rng.randint(120, 1500)  # before the open, as corporate actions take effect
            event = {"kind": "split", "symbol": rng.choice(book)["symbol"], "ratio": rng.choice(("2", "2", "3"))}
        else:
            continue
        _add_event(world, event, day, at, days)


def _outside_trade(seed: int, world: dict[str, Any], book: list[dict[str, str]],
                   windows: list[tuple[int, int]]) -> None:
    """Half the worlds with a book see a 1-share trade made outside the engine on its largest position (below the
    0.1 % alert threshold when the position is big enough): the reconciler must converge, not halt or drift."""
    rng = random.Random(f"ttlive-swarm-outside-trade:{seed}")
    if rng.random() >= 0.5:
        return
    largest = max(book, key=lambda p: abs(Decimal(p["qty"])))
    if abs(Decimal(largest["qty"])) < OUTSIDE_TRADE_MIN_POSITION:
        return  # 1 share would be a material mismatch: the generic position_drift events cover that path
    day = rng.randrange(len(windows))
    event = {"kind": "position_drift", "symbol": largest["symbol"], "qty": rng.choice(("-1", "1"))}
    _add_event(world, event, day, rng.randint(*windows[day]), len(windows))


def _add_event(world: dict[str, Any], event: dict[str, Any], day: int, at: int, days: int) -> None:
    """One more timed fault event (from a feature's own random stream), kept in the plan's time order."""
    events = world.setdefault("faults", {}).setdefault("events", [])
    events.append(_timed(event, day, at, days))
    events.sort(key=lambda e: (int(e.get("day", 0)), e["at"], str(e["kind"])))


def _trading_window(open_ns: int, close_ns: int) -> tuple[int, int]:
    """Seconds of the ET day when timed events may fire: a minute inside the session (early closes too)."""
    def seconds(ns: int) -> int:
        t = et_from_ns(ns)
        return t.hour * 3600 + t.minute * 60 + t.second

    return seconds(open_ns) + 60, seconds(close_ns) - 60


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _optional(rng: random.Random, choices: Mapping[str, Any]) -> dict[str, Any]:
    """Each non-default setting with probability FEATURE_P (drawn in a fixed order, so worlds are stable)."""
    return {key: value for key, value in choices.items() if rng.random() < FEATURE_P}


def _market(rng: random.Random, window: tuple[int, int]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """A scenario has one market source: real bars for 1-3 of NVDA/ORCL/YHOO, or 1-6 generated symbols."""
    replay = rng.random() < 0.5
    if replay:
        symbols = sorted(rng.sample(sorted(REPLAY_FILES), rng.randint(1, len(REPLAY_FILES))))
    else:
        symbols = list(GENERATED_SYMBOLS[: rng.randint(1, len(GENERATED_SYMBOLS))])
    sectors = rng.sample(SECTORS, rng.randint(1, min(3, len(symbols))))  # few sectors: the sector cap binds
    instruments: list[dict[str, Any]] = []
    for symbol in symbols:
        instrument: dict[str, Any] = {"symbol": symbol, "sector": rng.choice(sectors)}
        if rng.random() < 0.15:
            instrument["max_position_size"] = rng.randint(1, 2000)
        instruments.append(instrument)
    spread = round(rng.uniform(1.0, 20.0), 1)
    if replay:
        return instruments, {"source": "replay", "files": {s: REPLAY_FILES[s] for s in symbols}, "spread_bps": spread}
    market: dict[str, Any] = {
        "source": "generator",
        "drift_bps_per_day": round(rng.uniform(-300.0, 300.0), 1),
        "vol_pct_per_day": round(rng.uniform(0.5, 6.0), 2),
        "correlation": round(rng.uniform(0.0, 0.95), 2),
        "spread_bps": spread,
    }
    regimes = [_regime(rng, window) for _ in range(rng.choice((0, 0, 1, 2)))]
    if regimes:
        market["regimes"] = sorted(regimes, key=lambda r: str(r["at"]))
    return instruments, market


def _regime(rng: random.Random, window: tuple[int, int]) -> dict[str, Any]:
    kind = rng.choice(("calm", "trend", "flash_crash"))
    size = {"calm": rng.uniform(10.0, 100.0), "trend": rng.uniform(-8.0, 8.0), "flash_crash": rng.uniform(2.0, 20.0)}
    return {"at": _clock(rng.randint(*window)), "kind": kind, "size_pct": round(size[kind], 2),
            "duration_s": rng.randint(300, 7200)}


def _account(rng: random.Random) -> dict[str, Any]:
    account: dict[str, Any] = {
        "type": rng.choice(("cash", "margin_initial", "margin_experienced")),
        "cash_usd": str(int(10 ** rng.uniform(3.7, 6.3))),  # ~$5k (PDT rules) .. ~$2M, log-uniform
    }
    if rng.random() < 0.15:
        account["pattern_day_trader"] = True
    return account


def _policy(rng: random.Random) -> dict[str, Any]:
    policy: dict[str, Any] = {"kind": rng.choice(("onnx", "rule"))}
    if policy["kind"] == "onnx":
        # The shipped default or the first model (daily-trained, a churner: many more orders per world).
        policy["model"] = rng.choice(("default", "ppo-daily-v1"))
        policy["precision"] = "fp32" if rng.random() < 0.2 else "int8"
    policy["decision_interval_s"] = float(rng.choice((60, 120, 300, 600)))
    if policy["kind"] == "onnx":  # off the model contract on purpose (no draw): `ttlive sim` replays the world
        policy["contract_override"] = ["decision_interval_s"]
    return policy


def _risk(rng: random.Random) -> dict[str, Any]:
    """The shipped limits most of the time; otherwise a random few tightened hard, so that across a swarm every
    kill-switch trigger fires amid faults (and the sizing caps bind)."""
    if rng.random() < DEFAULT_RISK_P:
        return {}
    tightened = {
        "daily_loss_halt_pct": f"{rng.uniform(0.05, 3.0):.2f}",
        "weekly_loss_halt_pct": f"{rng.uniform(0.1, 5.0):.2f}",
        "max_consecutive_losses": rng.randint(0, 4),
        "connectivity_lost_halt_s": round(rng.uniform(1.0, 29.0), 1),
        "max_position_pct": f"{rng.uniform(0.5, 20.0):.1f}",
        "max_sector_pct": f"{rng.uniform(1.0, 25.0):.1f}",
        "max_correlated_pct": f"{rng.uniform(1.0, 40.0):.1f}",
        "size_scale": rng.choice(("0.25", "0.5")),
        "liquidate_on_halt": True,
        "pdt_protection": False,
    }
    keys = [key for key in tightened if rng.random() < 0.4] or [rng.choice(sorted(tightened))]
    return {key: tightened[key] for key in keys}


def _faults(rng: random.Random, windows: list[tuple[int, int]], symbols: list[str]) -> dict[str, Any]:
    """Each probability and each timed event kind on with probability FEATURE_P, from a wide range when on."""
    faults: dict[str, Any] = {}
    for key in PROBABILITY_KEYS:
        if rng.random() < FEATURE_P:
            faults[key] = round(10 ** rng.uniform(-3.0, math.log10(0.5)), 4)  # 0.1% .. 50%, log-uniform
    if rng.random() < FEATURE_P:
        faults["one_stream_per_key"] = True
    events: list[tuple[int, int, dict[str, Any]]] = []
    for kind in sorted(EVENT_KINDS - {"manual_reset"} - OWN_STREAM_KINDS):
        if rng.random() < FEATURE_P:
            for _ in range(rng.randint(1, 3)):
                day = rng.randrange(len(windows))
                events.append((day, rng.randint(*windows[day]), _event_keys(rng, kind, symbols)))
    kills = [(day, at) for day, at, event in events if event["kind"] == "manual_kill"]
    if kills and rng.random() < 0.6:  # an audited reset, only ever after a kill
        day, at = rng.choice(kills)
        later = rng.randint(min(at + 60, windows[day][1]), windows[day][1])
        events.append((day, later, {"kind": "manual_reset", "operator": OPERATOR,
                                    "reason": "swarm: reviewed, resuming"}))
    if events:
        faults["events"] = [_timed(event, day, at, len(windows)) for day, at, event in sorted(events, key=_when)]
    return faults


def _when(item: tuple[int, int, dict[str, Any]]) -> tuple[int, int, str]:
    return item[0], item[1], str(item[2]["kind"])


def _timed(event: dict[str, Any], day: int, at: int, days: int) -> dict[str, Any]:
    timed: dict[str, Any] = {"at": _clock(at)}
    if days > 1:
        timed["day"] = day
    return {**timed, **event}


def _event_keys(rng: random.Random, kind: str, symbols: list[str]) -> dict[str, Any]:
    """The kind's own keys, drawn from wide ranges (long outages, big drifts): only valid values."""
    stream = rng.choice(STREAMS)
    keys: dict[str, dict[str, Any]] = {
        "ws_close": {"stream": stream, "code": rng.choice(sorted(CLOSE_CODES)),
                     "duration_s": rng.choice((0.0, round(rng.uniform(1.0, 120.0), 1)))},
        "ws_mute": {"stream": stream, "duration_s": round(rng.uniform(5.0, 900.0), 1)},
        "eviction_406": {"stream": stream, "duration_s": round(rng.uniform(0.0, 300.0), 1)},
        "rest_outage": {"duration_s": round(rng.uniform(5.0, 600.0), 1)},
        "rest_slow": {"latency_ms": rng.randint(100, 10_000), "duration_s": round(rng.uniform(30.0, 1800.0), 1)},
        "rate_limit_storm": {"duration_s": round(rng.uniform(5.0, 300.0), 1)},
        "quote_stale": {"duration_s": round(rng.uniform(10.0, 1800.0), 1),
                        **({"symbol": rng.choice(symbols)} if rng.random() < 0.5 else {})},
        "position_drift": {"symbol": rng.choice(symbols), "qty": str(rng.choice((-1, 1)) * rng.randint(1, 500))},
        "venue_restart": {"duration_s": round(rng.uniform(1.0, 120.0), 1)},
        "client_crash": {"duration_s": round(rng.uniform(1.0, 120.0), 1)},
        "manual_kill": {"reason": "swarm: operator kill"},
        "operator_stop": {"reason": "swarm: operator stop"},
    }
    return {"kind": kind, **keys[kind]}


def world_toml(seed: int) -> str:
    return dumps_toml(generate_world(seed))


def incident_world(incident: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """A world seeded by a recorded incident (``ttlive replay --to-scenario``): the incident as recorded (its
    market, book, venue answers and faults) plus, from a random stream of its own, some of the fault
    probabilities every swarm world draws from, at the world's seed: how the engine that met the incident fares
    when the venue misbehaves a little more. Its data files must sit beside the world (``jobs_of`` copies them)."""
    rng = random.Random(f"ttlive-swarm-incident:{seed}")
    world = copy.deepcopy(dict(incident))
    world.update(name=world_name(seed), seed=seed,
                 description=f"Swarm world of seed {seed} seeded by the incident {incident.get('name', '?')}.")
    faults = world.setdefault("faults", {})
    for key in PROBABILITY_KEYS:
        if key not in faults and rng.random() < FEATURE_P:
            faults[key] = round(10 ** rng.uniform(-3.0, math.log10(0.2)), 4)  # 0.1% .. 20%, log-uniform
    world["expect"] = {}  # judged by the always-on invariants, like every swarm world
    return world


def incident_data_files(incident: Mapping[str, Any]) -> list[str]:
    """The files a recorded incident's scenario names beside itself (bars, the venue's plan)."""
    names = list((incident.get("market") or {}).get("files", {}).values())
    plan = (incident.get("replay") or {}).get("plan")
    return [*names, *([plan] if plan else [])]


# --- a TOML writer for the shapes scenarios use ----------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def dumps_toml(document: Mapping[str, Any]) -> str:
    """TOML text for ``document``: nested mappings become [tables], lists of mappings [[arrays of tables]],
    mappings inside a table's values inline tables. No TOML writer is installed; tomllib reads this back."""
    lines: list[str] = []
    _write_table(lines, (), document)
    return "\n".join(lines).lstrip("\n") + "\n"


def _is_table_array(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, Mapping) for v in value)


def _write_table(lines: list[str], path: tuple[str, ...], table: Mapping[str, Any]) -> None:
    """Plain keys first: after a [header] every key belongs to that header's table."""
    headed = {k for k, v in table.items() if _is_subtable(path, v) or _is_table_array(v)}
    lines.extend(f"{_key(k)} = {_value(v)}" for k, v in table.items() if k not in headed)
    for key, value in table.items():
        if _is_subtable(path, value):
            inner = (*path, key)
            if not value or any(not (_is_subtable(inner, v) or _is_table_array(v)) for v in value.values()):
                lines.extend(["", f"[{_dotted(inner)}]"])  # a table of tables only needs its children's headers
            _write_table(lines, inner, value)
        elif _is_table_array(value):
            for item in value:
                lines.extend(["", f"[[{_dotted((*path, key))}]]"])
                _write_table(lines, (*path, key), item)


def _is_subtable(path: tuple[str, ...], value: Any) -> bool:
    """Top-level tables get a [header]; below, a mapping of plain values (market.files) reads best inline."""
    if not isinstance(value, Mapping):
        return False
    return path == () or any(isinstance(v, Mapping) or _is_table_array(v) for v in value.values())


def _dotted(path: tuple[str, ...]) -> str:
    return ".".join(_key(part) for part in path)


def _key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)  # shortest round-trip form; "1e-05", "inf" and "nan" are TOML floats too
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, Mapping):
        return "{ " + ", ".join(f"{_key(k)} = {_value(v)}" for k, v in value.items()) + " }" if value else "{}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    raise TypeError(f"cannot write {type(value).__name__} as TOML: {value!r}")


# --- running one world ---------------------------------------------------------------------------------------------

class RunWorld(Protocol):
    """Run the scenario file at ``world`` with output in ``out``; returns the report as a dict (with ``ok``).
    Injectable so the shrinker and the swarm loop can be tested without a simulation."""

    def __call__(self, world: str, out: str, options: Mapping[str, Any]) -> dict[str, Any]: ...


def simulate(world: str, out: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The real thing: ``ttlive sim`` in this process, its log in ``out/run.log``."""
    return run_one(world, None, out, log_to_file=True, world_options=options)


BREAKAGES = {"halt_gate": {"break_halt_gate": True}}  # --break NAME: a deliberately broken engine, for tests


def world_options(breakage: str | None) -> dict[str, Any]:
    """``sim.world.WorldOptions`` keywords for a deliberately broken engine; ValueError when this build has none."""
    if breakage is None:
        return {}
    from sim.world import WorldOptions

    options = BREAKAGES.get(breakage)
    if options is None:
        raise ValueError(f"unknown breakage {breakage!r} (known: {', '.join(sorted(BREAKAGES))})")
    missing = [key for key in options if not hasattr(WorldOptions, key)]
    if missing:
        raise ValueError(f"this build's sim.world.WorldOptions has no {missing[0]}: --break {breakage} unavailable")
    return dict(options)


@dataclass(frozen=True)
class Job:
    """One swarm run, everything a worker (a pool process or a Ray node with its own disk) needs."""

    index: int
    seed: int
    toml: str
    world: str  # OUT/worlds/<name>.toml (written by the worker too when its disk does not have it)
    out: str  # the run's report, audit and run.log; removed after a passing run unless ``keep``
    options: tuple[tuple[str, Any], ...]
    keep: bool
    run: RunWorld

    @property
    def name(self) -> str:
        return world_name(self.seed)

    @property
    def replay(self) -> str:
        return f"ttlive sim {self.world}"


def execute(job: Job) -> dict[str, Any]:
    """Run one job and summarise it as an outcome (what the swarm keeps of a run); never raises."""
    world = Path(job.world)
    if not world.exists():
        world.parent.mkdir(parents=True, exist_ok=True)
        world.write_text(job.toml, encoding="utf-8")
    try:
        report = job.run(job.world, job.out, dict(job.options))
    except Exception as exc:  # one broken run must not hide the others: it is a failure like any other
        report = failed_run(job.world, job.seed, exc)
    outcome = {
        "index": job.index,
        "name": job.name,
        "seed": job.seed,
        "ok": bool(report["ok"]),
        "halted": bool(report.get("halted", False)),
        "kill_trigger": report.get("kill_trigger", ""),
        "fills": int(report.get("fills", 0)),
        "wall_seconds": float(report.get("wall_seconds", 0.0)),
        "violations": list(report.get("invariant_violations", [])) + list(report.get("expectation_failures", [])),
        "replay": job.replay,
        "trace_sha256": report.get("trace_sha256", ""),
        "audit_sha256": report.get("audit_sha256", ""),
        "world": job.world,
        "counters": run_counters(report),
        "coverage": run_coverage(report),
        "features": world_features(tomllib.loads(job.toml)),
    }
    if outcome["ok"] and not job.keep:
        shutil.rmtree(job.out, ignore_errors=True)  # 10,000 passing runs would keep ~25 GB of audit trails
    return outcome


def run_counters(report: Mapping[str, Any]) -> dict[str, float]:
    """What the run exercised, from the report's own counters."""
    counters = report.get("counters", {})
    return {
        "ambiguous_submits": int(counters.get("orders_ambiguous", 0)),
        "reconnects": int(report.get("reconnects", 0)),
        "polling_s": float(report.get("polling_s", 0.0)),
        "rest_retries": int(report.get("rest_retries", 0)),
        "crashes": int(report.get("crashes", 0)),
        "fills": int(report.get("fills", 0)),
    }


def run_coverage(report: Mapping[str, Any]) -> dict[str, int]:
    """The report's ``coverage`` counters (whatever keys the engine's build has), integers only."""
    coverage = report.get("coverage") or {}
    return {k: v for k, v in coverage.items() if isinstance(v, int) and not isinstance(v, bool)}


def world_features(world: Mapping[str, Any]) -> list[str]:
    """The features a world switched on (fault keys, event kinds, tightened limits, market, policy, account)."""
    faults = world.get("faults", {})
    features = {f"faults.{key}" for key in faults if key != "events"}
    features |= {f"event.{event['kind']}" for event in faults.get("events", [])}
    for section in ("risk", "execution", "reconcile"):
        features |= {f"{section}.{key}" for key in world.get(section, {})}
    features |= {f"market.{world['market']['source']}", f"policy.{world['policy']['kind']}",
                 f"account.{world['account']['type']}", f"days.{world['session']['days']}"}
    positions = world["account"].get("positions", [])
    if positions:
        features.add("account.starting_book")
    if any(p["qty"].startswith("-") for p in positions):
        features.add("account.starting_short")
    if world["account"].get("orders"):
        features.add("account.open_orders")
    return sorted(features)


# --- shrinking --------------------------------------------------------------------------------------------------

Reduction = Callable[[dict[str, Any], int], dict[str, Any] | None]


def violation_kind(violation: str) -> str:
    """A violation without its ids and numbers, up to its details: "order tt-# accepted at # while halted"."""
    text = re.sub(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}|\d+", "#", violation)
    return re.split(r": | \(", text, maxsplit=1)[0]


def shrink(world: dict[str, Any], fails: Callable[[dict[str, Any]], bool], *,
           budget: int = 40) -> tuple[dict[str, Any], int]:
    """Greedy minimisation: try each reduction in turn and keep it while ``fails`` (the run still fails);
    at most ``budget`` runs. Returns the smallest failing world found and the number of runs it took."""
    runs = 0
    for reduce in REDUCTIONS:
        i = 0
        while runs < budget and (candidate := reduce(world, i)) is not None:
            runs += 1
            if fails(candidate):
                world = candidate  # the same index now names the next item
            else:
                i += 1
    return world, runs


def _fewer_days(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    days = int(world["session"]["days"])
    if i > 0 or days == 1:
        return None
    out = copy.deepcopy(world)
    out["session"]["days"] = days - 1
    _set_events(out, [e for e in _events(out) if int(e.get("day", 0)) < days - 1])
    return out


def _drop_event(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    events = _events(world)
    if i >= len(events):
        return None
    out = copy.deepcopy(world)
    _set_events(out, events[:i] + events[i + 1:])
    return out


def _drop_probability(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    keys = [key for key in world.get("faults", {}) if key != "events"]
    if i >= len(keys):
        return None
    out = copy.deepcopy(world)
    del out["faults"][keys[i]]
    _tidy(out, "faults")
    return out


def _drop_symbol(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    """Without instrument ``i``: its market file and the events naming it go too."""
    instruments = world["instruments"]
    if len(instruments) == 1 or i >= len(instruments):
        return None
    symbol = instruments[i]["symbol"]
    out = copy.deepcopy(world)
    del out["instruments"][i]
    out["market"].get("files", {}).pop(symbol, None)
    _set_events(out, [e for e in _events(out) if e.get("symbol") != symbol])
    _set_positions(out, [p for p in out["account"].get("positions", []) if p["symbol"] != symbol])
    return out


def _drop_position(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    """Without starting position ``i`` (the account starts a little flatter)."""
    positions = world["account"].get("positions", [])
    if i >= len(positions):
        return None
    out = copy.deepcopy(world)
    _set_positions(out, positions[:i] + positions[i + 1:])
    return out


def _set_positions(world: dict[str, Any], positions: list[dict[str, Any]]) -> None:
    if positions:
        world["account"]["positions"] = positions
    else:
        world["account"].pop("positions", None)


def _default_setting(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    """One tuned risk/execution/reconcile setting back to its default."""
    settings = [(s, key) for s in ("risk", "execution", "reconcile") for key in world.get(s, {})]
    if i >= len(settings):
        return None
    section, key = settings[i]
    out = copy.deepcopy(world)
    del out[section][key]
    _tidy(out, section)
    return out


def _drop_regime(world: dict[str, Any], i: int) -> dict[str, Any] | None:
    regimes = world["market"].get("regimes", [])
    if i >= len(regimes):
        return None
    out = copy.deepcopy(world)
    del out["market"]["regimes"][i]
    _tidy(out["market"], "regimes")
    return out


REDUCTIONS: tuple[Reduction, ...] = (_fewer_days, _drop_event, _drop_probability, _drop_symbol, _default_setting,
                                     _drop_regime, _drop_position)


def _events(world: Mapping[str, Any]) -> list[dict[str, Any]]:
    return list(world.get("faults", {}).get("events", []))


def _set_events(world: dict[str, Any], events: list[dict[str, Any]]) -> None:
    if "faults" in world:
        world["faults"]["events"] = events
        _tidy(world["faults"], "events")
        _tidy(world, "faults")


def _tidy(table: dict[str, Any], key: str) -> None:
    """Drop ``key`` when it became empty (an empty [[faults.events]] cannot be written)."""
    if not table.get(key):
        table.pop(key, None)


def shrink_failure(outcome: Mapping[str, Any], *, out: Path, run: RunWorld, options: Mapping[str, Any],
                   budget: int) -> dict[str, Any]:
    """Minimise a failing run's world; writes OUT/worlds/<name>.min.toml and returns what was found."""
    world = tomllib.loads(Path(outcome["world"]).read_text(encoding="utf-8"))
    target = violation_kind(outcome["violations"][0])
    scratch = out / "runs" / f"{outcome['name']}.shrink"
    candidate_path = scratch / "candidate.toml"

    def fails(candidate: dict[str, Any]) -> bool:
        candidate_path.parent.mkdir(parents=True, exist_ok=True)
        candidate_path.write_text(dumps_toml(candidate), encoding="utf-8")
        try:
            report = run(str(candidate_path), str(scratch / "run"), options)
        except Exception as exc:
            report = failed_run(str(candidate_path), int(candidate["seed"]), exc)
        return any(violation_kind(v) == target for v in report.get("invariant_violations", []))

    smallest, runs = shrink(world, fails, budget=budget)
    path = Path(outcome["world"]).with_suffix(".min.toml")
    path.write_text(dumps_toml(smallest), encoding="utf-8")
    shutil.rmtree(scratch, ignore_errors=True)
    return {"name": outcome["name"], "violation": target, "runs": runs, "world": str(path),
            "replay": f"ttlive sim {path}", "events": len(_events(smallest)),
            "symbols": len(smallest["instruments"]), "days": smallest["session"]["days"]}


# --- backends -------------------------------------------------------------------------------------------------------

class Backend(Protocol):
    def submit(self, job: Job) -> Any: ...
    def wait(self, handles: list[Any]) -> list[Any]: ...  # at least one finished handle
    def result(self, handle: Any) -> dict[str, Any]: ...
    def interrupt(self, handles: list[Any]) -> list[Any]: ...  # stop; the handles whose runs finished
    def close(self) -> None: ...


class LocalPool:
    """A process pool (as ``ttlive sim --seeds``): workers ignore Ctrl-C, the parent decides."""

    def __init__(self, workers: int) -> None:
        self._pool = concurrent.futures.ProcessPoolExecutor(max_workers=workers, initializer=ignore_sigint)

    def submit(self, job: Job) -> Any:
        return self._pool.submit(execute, job)

    def wait(self, handles: list[Any]) -> list[Any]:
        done, _ = concurrent.futures.wait(handles, return_when=concurrent.futures.FIRST_COMPLETED)
        return [h for h in handles if h in done]  # submission order: the same order on every backend

    def result(self, handle: Any) -> dict[str, Any]:
        outcome: dict[str, Any] = handle.result()
        return outcome

    def interrupt(self, handles: list[Any]) -> list[Any]:
        """Runs in flight finish, queued ones are dropped."""
        self._pool.shutdown(wait=True, cancel_futures=True)
        return [h for h in handles if h.done() and not h.cancelled()]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class RayPool:
    """Ray tasks: an existing cluster when RAY_ADDRESS is set (ray://host:10001, auto), else a local instance."""

    def __init__(self, workers: int) -> None:
        import ray  # type: ignore[import-not-found]

        self._started_here = not ray.is_initialized()
        self._ray = init_ray(workers)
        self._remote = self._ray.remote(execute)

    def submit(self, job: Job) -> Any:
        return self._remote.remote(job)

    def wait(self, handles: list[Any]) -> list[Any]:
        done, _ = self._ray.wait(handles, num_returns=1)
        return list(done)

    def result(self, handle: Any) -> dict[str, Any]:
        outcome: dict[str, Any] = self._ray.get(handle)
        return outcome

    def interrupt(self, handles: list[Any]) -> list[Any]:
        return handles  # tasks already on the cluster finish; result() waits for them

    def close(self) -> None:
        if self._started_here:
            self._ray.shutdown()


def make_backend(name: str, workers: int) -> Backend:
    if name == "ray":
        return RayPool(workers)
    if name == "local":
        return LocalPool(workers)
    raise ValueError(f"unknown backend {name!r} (local | ray)")


def drive(backend: Backend, jobs: Iterator[Job], *, window: int, seen: Callable[[dict[str, Any]], None],
          stop: Callable[[], bool]) -> bool:
    """Keep ``window`` jobs in flight, handing each outcome to ``seen`` as it completes, until the jobs run out or
    ``stop()``; the runs in flight then finish. Ctrl-C: queued runs are dropped, runs in flight finish and are
    reported. Returns whether it was interrupted."""
    in_flight: list[Any] = []
    try:
        while True:
            while len(in_flight) < window and not stop() and (job := next(jobs, None)) is not None:
                in_flight.append(backend.submit(job))
            if not in_flight:
                return False
            for handle in backend.wait(in_flight):
                in_flight.remove(handle)
                seen(backend.result(handle))
    except KeyboardInterrupt:
        for handle in backend.interrupt(in_flight):
            seen(backend.result(handle))
        return True
    finally:
        backend.close()


# --- the swarm ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SwarmSpec:
    """What `ttlive swarm` was asked for; ``command`` is the line that reproduces it."""

    out: Path
    seed: int = 1
    runs: int | None = None
    minutes: float | None = None
    workers: int = 2
    backend: str = "local"
    stop_on_failure: bool = False
    shrink: bool = True
    shrink_budget: int = 40  # re-runs per failure
    shrink_limit: int = 3  # failures shrunk per swarm (one per kind of violation)
    keep: bool = False  # keep passing runs' report, audit and log
    breakage: str | None = None
    incident: Path | None = None  # worlds seeded by this recorded incident's scenario (incident_world)

    def command(self, runs: int) -> str:
        parts = ["ttlive swarm", f"--runs {runs}", f"--seed {self.seed}", f"--workers {self.workers}"]
        if self.backend != "local":
            parts.append(f"--backend {self.backend}")
        if self.breakage:
            parts.append(f"--break {self.breakage}")
        if self.incident is not None:
            parts.append(f"--incident {self.incident}")
        return " ".join([*parts, f"--out {self.out}"])


def validate(spec: SwarmSpec) -> None:
    """Bad input raises ValueError before anything runs (the CLI exits 2 with the message)."""
    if (spec.runs is None) == (spec.minutes is None):
        raise ValueError("give exactly one of --runs N or --minutes M")
    if spec.runs is not None and spec.runs < 1:
        raise ValueError(f"--runs must be >= 1, got {spec.runs}")
    if spec.minutes is not None and not spec.minutes > 0:
        raise ValueError(f"--minutes must be > 0, got {spec.minutes}")
    if spec.workers < 1:
        raise ValueError(f"--workers must be >= 1, got {spec.workers}")
    if spec.seed < 0:
        raise ValueError(f"--seed must be >= 0, got {spec.seed}")
    if spec.backend not in ("local", "ray"):
        raise ValueError(f"--backend must be local or ray, got {spec.backend!r}")
    world_options(spec.breakage)
    if spec.incident is not None:
        from core.config import ConfigError
        from sim.scenario import load_scenario

        try:
            load_scenario(spec.incident)
        except ConfigError as exc:
            raise ValueError(f"--incident: {exc}") from None


def jobs_of(spec: SwarmSpec, run: RunWorld) -> Iterator[Job]:
    """Run i's job, its world written to OUT/worlds first (so a failure is replayable even if the swarm dies).
    Paths are absolute: a Ray worker does not run in this directory."""
    options = tuple(sorted(world_options(spec.breakage).items()))
    out = spec.out.resolve()
    incident = None
    if spec.incident is not None:  # its data files go beside the worlds that name them
        incident = tomllib.loads(spec.incident.read_text(encoding="utf-8"))
        (out / "worlds").mkdir(parents=True, exist_ok=True)
        for name in incident_data_files(incident):
            shutil.copyfile(spec.incident.parent / name, out / "worlds" / name)
    index = 0
    while spec.runs is None or index < spec.runs:
        seed = derive_seed(spec.seed, index)
        world = out / "worlds" / f"{world_name(seed)}.toml"
        text = world_toml(seed) if incident is None else dumps_toml(incident_world(incident, seed))
        world.parent.mkdir(parents=True, exist_ok=True)
        world.write_text(text, encoding="utf-8")
        yield Job(index=index, seed=seed, toml=text, world=str(world), out=str(out / "runs" / world_name(seed)),
                  options=options, keep=spec.keep, run=run)
        index += 1


def run_swarm(spec: SwarmSpec, *, run: RunWorld = simulate, on_outcome: Callable[[dict[str, Any]], None] | None = None,
              on_shrunk: Callable[[dict[str, Any]], None] | None = None,
              clock: Callable[[], float] = time.monotonic) -> dict[str, Any]:
    """Run the swarm; returns the summary also written to OUT/swarm.json. ``on_outcome`` sees every run as it
    completes (failures are printed from there), ``on_shrunk`` every minimised failure."""
    validate(spec)
    started = clock()
    deadline = None if spec.minutes is None else started + spec.minutes * 60
    outcomes: list[dict[str, Any]] = []

    def seen(outcome: dict[str, Any]) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    def stop() -> bool:
        failed = spec.stop_on_failure and any(not o["ok"] for o in outcomes)
        return failed or (deadline is not None and clock() >= deadline)

    backend = make_backend(spec.backend, spec.workers)
    interrupted = drive(backend, jobs_of(spec, run), window=2 * spec.workers, seen=seen, stop=stop)
    wall = clock() - started
    shrunk = [] if interrupted or not spec.shrink else _shrink_failures(spec, outcomes, run, on_shrunk)
    summary = summarize(spec, sorted(outcomes, key=lambda o: int(o["index"])), wall_s=wall, interrupted=interrupted)
    summary["shrunk"] = shrunk
    path = spec.out / "swarm.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    return summary


def _shrink_failures(spec: SwarmSpec, outcomes: list[dict[str, Any]], run: RunWorld,
                     on_shrunk: Callable[[dict[str, Any]], None] | None) -> list[dict[str, Any]]:
    """The first failure of each kind of violation, up to ``shrink_limit`` of them, in run order."""
    kinds: set[str] = set()
    shrunk: list[dict[str, Any]] = []
    for outcome in sorted(outcomes, key=lambda o: int(o["index"])):
        if outcome["ok"] or len(shrunk) >= spec.shrink_limit:
            continue
        kind = violation_kind(outcome["violations"][0])
        if kind in kinds:
            continue
        kinds.add(kind)
        result = shrink_failure(outcome, out=spec.out, run=run, options=world_options(spec.breakage),
                                budget=spec.shrink_budget)
        shrunk.append(result)
        if on_shrunk is not None:
            on_shrunk(result)
    return shrunk


RESULT_KEYS = ("index", "name", "seed", "ok", "halted", "kill_trigger", "fills", "wall_seconds", "violations",
               "replay", "trace_sha256", "audit_sha256", "world")


def summarize(spec: SwarmSpec, outcomes: list[dict[str, Any]], *, wall_s: float, interrupted: bool) -> dict[str, Any]:
    """Counts of what the runs exercised, and every run's outcome."""
    counters: Counter[str] = Counter()
    coverage: dict[str, dict[str, int]] = {}
    features: Counter[str] = Counter()
    for outcome in outcomes:
        counters.update(outcome["counters"])
        for key, value in outcome["coverage"].items():
            entry = coverage.setdefault(key, {"total": 0, "runs": 0})
            entry["total"] += value
            entry["runs"] += value > 0
        features.update(outcome["features"])
    runs = len(outcomes)
    return {
        "command": spec.command(max((int(o["index"]) for o in outcomes), default=-1) + 1),
        "seed": spec.seed,
        "backend": spec.backend,
        "workers": spec.workers,
        "interrupted": interrupted,
        "runs": runs,
        "failed": sum(not o["ok"] for o in outcomes),
        "wall_seconds": round(wall_s, 3),
        "runs_per_hour": round(runs / wall_s * 3600, 1) if wall_s > 0 else 0.0,
        "halted": sum(bool(o["halted"]) for o in outcomes),
        "halts": dict(sorted(Counter(o["kill_trigger"] for o in outcomes if o["kill_trigger"]).items())),
        "counters": {k: round(v, 3) for k, v in sorted(counters.items())},
        "runs_with": {k: sum(o["counters"].get(k, 0) > 0 for o in outcomes) for k in sorted(counters)},
        "coverage": dict(sorted(coverage.items())),
        "features": dict(sorted(features.items())),
        "results": [{k: o.get(k) for k in RESULT_KEYS} for o in outcomes],
    }
