"""CIFAR-10's images: its classes and image size, and decoding the image files of its Parquet column. 02 §1."""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..errors import BadFileError

if TYPE_CHECKING:  # `datasets` is imported where it is used, so that a bare GPU box can import helpers
    from datasets import Dataset

CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
"""Class names by label: label 3 is a cat."""

IMAGE_SHAPE: tuple[int, int, int] = (3, 32, 32)
"""(channels, height, width) of every CIFAR-10 image: RGB, 32x32 pixels."""


def decode_images(blobs: Sequence[bytes | None], source: str = "the image column") -> torch.Tensor:
    """Image files (PNG, JPEG) to one uint8 tensor (N, 3, 32, 32); a BadFileError names a bad one. 02 §1."""
    try:
        from PIL import Image

        def decode(blob: bytes) -> np.ndarray:
            return np.asarray(Image.open(BytesIO(blob)).convert("RGB")).transpose(2, 0, 1)
    except ImportError:  # a bare GPU machine may have torchvision but no Pillow
        from torchvision.io import ImageReadMode, decode_image

        def decode(blob: bytes) -> np.ndarray:
            return decode_image(torch.frombuffer(blob, dtype=torch.uint8), ImageReadMode.RGB).numpy()

    arrays = []
    for i, blob in enumerate(blobs):
        try:
            arrays.append(decode(blob))
        except Exception as error:  # None, truncated bytes, not an image at all
            raise BadFileError(
                f"Image {i} of {source} does not decode ({type(error).__name__}: {error}): the "
                "data file is damaged. Replace it with a good copy (python -m helpers.download)."
            ) from error
        if arrays[-1].shape != IMAGE_SHAPE:
            raise BadFileError(
                f"Image {i} of {source} is {arrays[-1].shape[2]}x{arrays[-1].shape[1]} pixels, not CIFAR-10's "
                f"{IMAGE_SHAPE[2]}x{IMAGE_SHAPE[1]}: the file holds another data set. Replace it with a good copy."
            )
    return torch.from_numpy(np.stack(arrays)) if arrays else torch.empty(0, *IMAGE_SHAPE, dtype=torch.uint8)


def images_to_tensor(ds: Dataset, column: str = "img") -> torch.Tensor:
    """Decode a `datasets` image column to one uint8 tensor (N, C, H, W), no PIL object per row. Taught in 00 §3."""
    from datasets import Image

    return decode_images([item["bytes"] for item in ds.cast_column(column, Image(decode=False))[column]])
