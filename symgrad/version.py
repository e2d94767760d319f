"""The one version string of symgrad (``pyproject.toml`` reads it; generated files carry it)."""
__version__ = "0.1.0"
