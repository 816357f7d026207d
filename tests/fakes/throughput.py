"""The fake Twilio's ceiling: `python -m tests.fakes.throughput [--messages N] [--threads T]`.

Starts the fake in its own process with no latency, sends through the real `twilio` client from
T threads in each of P client processes (one client per thread, as a worker would), and prints
one JSON line: messages per second and the fake's own CPU time per message.
"""

from __future__ import annotations

import argparse
import json
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from tests.fakes.server import start_fake_process
from tests.fakes.twilio import twilio_client


def _cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def send_many(url: str, first: int, count: int, threads: int) -> int:
    """Send `count` messages from `threads` threads; returns how many failed."""
    numbers = iter(range(first, first + count))
    lock = threading.Lock()
    failures = [0]

    def work() -> None:
        client = twilio_client(url)
        while True:
            with lock:
                n = next(numbers, None)
            if n is None:
                return
            try:
                client.messages.create(to=f"+1555{n:07d}", from_="+15550000000", body=f"Hi {n}")
            except Exception:  # noqa: BLE001 - counted and reported
                with lock:
                    failures[0] += 1

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return failures[0]


def run(messages: int, threads: int, processes: int = 1) -> dict:
    with start_fake_process("twilio") as fake:
        cpu_before = _cpu_seconds(fake.process.pid)
        started = time.perf_counter()
        if processes == 1:
            errors = send_many(fake.url, 0, messages, threads)
        else:
            share = messages // processes
            with ProcessPoolExecutor(processes) as pool:
                futures = [
                    pool.submit(send_many, fake.url, i * share, share, threads)
                    for i in range(processes)
                ]
                errors = sum(future.result() for future in futures)
            messages = share * processes
        elapsed = time.perf_counter() - started
        server_cpu = _cpu_seconds(fake.process.pid) - cpu_before
        stats = fake.control.stats()
    return {
        "bench": "fake_twilio_throughput",
        "messages": messages,
        "processes": processes,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(messages / elapsed, 1),
        "fake_cpu_us_per_msg": round(server_cpu / messages * 1e6),
        "accepted": stats["accepted"],
        "errors": errors,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--processes", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.threads, args.processes)))
