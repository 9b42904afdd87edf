"""Feature reports in the app: the report job, its files, meshes, label downloads and results pages.

The science is :mod:`segmentation.core.features` and :mod:`segmentation.core.meshes`;
this package runs it over a volume's stored layers (``services``), reads what it made
(``selectors``), streams label volumes (``exports``) and serves it (``api``, ``views``).
"""
