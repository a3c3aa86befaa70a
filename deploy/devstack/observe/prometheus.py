"""Debian's Prometheus run by us on loopback: a config of our own (scrape jobs as lists of
``host:port`` targets, optional rule files), storage in a temporary directory deleted on
stop, and PromQL queries through its HTTP API."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from deploy.devstack.observe.errors import ObserveError
from deploy.devstack.observe.install import ensure_prometheus
from deploy.devstack.observe.process import LocalServer, ServerProcess
from services.backbone.keyring import write_private


@dataclass(frozen=True)
class Sample:
    """One element of an instant query's result: its labels and value."""

    labels: dict[str, str]
    value: float


def render_config(
    scrape: Mapping[str, Sequence[str]],
    *,
    scrape_interval: str = "1s",
    rule_files: Sequence[Path] = (),
    token_file: Path | None = None,
) -> str:
    """prometheus.yml scraping each job's ``host:port`` targets at GET /metrics (with the
    bearer token in ``token_file`` when the services ask for one)."""
    config: dict[str, Any] = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": job,
                "static_configs": [{"targets": list(targets)}],
                **({"authorization": {"credentials_file": str(token_file)}} if token_file else {}),
            }
            for job, targets in scrape.items()
        ],
    }
    if rule_files:
        config["rule_files"] = [str(p) for p in rule_files]
    return yaml.safe_dump(config, sort_keys=False)


class PrometheusServer(LocalServer):
    """Prometheus on ``127.0.0.1:port``; its config and log in ``state_dir``."""

    def __init__(
        self,
        *,
        state_dir: Path,
        port: int,
        scrape: Mapping[str, Sequence[str]],
        scrape_interval: str = "1s",
        rule_files: Sequence[Path] = (),
        token: str | None = None,
    ) -> None:
        self.state_dir = state_dir
        self.port = port
        self.token = token
        token_file = state_dir / "scrape.token" if token else None
        self.config = render_config(
            scrape, scrape_interval=scrape_interval, rule_files=rule_files, token_file=token_file
        )
        self._process: ServerProcess | None = None
        self._storage: Path | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.state_dir / "prometheus.log"

    def start(self, *, timeout: float = 60.0) -> PrometheusServer:
        """Install Prometheus if need be (and we may), start it, return once it is ready."""
        if self._process is None:
            binary = ensure_prometheus().prometheus
            self.state_dir.mkdir(parents=True, exist_ok=True)
            config = self.state_dir / "prometheus.yml"
            config.write_text(self.config, encoding="utf-8")
            if self.token:  # INFOSHARE_METRICS_TOKEN: readable by us alone
                write_private(self.state_dir / "scrape.token", self.token)
            self._storage = Path(tempfile.mkdtemp(prefix="tsdb-", dir=self.state_dir))
            self._process = ServerProcess(
                name="Prometheus",
                argv=[
                    str(binary),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self._storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                port=self.port,
                ready_path="/-/ready",
                log=self.log,
            )
        try:
            self._process.start(timeout=timeout)
        except ObserveError:
            self.stop()
            raise
        return self

    def stop(self) -> bool:
        """Stop the server and delete its storage; False if it was not running."""
        stopped = self._process is not None and self._process.stop()
        self._process = None
        if self._storage is not None:
            shutil.rmtree(self._storage, ignore_errors=True)
            self._storage = None
        return stopped

    def _api(self, path: str, params: Mapping[str, str | list[str]]) -> Any:
        try:
            response = httpx.get(f"{self.base_url}/api/v1/{path}", params=params, timeout=10.0)
            body = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise ObserveError(f"Prometheus at {self.base_url} did not answer: {exc}") from None
        if body.get("status") != "success":
            raise ObserveError(f"Prometheus refused the {path}: {body.get('error', body)}")
        return body["data"]

    def query(self, promql: str) -> list[Sample]:
        """The instant query's result now: one sample per series (one, unlabelled, for a
        scalar)."""
        data = self._api("query", {"query": promql})
        kind = data["resultType"]
        if kind == "scalar":
            return [Sample({}, float(data["result"][1]))]
        if kind != "vector":
            raise ObserveError(f"{promql!r} gives a {kind}, not an instant vector")
        return [Sample(dict(r["metric"]), float(r["value"][1])) for r in data["result"]]

    def series(self, *match: str) -> list[dict[str, str]]:
        """The label sets of every series the selectors match (GET /api/v1/series)."""
        found: list[dict[str, str]] = self._api("series", {"match[]": list(match)})
        return found
