"""The composition root: the one place that decides which adapters an engine runs on, where its run directory,
state file and audit trail live, and how the engine is assembled from them.

Every entry point goes through here: the simulated world (``sim.world``: the in-process fake venue on virtual
time), the runner (``tools.runner``: sim, paper and live), the TensorTrade backtest (a world), drills (real
``ttlive run`` processes against a loopback fake), the sweeps and the swarm (worlds). They differ only in the
``BrokerLink`` they pass (Alpaca's URLs, or the in-process fake's transport and WebSocket opener), the clock and
the ids; the adapters, their wiring and the engine are built the same way for all of them.

    layout = run_layout(config)      # adapters.rundir: or run_layout(out_dir=...) for a sim the caller owns
    audit, store = open_audit(layout, secrets=...), open_store(layout)
    link = BrokerLink.alpaca(mode, config.broker, credentials)   # or BrokerLink.in_process(front, credentials)
                                                                 # or PortsLink.over(front, credentials)
    link, capture = capture_link(link, layout, config, mode, secrets=...)  # [capture]: the wire, recorded
    adapters = open_adapters(link, clock=clock, monitor=telemetry, symbols=config.symbols)
    engine = build_engine(config, adapters, clock=clock, ids=..., model=..., alerts=..., audit=audit, store=store,
                          account_type=..., monitor=telemetry)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Final, overload

import httpx
import trio

from adapters.alpaca.config import DATA_STREAM_BASE_URL, DATA_URL, AlpacaConfig, Credentials
from adapters.alpaca.ratelimit import RateLimiter, TokenBucket
from adapters.alpaca.rest import AlpacaData, AlpacaRest
from adapters.alpaca.streams import MarketDataStream, TradingStream
from adapters.alpaca.telemetry import LatencyTelemetry
from adapters.audit_jsonl import JsonlAuditSink
from adapters.capture import CaptureTransport, CaptureWriter, capture_ws_connect
from adapters.rundir import RunLayout
from adapters.state_store import FileStateStore
from core.config import BrokerSection, CaptureSection, EngineConfig, Mode
from core.engine.system import Engine
from core.model import NS_PER_S, AccountType
from core.ports import AlertSink, Clock, DecisionModel, IdFactory

if TYPE_CHECKING:
    from adapters.ports_venue import PortAdapters

ONE_MINUTE_S: Final = 60

WsConnect = Callable[..., Any]  # (url, *, extra_headers) -> an async context manager of a WebSocket


# --- where a run lives (the rule is adapters.rundir.run_layout) ---------------------------------------------


def open_audit(layout: RunLayout, *, secrets: Iterable[str], fsync: bool) -> JsonlAuditSink:
    """The audit sink of a run (append-only, hash-chained, secrets redacted). Simulations pass ``fsync=False``:
    durability is not what they measure; paper and live always fsync."""
    return JsonlAuditSink(layout.audit_dir, secrets=list(secrets), fsync=fsync)


def open_store(layout: RunLayout, *, fsync: bool) -> FileStateStore:
    return FileStateStore(layout.state_path, fsync=fsync)


def open_capture(layout: RunLayout, section: CaptureSection, mode: Mode, *, secrets: Iterable[str],
                 config: EngineConfig | None = None, clock_ns: Callable[[], int] | None = None,
                 session: str | None = None, **header: Any) -> CaptureWriter | None:
    """The run's wire capture (``adapters.capture``) in ``layout.capture_dir``, or None when ``[capture]`` is
    off for this mode (default: on for paper, opt-in for live, off for simulations). The header records the
    engine sections a replay needs (instruments, policy, risk, execution, reconcile: never a secret)."""
    if not section.active(mode):
        return None
    import msgspec

    engine = {} if config is None else {
        key: msgspec.to_builtins(getattr(config, key))
        for key in ("instruments", "policy", "risk", "execution", "reconcile")
    }
    clocks = {} if clock_ns is None else {"wall_ns": clock_ns, "mono_ns": clock_ns}  # a sim: its virtual clock
    return CaptureWriter(layout.capture_dir, secrets=secrets, max_mb=section.max_mb, session=session,
                         keep_sessions=section.keep_sessions, header={"mode": str(mode), "config": engine, **header},
                         **clocks)


def capture_link(link: BrokerLink, layout: RunLayout, config: EngineConfig, mode: Mode, *,
                 secrets: Iterable[str]) -> tuple[BrokerLink, CaptureWriter | None]:
    """``link`` recorded per the config's ``[capture]`` (the runner's one hook); the writer is the caller's to
    close at the end of the session (None: capture off)."""
    keys = [link.credentials.key_id, link.credentials.secret_key]
    writer = open_capture(layout, config.capture, mode, secrets=[*secrets, *keys],
                          config=config, trading_url=link.trading_url, data_url=link.data_url,
                          audit_dir=str(layout.audit_dir))
    return (link if writer is None else link.captured(writer)), writer


# --- which broker -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BrokerLink:
    """Where the adapters connect. Alpaca (paper or live URLs, the network) or the deterministic fake (its
    in-process httpx transport and in-memory WebSockets, same wire protocol): the adapters are the same."""

    credentials: Credentials
    trading_url: str
    data_url: str
    trading_stream_url: str
    data_stream_url: str
    feed: str = "iex"
    transport: Callable[[], httpx.AsyncBaseTransport] | None = None  # a fresh transport per client; None: the network
    ws_connect: WsConnect | None = None  # None: trio-websocket over the network

    @classmethod
    def alpaca(cls, mode: Mode, broker: BrokerSection, credentials: Credentials) -> BrokerLink:
        """Alpaca's paper endpoints (sim and paper) or live ones, from the config's ``[broker]`` section."""
        trading = (broker.live_url if mode is Mode.LIVE else broker.paper_url).rstrip("/")
        data = broker.data_url.rstrip("/")
        stream_base = data if data != DATA_URL else DATA_STREAM_BASE_URL.removesuffix("/v2")
        return cls(
            credentials=credentials,
            trading_url=trading,
            data_url=data,
            trading_stream_url=_ws(trading) + "/stream",
            data_stream_url=_ws(stream_base) + f"/v2/{broker.feed}",
            feed=broker.feed,
        )

    @classmethod
    def in_process(cls, front: Any, credentials: Credentials, base_url: str = "http://fake-alpaca") -> BrokerLink:
        """The fake venue's in-process front end (``adapters.fake.inprocess.InProcessVenue``)."""
        host = base_url.split("://", 1)[-1]
        return cls(
            credentials=credentials,
            trading_url=base_url,
            data_url=base_url,
            trading_stream_url=f"ws://{host}/stream",
            data_stream_url=f"ws://{host}/v2/iex",
            transport=front.http_transport,
            ws_connect=front.open_websocket,
        )

    def captured(self, writer: CaptureWriter) -> BrokerLink:
        """The same link with every REST exchange and WebSocket frame recorded by ``writer``: the transport
        factory and the WebSocket opener are wrapped here, so no adapter knows it is recorded."""
        inner = self.transport

        def transport() -> httpx.AsyncBaseTransport:
            return CaptureTransport(inner() if inner is not None else httpx.AsyncHTTPTransport(), writer)

        if self.ws_connect is not None:
            opener: Any = self.ws_connect
        else:
            from adapters.alpaca.streams import default_ws_connect

            opener = default_ws_connect()
        return replace(self, transport=transport, ws_connect=capture_ws_connect(opener, writer))

    def config(self, *, paper: bool = True) -> AlpacaConfig:
        return AlpacaConfig(
            credentials=self.credentials,
            paper=paper,
            trading_url=self.trading_url,
            data_url=self.data_url,
            trading_stream_url=self.trading_stream_url,
            data_stream_url=self.data_stream_url,
        )


@dataclass(frozen=True)
class PortsLink:
    """The deterministic fake venue at the engine's ports (``adapters.ports_venue``): no wire at all, for bulk
    backtests. ``front`` is the venue's in-process front-end (``adapters.fake.inprocess.InProcessVenue``), which
    drives its clock. ``over`` refuses a venue whose fault plan needs the wire (``PortsPathError``)."""

    front: Any
    credentials: Credentials

    @classmethod
    def over(cls, front: Any, credentials: Credentials) -> PortsLink:
        from adapters.ports_venue import check_plan

        check_plan(front.venue.config.faults)
        return cls(front=front, credentials=credentials)


def _ws(url: str) -> str:
    return "ws" + url[len("http") :] if url.startswith("http") else url


@dataclass
class Adapters:
    """The broker adapters of one engine life (a process, or a simulated client between crashes)."""

    rest: AlpacaRest
    data: AlpacaData
    trading: TradingStream
    market: MarketDataStream
    telemetry: LatencyTelemetry

    async def aclose(self) -> None:
        with trio.CancelScope(shield=True):
            await self.rest.aclose()
            await self.data.aclose()


def open_rest(link: BrokerLink, *, clock: Clock, telemetry: LatencyTelemetry | None = None,
              limiter: RateLimiter | None = None) -> AlpacaRest:
    """The trading REST client alone (an engine's, or a one-off pull: compliance records, a backtest's bars)."""
    transport = None if link.transport is None else link.transport()
    return AlpacaRest(credentials=link.credentials, clock=clock, base_url=link.trading_url, transport=transport,
                      monitor=telemetry, limiter=limiter)


def open_data(link: BrokerLink, *, clock: Clock, telemetry: LatencyTelemetry | None = None) -> AlpacaData:
    """The market-data REST client alone."""
    transport = None if link.transport is None else link.transport()
    return AlpacaData(credentials=link.credentials, clock=clock, base_url=link.data_url, transport=transport,
                      monitor=telemetry, feed=link.feed)


@overload
def open_adapters(link: BrokerLink, *, clock: Clock, telemetry: LatencyTelemetry, symbols: Iterable[str],
                  bar_interval_s: int = ..., alerts: AlertSink | None = ...) -> Adapters: ...
@overload
def open_adapters(link: PortsLink, *, clock: Clock, telemetry: LatencyTelemetry, symbols: Iterable[str],
                  bar_interval_s: int = ..., alerts: AlertSink | None = ...) -> PortAdapters: ...
@overload
def open_adapters(link: BrokerLink | PortsLink, *, clock: Clock, telemetry: LatencyTelemetry,
                  symbols: Iterable[str], bar_interval_s: int = ...,
                  alerts: AlertSink | None = ...) -> Adapters | PortAdapters: ...
def open_adapters(
    link: BrokerLink | PortsLink,
    *,
    clock: Clock,
    telemetry: LatencyTelemetry,
    symbols: Iterable[str],
    bar_interval_s: int = ONE_MINUTE_S,
    alerts: AlertSink | None = None,
) -> Adapters | PortAdapters:
    """REST (trading, rate-limited to Alpaca's 200/min), market-data REST, and the two streams, subscribed to
    ``symbols``' bars and quotes at ``bar_interval_s``. ``alerts``: where the streams' own alerts go (degraded to
    REST polling, failed), the same sinks as the engine's: log, dashboard, webhook.

    On a ``PortsLink`` the same four ports, implemented straight over the fake venue (``adapters.ports_venue``):
    the same client token bucket, no wire, nothing that can disconnect (so no stream alerts)."""
    if isinstance(link, PortsLink):
        from adapters.ports_venue import PortAdapters, PortsHistory, PortsMarketStream, PortsRest, PortsTradingStream

        return PortAdapters(
            rest=PortsRest(link.front, limiter=RateLimiter(TokenBucket.per_minute()), monitor=telemetry),
            data=PortsHistory(link.front, link.credentials),
            trading=PortsTradingStream(link.front),
            market=PortsMarketStream(link.front, symbols=list(symbols), bar_interval_s=bar_interval_s),
            telemetry=telemetry,
        )
    rest = open_rest(link, clock=clock, telemetry=telemetry, limiter=RateLimiter(TokenBucket.per_minute()))
    data = open_data(link, clock=clock, telemetry=telemetry)
    stream_io: dict[str, Any] = {} if link.ws_connect is None else {"ws_connect": link.ws_connect}
    stream_io["alerts"] = alerts
    trading = TradingStream(rest=rest, url=link.trading_stream_url, credentials=link.credentials, clock=clock,
                            monitor=telemetry, **stream_io)
    market = MarketDataStream(url=link.data_stream_url, credentials=link.credentials, clock=clock,
                              monitor=telemetry, history=data, bar_interval_ns=bar_interval_s * NS_PER_S,
                              timeframe=f"{max(1, bar_interval_s // ONE_MINUTE_S)}Min", **stream_io)
    market.bars_symbols.update(symbols)
    market.quote_symbols.update(symbols)
    return Adapters(rest=rest, data=data, trading=trading, market=market, telemetry=telemetry)


# --- the engine -------------------------------------------------------------------------------------------


def build_engine(
    config: EngineConfig,
    adapters: Adapters | PortAdapters,
    *,
    clock: Clock,
    ids: IdFactory,
    model: DecisionModel,
    alerts: AlertSink,
    audit: JsonlAuditSink,
    store: FileStateStore,
    account_type: AccountType,
) -> Engine:
    """The engine on these adapters: the audit sink is also the trail the latch is recovered from. An unset
    decision interval becomes the model's (its contract: ``adapters.policy.contract.resolve_config``)."""
    from adapters.policy.contract import resolve_config

    return Engine(
        config=resolve_config(config), broker=adapters.rest, trade_stream=adapters.trading,
        market_stream=adapters.market,
        history=adapters.data, clock=clock, ids=ids, model=model, alerts=alerts, audit=audit, store=store,
        account_type=account_type, monitor=adapters.telemetry,
        latency_p95_ms=adapters.telemetry.recent_rest_p95_ms, trail=audit,
    )
