"""What ``/metrics`` exposes (Prometheus text, on the internal port: ``libs.runtime.http``).

- ``o2c_http_request_duration_seconds{route,method,status}``: a histogram per route
  template (``/v1/orders/{order_id}``, never the id itself; ``unmatched`` for 404s
  outside any route), observed by the HTTP boundary;
- the relay: events published, broker losses, and its lag: committed events not yet
  published and the age of the oldest (``o2c_relay_lag_events``, ``_seconds``; read
  from the store at scrape time, by the replica that leads);
- the consumer: events by outcome (``applied``, ``duplicate``, ``ignored``, ``held``,
  ``dead``, ``redriven``), its lag per topic and partition (the broker's high
  watermark minus the offset this member last committed), gap alarms, parked streams,
  and its dead letters still unresolved (read at scrape time);
- the store: events appended, how loads of snapshotted streams started (``remembered``,
  ``stored`` snapshot, ``initial``: the whole stream folded);
- the database pools: connections in use and open;
- the process (``process_cpu_seconds_total``, ``process_resident_memory_bytes``, open
  files...), from prometheus_client's process collector.

Everything but the HTTP histogram is read from the objects at scrape time, so the hot
paths only bump plain integers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from libs.messaging import dlq
from libs.messaging.consumer import Consumer
from libs.messaging.relay import Relay
from libs.store.database import Database
from libs.store.store import EventStore

DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class HttpMetrics:
    """The request-duration histogram, with its label children cached (the labels are bounded:
    route templates x methods x statuses)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._histogram = Histogram(
            "o2c_http_request_duration_seconds", "HTTP requests by route template, method and status",
            ["route", "method", "status"], registry=registry, buckets=DURATION_BUCKETS)
        self._children: dict[tuple[str, str, int], Any] = {}

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = self._histogram.labels(route, method, str(status))
        child.observe(seconds)


class ServiceMetrics(Collector):
    """The relay, consumer, store and pool figures of one service, read at scrape time.

    ``refresh`` (awaited by ``/metrics`` before it renders) reads the relay's lag from
    the store; everything else is in memory."""

    def __init__(self, *, service: str, consumer: Consumer, store: EventStore | None,
                 db: Database, relay: Relay | None) -> None:
        self.service = service
        self._consumer = consumer
        self._store = store
        self._db = db
        self._relay = relay
        self._relay_lag: tuple[int, float] | None = None
        self._dead_letters: int | None = None

    async def refresh(self) -> None:
        self._relay_lag = await self._relay.lag() if self._relay is not None else None
        async with self._db.read() as conn:
            self._dead_letters = await dlq.unresolved_count(conn, self._consumer.name)

    def collect(self) -> Iterator[Metric]:
        yield from self._consumer_metrics()
        yield from self._relay_metrics()
        yield from self._store_metrics()
        yield from self._pool_metrics()

    def _consumer_metrics(self) -> Iterator[Metric]:
        consumer = self._consumer
        events = CounterMetricFamily("o2c_consumer_events", "Events by outcome",
                                     labels=["consumer", "outcome"])
        for outcome, count in consumer.outcomes.items():
            events.add_metric([consumer.name, outcome.value], count)
        yield events
        lag = GaugeMetricFamily("o2c_consumer_lag_messages",
                                "Messages on the topic after this member's last committed offset",
                                labels=["consumer", "topic", "partition"])
        for tp, behind in sorted(consumer.lag().items()):
            lag.add_metric([consumer.name, tp.topic, str(tp.partition)], behind)
        yield lag
        alarms = CounterMetricFamily(
            "o2c_consumer_gap_alarms", "Stream gaps that outlived their bound and the healing",
            labels=["consumer"])
        alarms.add_metric([consumer.name], consumer.gap_alarms)
        yield alarms
        parked = GaugeMetricFamily("o2c_consumer_parked_streams",
                                   "Streams parked on a gap right now", labels=["consumer"])
        parked.add_metric([consumer.name], consumer.parked_streams)
        yield parked
        if self._dead_letters is not None:
            letters = GaugeMetricFamily("o2c_consumer_dead_letters",
                                        "Dead letters waiting for a redrive or a discard",
                                        labels=["consumer"])
            letters.add_metric([consumer.name], self._dead_letters)
            yield letters

    def _relay_metrics(self) -> Iterator[Metric]:
        relay = self._relay
        if relay is None:
            return
        published = CounterMetricFamily("o2c_relay_published_events",
                                        "Events published by this relay", labels=["relay"])
        published.add_metric([relay.name], relay.published_total)
        yield published
        republished = CounterMetricFamily(
            "o2c_relay_republished", "Times the broker had lost data and everything was republished",
            labels=["relay"])
        republished.add_metric([relay.name], relay.republished)
        yield republished
        if self._relay_lag is not None:
            count, seconds = self._relay_lag
            events = GaugeMetricFamily("o2c_relay_lag_events",
                                       "Committed events not yet published", labels=["relay"])
            events.add_metric([relay.name], count)
            yield events
            age = GaugeMetricFamily("o2c_relay_lag_seconds",
                                    "Age of the oldest committed event not yet published",
                                    labels=["relay"])
            age.add_metric([relay.name], seconds)
            yield age

    def _store_metrics(self) -> Iterator[Metric]:
        store = self._store
        if store is None:
            return
        appended = CounterMetricFamily("o2c_events_appended", "Events appended to the store",
                                       labels=["service"])
        appended.add_metric([self.service], store.appended)
        yield appended
        starts = CounterMetricFamily(
            "o2c_snapshot_loads", "Loads of snapshotted streams by where they started",
            labels=["service", "start"])
        for start in ("remembered", "stored", "initial"):
            starts.add_metric([self.service, start], store.snapshot_starts[start])
        yield starts

    def _pool_metrics(self) -> Iterator[Metric]:
        in_use = GaugeMetricFamily("o2c_db_pool_in_use", "Database connections in use (not kept idle)",
                                   labels=["pool"])
        size = GaugeMetricFamily("o2c_db_pool_open", "Database connections open", labels=["pool"])
        for name, (busy, opened) in self._db.pool_usage().items():
            in_use.add_metric([name], busy)
            size.add_metric([name], opened)
        yield in_use
        yield size
