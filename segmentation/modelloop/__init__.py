"""The model loop: a project's ML model versions trained on a volume's labels (retrain), applied to a
volume (segment, regions to label next), compared, activated, and moved between installs (transfer)."""
