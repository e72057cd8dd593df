"""The fast LabeledSampleBatch encoder writes exactly what fastavro writes."""

from __future__ import annotations

import random
import struct

from hypothesis import given, settings
from hypothesis import strategies as st

from services.common.serde import default_serde
from services.drift import samples as S


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 30),
    offset=st.integers(-(2**62), 2**62),
    version=st.integers(0, 2**40),
    n_features=st.integers(0, 40),
    n_int=st.integers(0, 40),
    seed=st.integers(0, 1000),
    model=st.text(min_size=1, max_size=20),
)
def test_fast_encoder_matches_fastavro(n: int, offset: int, version: int, n_features: int, n_int: int, seed: int, model: str) -> None:
    serde = default_serde()
    enc = S.SampleEncoder(serde)
    assert enc.fast
    rng = random.Random(seed)
    dicts, encoded = [], []
    for i in range(n):
        feats = [f32(rng.uniform(-1e6, 1e6)) for _ in range(n_features)]
        ints = [rng.randrange(-(2**63), 2**63) >> rng.randrange(0, 64) for _ in range(n_int)]
        d = {
            "sample_id": f"r-{i}-{'é' * (i % 3)}",
            "model_version": version,
            "features": feats,
            "int_features": ints,
            "label": rng.randrange(-3, 300),
            "predicted": rng.randrange(0, 300),
            "confidence": f32(rng.random()),
            "prediction_partition": rng.randrange(0, 64),
            "prediction_offset": offset,
            "feedback_partition": rng.randrange(0, 64),
            "feedback_offset": offset // 3,
        }
        dicts.append(d)
        encoded.append(
            S.sample(
                d["sample_id"],
                S.varint(version),
                S.inputs_from_lists(feats, ints),
                d["label"],
                d["predicted"],
                d["confidence"],
                S.location(d["prediction_partition"], offset),
                S.location(d["feedback_partition"], offset // 3),
            )
        )
    fast = enc.batch("e" * 32, model, 1_795_000_000_000, encoded)
    slow = serde.encode("LabeledSampleBatch", {"event_id": "e" * 32, "model": model, "joined_at_ms": 1_795_000_000_000, "items": dicts})
    assert fast == slow
    assert serde.decode("LabeledSampleBatch", fast)["items"] == dicts


def test_input_blob_round_trip() -> None:
    """features and int_features through `pack_prediction` / `unpack_prediction`, and a value
    packed before schema v2 (features block only) read as having empty int_features."""
    from services.drift.join import PRED_HEAD, pack_prediction, unpack_prediction

    for n in (0, 1, 16, 200):
        values = [f32(i * 0.5 - 3) for i in range(n)]
        ints = [(-1) ** i * 2 ** (i % 64) for i in range(n)]
        for feats, ids in ((values, []), ([], ints), (values, ints)):
            blob = S.inputs_from_lists(feats, ids)
            assert S.inputs_of(blob) == (feats, ids)
            assert unpack_prediction(pack_prediction(2, 1, 99, 3, 0.5, feats, ids))[5] == blob
        old = PRED_HEAD.pack(2, 1, 99, 3, 0.5) + S.features_from_list(values)
        assert unpack_prediction(old)[5] == S.inputs_from_lists(values, [])
