"""The MQTT bridge: subscribe with a persistent session, append to the durable spool, then acknowledge.

This is what an IoT rule does in front of a stream: a message is acknowledged (PUBACK) only after it is
fsync'ed into the spool, so a bridge killed at any point loses nothing; the broker redelivers what was not
acknowledged, and the landing removes the resulting duplicates by event id.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from pipelines.stream.transports import Spool, TransportError, connect


def topic_key(topic: str) -> str:
    """The partition key of a message: the last level of its topic (`tributary/telemetry/EWR` -> `EWR`)."""
    return topic.rstrip("/").rsplit("/", 1)[-1] or topic


class MqttBridge:
    """Moves QoS 1 messages from a broker topic into a spool, at least once, acknowledging after the write."""

    def __init__(self, spool: Spool, *, host: str = "127.0.0.1", port: int = 1883,
                 topic: str = "tributary/telemetry/#", client_id: str = "tributary-bridge",
                 flush_interval: float = 0.02, max_pending: int = 500) -> None:
        if not spool.fsync:
            raise ValueError("the bridge acknowledges only durable writes: give it a spool with fsync=True")
        self.spool = spool
        self.host, self.port, self.topic, self.client_id = host, port, topic, client_id
        self.flush_interval = flush_interval
        self.max_pending = max_pending
        self._pending: list[tuple[str, bytes, int, int]] = []
        self._lock = threading.Lock()
        self._arrived = threading.Event()
        self._connected = threading.Event()
        self.forwarded = 0

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any = None) -> None:
        if not reason.is_failure:
            client.subscribe(self.topic, qos=1)
            self._connected.set()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        with self._lock:
            self._pending.append((topic_key(msg.topic), msg.payload, msg.mid, msg.qos))
            if len(self._pending) >= self.max_pending:
                self._arrived.set()

    def _flush(self, client: Any) -> int:
        with self._lock:
            batch, self._pending = self._pending, []
            self._arrived.clear()
        if not batch:
            return 0
        self.spool.put([(key, payload) for key, payload, _, _ in batch])  # durable (fsync) before any PUBACK
        for _, _, mid, qos in batch:
            if qos > 0:
                client.ack(mid, qos)
        self.forwarded += len(batch)
        return len(batch)

    def run(self, *, stop: threading.Event | None = None, max_messages: int | None = None,
            idle_exit: float | None = None, on_flush: Callable[[int], None] | None = None) -> int:
        """Forward until `stop` is set, `max_messages` have been forwarded, or nothing came for `idle_exit` s."""

        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id, clean_session=False,
                             manual_ack=True)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        connect(client, self.host, self.port)
        try:
            if not self._connected.wait(10):
                raise TransportError(f"the MQTT broker at {self.host}:{self.port} did not accept the connection")
            last = time.monotonic()
            while not (stop and stop.is_set()):
                self._arrived.wait(self.flush_interval)
                moved = self._flush(client)
                if moved:
                    last = time.monotonic()
                    if on_flush:
                        on_flush(moved)
                if max_messages is not None and self.forwarded >= max_messages:
                    break
                if idle_exit is not None and time.monotonic() - last > idle_exit:
                    break
            self._flush(client)
        finally:
            client.disconnect()
            client.loop_stop()
        return self.forwarded
