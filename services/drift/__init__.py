"""The drift service: joins predictions with feedback, runs drift detectors, asks for updates.

``python -m services.drift`` runs one worker (a Faust app, `app.py`); the logic is in
`service.py`, the join in `join.py`, detectors in `detectors/`, update policy in `policy.py`.
"""
