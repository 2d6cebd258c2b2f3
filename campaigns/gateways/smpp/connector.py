"""One long-lived SMPP bind per gateway alias, run by ``manage.py smpp_connector``.

Threads:
- the sender (``run``) takes batches from Redis, submits their parts within the window and the
  rate cap, and reconnects with backoff when the link drops;
- the reader parses every PDU itself (smpplib's ``read_once`` raises on error responses, hands
  them to the sent handler too, and only sends enquire_link on read timeouts);
- the keepalive sends enquire_link on a timer and declares the link dead when nothing comes back;
- the replier writes batch results to Redis; the flusher hands receipts and MO messages to the
  events sink in batches (every ``flush_size`` events or ``flush_interval`` seconds).

Submits the link lost before their ``submit_sm_resp`` are resubmitted after the reconnect: a
carrier that took one without answering will see it twice (SMPP offers no way to know).
"""

from __future__ import annotations

import json
import logging
import queue
import select
import struct
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import smpplib.client
import smpplib.consts
import smpplib.exceptions
import smpplib.smpp
from django.db import close_old_connections
from django.utils.module_loading import import_string

from campaigns.gateways.base import CarrierEvents, InboundSMS, Receipt

from . import codec
from .status import State, gateway_options, key, record_status, redis_client

logger = logging.getLogger(__name__)

EventsSink = Callable[..., None]
DEFAULT_SINK = "campaigns.receipts.apply_carrier_events"
PART_DAYS = 3  # receipts rarely come later than a message's validity period (a day or two)
MEMORY_PARTS = 500_000
MAX_GROUP = 64  # submits written in one syscall


class LinkLost(Exception):
    pass


@dataclass(eq=False)
class _Part:
    batch: _Batch
    message: int
    index: int  # 1-based
    body: bytes  # the submit_sm body, encoded once
    carrier_id: str = ""
    error: str = ""
    retryable: bool = False
    done: bool = False


@dataclass(eq=False)
class _Batch:
    reply_key: str
    deadline: float
    refs: list[str]
    parts: list[list[_Part]] = field(default_factory=list)
    remaining: int = 0


def _lazy_default_sink(*, gateway_alias: str, events: CarrierEvents) -> None:
    import_string(DEFAULT_SINK)(gateway_alias=gateway_alias, events=events)


class Connector:
    """The bind of gateway ``alias``; ``run()`` blocks until ``stop()``."""

    def __init__(
        self,
        alias: str,
        *,
        options: dict | None = None,
        on_events: EventsSink | None = None,
        flush_interval: float = 0.2,
        flush_size: int = 500,
    ):
        self.alias = alias
        self.options = gateway_options(alias) if options is None else dict(options)
        self.on_events = on_events or _lazy_default_sink
        self.flush_interval = flush_interval
        self.flush_size = flush_size
        self.host = self.options.get("HOST", "127.0.0.1")
        self.port = int(self.options.get("PORT", 2775))
        self.window = max(1, int(self.options.get("WINDOW", 10)))
        self.rate = float(self.options.get("RATE", 0) or 0)
        self.default_data_coding = int(self.options.get("DEFAULT_DATA_CODING", codec.DC_DEFAULT))
        self.source_addr = self.options.get("SOURCE_ADDR", "")
        self.enquire_interval = float(self.options.get("ENQUIRE_LINK_INTERVAL", 30))
        self.max_backoff = float(self.options.get("MAX_RECONNECT_BACKOFF", 30))
        self.redis = redis_client(self.options)

        self._stop = threading.Event()
        self._cond = threading.Condition()  # guards the link, the in-flight map and the queue
        self._send_lock = threading.Lock()  # smpplib has none; the reader answers PDUs too
        self._client: smpplib.client.Client | None = None
        self._bound = False
        self._inflight: dict[int, _Part] = {}
        self._queue: deque[_Part] = deque()
        self._pause_until = 0.0
        self._throttle_backoff = 0.0
        self._next_slot = 0.0
        self._last_rx = 0.0
        self._unbound = threading.Event()
        self._ref = 0
        self._replies: queue.Queue[_Batch | None] = queue.Queue()
        self._events_lock = threading.Lock()
        self._events_full = threading.Event()  # wakes the flusher before its interval
        self._receipts: list[codec.ParsedReceipt] = []
        self._inbound: list[InboundSMS] = []
        self._mo_parts: dict[tuple[str, int], dict[int, str]] = {}
        self._parts_map: OrderedDict[str, tuple[str, int, int]] = OrderedDict()
        self._threads: list[threading.Thread] = []
        self.submitted = 0  # submit_sm accepted by the carrier, for benchmarks and logs

    # --- lifecycle -----------------------------------------------------------------------------

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def run(self) -> None:
        self._status(State.STARTING, detail=f"Connecting to {self.host}:{self.port}.")
        for target in (self._replier, self._flusher, self._keepalive):
            thread = threading.Thread(target=target, name=f"smpp-{target.__name__.strip('_')}", daemon=True)
            thread.start()
            self._threads.append(thread)
        try:
            self._send_loop()
        finally:
            self._shutdown()

    def _shutdown(self) -> None:
        deadline = time.monotonic() + 5
        with self._cond:
            while self._inflight and self._bound and time.monotonic() < deadline:
                self._cond.wait(0.1)
            unsent, unanswered = list(self._queue), list(self._inflight.values())
            self._queue.clear()
            self._inflight.clear()
        for part in unsent:
            self._resolve(part, error="The SMPP connector stopped before submitting it.", retryable=True)
        for part in unanswered:
            self._resolve(part, error="The SMPP connector stopped before the carrier answered.", retryable=True)
        client = self._client
        was_bound = client is not None and self._bound
        if was_bound:
            try:
                self._unbound.clear()
                with self._send_lock:
                    client.send_pdu(smpplib.smpp.make_pdu("unbind", client=client))
                self._unbound.wait(2)
            except (smpplib.exceptions.ConnectionError, OSError):
                pass
        self._bound = False
        if client is not None:
            client.disconnect()
        self._replies.put(None)
        for thread in self._threads:
            thread.join(timeout=3)
        self._flush_events(final=True)
        self._status(State.STOPPED, detail="Stopped; unbound cleanly." if was_bound else "Stopped.")

    def _status(self, state: str, **fields: str) -> None:
        try:
            record_status(self.redis, self.alias, state=state, **fields)
        except Exception:  # the link matters more than its report
            logger.exception("Could not record the SMPP status")

    # --- binding -------------------------------------------------------------------------------

    def _bind(self) -> None:
        """Connect and bind_transceiver, retrying with exponential backoff until bound or stopped."""
        backoff = 0.5
        while not self._stop.is_set():
            client = smpplib.client.Client(self.host, self.port, timeout=30, allow_unknown_opt_params=True)
            try:
                client.connect()
                client.bind_transceiver(
                    system_id=self.options.get("SYSTEM_ID", ""),
                    password=self.options.get("PASSWORD", ""),
                    system_type=self.options.get("SYSTEM_TYPE", ""),
                )
            except smpplib.exceptions.PDUError as exc:
                client.disconnect()
                status = exc.args[1] if len(exc.args) > 1 else 0
                if status in codec.AUTH_FAILURES:
                    detail = (
                        f"The carrier at {self.host}:{self.port} refused the bind of system_id "
                        f"{self.options.get('SYSTEM_ID', '')!r}: {codec.status_name(status)} "
                        "(check SYSTEM_ID, PASSWORD and SYSTEM_TYPE)."
                    )
                    self._status(State.AUTH_FAILED, detail=detail, last_error=detail)
                    backoff = max(backoff, 10)
                else:
                    detail = f"Bind refused: {codec.status_name(status)}."
                    self._status(State.RECONNECTING, detail=detail, last_error=detail)
                logger.warning("%s; retrying in %.1f s", detail, backoff)
            except (smpplib.exceptions.ConnectionError, OSError) as exc:
                client.disconnect()
                detail = f"Cannot reach {self.host}:{self.port} ({exc or 'connection refused'})."
                self._status(State.RECONNECTING, detail=detail, last_error=detail)
                logger.warning("%s; retrying in %.1f s", detail, backoff)
            else:
                with self._cond:
                    self._client = client
                    self._bound = True
                    self._last_rx = time.monotonic()
                    self._cond.notify_all()
                thread = threading.Thread(target=self._reader, args=(client,), name="smpp-reader", daemon=True)
                thread.start()
                self._status(State.BOUND, detail=f"Bound to {self.host}:{self.port}.")
                logger.info("Bound to %s:%s as %s", self.host, self.port, self.options.get("SYSTEM_ID"))
                return
            self._stop.wait(backoff)
            backoff = min(backoff * 2, self.max_backoff)

    def _link_lost(self, client: smpplib.client.Client, reason: str) -> None:
        """Mark the link down once; submits still awaiting an answer go back to the front of the queue."""
        with self._cond:
            if client is not self._client or not self._bound:
                return
            self._bound = False
            orphans = [self._inflight[seq] for seq in sorted(self._inflight)]
            self._inflight.clear()
            self._queue.extendleft(reversed(orphans))
            self._cond.notify_all()
        try:
            client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN  # the link is gone; no unbind to send
            client.disconnect()
        except OSError:
            pass
        if not self._stop.is_set():
            detail = f"Link lost ({reason}); {len(orphans)} unanswered submits will be resent."
            logger.warning(detail)
            self._status(State.RECONNECTING, detail=detail, last_error=detail)

    # --- sending -------------------------------------------------------------------------------

    def _send_loop(self) -> None:
        while not self._stop.is_set():
            if not self._bound:
                self._bind()
                continue
            group = self._take_group()
            if group:
                self._send_group(group)

    def _take_group(self) -> list[_Part]:
        """Parts to send now: as many as the window allows (one at a time under a rate cap)."""
        with self._cond:
            if self._queue:
                while len(self._inflight) >= self.window and self._bound and not self._stop.is_set():
                    self._cond.wait(0.5)
                if not self._bound or self._stop.is_set():
                    return []
                room = 1 if self.rate else min(self.window - len(self._inflight), MAX_GROUP)
                return [self._queue.popleft() for _ in range(min(room, len(self._queue)))]
        answer = self.redis.blpop([key(self.alias, "requests")], timeout=0.2)
        if answer is not None:
            self._enqueue_batch(json.loads(answer[1]))
        return []

    def _enqueue_batch(self, request: dict) -> None:
        if time.time() > request["deadline"]:
            return  # the worker has given up on it and will retry the messages
        batch = _Batch(request["reply_key"], request["deadline"], [m["ref"] for m in request["messages"]])
        for number, message in enumerate(request["messages"]):
            self._ref = (self._ref + 1) % 256
            encoded = codec.encode_message(message["text"], default_data_coding=self.default_data_coding, ref=self._ref)
            src_ton, src_npi, src = codec.source_address(message["sender"] or self.source_addr)
            dst_ton, dst_npi, dst = codec.destination_address(message["to"])
            parts = []
            for index, short_message in enumerate(encoded.parts, 1):
                fields = {
                    "source_addr_ton": src_ton,
                    "source_addr_npi": src_npi,
                    "source_addr": src,
                    "dest_addr_ton": dst_ton,
                    "dest_addr_npi": dst_npi,
                    "destination_addr": dst,
                    "esm_class": encoded.esm_class,
                    "data_coding": encoded.data_coding,
                    "registered_delivery": 1,
                    "short_message": short_message,
                }
                parts.append(_Part(batch=batch, message=number, index=index, body=codec.submit_sm_body(**fields)))
            batch.parts.append(parts)
            batch.remaining += len(parts)
        with self._cond:
            self._queue.extend(part for parts in batch.parts for part in parts)
        if not batch.remaining:
            self._replies.put(batch)

    def _send_group(self, group: list[_Part]) -> None:
        now = time.time()
        late = [part for part in group if now > part.batch.deadline]
        for part in late:
            self._resolve(part, error="Not submitted before the batch's deadline.", retryable=True)
        group = [part for part in group if now <= part.batch.deadline]
        if not group:
            return
        now = time.monotonic()
        wait = max(self._pause_until, self._next_slot if self.rate else 0) - now
        if wait > 0:
            time.sleep(wait)
        if self.rate:
            self._next_slot = max(self._next_slot, now) + 1 / self.rate
        client = self._client
        try:
            # One syscall for the group; PDUs are built by hand (smpplib's generate is the slow part).
            with self._send_lock:
                chunks = []
                with self._cond:
                    if client is not self._client or not self._bound:
                        self._queue.extendleft(reversed(group))
                        return
                    for part in group:
                        sequence = client.next_sequence()
                        self._inflight[sequence] = part
                        chunks.append(codec.pdu(codec.SUBMIT_SM, sequence, part.body))
                client._socket.sendall(b"".join(chunks))
        except (OSError, AttributeError) as exc:
            # Let the reader drain the answers already received before the unanswered are resent.
            with self._cond:
                self._cond.wait_for(lambda: client is not self._client or not self._bound, timeout=2)
            self._link_lost(client, f"send failed: {exc or type(exc).__name__}")

    # --- reading -------------------------------------------------------------------------------

    def _reader(self, client: smpplib.client.Client) -> None:
        """Frame PDUs from a buffered socket; submit_sm_resp (the bulk) is decoded by hand."""
        buffer = b""
        try:
            sock = client._socket  # smpplib exposes no poll with a timeout
            while not self._stop.is_set() or self._bound:
                if client is not self._client or not self._bound:
                    return
                readable, _, _ = select.select([sock], [], [], 0.5)
                if not readable:
                    continue
                data = sock.recv(262144)
                if not data:
                    raise smpplib.exceptions.ConnectionError("closed by the carrier")
                self._last_rx = time.monotonic()
                buffer += data
                answers: list[bytes] = []
                offset = 0
                while len(buffer) - offset >= 16:
                    length = int.from_bytes(buffer[offset : offset + 4], "big")
                    if length < 16:
                        raise smpplib.exceptions.PDUError("Broken PDU")
                    if len(buffer) - offset < length:
                        break
                    raw = buffer[offset : offset + length]
                    offset += length
                    self._dispatch(client, raw, answers)
                buffer = buffer[offset:]
                if answers:
                    with self._send_lock:
                        sock.sendall(b"".join(answers))
        except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError, ValueError) as exc:
            self._link_lost(client, str(exc) or type(exc).__name__)

    def _dispatch(self, client: smpplib.client.Client, raw: bytes, answers: list[bytes]) -> None:
        command_id, status, sequence = struct.unpack(">III", raw[4:16])
        if command_id in (codec.SUBMIT_SM_RESP, codec.GENERIC_NACK):
            with self._cond:
                part = self._inflight.pop(sequence, None)
                self._cond.notify_all()
            if part is not None:
                self._submitted(part, status, raw[16:].split(b"\0", 1)[0])
        elif command_id == codec.DELIVER_SM:
            self._delivered(codec.parse_deliver_sm(raw))
            answers.append(codec.pdu(codec.DELIVER_SM_RESP, sequence, b"\0"))
        elif command_id == codec.ENQUIRE_LINK:
            answers.append(codec.pdu(codec.ENQUIRE_LINK_RESP, sequence, b""))
        elif command_id == codec.UNBIND:
            answers.append(codec.pdu(codec.UNBIND_RESP, sequence, b""))
            with self._send_lock:
                client._socket.sendall(b"".join(answers))
            answers.clear()
            self._link_lost(client, "the carrier unbound")
        elif command_id == codec.UNBIND_RESP:
            client.state = smpplib.consts.SMPP_CLIENT_STATE_OPEN  # our reader bypasses smpplib's state machine
            self._unbound.set()
            with self._cond:
                self._bound = False
        elif command_id != codec.ENQUIRE_LINK_RESP:
            logger.warning("Unhandled SMPP command 0x%08X", command_id)

    def _submitted(self, part: _Part, status: int, message_id) -> None:
        if status == 0:
            self._throttle_backoff = 0.0
            self.submitted += 1
            self._resolve(part, carrier_id=codec.normalize_carrier_id(message_id))
        elif status in codec.THROTTLING:
            # Slow down for everyone and resubmit this part first; nothing is lost or reordered away.
            now = time.monotonic()
            if now >= self._pause_until:  # a window's worth of throttled answers escalates once, not per PDU
                self._throttle_backoff = min(max(self._throttle_backoff * 2, 0.05), 2.0)
                self._pause_until = now + self._throttle_backoff
            with self._cond:
                self._queue.appendleft(part)
                self._cond.notify_all()
        else:
            name = codec.status_name(status)
            self._resolve(part, error=f"Refused by the carrier: {name}.", retryable=codec.is_retryable(status))
            self._status(State.BOUND, last_error=f"submit_sm refused: {name}")

    def _resolve(self, part: _Part, *, carrier_id: str = "", error: str = "", retryable: bool = False) -> None:
        with self._cond:
            if part.done:
                return
            part.done, part.carrier_id, part.error, part.retryable = True, carrier_id, error, retryable
            batch = part.batch
            batch.remaining -= 1
            siblings = batch.parts[part.message]
            message_done = all(p.done for p in siblings)
            finished = batch.remaining == 0
        if message_done and all(p.carrier_id for p in siblings):
            first = siblings[0].carrier_id
            with self._events_lock:
                for p in siblings:
                    self._parts_map[p.carrier_id] = (first, p.index, len(siblings))
                while len(self._parts_map) > MEMORY_PARTS:
                    self._parts_map.popitem(last=False)
        if finished:
            self._replies.put(batch)

    def _replier(self) -> None:
        while True:
            batch = self._replies.get()
            if batch is None:
                return
            results, mapping = [], {}
            for ref, parts in zip(batch.refs, batch.parts, strict=True):
                failed = next((p for p in parts if p.error), None)
                first = parts[0].carrier_id if parts else ""
                results.append(
                    {
                        "ref": ref,
                        "accepted": failed is None,
                        "carrier_id": first or None,
                        "parts": len(parts),
                        "error": failed.error if failed else "",
                        "retryable": failed.retryable if failed else False,
                    }
                )
                if failed is None:
                    for p in parts:
                        mapping[p.carrier_id] = f"{first}|{p.index}|{len(parts)}"
            try:
                pipe = self.redis.pipeline(transaction=False)
                if mapping:
                    # One hash per day: one command per batch, and old days expire whole.
                    day = self._parts_key(datetime.now(UTC))
                    pipe.hset(day, mapping=mapping)
                    pipe.expire(day, (PART_DAYS + 1) * 86400)
                pipe.rpush(batch.reply_key, json.dumps(results))
                pipe.expire(batch.reply_key, 300)
                pipe.hset(key(self.alias, "status"), "last_submit_at", datetime.now(UTC).isoformat())
                pipe.execute()
            except Exception:
                logger.exception("Could not hand results back for %s", batch.reply_key)

    # --- keepalive -----------------------------------------------------------------------------

    def _keepalive(self) -> None:
        while not self._stop.wait(self.enquire_interval):
            client = self._client
            if client is None or not self._bound:
                continue
            if time.monotonic() - self._last_rx > 3 * self.enquire_interval:
                self._link_lost(client, "no answer to enquire_link")
                continue
            try:
                with self._send_lock:
                    client.send_pdu(smpplib.smpp.make_pdu("enquire_link", client=client))
            except (smpplib.exceptions.ConnectionError, smpplib.exceptions.PDUError, OSError) as exc:
                self._link_lost(client, f"enquire_link failed: {exc}")

    # --- receipts and MO -----------------------------------------------------------------------

    def _delivered(self, pdu: codec.DeliverSm) -> None:
        esm_class, raw, data_coding = pdu.esm_class, pdu.short_message, pdu.data_coding
        if esm_class & 0x3C == codec.ESM_RECEIPT:
            parsed = codec.parse_receipt(
                codec.decode_short_message(raw, data_coding=data_coding, esm_class=esm_class),
                receipted_message_id=pdu.receipted_message_id,
                message_state=pdu.message_state,
            )
            if parsed is None:
                logger.warning("Receipt without a message id: %r", raw)
                return
            with self._events_lock:
                self._receipts.append(parsed)
                if len(self._receipts) >= self.flush_size:
                    self._events_full.set()
            return
        text = codec.decode_short_message(raw, data_coding=data_coding, esm_class=esm_class)
        sender = codec.to_e164(pdu.source_addr, pdu.source_addr_ton)
        concat = codec.concat_info(raw, esm_class)
        if concat is not None:
            reference, total, seq = concat
            pieces = self._mo_parts.setdefault((sender, reference), {})
            pieces[seq] = text
            if len(pieces) < total:
                return
            text = "".join(pieces[i] for i in sorted(pieces))
            del self._mo_parts[(sender, reference)]
        inbound = InboundSMS(
            sender=sender,
            recipient=codec.to_e164(pdu.destination_addr, pdu.dest_addr_ton),
            text=text,
            at=datetime.now(UTC),
        )
        with self._events_lock:
            self._inbound.append(inbound)

    def _flusher(self) -> None:
        while not self._stop.is_set():
            self._events_full.wait(self.flush_interval)
            self._events_full.clear()
            self._flush_events()

    def _flush_events(self, *, final: bool = False) -> None:
        with self._events_lock:
            parsed, inbound = self._receipts, self._inbound
            self._receipts, self._inbound = [], []
        if not parsed and not inbound:
            return
        try:
            events = CarrierEvents(receipts=self._match(parsed), inbound=inbound)
            self.on_events(gateway_alias=self.alias, events=events)
        except Exception:
            logger.exception("The events sink failed; %d events kept for the next flush", len(parsed) + len(inbound))
            with self._events_lock:
                self._receipts[:0], self._inbound[:0] = parsed, inbound
            if not final:
                self._stop.wait(1)
        finally:
            close_old_connections()

    def _parts_key(self, when: datetime) -> str:
        return key(self.alias, f"parts:{when:%Y%m%d}")

    def _match(self, parsed: list[codec.ParsedReceipt]) -> list[Receipt]:
        """Receipts keyed by their message's carrier id (the first part's), with the part number.

        Each receipt id is tried as written, then read as decimal and as hex, against the ids we
        submitted (in memory, then in Redis for receipts older than this process).
        """
        variants = [codec.carrier_id_variants(p.carrier_id) for p in parsed]
        with self._events_lock:
            found = [next((self._parts_map[v] for v in vs if v in self._parts_map), None) for vs in variants]
        missing = sorted({v for vs, hit in zip(variants, found, strict=True) if hit is None for v in vs})
        if missing:
            today = datetime.now(UTC)
            pipe = self.redis.pipeline(transaction=False)
            for days in range(PART_DAYS + 1):
                pipe.hmget(self._parts_key(today - timedelta(days=days)), missing)
            stored = {}
            for values in reversed(pipe.execute()):
                stored.update((v, tuple(value.split("|"))) for v, value in zip(missing, values, strict=True) if value)
            found = [
                hit or next((stored[v] for v in vs if v in stored), None)
                for vs, hit in zip(variants, found, strict=True)
            ]
        receipts = []
        for p, vs, hit in zip(parsed, variants, found, strict=True):
            carrier_id, part, total = (hit[0], int(hit[1]), int(hit[2])) if hit else (vs[0], 0, 1)
            receipts.append(
                Receipt(
                    carrier_id=carrier_id,
                    status=p.status,
                    at=p.at,
                    error=p.error,
                    part=part if total > 1 else None,
                )
            )
        return receipts
