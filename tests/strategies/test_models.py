"""The image and text model families, their exports in every datatype, and integer inputs
kept integer on their way to the model."""

from __future__ import annotations

import io

import pytest
import torch
import torchvision

from services.common.tensors import InputError
from strategies import InvalidTrainingData, export_torchscript
from strategies.base import check_samples
from strategies.export import example_input
from strategies.models import make_resnet, make_text


def _load(artifact: bytes) -> torch.jit.ScriptModule:
    return torch.jit.load(io.BytesIO(artifact))


def test_make_resnet_is_resnet18_at_a_quarter_of_its_width():
    model = make_resnet(10, (1, 32, 32))
    assert [model.conv1.in_channels] + [layer[0].conv1.out_channels for layer in (model.layer1, model.layer2, model.layer3, model.layer4)] == [1, 16, 32, 64, 128]
    reference = torchvision.models.resnet18(weights=None, num_classes=10)
    assert set(model.state_dict()) == set(reference.state_dict()), "torchvision's parameter names"
    assert isinstance(model, torchvision.models.ResNet)
    assert make_resnet(3, (3, 16, 16), width=8).eval()(torch.zeros(2, 3, 16, 16)).shape == (2, 3)
    with pytest.raises(ValueError):
        make_resnet(10, (32, 32))


@pytest.mark.parametrize("datatype", ["FP32", "FP16"])
def test_resnet_export_gives_the_models_probabilities(datatype):
    torch.manual_seed(0)
    model = make_resnet(10, (1, 32, 32), width=4).eval()
    scripted = _load(export_torchscript(model, (1, 32, 32), datatype=datatype))
    x = torch.rand(5, 1, 32, 32)
    if datatype == "FP16":
        x = x.half()  # what Triton feeds it; the model itself computes in float32
    with torch.no_grad():
        got = scripted(x)
        assert got.dtype == torch.float32
        torch.testing.assert_close(got, torch.softmax(model(x.float()), dim=1), atol=1e-6, rtol=0)
        assert scripted(x[:1]).shape == (1, 10)


@pytest.mark.parametrize("datatype", ["INT64", "INT32"])
def test_text_export_takes_ids_and_gives_the_models_probabilities(datatype):
    torch.manual_seed(0)
    model = make_text(4, (32,), vocab_size=100).eval()
    scripted = _load(export_torchscript(model, (32,), datatype=datatype))
    dtype = torch.int64 if datatype == "INT64" else torch.int32
    ids = torch.randint(1, 100, (6, 32))
    ids[:, 20:] = 0
    with torch.no_grad():
        got = scripted(ids.to(dtype))
        torch.testing.assert_close(got, torch.softmax(model(ids), dim=1), atol=1e-6, rtol=0)
        assert scripted(ids[:1].to(dtype)).shape == (1, 4)


def test_text_model_ignores_padding_and_word_order():
    torch.manual_seed(0)
    model = make_text(3, (8,), vocab_size=20, embed_dim=4).eval()
    short = torch.tensor([[5, 7, 0, 0, 0, 0, 0, 0]])
    reordered = torch.tensor([[7, 5, 0, 0, 0, 0, 0, 0]])
    with torch.no_grad():
        mean = model.embedding.weight[[5, 7]].mean(0, keepdim=True)
        torch.testing.assert_close(model(short), model.head(mean))
        torch.testing.assert_close(model(short), model(reordered))
    with pytest.raises(ValueError):
        make_text(3, (1, 8))


def test_export_example_and_datatype():
    assert example_input((4,), "INT64").tolist() == [[0, 1, 0, 1], [0, 1, 0, 1]]
    assert example_input((2, 2), "INT32").dtype == torch.int32
    assert example_input((3,), "FP16").dtype == torch.float16
    with pytest.raises(InputError):
        export_torchscript(make_text(2, (4,)), (4,), datatype="INT8")


def test_check_samples_keeps_ids_integer_and_casts_floats_to_float32():
    y = torch.tensor([0, 1])
    for dtype in (torch.int64, torch.int32):
        ids = torch.tensor([[3, 0], [1, 2]], dtype=dtype)
        x, _ = check_samples(ids, y)
        assert x.dtype == dtype and torch.equal(x, ids)
    for dtype in (torch.float16, torch.float64, torch.uint8):
        x, _ = check_samples(torch.ones(2, 3, dtype=dtype), y)
        assert x.dtype == torch.float32
    with pytest.raises(InvalidTrainingData):
        check_samples(torch.tensor([[1.0, float("inf")], [0.0, 0.0]], dtype=torch.float16), y)


def test_an_fp16_model_trains_in_float32_and_its_export_takes_fp16():
    from strategies import get_strategy
    from strategies.models import make_tabular

    torch.manual_seed(0)
    x, y = torch.randn(32, 6).half(), torch.arange(32) % 2
    strategy = get_strategy("replay")(make_tabular(6, 2, hidden=8), {"epochs": 1, "batch_size": 16})
    strategy.train(x, y)
    assert strategy.memory()[0].dtype == torch.float32
    model = strategy.model.eval()
    scripted = _load(export_torchscript(model, (6,), datatype="FP16"))
    with torch.no_grad():
        torch.testing.assert_close(scripted(x), torch.softmax(model(x.float()), dim=1), atol=1e-6, rtol=0)
