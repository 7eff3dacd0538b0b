"""The job queue's Huey classes: huey's own, with a consumer that never dies of an early signal."""

import signal

import huey
from huey.consumer import Consumer

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP}


class SignalSafeConsumer(Consumer):
    """Holds stop signals back while the consumer starts.

    Huey logs "consumer started" and starts its threads before it installs its signal
    handlers; a SIGTERM in that gap (systemd stopping a unit that has just started) killed
    the process outright instead of stopping it cleanly. Blocked signals stay pending and
    reach huey's handlers once they are in place; the threads started meanwhile inherit
    the block, so the signal is delivered to the main thread, where Python handles it.
    """

    def start(self) -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            super().start()
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


class SqliteHuey(huey.SqliteHuey):
    """The embedded default's queue (a SQLite file in the data folder)."""

    def create_consumer(self, **options: object) -> Consumer:
        return SignalSafeConsumer(self, **options)


class PriorityRedisHuey(huey.PriorityRedisHuey):
    """The queue when ONESTOP_REDIS_URL is set."""

    def create_consumer(self, **options: object) -> Consumer:
        return SignalSafeConsumer(self, **options)
