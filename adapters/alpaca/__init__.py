"""The only code that speaks Alpaca, the same in simulation and live: REST (``rest``), the two WebSocket
streams (``streams``), wire models and decoders, pacing, retries, gap fill and latency telemetry.
"""
