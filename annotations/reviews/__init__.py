"""Team review of label layers: assignments, per-slice/per-cell decisions, pinned comments,
layer diffs, the audit trail and in-app notifications."""
