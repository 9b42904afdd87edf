"""Events other apps may react to, so annotations never imports them."""
from __future__ import annotations

from typing import Any

from django.dispatch import Signal

#: Sent with ``volume`` and ``user`` after a manager changed a volume's voxel size, so
#: whatever was measured in physical units (feature reports) is computed again.
volume_voxel_size_changed = Signal()

#: Sent with ``volume``, ``actor``, ``action``, ``layer`` and ``detail`` for each annotation
#: action the audit trail shows besides strokes (undo, redo, slice marks, label imports, voxel
#: size changes). The reviews app records them; annotations does not know who listens.
audit_event = Signal()


def audit(volume: Any, actor: Any, action: str, *, layer: str = "", detail: dict[str, Any] | None = None) -> None:
    """Announce one auditable action on `volume` (synchronously, inside the caller's transaction)."""
    audit_event.send(sender=type(volume), volume=volume, actor=actor, action=action, layer=layer,
                     detail=detail or {})
