"""A drift worker on the real broker and Redis: drift to update request, join outcomes, DLQ."""

from __future__ import annotations

import random
import struct

from services.common.events import Candidate, Feedback, FeedbackBatch, Prediction
from services.common.serde import encode_event
from benchmarks.drift.workload import Traffic
from tests.drift.conftest import DriftStack, wait_for
from tests.drift.test_columns import EDGE_IDS, encode_v1, old_packed, prediction_batch

SWITCH = 7000


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]

SECOND = 10500


def test_concept_switch_gives_one_update_request_after_it(drift_stack: DriftStack) -> None:
    traffic = Traffic(model="m", events=13000, seed=11, schedule=((0, 0.05), (SWITCH, 0.45), (SECOND, 0.9)))
    pub = drift_stack.publisher()
    # A record that is not Avro and one of the wrong event type: both dead letters.
    pub.raw("inference.predictions", "m", b"not avro at all")
    pub.raw("inference.predictions", "m", encode_event(FeedbackBatch(model="m", items=[Feedback("x", 1)])))
    pub.interleaved(traffic, batch=100, lag_batches=3)
    pub.flush()
    worker = drift_stack.worker()

    wait_for(lambda: len(drift_stack.samples()) >= 13000, 120, "every feedback joined")
    wait_for(lambda: worker.value("modelci_drift_update_requests_total") >= 2, 60, "both drifts decided")
    requests = [r for _, _, r in drift_stack.read("cl.updates", "UpdateRequest")]
    drifts = {d["event_id"]: d for _, _, d in drift_stack.read("cl.drift", "DriftEvent")}

    # Exactly one request: the first drift after the switch; the second drift found it in flight.
    assert len(requests) == 1, requests
    request = requests[0]
    assert request["model"] == "m" and request["base_version"] == 1 and request["reason"] == "drift"
    assert request["samples_topic"] == "cl.samples", "the logical name: the trainer adds its own prefix"
    cause = drifts[request["drift_event_id"]]
    assert cause["detector"] == "error-adwin" and cause["signal"] == "error"
    assert SWITCH < cause["observations"] < SWITCH + 1000
    error_drifts = sorted(d["observations"] for d in drifts.values() if d["signal"] == "error")
    assert error_drifts[0] > SWITCH, error_drifts  # none before the switch
    assert worker.value("modelci_drift_update_requests_total", outcome="in_flight") == 1

    # The request covers the model's samples from the start up to at least min_samples past the change.
    (rng,) = request["sample_ranges"]
    batches = [b for p, o, b in drift_stack.read("cl.samples", "LabeledSampleBatch") if p == rng["partition"] and rng["start"] <= o < rng["end"]]
    covered = sum(len(b["items"]) for b in batches)
    assert rng["start"] == 0 and covered >= cause["observations"] + 300

    # Dead letters, and the agent kept going.
    letters = [d for _, _, d in drift_stack.read("inference.predictions.dlq", "DeadLetter")]
    assert sorted(d["reason"] for d in letters) == ["bad_marker", "wrong_schema"]
    assert all(d["service"] == "drift" and d["value"] for d in letters)

    # A candidate for the request clears the in-flight marker for every worker.
    client = drift_stack.redis_client()
    inflight = f"{drift_stack.redis.key_prefix}drift:{{m}}:inflight"
    assert client.get(inflight).decode() == request["event_id"]
    candidate = Candidate(update_id=request["event_id"], model="m", outcome="failed", base_version=1, strategy="naive", code_version="t", reason="test")
    pub.raw("cl.candidates", "m", encode_event(candidate))
    pub.flush()
    wait_for(lambda: client.get(inflight) is None, 60, "in-flight marker cleared")
    # A failed update backs the next request off (the cooldown alone would repeat it).
    assert int(client.get(f"{drift_stack.redis.key_prefix}drift:{{m}}:failures")) == 1
    wait_for(lambda: worker.value("modelci_drift_update_failures", model="m") == 1, 30, "failures exported")
    assert worker.value("modelci_drift_update_backoff_seconds", model="m") == 600
    client.close()
    assert worker.stop() == 0


def test_feedback_before_after_duplicated_never(drift_stack: DriftStack) -> None:
    pub = drift_stack.publisher()
    traffic = Traffic(model="j", events=1000, seed=5, error_before=0.3)
    preds = list(traffic.predictions())
    labels = {rid: label for rid, label, _ in traffic.labels()}
    rids = [p.request_id for p in preds]
    worker = drift_stack.worker(MODELCI_DRIFT_JOIN_TTL_S="8")

    # before: 300 labels (and 100 for requests that never get a prediction) arrive first
    for start in range(0, 300, 100):
        pub.feedback("j", [(r, labels[r]) for r in rids[start : start + 100]])
    pub.feedback("j", [(f"ghost-{i}", 1) for i in range(100)])
    pub.flush()
    wait_for(lambda: drift_stack.stats("j").get("parked") == 400, 120, "early feedback parked")
    for start in range(0, 1000, 100):
        pub.predictions("j", 1, preds[start : start + 100])
    pub.flush()
    wait_for(lambda: drift_stack.stats("j").get("joined") == 300, 60, "parked feedback joined")
    # after: 400 labels for waiting predictions; then 100 of them again with other labels,
    # and 50 repeats of already joined ones
    for start in range(300, 700, 100):
        pub.feedback("j", [(r, labels[r]) for r in rids[start : start + 100]])
    pub.feedback("j", [(r, (labels[r] + 1) % 4) for r in rids[600:700]])
    pub.feedback("j", [(r, labels[r]) for r in rids[:50]])
    pub.flush()
    wait_for(lambda: drift_stack.stats("j").get("duplicate_feedback") == 150, 60, "duplicates counted")
    wait_for(lambda: drift_stack.stats("j").get("expired") == 100, 60, "never-matched feedback expired")

    stats = drift_stack.stats("j")
    assert stats == {"parked": 400, "stored": 700, "joined": 700, "duplicate_feedback": 150, "expired": 100}
    samples = drift_stack.samples()
    assert set(samples) == set(rids[:700])
    by_rid = {p.request_id: p for p in preds}
    for rid, copies in samples.items():
        assert len(copies) == 1
        sample = copies[0][1]
        assert sample["label"] == labels[rid]  # the first label wins over a later duplicate
        assert sample["predicted"] == by_rid[rid].label and sample["model_version"] == 1
        assert sample["features"] == [f32(x) for x in by_rid[rid].features]
    counts = {o: worker.value("modelci_drift_join_total", model="j", outcome=o) for o in ("hit", "miss", "expiry", "duplicate_feedback")}
    assert counts == {"hit": 700, "miss": 400, "expiry": 100, "duplicate_feedback": 150}
    assert worker.stop() == 0


def test_integer_model_v1_records_and_predictions_packed_before_v2(drift_stack: DriftStack) -> None:
    """v2 end to end on a worker: an integer model's batches (token ids in int_features) are
    read by the compiled scanner and their samples carry the ids exactly, whichever side of the
    join comes first; a record written with schema v1 still joins (through the serde, with empty
    int_features); and a prediction an older worker packed into Redis (no int_features block)
    still becomes a correct sample once its feedback arrives."""
    pub = drift_stack.publisher()
    rng = random.Random(21)

    def item(rid: str) -> Prediction:
        ids = [rng.choice(EDGE_IDS) for _ in range(rng.randrange(0, 30))] + [rng.randrange(0, 50_000) for _ in range(rng.randrange(1, 30))]
        return Prediction(request_id=rid, features=[], int_features=ids, scores=[0.25, 0.75], label=1, confidence=0.75, latency_ms=1.0, requested_at_ms=0)

    after = [item(f"after-{i}") for i in range(100)]  # feedback after its prediction
    before = [item(f"before-{i}") for i in range(100)]  # feedback first, parked
    v1 = prediction_batch(rng, [f"v1-{i}" for i in range(50)], 4, 1)
    v1["model"] = "t"
    old = {f"old-{i}": [f32(i + 0.5), -1.0] for i in range(5)}
    worker = drift_stack.worker()

    # Predictions packed by a worker before v2: the head and the features block, nothing after.
    client = drift_stack.redis_client()
    for rid, feats in old.items():
        client.set(f"{drift_stack.redis.key_prefix}drift:{{t}}:r:{rid}", b"P" + old_packed(1, 0, 0, 1, 0.75, feats), px=600_000)
    client.close()
    pub.feedback("t", [(p.request_id, 1) for p in before])
    pub.flush()
    wait_for(lambda: drift_stack.stats("t").get("parked") == 100, 120, "early feedback parked")
    pub.predictions("t", 1, after)
    pub.predictions("t", 1, before)
    pub.raw("inference.predictions", "t", encode_v1("prediction.avsc", v1))
    pub.flush()
    wait_for(lambda: drift_stack.stats("t").get("stored") == 150, 60, "predictions stored")
    pub.feedback("t", [(p.request_id, 0) for p in after] + [(it["request_id"], 2) for it in v1["items"]] + [(rid, 1) for rid in old])
    pub.flush()
    wait_for(lambda: drift_stack.stats("t").get("joined") == 255, 60, "every feedback joined")

    samples = {rid: copies[0][1] for rid, copies in drift_stack.samples().items()}
    assert len(samples) == 255
    for p, label in [(p, 0) for p in after] + [(p, 1) for p in before]:
        s = samples[p.request_id]
        assert (s["int_features"], s["features"], s["label"], s["predicted"]) == (p.int_features, [], label, 1)
    for it in v1["items"]:
        s = samples[it["request_id"]]
        assert (s["features"], s["int_features"], s["label"], s["predicted"]) == (it["features"], [], 2, it["label"])
    for rid, feats in old.items():
        s = samples[rid]
        assert (s["features"], s["int_features"], s["model_version"], s["confidence"]) == (feats, [], 1, 0.75)
    # Only the v1 record was left to the serde: the v2 ones (and all feedback) were scanned.
    assert worker.value("modelci_drift_read_by_serde_total", event="PredictionBatch") == 1
    assert worker.value("modelci_drift_read_by_serde_total", event="FeedbackBatch") == 0
    assert worker.stop() == 0
