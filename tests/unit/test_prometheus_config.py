"""The Prometheus config infoshare writes for the stack it runs: every job scraped, and with
INFOSHARE_METRICS_TOKEN set, every scrape carrying it from a file only the owner reads."""

from __future__ import annotations

from pathlib import Path

import yaml

from deploy.devstack.observe.prometheus import PrometheusServer, render_config


def test_each_job_is_scraped_with_the_token_file_when_there_is_one(tmp_path: Path) -> None:
    plain = yaml.safe_load(render_config({"infoshare-audit": ["127.0.0.1:8120"]}))
    assert plain["scrape_configs"] == [
        {"job_name": "infoshare-audit", "static_configs": [{"targets": ["127.0.0.1:8120"]}]}
    ]
    token = tmp_path / "scrape.token"
    guarded = yaml.safe_load(render_config({"a": ["h:1"], "b": ["h:2"]}, token_file=token))
    assert [job["authorization"] for job in guarded["scrape_configs"]] == [
        {"credentials_file": str(token)}
    ] * 2


def test_the_token_is_never_written_into_the_config(tmp_path: Path) -> None:
    server = PrometheusServer(state_dir=tmp_path, port=1, scrape={"a": ["h:1"]}, token="s3cret")
    assert "s3cret" not in server.config
    assert "scrape.token" in server.config
