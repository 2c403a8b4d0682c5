"""`run_probe(session, ...) -> ProbeResult`: act as each policy role, try what it must and must not do, roll back.

Library use (the demo calls it):

    with Session.open(dsn, policy) as session:
        result = run_probe(session, login=False, passwords=None, max_objects=200)
    result.ok, result.failures, result.matrix(), result.to_json()   # rendering: pgwarden.render.probe

Every attempt runs under a SAVEPOINT inside one transaction per role that is always rolled back.
"Denied" means SQLSTATE 42501 (insufficient privilege, which includes "must be owner"); any other
error is a failure of the probe. What is tried, on which objects, is the table in
`pgwarden.probe.actions`; who must be allowed is `Rights` (pgwarden.probe.rights), from the
policy's grants through `pgwarden.scopes.Scopes`; `subjects(policy)` lists who is acted as.
"""

from typing import TYPE_CHECKING, Any

from pgwarden.lazy import attribute

if TYPE_CHECKING:
    from pgwarden.probe.actions import ACTIONS, TABLE, Action, expected
    from pgwarden.probe.model import Attempt, Cell, Level, Outcome, ProbeResult
    from pgwarden.probe.rights import Rights
    from pgwarden.probe.run import Subject, policy_roles, run_probe, subjects
    from pgwarden.probe.targets import DEFAULT_MAX_OBJECTS, Target, Targets, read_targets

__all__ = [
    "ACTIONS",
    "DEFAULT_MAX_OBJECTS",
    "TABLE",
    "Action",
    "Attempt",
    "Cell",
    "Level",
    "Outcome",
    "ProbeResult",
    "Rights",
    "Subject",
    "Target",
    "Targets",
    "expected",
    "policy_roles",
    "read_targets",
    "run_probe",
    "subjects",
]

#: name -> the submodule that defines it: imported on first use (PEP 562), so that a command pays only
#: for the probe modules it uses (`check` reads the rights without importing the prober)
_WHERE = {
    "ACTIONS": "actions",
    "Action": "actions",
    "Attempt": "model",
    "Cell": "model",
    "DEFAULT_MAX_OBJECTS": "targets",
    "Level": "model",
    "Outcome": "model",
    "ProbeResult": "model",
    "Rights": "rights",
    "Subject": "run",
    "TABLE": "actions",
    "Target": "targets",
    "Targets": "targets",
    "expected": "actions",
    "policy_roles": "run",
    "read_targets": "targets",
    "run_probe": "run",
    "subjects": "run",
}


def __getattr__(name: str) -> Any:
    return attribute(__name__, _WHERE, name)
