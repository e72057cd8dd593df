"""Logical topic names and the event each carries.

Real names get ``KafkaSettings.topic_prefix`` in front (``KafkaSettings.topic``), so test runs
and several stacks can share a cluster.
"""

from __future__ import annotations

REQUESTS = "inference.requests"
PREDICTIONS = "inference.predictions"
FEEDBACK = "inference.feedback"
SAMPLES = "cl.samples"
DRIFT = "cl.drift"
UPDATES = "cl.updates"
CANDIDATES = "cl.candidates"
DEPLOYMENTS = "cl.deployments"
COMMANDS = "cl.commands"

EVENT_OF_TOPIC: dict[str, str] = {
    REQUESTS: "InferenceRequest",
    PREDICTIONS: "PredictionBatch",
    FEEDBACK: "FeedbackBatch",
    SAMPLES: "LabeledSampleBatch",
    DRIFT: "DriftEvent",
    UPDATES: "UpdateRequest",
    CANDIDATES: "Candidate",
    DEPLOYMENTS: "DeploymentEvent",
    COMMANDS: "Command",
}


def dlq(topic: str) -> str:
    """Dead-letter topic of ``topic``: where its undecodable or unprocessable records go."""
    return f"{topic}.dlq"
