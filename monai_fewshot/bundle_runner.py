"""``python -m monai_fewshot.bundle_runner run ...``: MONAI's ``python -m monai.bundle run``, whose failures end
in one line naming the input instead of a 70-line traceback ending in "Failed to evaluate ConfigExpression".

The ``monai-fewshot`` command starts its bundles through this module; ``MONAI_FEWSHOT_DEBUG=1`` (the command's
``--debug``) lets the traceback through.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from types import TracebackType

__all__ = ["ALLOCATOR_TUNABLES", "BUNDLES", "DEBUG_ENV", "bundle_values", "child_environment", "main", "user_error"]

#: The package's bundles (package data; in a checkout ``monai_fewshot/bundles`` links to the repository's bundles/).
BUNDLES = (Path(__file__).resolve().parent / "bundles").resolve()

DEBUG_ENV = "MONAI_FEWSHOT_DEBUG"
#: glibc's malloc settings for the bundle processes: every allocation from the heap, and freed memory kept for
#: the next one. PyTorch frees and reallocates its CPU tensors at every layer; under glibc's defaults each one
#: above 32 MB is a fresh ``mmap`` whose pages the kernel zeroes again, which made a third of a GRL restore's CPU
#: time system time (a 64 x 64 x 36 patch: 16.5 s -> 10.8 s, system time 12.8 s -> 0.9 s). Ignored where the C
#: library is not glibc; a ``GLIBC_TUNABLES`` already set is left as it is.
ALLOCATOR_TUNABLES = "glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=68719476736"
_PACKAGE = str(Path(__file__).resolve().parent)


def _raised_here(traceback: TracebackType | None) -> bool:
    """Whether the innermost frame of ``traceback`` is this package's code."""
    frame = None
    while traceback is not None:
        frame, traceback = traceback.tb_frame, traceback.tb_next
    return frame is not None and frame.f_code.co_filename.startswith(_PACKAGE)


def user_error(error: BaseException) -> BaseException:
    """The exception worth showing: along the chain of causes (MONAI wraps a failed config expression in a
    RuntimeError ``from`` the real one), the innermost raised by this package's code, else the innermost."""
    chain, seen = [], set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__ or current.__context__
    ours = [e for e in chain if _raised_here(e.__traceback__)]
    return (ours or chain)[-1]


def child_environment() -> dict[str, str]:
    """The environment to start a bundle process in: this one, plus :data:`ALLOCATOR_TUNABLES`."""
    return {"GLIBC_TUNABLES": ALLOCATOR_TUNABLES, **os.environ}


def _trust_own_configs() -> None:
    """The bundles of this package are trusted code; MONAI warns on every config it evaluates."""
    warnings.filterwarnings("ignore", message="parsing config_file", category=UserWarning)


def bundle_values(bundle: Path, configs: list[str], overrides: dict, keys: list[str]) -> dict:
    """What the bundle at ``bundle`` resolves ``keys`` to (e.g. ``ckpt_dir``, ``eval_dir``), its ``configs``
    merged in order with ``overrides`` applied as ``bundle run`` applies them (None for a key it does not have):
    the bundle, not its caller, decides paths and folds."""
    from monai.bundle import ConfigParser

    _trust_own_configs()
    parser = ConfigParser()
    parser.read_config([str(bundle / "configs" / name) for name in configs])
    parser.update({"bundle_root": str(bundle), **{k: v for k, v in overrides.items() if v is not None}})
    parser.parse()
    return {key: parser.get_parsed_content(key, default=None) for key in keys}


def main(argv: list[str] | None = None) -> int:
    import fire
    from monai.bundle.scripts import run

    _trust_own_configs()
    try:
        fire.Fire({"run": run}, command=sys.argv[1:] if argv is None else argv)
    except Exception as error:  # noqa: BLE001 - every failure becomes one line unless debugging
        if os.environ.get(DEBUG_ENV) == "1":
            raise
        shown = user_error(error)
        print(f"error: {shown}  ({type(shown).__name__}; --debug shows the traceback)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
