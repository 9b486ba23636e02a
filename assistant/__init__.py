"""CareLine: a hospital booking assistant bound to real identities.

This module holds the version only; importing the package has no side effects.
"""

__version__ = "0.1.0"
