"""Every path to a privilege: who can read or write each object of the managed schemas, and how."""

from pgwarden.access.facts import Facts, read_facts
from pgwarden.access.model import Model
from pgwarden.access.paths import Access, Hop, Path

__all__ = ["Access", "Facts", "Hop", "Model", "Path", "read_facts"]
