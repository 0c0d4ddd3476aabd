"""The network of notebook 02 (§2.5) and the two initialisations it teaches: identity convs and a whitening stem."""

from __future__ import annotations

import torch
from torch import nn

NUM_CLASSES = 10


class BatchNorm(nn.BatchNorm2d):
    """BatchNorm with its scale fixed at 1 and fast running statistics (momentum 0.4: short runs). Taught in 02 §2.3."""

    def __init__(self, channels: int, momentum: float = 0.4, eps: float = 1e-12, learn_scale: bool = False):
        super().__init__(channels, eps=eps, momentum=momentum)
        self.weight.requires_grad_(learn_scale)


class ConvGroup(nn.Module):
    """conv 3x3 -> max-pool 2x2 -> BN -> GELU -> conv 3x3 -> BN -> GELU: half the resolution. Taught in 02 §2.5."""

    def __init__(self, channels_in: int, channels_out: int, bn_momentum: float = 0.4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding="same", bias=False)
        self.pool = nn.MaxPool2d(2)
        self.norm1 = BatchNorm(channels_out, bn_momentum)
        self.conv2 = nn.Conv2d(channels_out, channels_out, 3, padding="same", bias=False)
        self.norm2 = BatchNorm(channels_out, bn_momentum)
        self.act = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the group."""
        x = self.act(self.norm1(self.pool(self.conv1(x))))
        return self.act(self.norm2(self.conv2(x)))


class CifarNet(nn.Module):
    """2x2-conv stem (24 channels), GELU, three ConvGroups, global max-pool, scaled linear head. Taught in 02 §2.5."""

    def __init__(
        self,
        widths: tuple[int, ...] = (64, 256, 256),
        stem_kernel: int = 2,
        num_classes: int = NUM_CLASSES,
        logit_scale: float = 1 / 9,
        bn_momentum: float = 0.4,
    ):
        super().__init__()
        stem_width = 2 * 3 * stem_kernel**2  # room for +/- copies of every whitening filter
        self.stem = nn.Conv2d(3, stem_width, stem_kernel, padding=0, bias=True)
        self.act = nn.GELU()
        chans = (stem_width, *widths)
        self.groups = nn.Sequential(*(ConvGroup(a, b, bn_momentum) for a, b in zip(chans[:-1], chans[1:])))
        self.head = nn.Linear(widths[-1], num_classes, bias=False)
        self.logit_scale = logit_scale

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The image -> feature-vector part (before the linear head)."""
        x = self.groups(self.act(self.stem(x)))
        return nn.functional.adaptive_max_pool2d(x, 1).flatten(1)  # global max-pool: one number per channel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, num_classes)."""
        return self.head(self.features(x)) * self.logit_scale


def identity_init_(model: nn.Module) -> nn.Module:
    """Each 3x3 conv starts by passing its input through (dirac init of the first filters). Taught in 02 §4.4."""
    for module in model.modules():
        if isinstance(module, nn.Conv2d) and module.kernel_size == (3, 3) and module.out_channels >= module.in_channels:
            with torch.no_grad():
                nn.init.dirac_(module.weight[: module.in_channels])
    return model


def image_patches(images: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """Every kernel_size x kernel_size patch of every image, flattened: (N * H' * W', C * k * k). Taught in 02 §4.3."""
    c = images.shape[1]
    patches = images.unfold(2, kernel_size, 1).unfold(3, kernel_size, 1)  # N, C, H', W', k, k
    return patches.permute(0, 2, 3, 1, 4, 5).reshape(-1, c * kernel_size**2)


def whitening_filters(
    images: torch.Tensor, kernel_size: int = 2, eps: float = 5e-4
) -> tuple[torch.Tensor, torch.Tensor]:
    """Patch-covariance eigenvectors / sqrt(eigenvalue), largest first, and the eigenvalues. Taught in 02 §4.3."""
    patches = image_patches(images.float(), kernel_size).double()
    patches = patches - patches.mean(dim=0)
    cov = patches.T @ patches / len(patches)
    eigenvalues, eigenvectors = torch.linalg.eigh(cov)  # ascending
    eigenvalues, eigenvectors = eigenvalues.flip(0), eigenvectors.flip(1)
    filters = eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]
    c = images.shape[1]
    return filters.reshape(-1, c, kernel_size, kernel_size).float(), eigenvalues.float()


def init_whitening_(stem: nn.Conv2d, images: torch.Tensor, eps: float = 5e-4) -> nn.Conv2d:
    """Set a stem conv to +/- the images' whitening filters and freeze its weights (not its bias). Taught in 02 §4.3."""
    filters, _ = whitening_filters(images, stem.kernel_size[0], eps)
    with torch.no_grad():
        stem.weight.copy_(torch.cat([filters, -filters]).to(stem.weight))
        stem.bias.zero_()
    stem.weight.requires_grad_(False)
    return stem
