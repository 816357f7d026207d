"""The fake Twilio's ceiling: `python -m tests.fakes.throughput [--messages N] [--threads T]`.

Starts the fake in its own process with no latency, sends through the real `twilio` client from
T threads (one client each, as a worker would), and prints one JSON line with messages per second.
"""

from __future__ import annotations

import argparse
import json
import threading
import time

from tests.fakes.server import start_fake_process
from tests.fakes.twilio import twilio_client


def run(messages: int, threads: int) -> dict:
    with start_fake_process("twilio") as fake:
        counter = iter(range(messages))
        lock = threading.Lock()
        errors: list[BaseException] = []

        def work() -> None:
            client = twilio_client(fake.url)
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                try:
                    client.messages.create(
                        to=f"+1555{n:07d}", from_="+15550000000", body=f"Hello {n}"
                    )
                except Exception as exc:  # noqa: BLE001 - counted and reported
                    errors.append(exc)

        workers = [threading.Thread(target=work) for _ in range(threads)]
        started = time.perf_counter()
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.perf_counter() - started
        stats = fake.control.stats()
    return {
        "bench": "fake_twilio_throughput",
        "messages": messages,
        "threads": threads,
        "seconds": round(elapsed, 3),
        "msgs_per_s": round(messages / elapsed, 1),
        "accepted": stats["accepted"],
        "errors": len(errors),
        "max_concurrency_seen": stats["max_concurrency_seen"],
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    print(json.dumps(run(args.messages, args.threads)))
