"""The package version, in the bottom layer so any layer can name it without importing the root facade.

    >>> __version__
    '0.1.0'
"""

__version__ = "0.1.0"
