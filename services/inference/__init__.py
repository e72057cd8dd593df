"""The inference service: Kafka requests in, micro-batches to Triton, prediction batches out.

Layout (each module small and named for what it does):

- ``settings``: `InferenceSettings`, every knob, ``MODELCI_INFERENCE_*``.
- ``core``: micro-batching, validation and prediction building; knows neither Kafka nor Triton.
- ``offsets``: which consumed offsets are safe to commit (pure bookkeeping).
- ``triton``: the Triton client adapter; turns client exceptions into the errors below.
- ``pipeline``: one micro-batch through Triton: grouping, retries with backoff, bisection.
- ``worker``: the Kafka loop (consume, batch, publish, commit only what the broker acknowledged).
- ``metrics``: the service's Prometheus registry.
- ``__main__``: the composition root (``python -m services.inference``).
"""
