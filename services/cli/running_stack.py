"""Commands that talk to the stack find the one `modelci up` started.

`modelci up` records its endpoints (broker, Redis, Triton, model repository, artifact store) in
the run folder; without this, a command run next to it would use the services' own defaults,
which name Apache Kafka's port while the embedded broker (Tansu) listens on another. A variable
set in the environment still wins, so pointing a command at another cluster works as before.
"""

from __future__ import annotations

import os


def use_running_stack() -> dict[str, str]:
    """Fills in the recorded stack's addresses where no ``MODELCI_*`` variable is set; returns them."""
    from infra.local.embedded import EmbeddedStack

    recorded = EmbeddedStack().recorded()
    if recorded is None:
        return {}
    endpoints, _running = recorded
    applied = {}
    for key, value in endpoints.service_env().items():
        if key not in os.environ:
            os.environ[key] = value
            applied[key] = value
    return applied
