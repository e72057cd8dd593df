"""``text-topics``: synthetic short texts as INT64 token ids, labelled by topic (no download).

Each text is a bag of words drawn from its topic's own words (Zipf-distributed, as in real
text), words common to every topic, and rare words, padded with id 0 to `SEQ_LEN` tokens. The
concepts are what changes in a real text stream: the words used for each topic (synonyms: the
same topics, written mostly with another set of ids), how often each topic comes up, and some
old words taking another meaning (a share of each topic's tokens are words that meant another
topic in the first vocabulary); the first concept comes back at the end. A model that learned
the first vocabulary has never trained the next one's embeddings and reads the borrowed words
the old way, so it is worse than chance there; a model that only fine-tunes on the later
concepts relearns the borrowed words and forgets the first one, which remembering avoids.
Disjoint synonyms alone would not do: new words get embeddings of their own and nothing that
held the old concept has to change.

Every concept means the same ids for every stream seed (`_CONCEPT_SEED`); the seed only draws
the texts, and keys the content hash that splits train from test (`held_out`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from strategies.streams.base import DriftStream, Experience, held_out, to_tensors

VOCAB_SIZE = 1000
SEQ_LEN = 32
NUM_CLASSES = 4
PAD = 0
MIN_WORDS = 8
TEST_FRACTION = 0.3
COMMON = np.arange(1, 200)
"""Function words every topic uses."""
WORDS_PER_TOPIC = 60
VOCABULARIES = 3
"""Disjoint sets of topic words (one per vocabulary concept); ids 200..999, the rest are rare words."""
P_TOPIC, P_COMMON = 0.4, 0.5
"""Chance that a token is one of its topic's words, or a common word; otherwise a rare word."""
_CONCEPT_SEED = 20_250_301


@dataclass(frozen=True)
class Concept:
    name: str
    vocabulary: int
    """Which set of topic words the texts of each topic mostly use."""
    topic_mix: tuple[float, ...]
    """How often each topic comes up."""
    borrowed: float = 0.0
    """Share of topic tokens taken instead from vocabulary 0's words of topic ``t + shift``: old
    words that now mean another topic, so learning this concept overwrites what vocabulary 0
    meant (a model that only fine-tunes forgets it)."""
    shift: int = 0


CONCEPTS: dict[str, Concept] = {
    c.name: c
    for c in [
        Concept("vocab-a", 0, (0.25, 0.25, 0.25, 0.25)),
        Concept("vocab-b", 1, (0.4, 0.3, 0.2, 0.1), borrowed=0.3, shift=1),
        Concept("vocab-c", 2, (0.1, 0.2, 0.3, 0.4), borrowed=0.3, shift=2),
    ]
}
SEQUENCE = ["vocab-a", "vocab-b", "vocab-c", "vocab-a"]


@lru_cache(maxsize=1)
def _layout() -> tuple[np.ndarray, np.ndarray]:
    """Topic words ``[vocabulary, topic, rank]`` and the rare words, fixed for every seed."""
    ids = np.random.default_rng(_CONCEPT_SEED).permutation(np.arange(200, VOCAB_SIZE))
    n = VOCABULARIES * NUM_CLASSES * WORDS_PER_TOPIC
    return ids[:n].reshape(VOCABULARIES, NUM_CLASSES, WORDS_PER_TOPIC), np.sort(ids[n:])


def _zipf(n: int, s: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** s
    return w / w.sum()


def _texts(concept: Concept, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """`n` texts of the concept, ``[n, SEQ_LEN]`` int64 ids padded with `PAD`, and their topics."""
    topic_words, rare = _layout()
    y = rng.choice(NUM_CLASSES, size=n, p=np.asarray(concept.topic_mix) / sum(concept.topic_mix))
    kind = rng.choice(3, size=(n, SEQ_LEN), p=[P_TOPIC, P_COMMON, 1.0 - P_TOPIC - P_COMMON])
    rank = rng.choice(WORDS_PER_TOPIC, size=(n, SEQ_LEN), p=_zipf(WORDS_PER_TOPIC, 0.8))
    topical = topic_words[concept.vocabulary][y[:, None], rank]
    if concept.borrowed:
        old = topic_words[0][(y[:, None] + concept.shift) % NUM_CLASSES, rank]
        topical = np.where(rng.random((n, SEQ_LEN)) < concept.borrowed, old, topical)
    common = rng.choice(COMMON, size=(n, SEQ_LEN), p=_zipf(len(COMMON)))
    rarely = rng.choice(rare, size=(n, SEQ_LEN))
    x = np.where(kind == 0, topical, np.where(kind == 1, common, rarely))
    length = rng.integers(MIN_WORDS, SEQ_LEN + 1, size=n)
    x[np.arange(SEQ_LEN)[None, :] >= length[:, None]] = PAD
    return x.astype(np.int64), y.astype(np.int64)


def _texts_on_side(concept: Concept, n: int, rng: np.random.Generator, test: bool, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`n` texts whose content hash puts them on the test side (`test`) or the training side."""
    xs, ys, have = [], [], 0
    share = TEST_FRACTION if test else 1.0 - TEST_FRACTION
    while have < n:
        x, y = _texts(concept, int((n - have) / share * 1.2) + 16, rng)
        keep = held_out(x, TEST_FRACTION, seed) == test
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def text_topics_stream(
    seed: int = 0,
    train_per_experience: int = 800,
    test_per_concept: int = 400,
    sequence: list[str] | None = None,
    name: str = "text-topics",
    description: str = "synthetic texts (INT64 ids) of 4 topics: vocabulary a, synonyms b, synonyms c with the topic mix shifted, a again",
) -> DriftStream:
    """The stream over `sequence` (default: `SEQUENCE`; repeats make concepts recur)."""
    sequence = list(sequence or SEQUENCE)
    concepts = list(dict.fromkeys(sequence))
    tests = {
        c: to_tensors(*_texts_on_side(CONCEPTS[c], test_per_concept, np.random.default_rng([seed, 1, k]), True, seed), np.int64)
        for k, c in enumerate(concepts)
    }
    experiences = []
    for i, cname in enumerate(sequence):
        rng = np.random.default_rng([seed, 2, i])
        train = _texts_on_side(CONCEPTS[cname], train_per_experience, rng, False, seed)
        experiences.append(Experience(cname, *to_tensors(*train, np.int64), *tests[cname]))

    def sampler(k: int, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return _texts(CONCEPTS[concepts[k]], n, rng)

    return DriftStream(
        name=name,
        input_shape=(SEQ_LEN,),
        num_classes=NUM_CLASSES,
        concepts=concepts,
        experiences=experiences,
        description=description,
        datatype="INT64",
        vocab_size=VOCAB_SIZE,
        _sampler=sampler,
    )
