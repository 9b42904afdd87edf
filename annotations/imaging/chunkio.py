"""Small-region reads and writes of a label level, straight to its chunk files.

A brush stroke touches one or two chunks. Through zarr's array API a partial-chunk
write costs ~10 ms (the async bridge, then read, decode, merge, encode, write), while
the work itself is ~1.5 ms. For the format this project writes (local zarr v2, C order,
no filters, one numcodecs compressor; NGFF 0.4) :class:`DirectChunks` does that work
itself; anything else goes through zarr (:class:`ZarrRegions`). Both give the same
bytes to any zarr reader: a chunk file is replaced atomically (temporary file, then
rename) and a chunk that becomes all fill value is removed, as zarr does.

Decoded chunks are kept in a small per-process cache beside the compressed bytes they
came from. A read still reads the chunk file (~20 us) but decodes it (~0.3 ms) only when
its bytes differ from the cached ones, so a write by another process (a Celery worker)
is always seen. A stroke reads its region and then writes the same chunks, and the
pyramid update reads the level-0 chunks the stroke just wrote: each is a decode saved.

Writers must hold the layer's write lock (annotations/strokes.py); readers need none.
"""
from __future__ import annotations

import itertools
import json
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numcodecs
import numpy as np

Box = tuple[tuple[int, int], tuple[int, int], tuple[int, int]]
#: Work that writes part of an array when called; jobs of one call touch disjoint chunks.
WriteJob = Callable[[], None]


class ChunkCache:
    """Decoded chunks by path, each beside the compressed bytes it was decoded from.

    Bounded by ``budget`` bytes (least recently used go first); safe across threads. The
    arrays handed out are read-only: writers copy them.
    """

    def __init__(self, budget: int = 64 << 20) -> None:
        self.budget = budget
        self._items: OrderedDict[str, tuple[bytes, np.ndarray]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, path: str, raw: bytes) -> np.ndarray | None:
        """The decoded chunk of `path` if it was decoded from exactly `raw`."""
        with self._lock:
            item = self._items.get(path)
            if item is None or item[0] != raw:
                return None
            self._items.move_to_end(path)
            return item[1]

    def put(self, path: str, raw: bytes, chunk: np.ndarray) -> None:
        chunk.flags.writeable = False
        size = len(raw) + chunk.nbytes
        with self._lock:
            self._drop(path)
            if size > self.budget:
                return
            self._items[path] = (raw, chunk)
            self._bytes += size
            while self._bytes > self.budget:
                self._drop(next(iter(self._items)))

    def _drop(self, path: str) -> None:
        item = self._items.pop(path, None)
        if item is not None:
            self._bytes -= len(item[0]) + item[1].nbytes


chunk_cache = ChunkCache()


class RegionIO(Protocol):
    dtype: np.dtype
    shape: tuple[int, ...]

    def read(self, box: Box) -> np.ndarray: ...

    def write(self, box: Box, block: np.ndarray) -> None: ...

    def write_many(self, patches: Sequence[tuple[Box, np.ndarray]]) -> None: ...

    def whole_chunk_writes(self, box: Box, block: np.ndarray) -> list[WriteJob]: ...


def _check_chunk_aligned(box: Box, shape: Sequence[int], chunks: Sequence[int], block: np.ndarray) -> None:
    if block.shape != tuple(hi - lo for lo, hi in box):
        raise ValueError(f"block of shape {block.shape} does not fit box {box}")
    for (lo, hi), n, c in zip(box, shape, chunks):
        if not (0 <= lo < hi <= n and lo % c == 0 and (hi % c == 0 or hi == n)):
            raise ValueError(f"box {box} does not cover whole chunks {tuple(chunks)} of an array of shape {tuple(shape)}")


class ZarrRegions:
    """Region reads and writes through zarr's own API (any store, any format)."""

    def __init__(self, array: Any) -> None:
        self.array = array
        self.dtype = np.dtype(array.dtype)
        self.shape = tuple(array.shape)

    def read(self, box: Box) -> np.ndarray:
        return np.asarray(self.array[tuple(slice(lo, hi) for lo, hi in box)])

    def write(self, box: Box, block: np.ndarray) -> None:
        self.array[tuple(slice(lo, hi) for lo, hi in box)] = block

    def write_many(self, patches: Sequence[tuple[Box, np.ndarray]]) -> None:
        for box, block in patches:
            self.write(box, block)

    def whole_chunk_writes(self, box: Box, block: np.ndarray) -> list[WriteJob]:
        """One job writing the box through zarr (which spreads its chunks over its own threads)."""
        _check_chunk_aligned(box, self.shape, self.array.chunks, block)
        return [lambda: self.write(box, block)]


class DirectChunks:
    """Region reads and writes of a local zarr v2 array, one chunk file at a time."""

    def __init__(self, folder: Path, meta: dict[str, Any]) -> None:
        self.folder = folder
        self.shape = tuple(meta["shape"])
        self.chunks = tuple(meta["chunks"])
        self.dtype = np.dtype(meta["dtype"])
        self.fill = self.dtype.type(meta["fill_value"] or 0)
        self.separator = meta.get("dimension_separator") or "."
        self.codec = numcodecs.get_codec(dict(meta["compressor"]))

    @classmethod
    def open(cls, folder: Path) -> DirectChunks | None:
        """The array at `folder`, or None when its format is not the one handled here."""
        try:
            meta = json.loads((folder / ".zarray").read_text())
        except (OSError, ValueError):
            return None
        plain = (meta.get("zarr_format") == 2 and meta.get("order") == "C" and not meta.get("filters")
                 and meta.get("compressor") and len(meta.get("shape", ())) == 3
                 and np.dtype(meta.get("dtype", "O")).kind in "ui")
        return cls(folder, meta) if plain else None

    def _chunk_path(self, index: tuple[int, ...]) -> Path:
        return self.folder / self.separator.join(str(i) for i in index)

    def _cached(self, path: Path) -> np.ndarray:
        """The chunk at `path`, read-only; decoded only when its bytes are not the cached ones."""
        name = str(path)
        try:
            with open(name, "rb") as handle:
                raw = handle.read()
        except FileNotFoundError:
            return np.full(self.chunks, self.fill, self.dtype)
        chunk = chunk_cache.get(name, raw)
        if chunk is None:
            chunk = np.frombuffer(self.codec.decode(raw), self.dtype).reshape(self.chunks).copy()
            chunk_cache.put(name, raw, chunk)
        return chunk

    def _load(self, path: Path) -> np.ndarray:
        return self._cached(path).copy()

    def _store(self, path: Path, chunk: np.ndarray, *, cache: bool = True) -> None:
        if not chunk.any() and self.fill == 0:
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.partial")
        raw = bytes(self.codec.encode(np.ascontiguousarray(chunk)))
        tmp.write_bytes(raw)
        os.replace(tmp, path)
        if cache:
            chunk_cache.put(str(path), raw, chunk.copy())

    def _pieces(self, box: Box) -> Any:
        """(chunk index, slices in the chunk, slices in the box) of every chunk the box touches."""
        for (lo, hi), n in zip(box, self.shape):
            if not 0 <= lo <= hi <= n:
                raise IndexError(f"box {box} is outside the array of shape {self.shape}")
        ranges = [range(lo // c, (hi - 1) // c + 1) if hi > lo else range(0) for (lo, hi), c in zip(box, self.chunks)]
        for index in itertools.product(*ranges):
            inner, outer = [], []
            for i, (lo, hi), c in zip(index, box, self.chunks):
                a, b = max(lo, i * c), min(hi, (i + 1) * c)
                inner.append(slice(a - i * c, b - i * c))
                outer.append(slice(a - lo, b - lo))
            yield index, tuple(inner), tuple(outer)

    def read(self, box: Box) -> np.ndarray:
        out = np.empty(tuple(hi - lo for lo, hi in box), self.dtype)
        for index, inner, outer in self._pieces(box):
            out[outer] = self._cached(self._chunk_path(index))[inner]
        return out

    def write(self, box: Box, block: np.ndarray) -> None:
        self.write_many([(box, block)])

    def write_many(self, patches: Sequence[tuple[Box, np.ndarray]]) -> None:
        """Write blocks, later ones over earlier ones, each touched chunk file replaced once."""
        touched: dict[tuple[int, ...], list[tuple[tuple[slice, ...], np.ndarray]]] = {}
        for box, block in patches:
            if block.shape != tuple(hi - lo for lo, hi in box):
                raise ValueError(f"block of shape {block.shape} does not fit box {box}")
            for index, inner, outer in self._pieces(box):
                touched.setdefault(index, []).append((inner, block[outer]))
        for index, pieces in touched.items():
            path = self._chunk_path(index)
            chunk = self._load(path)
            for inner, piece in pieces:
                chunk[inner] = piece
            self._store(path, chunk)

    def whole_chunk_writes(self, box: Box, block: np.ndarray) -> list[WriteJob]:
        """One job per chunk of `box`, each encoding and writing its chunk whole, no read first.

        `box` lies on chunk boundaries (or ends at the array's end, where the chunk is padded
        with the fill value as zarr pads it). Jobs touch different files and release the GIL
        while they compress, so a thread pool runs them in parallel. A bulk write such as an
        import: the decoded-chunk cache is left alone.
        """
        _check_chunk_aligned(box, self.shape, self.chunks, block)
        return [self._whole_chunk_job(index, block[outer]) for index, _, outer in self._pieces(box)]

    def _whole_chunk_job(self, index: tuple[int, ...], piece: np.ndarray) -> WriteJob:
        def job() -> None:
            if piece.shape == self.chunks:
                chunk = np.ascontiguousarray(piece)
            else:
                chunk = np.full(self.chunks, self.fill, self.dtype)
                chunk[tuple(slice(0, n) for n in piece.shape)] = piece
            self._store(self._chunk_path(index), chunk, cache=False)
        return job


def region_io(array: Any) -> RegionIO:
    """The fastest region reader/writer for a zarr array: direct chunk files when possible."""
    root = getattr(getattr(array, "store", None), "root", None)
    if root is not None:
        direct = DirectChunks.open(Path(root) / array.path)
        if direct is not None and direct.shape == tuple(array.shape):
            return direct
    return ZarrRegions(array)


def stored_z_slices(array: Any) -> set[int] | None:
    """Z indices inside the chunks a local zarr v2 array holds on disk: a chunk never written
    reads as the fill value, so every other slice is fill alone. None when the array is not
    one :class:`DirectChunks` reads (then any slice may hold data)."""
    root = getattr(getattr(array, "store", None), "root", None)
    direct = DirectChunks.open(Path(root) / array.path) if root is not None else None
    if direct is None:
        return None
    depth = direct.chunks[0]
    if direct.separator == "/":
        names = [p.name for p in direct.folder.iterdir() if p.is_dir()]
    else:
        names = [p.name.split(".", 1)[0] for p in direct.folder.iterdir() if p.is_file() and p.name[0].isdigit()]
    out: set[int] = set()
    for name in set(names):
        if name.isdigit():
            start = int(name) * depth
            out.update(range(start, min(start + depth, direct.shape[0])))
    return out
