"""Every number the system obeys, with its unit in the name and the spec section it comes from.

One module so a reviewer can audit the limits in one read; code never hard-codes these values.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

# --- 1.1 Data stream replacement -------------------------------------------------------------
RECONNECT_MAX_RETRIES: Final = 5  # spec 1.1 "max 5 retries"
RECONNECT_BACKOFF_CEILING_S: Final = 30.0  # spec 1.1 "30s ceiling"
RECONNECT_BACKOFF_BASE_S: Final = 1.0  # first delayed retry; the very first retry is immediate (spec 3.3)

# --- 1.2 Order submission ----------------------------------------------------------------------
ORDER_SUBMIT_TIMEOUT_S: Final = 5.0  # spec 1.2 step 3 "timeout (5s default)"
CLIENT_ORDER_ID_MAX_CHARS: Final = 128  # Alpaca docs (alpaca-wire.md §2)

# --- 1.3 Execution update handling ----------------------------------------------------------------
RECONCILE_INTERVAL_S: Final = 60.0  # spec 1.3 "every 60 seconds"
RECONCILE_TOLERANCE_FRACTION: Final = Decimal("0.001")  # spec 1.3 "0.1% of position value"

# --- 1.4 / 3.2 Resilience and error matrix ---------------------------------------------------------
TIMEOUT_MAX_RETRIES: Final = 3  # spec 1.4 / 3.2 "Retry with idempotency key (max 3)"
SERVER_ERROR_MAX_RETRIES: Final = 5  # spec 3.2 "API 5xx errors ... Yes (5x)"
RETRY_BACKOFF_BASE_S: Final = 0.5  # our choice: first backoff step for REST retries
RETRY_BACKOFF_CEILING_S: Final = 30.0  # same ceiling as reconnects (spec 1.1)
RATE_LIMIT_MAX_WAIT_S: Final = 60.0  # one full Alpaca rate-limit window (alpaca-wire.md §6)
POLLING_INTERVAL_S: Final = 5.0  # spec 1.4 "Switch to polling mode (5s interval)"

# --- Alpaca rate limit (alpaca-wire.md §6) ----------------------------------------------------------
ALPACA_REQUESTS_PER_MIN: Final = 200  # trading API, per account
CLIENT_REQUESTS_PER_MIN: Final = 190  # our client-side bucket keeps headroom under the venue's 200

# --- 2.1 Pre-trade risk ---------------------------------------------------------------------------
MAX_POSITION_FRACTION: Final = Decimal("0.05")  # spec 2.1 "max 5% equity per position"
MAX_SECTOR_FRACTION: Final = Decimal("0.25")  # spec 2.1 "max 25% per sector"
MAX_CORRELATED_FRACTION: Final = Decimal("0.40")  # spec 2.1 "max 40% correlated exposure"
CORRELATION_THRESHOLD: Final = 0.7  # our definition of "correlated" (README, risk section)
CORRELATION_WINDOW_DAYS: Final = 60  # rolling window of daily returns for the correlation rule
DAILY_LOSS_HALT_FRACTION: Final = Decimal("0.03")  # spec 2.1 / 2.3 "halt at 3% daily drawdown"

# --- 2.3 Kill switch triggers ------------------------------------------------------------------------
WEEKLY_LOSS_HALT_FRACTION: Final = Decimal("0.05")  # spec 2.3 "Weekly P&L exceeds -5%"
MAX_CONSECUTIVE_LOSING_TRADES: Final = 5  # spec 2.3 "> 5" trips on the 6th
CONNECTIVITY_LOST_HALT_S: Final = 30.0  # spec 2.3 "API connectivity lost > 30 seconds"

# --- 2.2 / 2.4 Broker safeguards and leverage ----------------------------------------------------------
LEVERAGE_CAP_CASH: Final = Decimal("1")  # spec 2.4
LEVERAGE_CAP_MARGIN_INITIAL: Final = Decimal("1")  # spec 2.4
LEVERAGE_CAP_MARGIN_EXPERIENCED: Final = Decimal("2")  # spec 2.4
INITIAL_MAX_MARGIN_MULTIPLIER: Final = 1  # spec 2.2 "multiplier = 1 (no margin) for initial deployment"
PDT_EQUITY_THRESHOLD_USD: Final = Decimal("25000")  # spec 2.2 "PDT protection for accounts < $25k"
PDT_MAX_DAY_TRADES: Final = 3  # FINRA: a 4th day trade in 5 business days flags PDT
PDT_WINDOW_DAYS: Final = 5
GO_LIVE_SIZE_SCALE: Final = Decimal("0.25")  # spec 6 "reduced position sizes (25% of target)"

# --- 3.1 Latency budgets (measured in benchmarks, never asserted in tests) -------------------------------
BUDGET_FEATURE_MS: Final = 10.0
BUDGET_INFERENCE_MS: Final = 20.0
BUDGET_RISK_MS: Final = 5.0
BUDGET_SUBMIT_MS: Final = 100.0
BUDGET_SIGNAL_TO_ORDER_MS: Final = 150.0
BATCH_WINDOW_S: Final = 0.100  # spec 3.1 "Accumulate signals over 100ms window"
FEATURE_CACHE_TTL_S: Final = 1.0  # spec 3.1 "Cache feature computations (TTL: 1s)"

# --- 3.3 WebSocket persistence -------------------------------------------------------------------------
HEARTBEAT_INTERVAL_S: Final = 30.0  # spec 3.3
HEARTBEAT_MISSED_TOLERANCE: Final = 2  # spec 3.3
STREAM_BUFFER_MAX_MESSAGES: Final = 10_000  # spec 3.3 "Max queue depth: 10,000 messages" (drop oldest)
WS_HANDSHAKE_TIMEOUT_S: Final = 10.0  # Alpaca closes unauthenticated sockets after 10 s (alpaca-wire.md §5)

# --- 4.1-4.3 Compliance and monitoring -----------------------------------------------------------------
RETENTION_SIGNALS_DAYS: Final = 90  # spec 4.2
RETENTION_RISK_DAYS: Final = 365  # spec 4.2
RETENTION_ORDERS_DAYS: Final = 365  # spec 4.2
RETENTION_FILLS_DAYS: Final = 7 * 365  # spec 4.2 "7 years"
RETENTION_HEALTH_DAYS: Final = 30  # spec 4.2
ALERT_DRAWDOWN_WARNING_FRACTION: Final = Decimal("0.02")  # spec 4.3
ALERT_DRAWDOWN_CRITICAL_FRACTION: Final = Decimal("0.03")  # spec 4.3 (also trips the kill switch)
ALERT_API_LATENCY_P95_MS: Final = 500.0  # spec 4.3
ALERT_REJECTION_RATE_FRACTION: Final = 0.05  # spec 4.3
ALERT_COOLDOWN_S: Final = 300.0  # our choice: one alert per key per 5 minutes

# --- Internal channel bounds (architecture: "all channels bounded") --------------------------------------
ACTOR_CHANNEL_CAPACITY: Final = 1_024
AUDIT_CHANNEL_CAPACITY: Final = 4_096

# --- Accepted ranges of configurable values (config and scenario loaders) ------------------------------------
# Each is (low, high), both inclusive, in the unit its name ends with; a loader rejects anything outside, and any
# NaN or infinity, naming file, key and line. Our choice unless a spec section is named: wide enough for every
# shipped scenario and swarm draw, narrow enough that a typo (1e308, -5, 0) cannot disable a safeguard.
RISK_PCT_RANGE: Final = (Decimal("0.01"), Decimal("100"))  # % of equity: position/sector/correlated caps, loss halts
SIZE_SCALE_RANGE: Final = (Decimal("0.0001"), Decimal("1"))  # fraction of target size (spec 6: 0.25 at go-live)
CORRELATION_THRESHOLD_RANGE: Final = (0.01, 1.0)  # Pearson correlation
CORRELATION_WINDOW_RANGE_DAYS: Final = (2, 1_000)
CAPTURE_MAX_MB_RANGE: Final = (0.1, 100_000.0)  # [capture] max_mb: compressed MB per session
REPLAY_WINDOW_RANGE_S: Final = (1, 7 * 86_400)  # scenario session.duration_s of an always_open window
CAPTURE_KEEP_SESSIONS_RANGE: Final = (1, 100_000)  # [capture] keep_sessions: capture files kept
MAX_CONSECUTIVE_LOSSES_RANGE: Final = (0, 1_000)  # losing trades; 0 trips on the first loss (spec 2.3 uses 5)
CONNECTIVITY_LOST_HALT_RANGE_S: Final = (1.0, 600.0)  # spec 2.3 uses 30 s; 0 would halt on every blip
MAX_POSITION_SIZE_RANGE_SHARES: Final = (1, 1_000_000_000)  # spec 2.2 per-symbol cap
STOP_LOSS_RANGE_PCT: Final = (Decimal("0"), Decimal("100"))
PROTECT_STOP_RANGE_PCT: Final = (Decimal("0.1"), Decimal("50"))  # risk.protect_stop_pct (on_halt = "protect")
TAKE_PROFIT_RANGE_PCT: Final = (Decimal("0"), Decimal("1000"))
AGGRESSIVE_CROSS_RANGE_BPS: Final = (Decimal("0"), Decimal("10000"))
DEPTH_CHECK_RANGE_FRACTION: Final = (Decimal("0"), Decimal("1000"))  # x touch size
SUBMIT_TIMEOUT_RANGE_S: Final = (0.1, 120.0)  # spec 1.2 uses 5 s
DECISION_INTERVAL_RANGE_S: Final = (1.0, 86_400.0)  # one decision a second .. one a day
RECONCILE_INTERVAL_RANGE_S: Final = (1.0, 3_600.0)  # spec 1.3 uses 60 s
RECONCILE_TOLERANCE_RANGE_PCT: Final = (Decimal("0"), Decimal("100"))  # % of position value
DASHBOARD_PORT_RANGE: Final = (0, 65_535)  # 0 = any free port
# Scenario worlds (sim only, but a NaN there still crashes a run instead of failing at load):
ACCOUNT_CASH_RANGE_USD: Final = (Decimal("1"), Decimal("1e9"))
STARTING_POSITION_QTY_RANGE: Final = (Decimal("-1e7"), Decimal("1e7"))  # shares, signed (short < 0)
STARTING_POSITION_PRICE_RANGE_USD: Final = (Decimal("0.0001"), Decimal("1e6"))  # average entry per share
MARKET_DRIFT_RANGE_BPS_PER_DAY: Final = (-10_000.0, 10_000.0)
MARKET_VOL_RANGE_PCT_PER_DAY: Final = (0.0, 100.0)
MARKET_CORRELATION_RANGE: Final = (-1.0, 1.0)
MARKET_SPREAD_RANGE_BPS: Final = (0.0, 10_000.0)
REGIME_SIZE_RANGE_PCT: Final = (-100.0, 100.0)  # signed: a trend regime moves down as well as up
REGIME_DURATION_RANGE_S: Final = (0, 86_400)
SESSION_DAYS_RANGE: Final = (1, 260)
SCENARIO_SEED_RANGE: Final = (0, 2**63 - 1)
