"""The package version, in a module that imports nothing: the data plane and the server report
it without loading the SDK (``modelpilot/__init__.py``)."""

__version__ = "0.1.0"
