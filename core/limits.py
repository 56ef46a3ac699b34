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
