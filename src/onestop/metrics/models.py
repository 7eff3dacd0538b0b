"""The metric store's tables.

Samples arrive in one of two buffer tables (`metrics_buffer0`, `metrics_buffer1`: one narrow
row per sample, created by the migration without a model because the ORM never writes them and
they need no primary key). A periodic compaction freezes the active buffer, packs its rows into
one `Chunk` per series and hour, and empties it whole. Closed days are rolled up into `Rollup`
rows; expired chunks and rollups are dropped whole.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _


class Series(models.Model):
    """One time series: a source (a device id, opaque here), a metric name and its labels."""

    source_id = models.BigIntegerField(_("source"))
    name = models.CharField(_("name"), max_length=100)
    labels = models.JSONField(_("labels"), default=dict)
    # blake2b-128 of the canonical (source_id, name, labels); lets a batch resolve its series
    # with one IN query and makes concurrent creation of the same series collide harmlessly.
    key = models.CharField(max_length=32, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = _("series")
        verbose_name_plural = _("series")
        indexes = [models.Index(fields=["source_id", "name"], name="metrics_series_source_name")]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.name}{self.labels or ''}"


class Chunk(models.Model):
    """The raw samples of one series in one clock hour, packed (see codec.py)."""

    pk = models.CompositePrimaryKey("series_id", "hour")
    # The primary key starts with series_id, so a separate index on it would only cost.
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False)
    hour = models.BigIntegerField()  # unix seconds of the hour's start (UTC)
    count = models.IntegerField()
    data = models.BinaryField()

    class Meta:
        indexes = [models.Index(fields=["hour"], name="metrics_chunk_hour")]

    def __str__(self) -> str:
        return f"chunk {self.series_id}@{self.hour} ({self.count})"


class Rollup(models.Model):
    """Per-bucket min/avg/max/count of one series over one UTC day at one resolution."""

    pk = models.CompositePrimaryKey("series_id", "resolution", "day")
    # The primary key starts with series_id, so a separate index on it would only cost.
    series = models.ForeignKey(Series, on_delete=models.CASCADE, related_name="+", db_index=False)
    resolution = models.IntegerField()  # bucket width in seconds: 300 or 3600
    day = models.BigIntegerField()  # unix seconds of the day's start (UTC)
    data = models.BinaryField()

    class Meta:
        indexes = [models.Index(fields=["resolution", "day"], name="metrics_rollup_res_day")]

    def __str__(self) -> str:
        return f"rollup {self.series_id}/{self.resolution}s@{self.day}"


class StoreState(models.Model):
    """The store's one bookkeeping row: which buffer takes writes and how far the periodic
    work has got, so that a crash at any step is repeated, never skipped."""

    active = models.SmallIntegerField(default=0)  # the buffer (0 or 1) that takes writes
    frozen = models.BooleanField(default=False)  # the other buffer still awaits compaction
    frozen_at = models.BigIntegerField(default=0)  # unix seconds of the last freeze
    compacted_until = models.BigIntegerField(default=0)  # every write before this is in chunks
    rolled_until = models.BigIntegerField(default=0)  # days before this are rolled up

    def __str__(self) -> str:
        return f"metric store state (buffer {self.active})"
