"""The inference worker end to end on Apache Kafka and Triton."""

from __future__ import annotations

import math
import time
import uuid

import httpx
import pytest

from services.common import kafka as kafka_helpers
from services.common.client import ModelCIClient
from services.common.events import DeadLetter, FeedbackBatch, InferenceRequest, PredictionBatch
from services.common.serde import encode_event
from services.common.metrics import serve
from services.common.topics import FEEDBACK, PREDICTIONS, REQUESTS, dlq
from services.inference.metrics import InferenceMetrics
from tests.inference.conftest import (
    FEATURES,
    TopicReader,
    inference_settings,
    local_scores,
    make_model,
    predictions_by_request,
    publish_model,
    running_worker,
)


@pytest.fixture
def model(triton_settings, model_name):
    module = make_model(seed=1)
    publish_model(triton_settings.model_repository, triton_settings.http_url, model_name, 1, module)
    return module


def test_every_request_gets_one_prediction_from_the_version_that_answered(kafka_settings, triton_settings, model_name, model):
    metrics = InferenceMetrics()
    port = serve(metrics.registry)
    settings = inference_settings(kafka_settings, triton_settings)
    with running_worker(settings, metrics), ModelCIClient(kafka_settings, feedback_batch_size=50) as client:
        sent = {}
        for i in range(120):
            req = client.request(model_name, [math.sin(i + j) for j in range(FEATURES)])
            sent[req.request_id] = req
            client.feedback(model_name, req.request_id, label=i % 3)
        client.flush()
        reader = TopicReader(kafka_settings, kafka_settings.topic(PREDICTIONS), PredictionBatch)
        batches = reader.read_until(lambda b: sum(len(x.items) for x in b) >= len(sent))

        # Version 2 takes over: later requests name the version that actually answered.
        v2 = make_model(seed=2)
        publish_model(triton_settings.model_repository, triton_settings.http_url, model_name, 2, v2)
        late = [client.request(model_name, [0.1 * j for j in range(FEATURES)]) for _ in range(5)]
        client.flush()
        batches = reader.read_until(lambda b: sum(len(x.items) for x in b) >= len(sent) + len(late))
        metrics_text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        reader.close()

    got = predictions_by_request(batches)
    assert set(got) == set(sent) | {r.request_id for r in late}
    assert all(len(v) == 1 for v in got.values()), "a request got more than one prediction"
    assert len(batches) < len(sent) / 4, "predictions should travel in micro-batches"
    assert {b.model for b in batches} == {model_name}
    for request_id, req in sent.items():
        ((version, pred),) = got[request_id]
        assert version == 1
        assert pred.scores == pytest.approx(local_scores(model, req.features), abs=1e-5)
        assert pred.label == max(range(3), key=pred.scores.__getitem__)
        assert pred.confidence == pytest.approx(max(pred.scores))
        assert pred.features == pytest.approx(req.features) and pred.requested_at_ms == req.sent_at_ms
        assert pred.latency_ms >= 0
    for req in late:
        ((version, pred),) = got[req.request_id]
        assert version == 2 and pred.scores == pytest.approx(local_scores(v2, req.features), abs=1e-5)

    feedback = TopicReader(kafka_settings, kafka_settings.topic(FEEDBACK), FeedbackBatch)
    fb = feedback.read_until(lambda b: sum(len(x.items) for x in b) >= len(sent), timeout_s=20)
    feedback.close()
    assert {k for k, _ in feedback.records} == {model_name.encode()} and len(fb) <= 4
    assert sorted(f.request_id for b in fb for f in b.items) == sorted(sent)

    for name in (
        "modelci_inference_events_in_total",
        "modelci_inference_micro_batch_size_bucket",
        "modelci_inference_triton_latency_seconds_bucket",
        "modelci_inference_consumer_lag",
        "modelci_inference_predictions_total",
    ):
        assert name in metrics_text, name
    assert metrics.registry.get_sample_value(
        "modelci_inference_predictions_total", {"model": model_name, "version": "1"}
    ) == len(sent)
    for version, answered in (("1", len(sent)), ("2", len(late))):  # latency per version: p99 per model version
        labels = {"model": model_name, "version": version}
        assert metrics.registry.get_sample_value("modelci_inference_request_latency_seconds_count", labels) == answered
        assert metrics.registry.get_sample_value("modelci_inference_triton_latency_seconds_count", {**labels, "outcome": "ok"}) >= 1


def test_bad_requests_are_dead_lettered_with_their_reason_and_the_rest_still_flows(kafka_settings, triton_settings, model_name, model):
    metrics = InferenceMetrics()
    # A long deadline puts good and bad requests into the same micro-batch.
    settings = inference_settings(kafka_settings, triton_settings, batch_size=64, batch_deadline_ms=300)
    with running_worker(settings, metrics), ModelCIClient(kafka_settings) as client:
        good = [client.request(model_name, [0.5 + i] * FEATURES) for i in range(10)]
        # What the client library refuses before sending, another language's producer can still
        # write: seven values declared as eight, and ids in int_features for a float model.
        short = InferenceRequest(request_id="short", model=model_name, features=[1.0] * 7, shape=[FEATURES])
        ids = InferenceRequest(request_id="ids", model=model_name, features=[], int_features=[1] * FEATURES, shape=[FEATURES])
        raw = kafka_helpers.producer(kafka_settings)
        for req in (short, ids):
            raw.produce(kafka_settings.topic(REQUESTS), key=model_name.encode(), value=encode_event(req))
        kafka_helpers.flush(raw)
        expected = {
            client.request("no_such_model", [1.0] * FEATURES).request_id: "unknown_model",
            "short": "wrong_shape",
            "ids": "wrong_dtype",
            client.request(model_name, [1.0] * FEATURES, shape=[2, 4]).request_id: "wrong_shape",
            client.request(model_name, [1.0] * FEATURES, datatype="INT64").request_id: "wrong_dtype",
            client.request(model_name, [float("nan")] + [1.0] * 7).request_id: "triton_rejected",
            client.request(model_name, [1.0] * FEATURES, version=7).request_id: "unknown_model",
        }
        good += [client.request(model_name, [2.0 - i] * FEATURES) for i in range(10)]
        client.flush()
        raw.produce(kafka_settings.topic(REQUESTS), key=model_name.encode(), value=b"\x00garbage, not avro")
        kafka_helpers.flush(raw)

        dead = TopicReader(kafka_settings, dlq(kafka_settings.topic(REQUESTS)), DeadLetter)
        letters = dead.read_until(lambda ls: len(ls) >= len(expected) + 1)
        preds = TopicReader(kafka_settings, kafka_settings.topic(PREDICTIONS), PredictionBatch)
        got = predictions_by_request(preds.read_until(lambda b: sum(len(x.items) for x in b) >= len(good)))
        dead.close()
        preds.close()

    assert {r.request_id for r in good} == set(got)
    by_request = {letter.request_id: letter for letter in letters if letter.request_id}
    assert {rid: letter.reason for rid, letter in by_request.items()} == expected
    (garbage,) = [letter for letter in letters if letter.request_id is None]
    assert garbage.reason == "bad_marker" and garbage.value == b"\x00garbage, not avro"
    for letter in letters:
        assert letter.service == "inference" and letter.topic == kafka_settings.topic(REQUESTS) and letter.value
    sample = metrics.registry.get_sample_value
    assert sample("modelci_inference_dead_letters_total", {"reason": "wrong_shape"}) == 2
    assert sample("modelci_inference_dead_letters_total", {"reason": "bad_marker"}) == 1


def test_workers_in_one_group_split_the_partitions_and_hand_over_without_loss(kafka_settings, triton_settings, model_name, model):
    settings = inference_settings(kafka_settings, triton_settings, topic_partitions=4)
    first, second = InferenceMetrics(), InferenceMetrics()

    def answered(metrics: InferenceMetrics) -> float:
        return metrics.registry.get_sample_value("modelci_inference_predictions_total", {"model": model_name, "version": "1"}) or 0

    def wait_for(check, what: str) -> None:
        deadline = time.monotonic() + 30
        while not check():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.05)

    sent: list[str] = []

    def send(client: ModelCIClient, n: int) -> None:
        for _ in range(n):  # keyed by request id: one model spread over every partition
            rid = uuid.uuid4().hex
            sent.append(client.request(model_name, [0.25] * FEATURES, request_id=rid, key=rid).request_id)
        client.flush()

    with ModelCIClient(kafka_settings) as client, running_worker(settings, second) as other:
        with running_worker(settings, first) as worker:
            wait_for(lambda: 0 < len(worker.partitions) < 4, "the two workers sharing the partitions")
            send(client, 100)
            wait_for(lambda: answered(first) > 0 and answered(second) > 0, "both workers answering")
        # The first worker stopped gracefully (batch finished, published, committed, group left).
        wait_for(lambda: len(other.partitions) == 4, "the second worker taking every partition")
        send(client, 100)
        preds = TopicReader(kafka_settings, kafka_settings.topic(PREDICTIONS), PredictionBatch)
        got = predictions_by_request(preds.read_until(lambda b: {p.request_id for x in b for p in x.items} >= set(sent)))
        preds.close()

    assert all(len(got[rid]) == 1 for rid in sent), "a graceful hand-over must not answer a request twice"
    assert answered(first) + answered(second) == len(sent)
