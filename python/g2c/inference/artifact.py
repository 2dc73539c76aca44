"""artifact.py: saved model files run in-process, found by path or name (NAME-DPO, then -SFT, then NAME)."""
from __future__ import annotations

from .. import _g2c
from .local import LocalTransformerBackend

# torch dtype names -> the weight type g2c reports for a file (info.extra["quantization"]).
_DTYPES = {"float32": "F32", "float": "F32", "float16": "F16", "half": "F16", "bfloat16": "BF16"}


class ArtifactBackend(LocalTransformerBackend):
    """Backend wrapper for saved StudentLM, BaseLM, SFT, and DPO artifacts (GGUF or llama2.c files)."""

    @classmethod
    def _wrap(cls, native) -> "ArtifactBackend":
        b = cls.__new__(cls)
        b._native = native
        b._model = None
        b._tokenizer = None
        return b


def load_artifact_backend(artifact_name: str | None = None, *, device: str | None = "auto",
                          torch_dtype: str | None = None, required: bool = True) -> ArtifactBackend | None:
    """The artifact's backend; None when nothing is found and required is False (FileNotFoundError
    listing every place looked when it is True). g2c runs on the CPU: device is "auto" or "cpu"."""
    if device not in (None, "auto", "cpu"):
        raise ValueError(f"device={device!r}: g2c runs on the CPU (use device='auto' or 'cpu')")
    native = _g2c.load_artifact(artifact_name or "", 0, required)
    if native is None:
        return None
    b = ArtifactBackend._wrap(native)
    if torch_dtype is not None:
        want = _DTYPES.get(str(torch_dtype).removeprefix("torch."))
        have = b.info.extra.get("quantization")
        if want is None or want != have:
            raise ValueError(f"torch_dtype={torch_dtype!r} does not match the file's weights ({have}); g2c runs "
                             "the weights as stored, with no conversion at load: pass torch_dtype=None")
    return b
