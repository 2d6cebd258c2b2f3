"""Benchmark the SMPP path against the node simulator on loopback (GW-1).

1. Raw: the simulator alone, driven by a bare npm ``smpp`` client (tools/smpp-simulator/bench-client.js).
2. Platform: worker threads call ``Gateway.send_messages`` (batches over Redis) while a
   ``Connector`` in its own process holds the bind; receipts flow back to a counting sink.

    CELERY_BROKER_URL=redis://127.0.0.1:6379/2 .venv/bin/python bench/bench_smpp.py --messages 100000
"""

import argparse
import json
import multiprocessing
import os
import select
import statistics
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "smsplatform.settings")
os.environ.setdefault("DEBUG", "1")  # a local benchmark, not a deployment

import django  # noqa: E402

django.setup()

import redis  # noqa: E402
import smpplib.client  # noqa: E402
from django.conf import settings  # noqa: E402

from campaigns.gateways import OutgoingSMS  # noqa: E402
from campaigns.gateways.smpp import Gateway, State, codec, gateway_status  # noqa: E402
from campaigns.gateways.smpp.connector import Connector  # noqa: E402
from campaigns.gateways.smpp.status import PREFIX  # noqa: E402
from tests.campaigns.smpp_simulator import SIMULATOR_DIR, Simulator  # noqa: E402


def raw(simulator: Simulator, count: int, window: int) -> dict:
    command = ["node", str(SIMULATOR_DIR / "bench-client.js"), "--port", str(simulator.port)]
    command += ["--count", str(count), "--window", str(window)]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def raw_lean(simulator: Simulator, count: int, window: int) -> dict:
    """The simulator alone under the cheapest client we can write: prebuilt PDUs, one select loop."""
    client = smpplib.client.Client("127.0.0.1", simulator.port, allow_unknown_opt_params=True)
    client.connect()
    client.bind_transceiver(system_id=simulator.system_id, password=simulator.password)
    sock = client._socket
    pdus = [
        codec.pdu(
            codec.SUBMIT_SM,
            1000 + n,
            codec.submit_sm_body(
                source_addr_ton=5,
                source_addr_npi=0,
                source_addr="Bench",
                dest_addr_ton=1,
                dest_addr_npi=1,
                destination_addr=f"336{n:07d}01",
                esm_class=0,
                data_coding=0,
                registered_delivery=1,
                short_message=f"Bench message {n}".encode(),
            ),
        )
        for n in range(count)
    ]
    sent = acked = receipts = 0
    buffer = b""
    start = time.monotonic()
    acked_at = start
    while receipts < count or acked < count:
        if sent < count and sent - acked < window:
            room = min(window - (sent - acked), count - sent)
            sock.sendall(b"".join(pdus[sent : sent + room]))
            sent += room
        if not select.select([sock], [], [], 1)[0]:
            continue
        buffer += sock.recv(262144)
        answers, offset = [], 0
        while len(buffer) - offset >= 16:
            length, command_id, status, sequence = struct.unpack_from(">IIII", buffer, offset)
            if len(buffer) - offset < length:
                break
            offset += length
            if command_id == codec.SUBMIT_SM_RESP:
                assert status == 0, status
                acked += 1
                if acked == count:
                    acked_at = time.monotonic()
            elif command_id == codec.DELIVER_SM:
                receipts += 1
                answers.append(codec.pdu(codec.DELIVER_SM_RESP, sequence, b"\0"))
        buffer = buffer[offset:]
        if answers:
            sock.sendall(b"".join(answers))
    total = time.monotonic() - start
    client.disconnect()
    return {
        "messages": count,
        "submit_seconds": round(acked_at - start, 3),
        "submits_per_second": round(count / (acked_at - start)),
        "receipts_seconds": round(total, 3),
        "receipts_per_second": round(count / total),
    }


def run_connector(alias: str, options: dict, receipts, ready) -> None:
    def sink(*, gateway_alias, events):
        with receipts.get_lock():
            receipts.value += len(events.receipts)

    connector = Connector(alias, options=options, on_events=sink)
    import signal

    signal.signal(signal.SIGTERM, lambda *_: connector.stop())
    ready.set()
    connector.run()


def platform(simulator: Simulator, count: int, window: int, workers: int, batch: int, redis_url: str) -> dict:
    alias = "bench"
    options = simulator.options(REDIS_URL=redis_url, WINDOW=window, REPLY_TIMEOUT=120)
    client = redis.Redis.from_url(redis_url)
    stale = list(client.scan_iter(f"{PREFIX}:{alias}:*"))
    if stale:
        client.delete(*stale)
    receipts = multiprocessing.Value("q", 0)
    ready = multiprocessing.Event()
    process = multiprocessing.get_context("fork").Process(target=run_connector, args=(alias, options, receipts, ready))
    process.start()
    ready.wait(10)
    while gateway_status(alias).state != State.BOUND:
        time.sleep(0.05)

    gateway = Gateway(alias, **options)
    messages = [OutgoingSMS(ref=str(i), to=f"+336{i:07d}01", text=f"Bench message {i}") for i in range(count)]
    batches = [messages[i : i + batch] for i in range(0, count, batch)]
    accepted = 0
    lock = threading.Lock()

    def work():
        nonlocal accepted
        while True:
            with lock:
                if not batches:
                    return
                chunk = batches.pop()
            results = gateway.send_messages(chunk)
            with lock:
                accepted += sum(r.accepted for r in results)

    start = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    submitted = time.monotonic() - start
    while receipts.value < count and time.monotonic() - start < submitted + 60:
        time.sleep(0.01)
    total = time.monotonic() - start
    process.terminate()
    process.join(15)
    assert accepted == count, f"{accepted} of {count} accepted"
    return {
        "messages": count,
        "submit_seconds": round(submitted, 3),
        "submits_per_second": round(count / submitted),
        "receipts": receipts.value,
        "receipts_seconds": round(total, 3),
        "receipts_per_second": round(receipts.value / total),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--window", type=int, default=50)
    parser.add_argument("--workers", type=int, default=4, help="concurrent send_messages callers (Celery workers)")
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="raw/platform pairs, interleaved")
    parser.add_argument("--check", action="store_true", help="exit 1 when the median ratio misses the target")
    args = parser.parse_args()
    redis_url = settings.CELERY_BROKER_URL
    if not redis_url.startswith("redis://"):
        sys.exit("Set CELERY_BROKER_URL=redis://...")
    results = measure(
        messages=args.messages,
        window=args.window,
        workers=args.workers,
        batch=args.batch,
        repeat=args.repeat,
        redis_url=redis_url,
    )
    report = {"env": {"cpus": os.cpu_count(), "python": sys.version.split()[0], "messages": args.messages},
              "results": results}  # fmt: skip
    print(json.dumps(report, indent=2))
    if args.check and not results["smpp_submit_throughput"]["pass"]:
        sys.exit(1)


def run(ctx) -> dict[str, dict]:
    """The run_all.py entry point: ``ctx.size`` messages, ``ctx.pairs`` interleaved pairs."""
    redis_url = settings.CELERY_BROKER_URL
    if not redis_url.startswith("redis://"):
        raise RuntimeError("bench_smpp needs Redis: set CELERY_BROKER_URL=redis://...")
    return measure(messages=ctx.size, window=50, workers=4, batch=500, repeat=ctx.pairs, redis_url=redis_url)


def measure(*, messages: int, window: int, workers: int, batch: int, repeat: int, redis_url: str) -> dict[str, dict]:
    """Simulator-alone throughput vs the platform's, interleaved A B A B; the PERF.md result dicts."""
    pairs, leans = [], []
    for _ in range(repeat):  # A B A B: the machine's drift hits both sides alike
        simulator = Simulator("--receipt-delay-ms", "5").start()
        try:
            raw_result = raw(simulator, messages, window)
        finally:
            simulator.stop()
        simulator = Simulator("--receipt-delay-ms", "5").start()
        try:
            lean_result = raw_lean(simulator, messages, window)
        finally:
            simulator.stop()
        simulator = Simulator("--receipt-delay-ms", "5").start()
        try:
            platform_result = platform(simulator, messages, window, workers, batch, redis_url)
        finally:
            simulator.stop()
        pairs.append((raw_result, platform_result))
        leans.append(lean_result)
        print(json.dumps({"raw": raw_result, "lean": lean_result, "platform": platform_result}), file=sys.stderr)

    ratios = sorted(p["submits_per_second"] / r["submits_per_second"] for r, p in pairs)
    ratio = statistics.median(ratios)
    target = 0.5
    results = {
        "smpp_submit_throughput": {
            "value": round(statistics.median(p["submits_per_second"] for _, p in pairs)),
            "unit": "messages/s (campaign batch to acknowledged submit_sm, receipts flowing)",
            "baseline": round(statistics.median(r["submits_per_second"] for r, _ in pairs)),
            "ratio": round(ratio, 3),
            "spread": [round(ratios[0], 3), round(ratios[-1], 3)],
            "target": target,
            "pass": ratio >= target,
            "receipts_matched": all(p["receipts"] == messages for _, p in pairs),
        }
    }
    lean_ratios = sorted(
        p["submits_per_second"] / r["submits_per_second"] for r, (_, p) in zip(leans, pairs, strict=True)
    )
    results["smpp_submit_throughput_vs_lean_client"] = {
        "value": results["smpp_submit_throughput"]["value"],
        "unit": "messages/s; baseline: the simulator driven by a hand-built Python client with no platform",
        "baseline": round(statistics.median(r["submits_per_second"] for r in leans)),
        "ratio": round(statistics.median(lean_ratios), 3),
        "spread": [round(lean_ratios[0], 3), round(lean_ratios[-1], 3)],
        "target": target,
        "pass": statistics.median(lean_ratios) >= target,
    }
    return results


if __name__ == "__main__":
    main()
