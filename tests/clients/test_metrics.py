"""`GET /metrics` read by Prometheus' own Python parser, after real traffic: every family
foreman documents is there with its type, and the values add up."""

import json
import time
import urllib.request

import ollama
from conftest import FOREMAN_URL, MODEL
from prometheus_client.parser import text_string_to_metric_families

LLAMA = "llama3.2:latest"


def scrape():
    """The families of one scrape by name, checking the content type on the way."""
    with urllib.request.urlopen(f"{FOREMAN_URL}/metrics") as response:
        assert response.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        text = response.read().decode()
    return {family.name: family for family in text_string_to_metric_families(text)}


def value(families, name, sample_name=None, **labels):
    """One sample's value, 0 when the family or the sample is absent."""
    family = families.get(name)
    if family is None:
        return 0
    sample_name = sample_name or name
    for sample in family.samples:
        if sample.name == sample_name and sample.labels == labels:
            return sample.value
    return 0


def run_async_job():
    """Submits a job through POST /jobs and waits until it ends; its final state."""
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "hi"}]})
    request = urllib.request.Request(
        f"{FOREMAN_URL}/jobs", data=body.encode(), headers={"content-type": "application/json"}
    )
    with urllib.request.urlopen(request) as response:
        job_id = json.load(response)["job_id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{FOREMAN_URL}/jobs/{job_id}") as response:
            state = json.load(response)["state"]
        if state in ("done", "failed", "cancelled"):
            return state
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


def wait_for(condition, what):
    """The recorded counters trail the job's state by a moment: poll with a deadline."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        families = scrape()
        if condition(families):
            return families
        time.sleep(0.05)
    raise AssertionError(f"never reached: {what}")


def test_every_family_parses_with_its_type_and_values_follow_the_traffic():
    before = scrape()
    ollama.Client(host=FOREMAN_URL).chat(model=MODEL, messages=[{"role": "user", "content": "hi"}])
    assert run_async_job() == "done"

    done_before = value(before, "foreman_jobs_finished", "foreman_jobs_finished_total", model=LLAMA, state="done")
    runs_before = value(before, "foreman_job_run_seconds", "foreman_job_run_seconds_count", model=LLAMA)
    after = wait_for(
        lambda f: value(f, "foreman_job_run_seconds", "foreman_job_run_seconds_count", model=LLAMA)
        >= runs_before + 2
        and value(f, "foreman_jobs_finished", "foreman_jobs_finished_total", model=LLAMA, state="done")
        >= done_before + 2,
        "two more runs and two more finished jobs",
    )

    # The parser names a counter family without `_total`, its samples with it.
    types = {name: family.type for name, family in after.items()}
    expected = {
        "foreman_queue_depth": "gauge",
        "foreman_jobs": "gauge",
        "foreman_model_swaps": "counter",
        "foreman_target_up": "gauge",
        "foreman_jobs_finished": "counter",
        "foreman_webhook_deliveries": "counter",
        "foreman_job_wait_seconds": "histogram",
        "foreman_job_run_seconds": "histogram",
    }
    assert {name: types.get(name) for name in expected} == expected
    assert all(family.documentation for family in after.values())

    assert value(after, "foreman_target_up", target="default") == 1
    assert value(after, "foreman_queue_depth") == 0
    assert value(after, "foreman_jobs", state="done") >= 2
    for outcome in ("delivered", "failed_attempt", "gave_up"):
        assert any(
            s.labels == {"outcome": outcome} for s in after["foreman_webhook_deliveries"].samples
        ), outcome

    # A histogram's buckets are cumulative and end with +Inf, equal to its count.
    for name in ("foreman_job_run_seconds", "foreman_job_wait_seconds"):
        buckets = [
            (float(s.labels["le"]), s.value)
            for s in after[name].samples
            if s.name == f"{name}_bucket" and s.labels["model"] == LLAMA
        ]
        bounds = [bound for bound, _ in buckets]
        counts = [count for _, count in buckets]
        assert bounds == sorted(bounds) and bounds[-1] == float("inf")
        assert counts == sorted(counts)
        assert counts[-1] == value(after, name, f"{name}_count", model=LLAMA) >= 2
    assert value(after, "foreman_job_run_seconds", "foreman_job_run_seconds_sum", model=LLAMA) > 0
