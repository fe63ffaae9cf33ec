"""deploy/: the Grafana dashboard and the Prometheus config refer to metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from livestream_compliance_server.metrics import Metrics
from prometheus_client import CollectorRegistry

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def exposed_names() -> set[str]:
    names = set()
    for family in Metrics(CollectorRegistry()).registry.collect():
        names.add(family.name)
        if family.type == "counter":
            names.add(family.name + "_total")
        elif family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_count", "_sum"))
    return names


def test_dashboard_queries_use_existing_metrics() -> None:
    dash = json.loads((DEPLOY / "grafana-dashboard.json").read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in dash["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dash["annotations"]["list"]]
    assert len(exprs) >= 15
    names = exposed_names()
    used = {m for e in exprs for m in re.findall(r"\bcompliance_[a-z_]+", e)}
    assert used - names == set()
    # every metric of the server is on the dashboard somewhere
    families = {n for n in names if not n.endswith(("_bucket", "_count", "_sum", "_total"))}
    on_dashboard = {n.removesuffix("_total").removesuffix("_bucket") for n in used}
    assert families - on_dashboard == set()
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))


def test_prometheus_config_scrapes_the_sidecar() -> None:
    text = (DEPLOY / "prometheus.yml").read_text(encoding="utf-8")
    lines = [line.strip() for line in text.splitlines() if not line.lstrip().startswith("#")]
    assert "- job_name: livestream-compliance" in lines
    assert "metrics_path: /metrics" in lines
    assert '- targets: ["127.0.0.1:8765"]' in lines
