"""Events other apps may react to, so annotations never imports them."""
from __future__ import annotations

from django.dispatch import Signal

#: Sent with ``volume`` and ``user`` after a manager changed a volume's voxel size, so
#: whatever was measured in physical units (feature reports) is computed again.
volume_voxel_size_changed = Signal()
