"""pgwarden: a least-privilege split between the owner that runs migrations and the access roles."""

__version__ = "0.1.0"
