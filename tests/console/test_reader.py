"""The event reader: CL events become per-model timelines, update tracking, drift state and
live accuracy in Redis; replays count once; undecodable records go to the dead-letter topic."""

from __future__ import annotations

from infra.local.process import wait_until
from services.common import topics
from services.common.events import (Candidate, DeadLetter, DeploymentEvent, DriftEvent, LabeledSample,
                                    LabeledSampleBatch, OffsetRange, UpdateRequest, now_ms)

from tests.console.conftest import Console, TopicReader


def _drift(model: str, at: int) -> DriftEvent:
    return DriftEvent(model=model, version=2, detector="adwin", signal="error", statistics={"estimation": 0.31},
                      topic="cl.samples", partition=0, offset=1234, observations=800, detected_at_ms=at)


def _samples(model: str, version: int, correct: int, wrong: int) -> LabeledSampleBatch:
    items = [LabeledSample(sample_id=f"s{i}", model_version=version, features=[0.0], label=1,
                           predicted=1 if i < correct else 0, confidence=0.9, prediction_partition=0,
                           prediction_offset=i, feedback_partition=0, feedback_offset=i) for i in range(correct + wrong)]
    return LabeledSampleBatch(model=model, items=items)


def test_lifecycle_of_an_update(console: Console, model: str) -> None:
    t = now_ms()
    drift = _drift(model, t)
    request = UpdateRequest(model=model, base_version=2, reason="drift", sample_ranges=[OffsetRange(0, 0, 99)],
                            drift_event_id=drift.event_id, requested_at_ms=t + 100)
    candidate = Candidate(update_id=request.event_id, model=model, outcome="trained", base_version=2, strategy="replay",
                          code_version="abc", version=5, samples_used=100, train_seconds=1.5, created_at_ms=t + 2100)
    deployed = DeploymentEvent(model=model, version=5, action="deployed", previous_version=2, decided_at_ms=t + 4100)
    for topic, event in [(topics.DRIFT, drift), (topics.UPDATES, request), (topics.CANDIDATES, candidate)]:
        console.publish(topic, event, key=model)
    with console.client("viewer") as http:
        wait_until(lambda: len(http.get(f"/api/v1/models/{model}/events").json()) == 3, 60, "three events on the timeline")
        assert http.get(f"/api/v1/models/{model}").json()["drift"]["state"] == "updating"
        console.publish(topics.DEPLOYMENTS, deployed, key=model)
        wait_until(lambda: http.get(f"/api/v1/models/{model}/updates").json()[0]["status"] == "deployed", 60, "the update to be deployed")
        update = http.get(f"/api/v1/models/{model}/updates").json()[0]
        events = http.get(f"/api/v1/models/{model}/events").json()
        summary = http.get(f"/api/v1/models/{model}").json()
        markers = http.get(f"/api/v1/models/{model}/accuracy").json()["markers"]
    assert update["id"] == request.event_id and update["version"] == 5 and update["duration_s"] == 4.0
    assert update["train_seconds"] == 1.5 and update["sample_ranges"] == [{"partition": 0, "start": 0, "end": 99}]
    assert [e["kind"] for e in events] == ["deployment", "candidate", "update", "drift"]
    assert events[-1]["detector"] == "adwin" and events[-1]["offset"]["offset"] == 1234
    assert summary["drift"]["state"] == "ok"  # a deployment came after the drift
    assert [m["kind"] for m in markers] == ["drift", "update", "deployment"]


def test_live_accuracy_per_version_and_replay_counts_once(console: Console, model: str) -> None:
    batch = _samples(model, 2, correct=3, wrong=1)
    console.publish(topics.SAMPLES, batch, key=model)
    console.publish(topics.SAMPLES, batch, key=model)  # a replay: same event id
    console.publish(topics.SAMPLES, _samples(model, 3, correct=1, wrong=1), key=model)
    with console.client("viewer") as http:
        wait_until(lambda: "3" in http.get(f"/api/v1/models/{model}").json()["accuracy_by_version"], 60, "accuracy of v3")
        summary = http.get(f"/api/v1/models/{model}").json()
        series = http.get(f"/api/v1/models/{model}/accuracy").json()["points"]
    assert summary["live_accuracy"] == 0.75 and summary["live_samples"] == 4  # serving v2; the replay was not counted
    assert summary["accuracy_by_version"] == {"2": 0.75, "3": 0.5}
    assert [(p["version"], p["accuracy"]) for p in series] == [(2, 0.75), (3, 0.5)]


def test_replayed_event_is_one_timeline_entry(console: Console, model: str) -> None:
    drift = _drift(model, now_ms())
    console.publish(topics.DRIFT, drift, key=model)
    console.publish(topics.DRIFT, drift, key=model)
    marker = _drift(model, drift.detected_at_ms + 1)
    console.publish(topics.DRIFT, marker, key=model)
    with console.client("viewer") as http:
        wait_until(lambda: any(e["event_id"] == marker.event_id for e in http.get(f"/api/v1/models/{model}/events").json()),
                   60, "the marker drift event")
        ids = [e["event_id"] for e in http.get(f"/api/v1/models/{model}/events").json()]
    assert ids == [marker.event_id, drift.event_id]


def test_undecodable_record_goes_to_dead_letters_and_reader_goes_on(console: Console, model: str) -> None:
    dlq = TopicReader(console.settings.kafka, topics.dlq(topics.DRIFT))
    try:
        console.publish(topics.DRIFT, b"not avro at all", key=model)
        after = _drift(model, now_ms())
        console.publish(topics.DRIFT, after, key=model)
        letter = dlq.wait_for(DeadLetter, lambda d: d.value == b"not avro at all")
        assert letter.service == "console" and letter.reason == "bad_marker"
        assert letter.topic == console.settings.kafka.topic(topics.DRIFT)
        with console.client("viewer") as http:
            wait_until(lambda: http.get(f"/api/v1/models/{model}/events").json()[:1] != [], 60, "the next drift event")
            assert http.get(f"/api/v1/models/{model}/events").json()[0]["event_id"] == after.event_id
    finally:
        dlq.close()


def test_a_failed_update_shows_its_reason(console: Console, model: str) -> None:
    request = UpdateRequest(model=model, base_version=1, reason="drift", sample_ranges=[OffsetRange(0, 0, 9)])
    failed = Candidate(update_id=request.event_id, model=model, outcome="failed", base_version=1, strategy="replay",
                       code_version="abc", reason="architecture_invalid", created_at_ms=request.requested_at_ms + 500)
    console.publish(topics.UPDATES, request, key=model)
    console.publish(topics.CANDIDATES, failed, key=model)
    with console.client("viewer") as http:
        wait_until(lambda: http.get(f"/api/v1/models/{model}/updates").json()[0]["status"] == "failed", 60, "the failed update")
        update = http.get(f"/api/v1/models/{model}/updates").json()[0]
        page = http.get(f"/models/{model}").text
    assert update["failure"] == "architecture_invalid"
    assert "(architecture_invalid)" in page
