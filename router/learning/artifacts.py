"""Artifact versions and packing: what promotion stores and every replica unpacks.

Example::

    version = folder_version("router", "my-router")      # "router-1a2b3c4d5e6f"
    payload = pack_folder("my-router")                   # bytes for the database
    unpack_artifact(version, payload)                    # <cache>/learning/artifacts/...
"""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

from router.learning.store import cache_dir

MIN_COMPARE = 10
"""Fewest held-out labelled records a comparison needs."""
MIN_GAP = 0.05
"""Smallest mean(strong - weak) for APGR to mean anything: with preference labels
(weak = 1 - strong) a balanced set has no gap and APGR divides by about zero."""


def folder_version(kind: str, folder: str | Path) -> str:
    """``<kind>-<12 hex>``: a digest of every file of an artifact folder (names + bytes)."""
    digest = hashlib.sha256()
    root = Path(folder)
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.name == "README.md":
            continue
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes())
    return f"{kind}-{digest.hexdigest()[:12]}"


def tau_version(tau: float) -> str:
    return f"tau-{tau:.6g}"


def pack_folder(folder: str | Path) -> bytes:
    """An artifact folder as a gzip'd tar (relative names, regular files only)."""
    root = Path(folder)
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            tar.add(path, arcname=path.relative_to(root).as_posix(), recursive=False)
    return buffer.getvalue()


def unpack_artifact(version: str, payload: bytes) -> Path:
    """Unpack a stored artifact under ``<cache>/learning/artifacts/<version>`` (once)."""
    target = cache_dir() / "learning" / "artifacts" / version
    if (target / ".complete").is_file():
        return target
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(payload), mode="r:gz") as tar:
        tar.extractall(target, filter="data")
    (target / ".complete").write_text("ok\n")
    return target
