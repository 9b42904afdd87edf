"""Label classes, their hierarchy, and what a painted voxel means for every network head.

The ResUNet has one sigmoid output ("head") per non-background class, so nested classes
can coexist: a voxel can be cell interior, nucleus and nucleolus at once. A sparse label
volume, however, holds one value per voxel. :class:`ClassSpec` turns that one value into
a target and a weight for every head.

Rules for a voxel whose label value belongs to class ``c`` (see :meth:`ClassSpec.targets`):

* ``0``: unlabeled. Weight 0 for every head (no loss, no gradient).
* background: negative (target 0, weight 1) for every head.
* head ``h == c``: positive.
* ``h`` an ancestor of ``c`` (painting nucleolus inside nucleus inside cell): positive for
  ``h``, because the parts lie inside the whole.
* ``h`` a descendant of ``c`` (painting nucleus, head nucleolus): negative by default.
  The label layer holds the *most specific* class of a voxel, so an annotator paints
  nucleolus over nucleus where it is one; what is left as nucleus is not nucleolus.
  Without these negatives the nucleolus head would only ever see negatives outside the
  nucleus and would learn "nucleolus = nucleus". With ``descendants="ignore"`` they are
  left out instead (for label layers where a parent was painted in bulk and children
  were not painted on that slice).
* ``h`` unrelated to ``c`` (painting mitochondrion, head nucleus): negative, since
  classes that are not nested are taken to be exclusive.

Slices marked complete: their unpainted (0) voxels count as background.

Turning probabilities back into one label value per voxel (:meth:`ClassSpec.compose`)
follows the same convention: a head counts only where it and all its ancestors exceed
0.5 (so nucleolus is kept inside nucleus), and the voxel takes the deepest such class,
ties between unrelated classes going to the higher probability.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

__all__ = ["ClassSpec", "parse_classes", "default_parents", "BACKGROUND"]

BACKGROUND = "background"

# Nesting of the paper's classes; applied only to classes present in a spec.
_PAPER_PARENTS: dict[str, str] = {
    "nucleolus": "nucleus",
    "nucleus": "cell",
    "mitochondrion": "cell",
    "endosome": "cell",
    "lysosome": "cell",
}


def parse_classes(text: str) -> dict[str, int]:
    """Parse ``"background=1,mitochondrion=2"`` into ``{"background": 1, "mitochondrion": 2}``.

    Raises
    ------
    ValueError
        On a malformed item, a duplicate name or value, or a value that is not a positive
        integer (0 is reserved for unlabeled voxels).
    """
    out: dict[str, int] = {}
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise ValueError(f"class item {item!r} is not NAME=VALUE")
        try:
            v = int(value)
        except ValueError:
            raise ValueError(f"class value {value!r} of {name!r} is not an integer") from None
        if name in out:
            raise ValueError(f"class name {name!r} given twice")
        out[name] = v
    if not out:
        raise ValueError(f"no classes in {text!r}")
    _check_values(out)
    return out


def _check_values(values: Mapping[str, int]) -> None:
    seen: dict[int, str] = {}
    for name, v in values.items():
        if not isinstance(v, (int, np.integer)) or v <= 0 or v > 65535:
            raise ValueError(f"class {name!r} has value {v!r}; values are integers 1..65535 (0 = unlabeled)")
        if int(v) in seen:
            raise ValueError(f"classes {seen[int(v)]!r} and {name!r} share value {v}")
        seen[int(v)] = name


def default_parents(names: list[str] | tuple[str, ...]) -> dict[str, str | None]:
    """Paper defaults: nucleolus in nucleus in cell; organelles in cell, when present.

    >>> default_parents(["nucleus", "nucleolus", "mitochondrion"])
    {'nucleus': None, 'nucleolus': 'nucleus', 'mitochondrion': None}
    """
    present = set(names)
    out: dict[str, str | None] = {}
    for name in names:
        parent = _PAPER_PARENTS.get(name)
        out[name] = parent if parent in present else None
    return out


@dataclass(frozen=True)
class ClassSpec:
    """Named label classes with values and a parent hierarchy.

    Parameters
    ----------
    values : dict of str to int
        Class name -> label value (1..65535; 0 is unlabeled). A class named
        ``"background"`` is the explicit background; it gets no head.
    parents : dict of str to str or None
        Child -> parent for non-background classes. Missing names have no parent.
    descendants : {"negative", "ignore"}
        What painting a class means for the heads of its descendants (module docstring).

    Examples
    --------
    >>> spec = ClassSpec.build({"background": 1, "nucleus": 2, "nucleolus": 3})
    >>> spec.heads
    ('nucleus', 'nucleolus')
    >>> spec.ancestors("nucleolus")
    ('nucleus',)
    """

    values: dict[str, int]
    parents: dict[str, str | None] = field(default_factory=dict)
    descendants: Literal["negative", "ignore"] = "negative"

    def __post_init__(self) -> None:
        _check_values(self.values)
        if self.descendants not in ("negative", "ignore"):
            raise ValueError(f"descendants must be 'negative' or 'ignore', got {self.descendants!r}")
        for child, parent in self.parents.items():
            if child not in self.values:
                raise ValueError(f"hierarchy names unknown class {child!r}")
            if parent is None:
                continue
            if parent not in self.values:
                raise ValueError(f"parent {parent!r} of {child!r} is not a class")
            if BACKGROUND in (child, parent):
                raise ValueError("background cannot take part in the hierarchy")
        for name in self.values:  # cycles
            seen = {name}
            p = self.parents.get(name)
            while p is not None:
                if p in seen:
                    raise ValueError(f"class hierarchy has a cycle through {p!r}")
                seen.add(p)
                p = self.parents.get(p)
        if not self.heads:
            raise ValueError(f"classes {sorted(self.values)} hold no class besides background")

    @classmethod
    def build(
        cls,
        values: Mapping[str, int],
        hierarchy: Mapping[str, str | None] | None = None,
        *,
        descendants: Literal["negative", "ignore"] = "negative",
    ) -> ClassSpec:
        """Spec from values and an optional hierarchy (paper defaults when None)."""
        values = {str(k): int(v) for k, v in values.items()}
        names = [n for n in values if n != BACKGROUND]
        parents = default_parents(names) if hierarchy is None else {n: hierarchy.get(n) for n in names}
        return cls(values=values, parents=parents, descendants=descendants)

    # ---------------------------------------------------------------- structure
    @property
    def background(self) -> int | None:
        """Label value of the background class, or None when there is none."""
        return self.values.get(BACKGROUND)

    @property
    def heads(self) -> tuple[str, ...]:
        """Non-background class names in head (output channel) order: by label value."""
        return tuple(sorted((n for n in self.values if n != BACKGROUND), key=lambda n: self.values[n]))

    def ancestors(self, name: str) -> tuple[str, ...]:
        """Parent, grandparent, ... of ``name``."""
        out: list[str] = []
        p = self.parents.get(name)
        while p is not None:
            out.append(p)
            p = self.parents.get(p)
        return tuple(out)

    def depth(self, name: str) -> int:
        return len(self.ancestors(name))

    def is_descendant(self, name: str, of: str) -> bool:
        return of in self.ancestors(name)

    # ---------------------------------------------------------------- targets
    def lookup_tables(self) -> tuple[np.ndarray, np.ndarray]:
        """Per label value, the target and the weight of every head.

        Returns
        -------
        target, weight : ndarray, shape (max_value + 1, n_heads), float32
            Row ``v`` says what label value ``v`` means for each head. Row 0 (unlabeled)
            and rows of values that name no class have weight 0.
        """
        heads = self.heads
        n = max(self.values.values()) + 1
        target = np.zeros((n, len(heads)), np.float32)
        weight = np.zeros((n, len(heads)), np.float32)
        for name, v in self.values.items():
            for j, h in enumerate(heads):
                if name == BACKGROUND:
                    target[v, j], weight[v, j] = 0.0, 1.0
                elif h == name or self.is_descendant(name, of=h):
                    target[v, j], weight[v, j] = 1.0, 1.0
                elif self.is_descendant(h, of=name):
                    target[v, j], weight[v, j] = 0.0, float(self.descendants == "negative")
                else:
                    target[v, j], weight[v, j] = 0.0, 1.0
        return target, weight

    def check_labels(self, labels: np.ndarray) -> None:
        """Raise ValueError when ``labels`` holds values that are neither 0 nor a class."""
        labels = np.asarray(labels)
        if labels.dtype.kind == "u" and labels.dtype.itemsize <= 2 and labels.size:
            present = np.flatnonzero(np.bincount(labels.ravel()))  # linear, not a sort
        else:
            present = np.unique(labels)
        unknown = sorted(set(present.tolist()) - set(self.values.values()) - {0})
        if unknown:
            raise ValueError(
                f"labels hold values {unknown[:10]} that name no class; classes are {self.values}"
            )

    def targets(self, labels: np.ndarray, *, complete: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Per-head targets and weights for a label array.

        Parameters
        ----------
        labels : ndarray, integer, any shape S
            Label values; 0 = unlabeled.
        complete : ndarray of bool, broadcastable to S, optional
            Where True, unlabeled voxels count as background (slices marked complete).

        Returns
        -------
        target, weight : ndarray, shape (n_heads, *S), float32
        """
        labels = np.asarray(labels)
        if labels.dtype.kind not in "iu":
            raise TypeError(f"labels must be integers, got dtype {labels.dtype}")
        t_lut, w_lut = self.lookup_tables()
        lab = labels.astype(np.int64)
        lab = np.where((lab >= 0) & (lab < t_lut.shape[0]), lab, 0)
        target = np.moveaxis(t_lut[lab], -1, 0)
        weight = np.moveaxis(w_lut[lab], -1, 0)
        if complete is not None:
            fill = np.broadcast_to(np.asarray(complete, bool), labels.shape) & (labels == 0)
            weight = np.where(fill[None], 1.0, weight).astype(np.float32)
            target = np.where(fill[None], 0.0, target).astype(np.float32)
        return target, weight

    # ---------------------------------------------------------------- compose
    def head_masks(self, probs: np.ndarray, *, threshold: float | Mapping[str, float] = 0.5) -> np.ndarray:
        """Boolean mask per head, each kept inside its ancestors' masks.

        probs : ndarray, shape (n_heads, *S), float in [0, 1]. Returns bool, same shape.
        threshold : one for all heads, or head -> threshold (0.5 for heads not named).
        """
        heads = self.heads
        if probs.shape[0] != len(heads):
            raise ValueError(f"probs has {probs.shape[0]} channels, spec has {len(heads)} heads {heads}")
        if isinstance(threshold, Mapping):
            per_head = np.array([float(threshold.get(h, 0.5)) for h in heads], np.float32)
            threshold = per_head.reshape(-1, *([1] * (np.ndim(probs) - 1)))  # type: ignore[assignment]
        masks = np.asarray(probs) > threshold
        return self.nest(masks)

    def nest(self, masks: np.ndarray) -> np.ndarray:
        """Return a copy of per-head masks with every child cut to its parent's mask."""
        heads = self.heads
        out = np.array(masks, dtype=bool, copy=True)
        index = {h: j for j, h in enumerate(heads)}
        for h in sorted(heads, key=self.depth):  # parents before children
            p = self.parents.get(h)
            if p is not None and p in index:
                out[index[h]] &= out[index[p]]
        return out

    def compose(self, probs: np.ndarray, masks: np.ndarray | None = None, *, dtype: Any = None) -> np.ndarray:
        """One label value per voxel from per-head probabilities.

        Parameters
        ----------
        probs : ndarray, shape (n_heads, *S), float
        masks : ndarray of bool, shape (n_heads, *S), optional
            Per-head masks after post-processing; ``head_masks(probs)`` when None.

        Returns
        -------
        ndarray, shape S
            The deepest class whose mask holds (ties by probability), else the background
            value (0 when the spec has no background class). uint8 when values fit, else uint16.
        """
        probs = np.asarray(probs, np.float32)
        if masks is None:
            masks = self.head_masks(probs)
        heads = self.heads
        depth = np.array([self.depth(h) for h in heads], np.float32).reshape((-1,) + (1,) * (probs.ndim - 1))
        key = np.where(masks, 2.0 * depth + np.clip(probs, 0.0, 1.0), -1.0)
        best = np.argmax(key, axis=0)
        any_ = np.take_along_axis(key, best[None], 0)[0] >= 0
        lut = np.array([self.values[h] for h in heads], np.int64)
        if dtype is None:
            dtype = np.uint8 if max(self.values.values()) < 256 else np.uint16
        bg = self.background or 0
        return np.where(any_, lut[best], bg).astype(dtype)

    # ---------------------------------------------------------------- io
    def to_dict(self) -> dict[str, Any]:
        return {"values": dict(self.values), "parents": dict(self.parents), "descendants": self.descendants}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClassSpec:
        return cls(
            values={str(k): int(v) for k, v in data["values"].items()},
            parents={str(k): (None if v is None else str(v)) for k, v in data.get("parents", {}).items()},
            descendants=data.get("descendants", "negative"),
        )
