"""Classifiers the project ships: the demo's MLP, and example architectures of other families.

Families: flat vectors (`make_mlp`, `make_tabular`), C×H×W images (`make_cnn`, `make_resnet`) and
padded INT64 token ids (`make_text`). All output logits; serving wraps them with a softmax at
export time (`strategies.export`), so training code keeps working with logits and
`CrossEntropyLoss`. Each is a factory a model can be registered with
(``--factory strategies.models:make_tabular``), like a team's own.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torchvision.models.resnet import BasicBlock, ResNet


def make_mlp(input_dim: int, num_classes: int, hidden: int = 64) -> nn.Module:
    """Two hidden ReLU layers of `hidden` units; inputs of any shape are flattened first.

    >>> m = make_mlp(64, 10)
    >>> tuple(m(torch.zeros(3, 64)).shape)
    (3, 10)
    """
    if input_dim < 1 or num_classes < 2 or hidden < 1:
        raise ValueError("make_mlp needs input_dim >= 1, num_classes >= 2 and hidden >= 1")
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(input_dim, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def make_tabular(input_dim: int, num_classes: int, hidden: int = 48, dropout: float = 0.2) -> nn.Module:
    """A tabular network whose train and eval behaviour differ: BatchNorm and Dropout.

    >>> m = make_tabular(64, 10).eval()
    >>> tuple(m(torch.zeros(3, 64)).shape)
    (3, 10)
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(input_dim, hidden),
        nn.BatchNorm1d(hidden),
        nn.ReLU(),
        nn.Dropout(dropout),
        nn.Linear(hidden, num_classes),
    )


class SmallCNN(nn.Module):
    """A convolutional image classifier (C×H×W inputs) with BatchNorm, sized for a CPU."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, padding=1, stride=2),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(2 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.flatten(self.features(x), 1))


def make_cnn(in_channels: int = 1, num_classes: int = 10, width: int = 16) -> nn.Module:
    """`SmallCNN`: for images such as the 1×8×8 scikit-learn digits."""
    return SmallCNN(in_channels, num_classes, width)


class SmallResNet(ResNet):
    """torchvision's ResNet-18 (same blocks, same parameter names: ``conv1``, ``layer1.0``, ``fc``)
    at a width of the caller's choosing, with a CIFAR-style stem.

    torchvision hard-codes 64..512 channels and an ImageNet stem (7×7 stride-2 convolution and a
    max-pool) that would shrink a 32×32 image to 8×8 before the first block; here the stem is one
    3×3 convolution, and the four stages have ``width``·(1, 2, 4, 8) channels. Only ``__init__``
    differs: blocks, ``_make_layer`` and ``forward`` are torchvision's own.
    """

    def __init__(self, num_classes: int, in_channels: int = 1, width: int = 16, layers: Sequence[int] = (2, 2, 2, 2)) -> None:
        nn.Module.__init__(self)  # ResNet.__init__ would build the full-width network first
        if num_classes < 2 or in_channels < 1 or width < 1 or len(layers) != 4 or min(layers) < 1:
            raise ValueError("SmallResNet needs num_classes >= 2, in_channels >= 1, width >= 1 and four stages of >= 1 block")
        # The attributes torchvision's `_make_layer` reads.
        self._norm_layer = nn.BatchNorm2d
        self.inplanes, self.dilation, self.groups, self.base_width = width, 1, 1, 64
        self.conv1 = nn.Conv2d(in_channels, width, kernel_size=3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.Identity()
        self.layer1 = self._make_layer(BasicBlock, width, layers[0])
        self.layer2 = self._make_layer(BasicBlock, 2 * width, layers[1], stride=2)
        self.layer3 = self._make_layer(BasicBlock, 4 * width, layers[2], stride=2)
        self.layer4 = self._make_layer(BasicBlock, 8 * width, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(8 * width, num_classes)
        for m in self.modules():  # torchvision's initialisation
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)


def make_resnet(
    num_classes: int, input_shape: Sequence[int] = (1, 32, 32), width: int = 16, layers: Sequence[int] = (2, 2, 2, 2)
) -> nn.Module:
    """`SmallResNet` for C×H×W images (randomly initialised: nothing is downloaded).

    The default (16/32/64/128 channels, ~0.7 M parameters) trains on a CPU; ``width=64`` is
    ResNet-18's own width. Images down to 8×8 fit (the three stride-2 stages leave 1×1).

    >>> m = make_resnet(10, (1, 32, 32)).eval()
    >>> tuple(m(torch.zeros(2, 1, 32, 32)).shape)
    (2, 10)
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 3:
        raise ValueError(f"make_resnet takes C×H×W images, got input_shape {list(shape)}")
    return SmallResNet(num_classes, in_channels=shape[0], width=width, layers=tuple(layers))


class BagOfEmbeddings(nn.Module):
    """Text classifier over padded token ids: the mean of the tokens' embeddings, then a linear layer.

    ``padding_idx`` tokens are left out of the mean (EmbeddingBag excludes them from the count
    too), so a short text padded to the declared length means the same as the text alone; a row
    of padding only gives the bias. Ids must be below ``vocab_size``.
    """

    def __init__(self, num_classes: int, vocab_size: int = 1000, embed_dim: int = 32, padding_idx: int | None = 0) -> None:
        super().__init__()
        if num_classes < 2 or vocab_size < 2 or embed_dim < 1:
            raise ValueError("BagOfEmbeddings needs num_classes >= 2, vocab_size >= 2 and embed_dim >= 1")
        self.embedding = nn.EmbeddingBag(vocab_size, embed_dim, mode="mean", padding_idx=padding_idx)
        self.head = nn.Linear(embed_dim, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embedding(x))


def make_text(
    num_classes: int, input_shape: Sequence[int] = (32,), vocab_size: int = 1000, embed_dim: int = 32, padding_idx: int | None = 0
) -> nn.Module:
    """`BagOfEmbeddings` for INT64 (or INT32) token ids ``[n, L]`` padded with ``padding_idx``.

    The default vocabulary is that of the ``text-topics`` stream (`strategies.streams`).

    >>> m = make_text(4, (32,))
    >>> tuple(m(torch.zeros(3, 32, dtype=torch.int64)).shape)
    (3, 4)
    """
    shape = tuple(int(d) for d in input_shape)
    if len(shape) != 1 or shape[0] < 1:
        raise ValueError(f"make_text takes [L] token ids, got input_shape {list(shape)}")
    return BagOfEmbeddings(num_classes, vocab_size=vocab_size, embed_dim=embed_dim, padding_idx=padding_idx)
