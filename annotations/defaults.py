"""The paper's label classes and colours, given to every new project."""
from __future__ import annotations

from typing import NamedTuple


class ClassDefault(NamedTuple):
    name: str
    value: int
    color: str
    kind: str
    parent: str | None


# Fig 1 of the paper: nuclei yellow, nucleoli red, mitochondria pink, endosomes white,
# lysosomes black, cells in random colours; background is an explicit painted class.
PAPER_CLASSES: tuple[ClassDefault, ...] = (
    ClassDefault("background", 1, "#3d7fd9", "semantic", None),
    ClassDefault("nucleus", 2, "#ffd400", "semantic", "cell"),
    ClassDefault("nucleolus", 3, "#ff2020", "semantic", "nucleus"),
    ClassDefault("mitochondrion", 4, "#ff69c8", "semantic", "cell"),
    ClassDefault("endosome", 5, "#ffffff", "semantic", "cell"),
    ClassDefault("lysosome", 6, "#000000", "semantic", "cell"),
    ClassDefault("cell", 7, "#2bd9c0", "instance", None),
)



def hex_to_rgba(color: str, alpha: int = 255) -> tuple[int, int, int, int]:
    color = color.lstrip("#")
    if len(color) != 6:
        raise ValueError(f"colour {color!r} is not #rrggbb")
    return (int(color[0:2], 16), int(color[2:4], 16), int(color[4:6], 16), alpha)
