"""C kernels compiled for the machine at first use, loaded with ctypes (csrc/).

PyTorch has no fused op for the transposing read that one of the two relative terms needs (kernels.py),
and its strided copy does it element by element. csrc/relative_bias.c does it in registers. It is
built with the system C compiler (`$CC`, else `cc`/`gcc`) for the CPU at hand (-march=native, AVX-512
where the CPU has it) into a per-user cache, once per source, compiler and CPU, in well under a second.
Where no compiler works, `library()` is None and the PyTorch path is used: the numbers are the same.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

_SOURCE = Path(__file__).with_name("csrc") / "relative_bias.c"
_FLAGS = ("-O3", "-march=native", "-shared", "-fPIC", "-std=c99")
_log = logging.getLogger(__name__)
_unavailable: list[str] = []


def cache_dir() -> Path:
    """Where compiled kernels are kept: $DEBERTA_DUAL_CACHE, else $XDG_CACHE_HOME/deberta-dual, else ~/.cache."""
    explicit = os.environ.get("DEBERTA_DUAL_CACHE")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "deberta-dual"


def _cpu_identity() -> str:
    """The CPU's model and feature flags: a library built with -march=native is only valid for them."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        import platform

        return platform.processor() + platform.machine()
    keep = [line for line in lines if line.startswith(("model name", "flags", "Features", "CPU part"))]
    return "\n".join(dict.fromkeys(keep))


def _compile(compiler: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Built beside the target and renamed into place: concurrent processes never load a partial file.
    fd, partial = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        subprocess.run([compiler, *_FLAGS, "-o", partial, str(_SOURCE)], check=True, capture_output=True, text=True,
                       timeout=120)
        os.replace(partial, target)
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


@functools.lru_cache(maxsize=None)
def library() -> ctypes.CDLL | None:
    """The compiled relative-bias kernels, built on first call; None where they cannot be built."""
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        return _give_up("no C compiler (set CC, or install gcc)")
    try:
        version = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=30).stdout
        digest = hashlib.sha256("\0".join([_SOURCE.read_text(), compiler, version, " ".join(_FLAGS),
                                           _cpu_identity()]).encode()).hexdigest()[:16]
        target = cache_dir() / f"relative_bias-{digest}.so"
        if not target.exists():
            _compile(compiler, target)
        lib = ctypes.CDLL(str(target))
    except (OSError, subprocess.SubprocessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        return _give_up(f"building {_SOURCE.name} with {compiler} failed: {detail.strip()[:500]}")
    pointer, size = ctypes.c_void_p, ctypes.c_long
    for name in ("relative_bias_f32", "relative_bias_bf16"):
        getattr(lib, name).argtypes = [pointer] * 9 + [size] * 4
        getattr(lib, name).restype = None
    lib.vectorised.restype = ctypes.c_int
    return lib


def _give_up(reason: str) -> None:
    _unavailable.append(reason)
    _log.info("deberta_torch native kernels unavailable, using the PyTorch path: %s", reason)
    return None


def unavailable_reason() -> str | None:
    """Why `library()` is None, or None when it loaded (or was not tried yet)."""
    return _unavailable[-1] if _unavailable else None
