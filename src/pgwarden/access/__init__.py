"""Every path to a privilege: who can read or write each object of the managed schemas, and how."""

from typing import TYPE_CHECKING, Any

from pgwarden.lazy import attribute

if TYPE_CHECKING:
    from pgwarden.access.facts import Facts, read_facts
    from pgwarden.access.model import Model
    from pgwarden.access.paths import Access, Hop, Path

__all__ = ["Access", "Facts", "Hop", "Model", "Path", "read_facts"]

#: name -> the submodule that defines it: imported on first use (PEP 562), so that loading a policy,
#: which checks its labels with pgwarden.access.labels, does not import the whole model
_WHERE = {"Access": "paths", "Facts": "facts", "Hop": "paths", "Model": "model", "Path": "paths", "read_facts": "facts"}


def __getattr__(name: str) -> Any:
    return attribute(__name__, _WHERE, name)
