"""The images section: ``ImagesConfig`` (build the workload images into ECR, or use prebuilt references)
and ``image_ref``; ``needed_images`` / ``images_problems``, which need the whole config, are in ``cross.py``.

Which images a stack needs (``needed_images``):

- ``trainer`` (the CPU trainer) whenever training is enabled: data prep always runs it, and a CPU
  PyTorchJob does too (unless ``training.image`` replaces the job's image);
- ``trainerGpu`` for a GPU PyTorchJob without ``training.image`` (a TFJob always brings its own image);
- ``server`` for CPU or CUDA serving, ``serverNeuron`` for inf1 serving (torch-neuron), ``serverNeuronx`` for
  inf2 serving (torch-neuronx), unless ``serving.image`` is set.

With ``build: true`` (the default) the stack builds exactly those into ECR (components/images.py) and
the reference keys are refused: they would be silently ignored. With ``build: false`` each needed
key must be set to a reference pinned by tag or digest.
"""
from __future__ import annotations

import re
from typing import Optional

from pydantic import Field, field_validator

from infra.config.base import IMAGE_RE, _Model, pinned_image

# config key -> field name
IMAGE_KEYS = {"trainer": "trainer", "trainerGpu": "trainer_gpu", "server": "server", "serverNeuron": "server_neuron",
              "serverNeuronx": "server_neuronx"}
_UNTAGGED_RE = re.compile(IMAGE_RE.pattern.rsplit("(:[A-Za-z0-9_]", 1)[0] + "$")


def image_ref(v: Optional[str]) -> Optional[str]:
    """A prebuilt image reference: pinned by a tag (not latest) or by digest; None passes."""
    if v is None:
        return v
    if _UNTAGGED_RE.match(v) and not IMAGE_RE.match(v):
        raise ValueError(f"{v!r} has no tag; pin a version tag (name:1.2.3) or a digest (name@sha256:<64 hex>)")
    return pinned_image(v)


class ImagesConfig(_Model):
    """The workload images (trainer, sentiment server): built into ECR by the stack, or prebuilt references."""

    build: bool = True
    keep_last: int = Field(10, ge=1, le=1000)  # ECR lifecycle policy: keep the last N images per repository
    trainer: Optional[str] = None  # with build false: the CPU trainer (also the data-prep image)
    trainer_gpu: Optional[str] = None  # with build false: the GPU trainer
    server: Optional[str] = None  # with build false: the sentiment server (CPU and CUDA serving)
    server_neuron: Optional[str] = None  # with build false: the sentiment server for inf1
    server_neuronx: Optional[str] = None  # with build false: the sentiment server for inf2 (torch-neuronx)

    @field_validator("trainer", "trainer_gpu", "server", "server_neuron", "server_neuronx")
    @classmethod
    def _ref(cls, v: Optional[str]) -> Optional[str]:
        return image_ref(v)

    def ref(self, key: str) -> Optional[str]:
        return getattr(self, IMAGE_KEYS[key])
