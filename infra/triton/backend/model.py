"""Python-based Triton backend that serves a TorchScript ``model.pt`` on the CPU.

The pip-installed Triton server has no libtorch backend, so the local config
(``configs/local.pbtxt``, picked with ``--model-config-name=local``) names this backend
instead; the NGC image in production serves the very same version folder with
``platform: "pytorch_libtorch"``. Tensors keep libtorch's names ``INPUT__0`` / ``OUTPUT__0``.
All requests of one ``execute`` call run as one batch.

Tensors cross the stub boundary by DLPack, not numpy: the wheel's stub is built against
numpy 1.x and misreads numpy 2 arrays (output sizes come out wrong), while DLPack is a stable
ABI that torch speaks natively.
"""

import os

import torch
import triton_python_backend_utils as pb_utils
from torch.utils.dlpack import from_dlpack, to_dlpack


class TritonPythonModel:
    def initialize(self, args):
        torch.set_num_threads(int(os.environ.get("MODELCI_TRITON_TORCH_THREADS", "1")))
        path = os.path.join(args["model_repository"], args["model_version"], "model.pt")
        self.model = torch.jit.load(path, map_location="cpu")
        self.model.eval()

    def execute(self, requests):
        tensors = [from_dlpack(pb_utils.get_input_tensor_by_name(r, "INPUT__0").to_dlpack()) for r in requests]
        sizes = [t.shape[0] for t in tensors]
        try:
            with torch.inference_mode():
                # The input goes in as declared (token ids stay integers); the artifact's
                # wrapper casts what its layers need (strategies/export.py).
                out = self.model(torch.cat(tensors)).float().contiguous()
        except Exception as exc:  # one bad batch must not take the model down
            error = pb_utils.TritonError(f"model failed: {type(exc).__name__}: {exc}")
            return [pb_utils.InferenceResponse(output_tensors=[], error=error) for _ in requests]
        responses = []
        for part in torch.split(out, sizes):
            tensor = pb_utils.Tensor.from_dlpack("OUTPUT__0", to_dlpack(part.clone()))
            responses.append(pb_utils.InferenceResponse(output_tensors=[tensor]))
        return responses
