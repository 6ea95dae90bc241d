"""Shared by the real-client tests: where foreman and the simulator are, and the check
that concurrent calls never overlap on the target."""

import json
import os
import threading
import urllib.request

FOREMAN_URL = os.environ["FOREMAN_URL"]
SIM_URL = os.environ["SIM_URL"]
MODEL = "llama3.2"
OTHER_MODEL = "qwen2.5:0.5b"


def sim_stats():
    """The simulator's counters: generations run, most in flight at once."""
    with urllib.request.urlopen(f"{SIM_URL}/sim/stats") as response:
        return json.load(response)


def assert_calls_never_overlap(count, call):
    """Runs call(i) for i in range(count) on as many threads at once, then checks that
    every call succeeded, each reached the target, and never two at the same time."""
    before = sim_stats()
    errors = []

    def run(i):
        try:
            call(i)
        except Exception as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors
    after = sim_stats()
    assert after["generations"] - before["generations"] == count
    assert after["max_concurrent"] == 1

# A model the simulator can pull from its pretend registry, not installed at start.
PULLABLE_MODEL = "smollm2:135m"
