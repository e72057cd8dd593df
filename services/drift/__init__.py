"""The drift service: joins predictions with feedback, runs drift detectors, asks for updates.

``python -m services.drift`` runs one worker (`worker.py` wires settings, topics, metrics and the
Faust app of `app.py`). The core knows nothing of Faust: `service.py` (steps, models,
persistence), `inputs.py` (per-topic packing and applying of joins), `decisions.py` (drift
events, update requests, outbox), `join.py` (the Redis Lua join), `policy.py` (update policy
in Redis), `state.py` (a model's detectors and snapshot), `detectors/` (the detector interface
and registry), `samples.py` (fast sample encoding), `publish.py` (delivery tracking).
"""
