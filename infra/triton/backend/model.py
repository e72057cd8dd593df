"""Python-based Triton backend that serves a TorchScript ``model.pt`` on the CPU.

The pip-installed Triton server has no libtorch backend, so the local config
(``configs/local.pbtxt``, picked with ``--model-config-name=local``) names this backend
instead; the NGC image in production serves the very same version folder with
``platform: "pytorch_libtorch"``. Tensors keep libtorch's names ``INPUT__0`` / ``OUTPUT__0``.
All requests of one ``execute`` call run as one batch.
"""

import os

import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        torch.set_num_threads(int(os.environ.get("MODELCI_TRITON_TORCH_THREADS", "1")))
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        self.model = torch.jit.load(path, map_location="cpu")
        self.model.eval()

    def execute(self, requests):
        arrays = [pb_utils.get_input_tensor_by_name(r, "INPUT__0").as_numpy() for r in requests]
        sizes = [a.shape[0] for a in arrays]
        try:
            batch = torch.from_numpy(np.ascontiguousarray(np.concatenate(arrays), dtype=np.float32))
            with torch.inference_mode():
                out = self.model(batch).float().numpy()
        except Exception as exc:  # one bad batch must not take the model down
            error = pb_utils.TritonError(f"model failed: {type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses, start = [], 0
        for n in sizes:
            tensor = pb_utils.Tensor("OUTPUT__0", np.ascontiguousarray(out[start : start + n]))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
            start += n
        return responses
