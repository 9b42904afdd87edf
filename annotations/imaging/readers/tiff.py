"""TIFF readers: multipage TIFF (OME, ImageJ) and folders of single-slice TIFFs."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from annotations.imaging.readers.base import (
    Source,
    VoxelSize,
    _plausible_voxel_size,
    _read_template,
    _unit_from_chunks,
    _zyx_from_axes,
    natural_sort_key,
    unit_to_nm,
)
from annotations.imaging.validation import Limits, check_declared_size, check_dtype, check_shape

_TIFF_SUFFIXES = (".tif", ".tiff")
#: Slice files a folder source keeps open between region reads (an import's slab is 16 deep).
OPEN_SLICES = 32
#: Threads that decode the tiles or strips of one region read (zlib and tifffile's codecs
#: release the GIL); 1 decodes them on the reading thread. One until two are measured faster on
#: free cores: on the loaded 2-core machine (load 4-7) two were neither faster nor costlier, import
#: over tifffile 0.25 against 0.24 and 6.6 s CPU per GiB for both (4 runs of
#: ``benchmarks/import_memory.py --sizes-gib 1 --big-page-gib 0 --decode-threads 1 2``, both orders),
#: and an import already reads beside its two writing threads.
DECODE_THREADS = 1

# --------------------------------------------------------------------------- TIFF


def _tiff_voxel_size(tif: Any, *, nz: int) -> tuple[VoxelSize | None, dict[str, Any]]:
    """Voxel size from OME or ImageJ metadata (nm, ZYX) and partial facts."""
    facts: dict[str, Any] = {}
    if tif.is_ome and tif.ome_metadata:
        try:
            root = ET.fromstring(tif.ome_metadata)
            pixels = next(el for el in root.iter() if el.tag.endswith("Pixels"))
            sizes = []
            for ax in "ZYX":
                value = pixels.get(f"PhysicalSize{ax}")
                factor = unit_to_nm(pixels.get(f"PhysicalSize{ax}Unit", "µm"))
                sizes.append(float(value) * factor if value is not None and factor else None)
            if sizes[1] and sizes[2]:
                facts["pixel_size_yx_nm"] = [sizes[1], sizes[2]]
                if sizes[0] is None and nz == 1:
                    sizes[0] = sizes[2]
                if sizes[0]:
                    return _plausible_voxel_size(sizes), facts
        except (ET.ParseError, StopIteration, ValueError, TypeError):
            facts["metadata_warning"] = "unreadable OME-XML"
    page = tif.pages.first
    ij = tif.imagej_metadata if tif.is_imagej else None
    if ij is not None:
        factor = unit_to_nm(ij.get("unit", "")) if ij.get("unit") else None
        xres = page.tags.get("XResolution")
        yres = page.tags.get("YResolution")
        if factor and xres is not None and yres is not None:
            try:
                px = factor * xres.value[1] / xres.value[0]
                py = factor * yres.value[1] / yres.value[0]
            except (ZeroDivisionError, TypeError, IndexError):
                return None, facts
            facts["pixel_size_yx_nm"] = [py, px]
            spacing = ij.get("spacing")
            pz = float(spacing) * factor if spacing else (px if nz == 1 else None)
            if pz:
                return _plausible_voxel_size((pz, py, px)), facts
    if tif.is_fei and tif.fei_metadata:
        scan = tif.fei_metadata.get("Scan", {})
        if "PixelWidth" in scan and "PixelHeight" in scan:
            facts["pixel_size_yx_nm"] = [float(scan["PixelHeight"]) * 1e9, float(scan["PixelWidth"]) * 1e9]
    if tif.is_sem and tif.sem_metadata and "ap_pixel_size" in tif.sem_metadata:
        entry = tif.sem_metadata["ap_pixel_size"]
        factor = unit_to_nm(entry[2]) if len(entry) > 2 else None
        if factor:
            facts["pixel_size_yx_nm"] = [float(entry[1]) * factor] * 2
    return None, facts


def _segment_array(tif: Any, series: int, dtype: np.dtype, limits: Limits, *, what: str) -> Any:
    """The series as a lazy zarr array whose chunks are the file's tiles or strips, so a
    region read decodes only the segments it touches; a segment larger than
    ``limits.max_chunk_bytes`` (a whole huge page stored as one strip) is refused."""
    import zarr

    arr = zarr.open_array(tif.aszarr(series=series, level=0), mode="r")
    segment = int(np.prod(arr.chunks, dtype=np.int64)) * dtype.itemsize
    if segment > limits.max_chunk_bytes:
        raise ValueError(
            f"{what}: one stored tile or strip decodes to {segment / 2**20:.0f} MiB, over the limit of "
            f"{limits.max_chunk_bytes / 2**20:.0f} MiB; save it tiled (e.g. 512 x 512 tiles) or with smaller strips"
        )
    return arr


#: Compressions whose segments need more than their own bytes (JPEG tables) are read through zarr.
_SELF_CONTAINED_EXCLUDED = {6, 7, 33007, 34892}


class _PageSegments:
    """Region reads straight from the tiles or strips of one-page-per-slice TIFFs.

    Each segment a region touches is read with ``os.pread`` (no shared file position, so
    any thread may read) and decoded by tifffile's own decoder for the page; the zarr view
    of the file does the same work at about 1.7 times the cost per region (its async
    bridge and indexing), which an import pays on every tile. With :data:`DECODE_THREADS`
    above 1 a region's segments are decoded on that many threads (as tifffile's own
    ``segments(maxworkers=)`` does), each into its own part of the region.
    """

    def __init__(self, tif: Any, pages: list[Any]) -> None:
        first = pages[0]
        self._fd = tif.filehandle.fileno()
        self._pages = pages
        self._decode = first.decode
        self._width = int(first.imagewidth)
        if first.is_tiled:
            self.segment_yx = (int(first.tilelength), int(first.tilewidth))
        else:
            self.segment_yx = (min(int(first.rowsperstrip) or int(first.imagelength), int(first.imagelength)), self._width)

    @classmethod
    def fits(cls, tif: Any, pages: list[Any]) -> bool:
        """Whether every page is one grey sample deep, decodable segment by segment, alike."""
        first = pages[0]
        try:
            tif.filehandle.fileno()
        except Exception:  # in-memory or wrapped files have no descriptor
            return False
        plain = (int(first.samplesperpixel) == 1 and int(first.imagedepth) == 1
                 and int(getattr(first, "tiledepth", 1) or 1) == 1
                 and int(first.compression) not in _SELF_CONTAINED_EXCLUDED)
        count = len(first.dataoffsets)
        return plain and all(len(p.dataoffsets) == count == len(p.databytecounts) for p in pages)

    def read(self, out: np.ndarray, z0: int, y0: int, y1: int, x0: int, x1: int) -> None:
        """Fill ``out`` (Z, Y, X) with the box starting at slice ``z0``."""
        sh, sw = self.segment_yx
        across = -(-self._width // sw)
        todo = [(k, ty, tx) for k in range(out.shape[0]) for ty in range(y0 // sh, (y1 - 1) // sh + 1)
                for tx in range(x0 // sw, (x1 - 1) // sw + 1)]

        def one(job: tuple[int, int, int]) -> None:
            k, ty, tx = job
            page = self._pages[z0 + k]
            i = ty * across + tx
            count = int(page.databytecounts[i])
            data = os.pread(self._fd, count, int(page.dataoffsets[i])) if count else None
            segment, (_, _, sy, sx, _), _ = self._decode(data, i)
            if segment is None:  # a segment never written reads as zeros
                out[k, max(y0, ty * sh) - y0 : min(y1, ty * sh + sh) - y0,
                    max(x0, tx * sw) - x0 : min(x1, tx * sw + sw) - x0] = 0
                return
            segment = segment[0, :, :, 0]
            a, b = max(y0, sy), min(y1, sy + segment.shape[0])
            c, d = max(x0, sx), min(x1, sx + segment.shape[1])
            out[k, a - y0 : b - y0, c - x0 : d - x0] = segment[a - sy : b - sy, c - sx : d - sx]

        if DECODE_THREADS < 2 or len(todo) < 2:
            for job in todo:
                one(job)
            return
        with ThreadPoolExecutor(DECODE_THREADS, thread_name_prefix="tiff-decode") as pool:
            for _ in pool.map(one, todo):  # segments fill disjoint parts of out; errors surface here
                pass


def _tiff_page_extent(page: Any) -> tuple[int, int, bool]:
    """(end offset of the page data, bytes stored, compressed?) for one TIFF page."""
    offsets = page.dataoffsets
    counts = page.databytecounts
    if not offsets or not counts:
        raise ValueError("page has no image data")
    end = max(int(o) + int(c) for o, c in zip(offsets, counts))
    return end, int(sum(int(c) for c in counts)), int(page.compression) != 1


class TiffSource(Source):
    """Multipage TIFF (also OME-TIFF and ImageJ hyperstacks); reads page by page."""

    format = "tiff"

    def __init__(self, path: Path, *, series: int = 0, limits: Limits = Limits()) -> None:
        import tifffile

        what = path.name
        file_size = path.stat().st_size
        try:
            tif = tifffile.TiffFile(path)
        except Exception as exc:  # tifffile raises many types for broken headers
            raise ValueError(f"{what}: not a readable TIFF file: {exc}") from exc
        self._tif = tif
        try:
            self._setup(tif, series=series, limits=limits, file_size=file_size, what=what)
        except Exception:
            tif.close()
            raise

    def _setup(self, tif: Any, *, series: int, limits: Limits, file_size: int, what: str) -> None:
        if not tif.series:
            raise ValueError(f"{what}: TIFF holds no image")
        if not 0 <= series < len(tif.series):
            raise ValueError(f"{what}: TIFF series {series} does not exist (it has {len(tif.series)})")
        s = tif.series[series]
        zyx, index, zpos = _zyx_from_axes(s.shape, s.axes, what=what)
        check_shape(zyx, limits, what=what)
        dtype = check_dtype(s.dtype, what=what, allowed=limits.dtypes)
        pages = list(s.pages)
        self._series = series
        self._index, self._zpos = index, zpos
        self._memmap: np.ndarray | None = None
        self._segments: Any = None
        self._direct: _PageSegments | None = None
        page_shape = tuple(int(v) for v in pages[0].shape) if pages and pages[0] is not None else ()
        squeezed = tuple(v for v in page_shape if v != 1)
        if s.dataoffset is not None:
            # Contiguous uncompressed data (any page size, ImageJ hyperstacks > 4 GB): memory map.
            declared = int(np.prod(s.shape, dtype=np.int64)) * dtype.itemsize
            check_declared_size(zyx, dtype, file_size - int(s.dataoffset), limits, compressed=False, what=what)
            file_dtype = np.dtype(s.dtype).newbyteorder(tif.byteorder)
            mm = np.memmap(tif.filehandle.path, dtype=file_dtype, mode="r", offset=int(s.dataoffset), shape=tuple(s.shape))
            assert mm.nbytes == declared
            self._memmap = mm
        elif len(pages) == zyx[0] and all(p is not None for p in pages) and squeezed == zyx[1:]:
            end = stored = 0
            compressed = False
            for p in pages:
                e, b, c = _tiff_page_extent(p)
                end, stored, compressed = max(end, e), stored + b, compressed or c
            if end > file_size:
                raise ValueError(
                    f"{what}: file is truncated: image data extends to byte {end} "
                    f"but the file has {file_size} bytes"
                )
            check_declared_size(zyx, dtype, stored, limits, compressed=compressed, what=what)
            self._segments = _segment_array(tif, series, dtype, limits, what=what)
            self.read_unit_yx = _unit_from_chunks(self._segments.chunks, index, zpos)
            if _PageSegments.fits(tif, pages):
                self._direct = _PageSegments(tif, pages)
        else:
            raise ValueError(
                f"{what}: unsupported TIFF layout (series {s.axes} {s.shape} stored in "
                f"{len(pages)} pages of shape {page_shape}); save it as one page per slice"
            )
        voxel_size, facts = _tiff_voxel_size(tif, nz=zyx[0])
        facts.update(axes=s.axes, pages=len(pages), compression=str(pages[0].compression.name) if pages else "")
        if len(tif.series) > 1:
            facts["series"] = {"imported": series, "count": len(tif.series),
                               "shapes": [[int(v) for v in t.shape] for t in tif.series]}
            facts["notice"] = (
                f"{what} holds {len(tif.series)} images; imported image {series} "
                f"({' x '.join(map(str, zyx))}); import another by choosing its number (0-{len(tif.series) - 1})"
            )
        super().__init__(Path(tif.filehandle.path), zyx, dtype, voxel_size, facts)

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        if self._direct is not None:
            out = np.empty((z1 - z0, y1 - y0, x1 - x0), self.dtype)
            self._direct.read(out, z0, y0, y1, x0, x1)
            return out
        arr = self._memmap if self._memmap is not None else self._segments
        return np.array(_read_template(arr, self._index, self._zpos, (z0, z1), (y0, y1), (x0, x1)))

    def close(self) -> None:
        self._memmap = None
        self._tif.close()
        super().close()


class TiffFolderSource(Source):
    """A folder of single-slice TIFF files, one per Z, in natural-sort order."""

    format = "tiff-folder"

    def __init__(self, path: Path, *, limits: Limits = Limits(), root: Path | None = None) -> None:
        import tifffile

        what = path.name
        files = sorted(
            (p for p in path.iterdir() if p.suffix.lower() in _TIFF_SUFFIXES and not p.name.startswith(".")),
            key=lambda p: natural_sort_key(p.name),
        )
        if not files:
            raise ValueError(f"{what}: folder holds no .tif/.tiff files")
        check_shape((len(files), 1, 1), limits, what=what)
        real_root = Path(root).resolve() if root is not None else None
        shape2d: tuple[int, int] | None = None
        dtype: np.dtype | None = None
        stored = 0
        compressed = False
        voxel_size: VoxelSize | None = None
        facts: dict[str, Any] = {}
        for i, f in enumerate(files):
            if real_root is not None and not f.resolve().is_relative_to(real_root):
                raise ValueError(f"{what}/{f.name} links outside the data root")
            try:
                with tifffile.TiffFile(f) as tif:
                    s = tif.series[0]
                    zyx, _, _ = _zyx_from_axes(s.shape, s.axes, what=f.name)
                    if zyx[0] != 1:
                        raise ValueError(f"{what}/{f.name}: holds {zyx[0]} slices; expected one per file")
                    dt = check_dtype(s.dtype, what=f.name, allowed=limits.dtypes)
                    for p in s.pages:
                        e, b, c = _tiff_page_extent(p)
                        if e > f.stat().st_size:
                            raise ValueError(f"{what}/{f.name}: file is truncated")
                        stored += b
                        compressed = compressed or c
                    if i == 0:
                        shape2d, dtype = zyx[1:], dt
                        voxel_size, facts = _tiff_voxel_size(tif, nz=1)
                    if i == 0:
                        with TiffSource(f, limits=limits) as first:
                            self.read_unit_yx = first.read_unit_yx
            except ValueError:
                raise
            except Exception as exc:
                raise ValueError(f"{what}/{f.name}: not a readable TIFF file: {exc}") from exc
            if zyx[1:] != shape2d or dt != dtype:
                raise ValueError(
                    f"{what}/{f.name}: slice is {zyx[1]}x{zyx[2]} {dt}, but the first slice "
                    f"{files[0].name} is {shape2d[0]}x{shape2d[1]} {dtype}"  # type: ignore[index]
                )
        assert shape2d is not None and dtype is not None
        zyx = check_shape((len(files), *shape2d), limits, what=what)
        check_declared_size(zyx, dtype, stored, limits, compressed=compressed, what=what)
        if voxel_size is not None and len(files) > 1:
            # A slice's own metadata cannot know the spacing between slices.
            facts["pixel_size_yx_nm"] = list(voxel_size[1:])
            voxel_size = None
        facts["files"] = len(files)
        self._files = files
        self._limits = limits
        self._open: dict[int, TiffSource] = {}
        super().__init__(path, zyx, dtype, voxel_size, facts)

    def _slice(self, z: int) -> TiffSource:
        """Slice ``z``'s file, opened once while regions of its slab are read: the last
        :data:`OPEN_SLICES` stay open, the oldest is closed first."""
        one = self._open.pop(z, None)
        if one is None:
            one = TiffSource(self._files[z], limits=self._limits)
            if one.shape != (1, *self.shape[1:]):
                one.close()
                raise ValueError(f"{self._files[z].name} changed shape to {one.shape}")
            while len(self._open) >= OPEN_SLICES:
                self._open.pop(next(iter(self._open))).close()
        self._open[z] = one  # most recently used last
        return one

    def _read_region(self, z0: int, z1: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        out = np.empty((z1 - z0, y1 - y0, x1 - x0), dtype=self.dtype)
        for k, z in enumerate(range(z0, z1)):
            out[k] = self._slice(z).read_region(0, 1, y0, y1, x0, x1)[0]
        return out

    def close(self) -> None:
        for one in self._open.values():
            one.close()
        self._open.clear()
        super().close()


