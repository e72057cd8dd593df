"""``python -m services.inference``: the composition root of the inference service.

Reads `InferenceSettings` from the environment, configures logs, serves /metrics, installs the
signal handlers (first SIGTERM/SIGINT: finish the batch, commit, leave; second: abandon the
batch at once) and runs the worker until it stops.
"""

from __future__ import annotations

import signal
import sys

from services.common import logs
from services.common.errors import ModelCIError
from services.common.metrics import serve
from services.inference.metrics import InferenceMetrics
from services.inference.settings import InferenceSettings
from services.inference.worker import InferenceWorker


def main() -> int:
    settings = InferenceSettings()
    obs = settings.observability
    log = logs.configure("inference", obs.log_level, obs.log_format)
    metrics = InferenceMetrics()
    port = serve(metrics.registry, obs.metrics_host, obs.metrics_port)
    worker = InferenceWorker(settings, metrics)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal", signal=signal.Signals(signum).name, already_stopping=worker.stopping)
        if worker.stopping:
            worker.abort()
        else:
            worker.stop()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log.info("metrics_serving", host=obs.metrics_host, port=port)
    try:
        worker.run()
    except ModelCIError as exc:
        log.error("inference_failed", reason=exc.reason, error=str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
