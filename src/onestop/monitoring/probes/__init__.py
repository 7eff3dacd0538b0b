"""Agentless probes the poller runs: plain asyncio, no Django.

Each probe is ``async def probe_x(*, ..., timeout: float, ...) -> ProbeResult`` and never raises
for a network problem: timeouts, refusals, TLS errors and garbage answers become a result.
Import the probe modules directly (``from onestop.monitoring.probes.http import probe_http``);
this package imports nothing eagerly so one missing optional library breaks only its probe.
"""
