"""How a parallel run hands out test modules: as pytest-xdist's ``loadscope`` does (a module
at a time, so a module's fixtures start once), with one change for the longest test.

The suite sorts the tests marked ``longest`` first (conftest.py), so the first module handed
out holds the 100k-event fault run, minutes long. xdist gives every worker two modules to
begin with; whatever followed the fault run on its worker would wait minutes behind it and
end the run late. Here that worker's second module is the last one collected instead (a
unit module of seconds), and the others keep xdist's order. Registered by conftest.py on
the controller when the run is distributed by module.
"""

from __future__ import annotations

from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController


class LongestAlone(LoadScopeScheduling):  # type: ignore[misc]
    def __init__(self, config: pytest.Config, log: Any = None) -> None:
        super().__init__(config, log)
        self._longest_on: WorkerController | None = None
        self._short_given = False

    def _assign_work_unit(self, node: WorkerController) -> None:
        if self._longest_on is None:
            self._longest_on = node  # the first module: the longest test's
        elif node is self._longest_on and not self._short_given:
            self._short_given = True
            last = next(reversed(self.workqueue))
            self.workqueue.move_to_end(last, last=False)  # handed out next, to this worker
        super()._assign_work_unit(node)


@pytest.hookimpl
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    if config.getoption("dist") != "loadscope":
        return None
    return LongestAlone(config, log)
