"""What a run did: one ScriptRun per script, and the RunResult of the whole."""
from dataclasses import dataclass, field
from typing import List, Optional

from .adopt import Adoption
from .steps import Step

__all__ = ['ScriptRun', 'RunResult']


@dataclass
class ScriptRun:
    name: str
    direction: str
    method: str  # ran | adopted | faked | reverted
    duration: float
    steps: List[Step] = field(default_factory=list)
    kept: List[str] = field(default_factory=list)  # tables already present, left as they were
    # What the run did beside the script's operations (an online script's switch to WAL).
    notes: List[str] = field(default_factory=list)

    def as_dict(self):
        return {'name': self.name, 'direction': self.direction, 'method': self.method,
                'duration': round(self.duration, 6), 'kept': list(self.kept),
                'steps': [s.as_dict() for s in self.steps], 'notes': list(self.notes)}


@dataclass
class RunResult:
    runs: List[ScriptRun]
    dry_run: bool = False
    adoption: Optional[Adoption] = None
    backup: Optional[str] = None  # the backup taken before the run (SQLite)
    losses: List[str] = field(default_factory=list)  # what a rollback destroys (allowed)
    # migrate --phase: the pending scripts left for the other phase, in order.
    held_back: List[str] = field(default_factory=list)

    @property
    def names(self):
        return [r.name for r in self.runs]

    def by_method(self, method):
        return [r.name for r in self.runs if r.method == method]
