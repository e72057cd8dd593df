"""Trainer service: turns update requests into candidate versions with a continual-learning strategy.

The core (`core.Trainer`) knows nothing of Kafka's consumer loop: it takes an `UpdateRequest`,
reads the labeled samples it names, trains the model's strategy from `strategies/` and returns a
`Candidate`. `consumer.UpdateLoop` feeds it from ``cl.updates``; `app` wires settings, clients,
metrics and signals (``python -m services.trainer``).
"""
