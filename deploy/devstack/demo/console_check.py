"""The demo's last step: the IG console answers. The starter IG officer signs in through
the embedded identity provider's login form and opens the disclosure report of the child on
a protection plan; the demo prints how many decisions it lists, where the console is, and
the login to try it with."""

from __future__ import annotations

import re
from dataclasses import dataclass

import httpx

from deploy.devstack.demo import scenario
from deploy.devstack.identity.console_login import sign_in
from deploy.devstack.stack import Stack

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_COUNT = re.compile(r"<h2>(\d+) decisions?</h2>")


@dataclass(frozen=True)
class ConsoleSeen:
    url: str
    user: str
    password: str
    decisions: int  # in the console's report of the child on a plan


def check_console(stack: Stack) -> ConsoleSeen:
    url, user, password = stack.console_login()
    with httpx.Client(base_url=stack.url("audit"), timeout=30) as http:
        landed = sign_in(http, stack.config.state_dir / "identity", user)
        if landed.status_code != 303:
            raise RuntimeError(f"the IG console did not sign {user} in ({landed.status_code})")
        csrf = _CSRF.search(http.get("/console/search").text)
        if csrf is None:
            raise RuntimeError("the IG console's search page has no form")
        child = {"kind": "nhs_number", "identifier": scenario.ON_PLAN.nhs_number}
        report = http.post("/console/report", data={"csrf": csrf.group(1), **child})
        counted = _COUNT.search(report.text)
        if report.status_code != 200 or counted is None:
            raise RuntimeError(f"the IG console's report did not open ({report.status_code})")
    return ConsoleSeen(url, user, password, int(counted.group(1)))
