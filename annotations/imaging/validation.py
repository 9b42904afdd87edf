"""Guards against hostile input: path confinement, upload names and size limits.

Everything here is pure Python (no Django) so the web layer, the Celery tasks and the
command line share one set of rules. Errors are ``ValueError`` with a message naming
the bad value; the web layer turns them into its own error shape.
"""

from __future__ import annotations

import os
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "SUPPORTED_DTYPES",
    "LABEL_DTYPES",
    "Limits",
    "check_dtype",
    "check_shape",
    "check_declared_size",
    "resolve_inside",
    "safe_filename",
]

#: Voxel types accepted from sources; anything else is refused (convert it elsewhere).
SUPPORTED_DTYPES: tuple[np.dtype, ...] = tuple(
    np.dtype(t) for t in ("uint8", "uint16", "int16", "float32")
)
#: Voxel types a label file may hold: class values or cell ids of any integer width (their
#: range is checked against the layer they go to).
LABEL_DTYPES: tuple[np.dtype, ...] = SUPPORTED_DTYPES + tuple(
    np.dtype(t) for t in ("int8", "int32", "uint32", "int64", "uint64")
)


@dataclass(frozen=True)
class Limits:
    """Upper bounds a source must respect before any voxel is read.

    Parameters
    ----------
    max_voxels : int
        Most voxels a volume may declare (Z*Y*X). Default 2**37 (~137 G voxels).
    max_dimension : int
        Most voxels along any one axis. Default 65536.
    max_compression_ratio : float
        Largest allowed ratio of declared bytes (voxels * itemsize) to the bytes the
        file(s) actually hold. Uncompressed data has ratio <= 1; deflate cannot exceed
        ~1032; real EM images compress 1.5-5x and sparse label masks up to a few
        hundred. A small file declaring a huge volume (a decompression bomb, or a
        sparse Zarr whose missing chunks would be synthesised) is refused.
    max_chunk_bytes : int
        Largest decoded storage chunk (Zarr/HDF5) accepted, so one chunk read cannot
        exhaust memory. Default 512 MiB.
    dtypes : tuple of numpy.dtype
        Voxel types accepted: :data:`SUPPORTED_DTYPES` for images, :data:`LABEL_DTYPES`
        for label files.
    """

    max_voxels: int = 2**37
    max_dimension: int = 65536
    max_compression_ratio: float = 1000.0
    max_chunk_bytes: int = 512 * 2**20
    dtypes: tuple[np.dtype, ...] = SUPPORTED_DTYPES

    def __post_init__(self) -> None:
        for name in ("max_voxels", "max_dimension", "max_chunk_bytes"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"Limits.{name} must be a positive int, got {value!r}")
        if not self.max_compression_ratio >= 1.0:
            raise ValueError(
                f"Limits.max_compression_ratio must be >= 1, got {self.max_compression_ratio!r}"
            )


def check_dtype(dtype: np.dtype | type | str, *, what: str,
                allowed: tuple[np.dtype, ...] = SUPPORTED_DTYPES) -> np.dtype:
    """Return ``np.dtype(dtype)`` if it is one of ``allowed``, else raise ``ValueError``.

    Big-endian variants are accepted (they are byte-swapped on read).
    """
    dt = np.dtype(dtype)
    if dt.newbyteorder("=") not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise ValueError(
            f"{what}: voxel type {dt} is not supported (supported: {names}); "
            "convert the data before importing"
        )
    return dt


def check_shape(shape: tuple[int, ...], limits: Limits, *, what: str) -> tuple[int, int, int]:
    """Validate a ZYX shape against ``limits`` and return it as ints."""
    if len(shape) != 3:
        raise ValueError(f"{what}: expected a ZYX shape, got {shape!r}")
    zyx = tuple(int(s) for s in shape)
    if any(s <= 0 for s in zyx):
        raise ValueError(f"{what}: empty dimension in shape {zyx}")
    for axis, size in zip("zyx", zyx):
        if size > limits.max_dimension:
            raise ValueError(
                f"{what}: dimension {axis}={size} exceeds the limit of {limits.max_dimension}"
            )
    voxels = zyx[0] * zyx[1] * zyx[2]
    if voxels > limits.max_voxels:
        raise ValueError(
            f"{what}: shape {zyx} has {voxels} voxels, more than the limit of {limits.max_voxels}"
        )
    return zyx  # type: ignore[return-value]


def check_declared_size(
    shape: tuple[int, int, int],
    dtype: np.dtype,
    stored_bytes: int,
    limits: Limits,
    *,
    compressed: bool,
    what: str,
) -> None:
    """Refuse a source whose declared size does not fit the bytes that hold it.

    Parameters
    ----------
    shape, dtype
        Declared ZYX shape and voxel type.
    stored_bytes : int
        Bytes actually present on disk for the voxel data (file size, or sum of
        strip/chunk byte counts).
    compressed : bool
        ``False``: the data must be fully present (``stored_bytes >= declared``), a
        shorter file is truncated. ``True``: the declared/stored ratio must not exceed
        ``limits.max_compression_ratio``.
    """
    declared = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
    if not compressed:
        if stored_bytes < declared:
            raise ValueError(
                f"{what}: file is truncated: shape {shape} {np.dtype(dtype)} needs "
                f"{declared} bytes but only {stored_bytes} are present"
            )
        return
    ratio = declared / max(int(stored_bytes), 1)
    if ratio > limits.max_compression_ratio:
        raise ValueError(
            f"{what}: declares {declared} bytes of voxels in {stored_bytes} stored bytes "
            f"(ratio {ratio:.0f}, limit {limits.max_compression_ratio:.0f}); refusing a "
            "likely decompression bomb or sparse/missing data"
        )


def resolve_inside(root: Path, user_path: str) -> Path:
    """Resolve ``user_path`` against ``root`` and refuse anything that leaves it.

    Relative paths are taken relative to ``root``; absolute paths are accepted only if
    they lie inside ``root``. Symlinks are resolved (in ``root`` too) before the check,
    so a link pointing out of the root is refused. The path must exist.

    Parameters
    ----------
    root : Path
        The allowed data root (must exist).
    user_path : str
        Path as typed by a user or sent by a client.

    Returns
    -------
    Path
        The fully resolved path, guaranteed to be ``root`` or below it at call time.

    Raises
    ------
    ValueError
        Empty path, NUL byte, missing file, or a path outside ``root``.

    Examples
    --------
    >>> resolve_inside(Path("/data"), "../etc/passwd")  # doctest: +SKIP
    ValueError: path '../etc/passwd' is outside the data root
    """
    if not isinstance(user_path, str):
        raise TypeError(f"user_path must be str, got {type(user_path).__name__}")
    if not user_path.strip():
        raise ValueError("path is empty")
    if "\x00" in user_path:
        raise ValueError(f"path {user_path!r} contains a NUL byte")
    real_root = Path(root).resolve(strict=True)
    # No "~" expansion: user paths are relative to the root ("~bob" may name no user at all).
    candidate = Path(user_path)
    if not candidate.is_absolute():
        candidate = real_root / candidate
    try:
        resolved = candidate.resolve(strict=True)
    except (FileNotFoundError, NotADirectoryError):
        # Do not reveal whether an outside path exists: judge the lexical path first.
        lexical = Path(os.path.normpath(candidate))
        if not lexical.is_relative_to(real_root):
            raise ValueError(f"path {user_path!r} is outside the data root") from None
        raise ValueError(f"path {user_path!r} does not exist") from None
    except (OSError, RuntimeError) as exc:  # symlink loops, permission
        raise ValueError(f"path {user_path!r} cannot be resolved: {exc}") from None
    if not resolved.is_relative_to(real_root):
        raise ValueError(f"path {user_path!r} is outside the data root")
    return resolved


_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9._ ()+,=@-]")


def safe_filename(name: str, *, max_length: int = 200) -> str:
    """Return a harmless single-component file name for an uploaded file's name.

    Directory parts (``/`` and ``\\``), ``..``, control and unusual characters are
    removed; the extension is kept so format detection still works.

    Raises
    ------
    ValueError
        If nothing usable remains (e.g. ``".."`` or ``""``).

    Examples
    --------
    >>> safe_filename("../../etc/vol 1.tif")
    'vol 1.tif'
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be str, got {type(name).__name__}")
    base = re.split(r"[/\\]", name)[-1]
    base = unicodedata.normalize("NFKC", base)
    base = _UNSAFE_CHARS.sub("_", base).strip(" .")
    if len(base) > max_length:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: max_length - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else base[:max_length]
    if not base or set(base) <= {"_", "."}:
        raise ValueError(f"file name {name!r} has no usable characters")
    return base
