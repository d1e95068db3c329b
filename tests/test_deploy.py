"""The deployment recipes under deploy/ are checked, not just written.

Each recipe is linted or validated by the tool its platform uses where that tool installs with
pip or apt (hadolint, kubernetes-validate, systemd-analyze, node), its promises are checked
against the settings (stop timeouts above the drain, replicas, probes), and the systemd unit's
command line is run for real: two worker processes, SIGTERM to the whole process group, no job
lost and none run twice. Building the image needs a Docker daemon; without one the test says so.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from gabay.settings import Settings
from tests.support import memory_actors
from tests.support.polling import wait_for
from tests.support.processes import ROOT, LoggedProcess

DEPLOY = ROOT / "deploy"
BIN = Path(sys.executable).parent
KUBERNETES_VERSION = "1.30.0"
DEFAULT_DRAIN_TIMEOUT = Settings.model_fields["drain_timeout"].default


def _tool(name: str) -> str:
    path = shutil.which(name) or (str(BIN / name) if (BIN / name).exists() else None)
    if path is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' or apt-get install)")
    return path


def _unit(name: str) -> dict[str, list[str]]:
    """A systemd unit's [Service] settings, each key with all its values."""
    values: dict[str, list[str]] = {}
    section = ""
    for line in (DEPLOY / "systemd" / name).read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            values.setdefault(key, []).append(value)
    return values


# -- container image -------------------------------------------------------------------------------

def test_dockerfile_passes_hadolint() -> None:
    result = subprocess.run([_tool("hadolint"), str(DEPLOY / "docker" / "Dockerfile")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_final_stage_is_slim_non_root_with_a_healthcheck() -> None:
    text = (DEPLOY / "docker" / "Dockerfile").read_text()
    stages = re.split(r"^FROM ", text, flags=re.M)[1:]
    assert len(stages) >= 2 and all(s.startswith("python:3.11-slim") for s in stages)
    final = stages[-1]
    assert "pip install" not in final and not re.search(r"gcc|build-essential|apt-get", final)
    user = re.search(r"^USER (\S+)", final, flags=re.M)
    assert user and user.group(1) not in {"root", "0"}
    assert 'HEALTHCHECK' in final and '["gabay", "health"]' in final
    assert re.search(r'^ENTRYPOINT \["/usr/local/bin/gabay-entrypoint"\]', final, flags=re.M)
    entrypoint = (DEPLOY / "docker" / "entrypoint.sh").read_text()
    assert 'exec gabay "$@"' in entrypoint  # the worker replaces the shell: signals reach it
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert "*" in ignored and "!gabay/" in ignored  # the context carries no .venv, .git, .env


def test_image_builds_and_runs_the_demo(tmp_path: Path) -> None:
    docker = shutil.which("docker")
    if docker is None or subprocess.run([docker, "info"], capture_output=True).returncode != 0:
        pytest.skip("no Docker daemon on this machine (only a client, or none): image not built")
    tag = "gabay-test:deploy"
    subprocess.run([docker, "build", "-f", "deploy/docker/Dockerfile", "-t", tag, "."], cwd=ROOT,
                   check=True, capture_output=True, timeout=900)
    result = subprocess.run([docker, "run", "--rm", "-e", "EMBEDDED_REDIS=always", tag, "demo"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


# -- Docker Compose --------------------------------------------------------------------------------

def _compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return data


def _seconds(value: str) -> float:
    match = re.fullmatch(r"(\d+)(s|m)", value)
    assert match, value
    return int(match.group(1)) * (60 if match.group(2) == "m" else 1)


def test_compose_file_has_the_services_and_promises() -> None:
    services = _compose()["services"]
    assert set(services) >= {"redis", "postgres", "migrate", "workers", "dashboard"}
    redis_command = services["redis"]["command"]
    assert "--appendonly" in redis_command and redis_command[redis_command.index("--appendonly") + 1] == "yes"
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    assert services["migrate"]["command"] == ["db", "upgrade"] and services["migrate"]["restart"] == "no"
    workers = services["workers"]
    assert workers["deploy"]["replicas"] == 2
    assert workers["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    assert _seconds(workers["stop_grace_period"]) > DEFAULT_DRAIN_TIMEOUT + 10
    dashboard = services["dashboard"]
    assert "DASHBOARD_PASSWORD" in dashboard["environment"]
    assert dashboard["environment"]["DASHBOARD_PASSWORD"].startswith("${DASHBOARD_PASSWORD:?")
    example = (DEPLOY / "compose" / ".env.example").read_text()
    for line in example.splitlines():
        if re.match(r"^[A-Z_]*(PASSWORD|KEY)=", line):
            assert line.endswith("="), f"a secret in the example: {line}"
    drain = re.search(r"^DRAIN_TIMEOUT=(\d+)", example, flags=re.M)
    assert drain and _seconds(workers["stop_grace_period"]) > int(drain.group(1)) + 10


def _compose_command() -> list[str]:
    """Docker's compose plugin, else the standalone docker-compose (Debian's package): both check
    a file against the Compose schema with ``config -q``, without a Docker daemon."""
    docker = shutil.which("docker")
    plugin = docker is not None and subprocess.run([docker, "compose", "version"], capture_output=True)
    if plugin and plugin.returncode == 0:
        return [str(docker), "compose"]
    standalone = shutil.which("docker-compose")
    if standalone is None:
        pytest.skip("neither `docker compose` nor `docker-compose` is installed (.ci/run installs "
                    "Debian's docker-compose): the file is checked by structure only")
    return [standalone]


def _compose_config(compose: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    """``config -q`` of ``compose`` beside a ``.env`` made from the example with its passwords set."""
    example = (DEPLOY / "compose" / ".env.example").read_text()
    (directory / ".env").write_text(re.sub(r"^(\w+_PASSWORD)=$", r"\1=x", example, flags=re.M))
    (directory / "compose.yaml").write_text(yaml.safe_dump(compose))
    return subprocess.run([*_compose_command(), "--project-directory", str(directory),
                           "-f", str(directory / "compose.yaml"), "config", "-q"],
                          capture_output=True, text=True, timeout=60, cwd=directory)


def test_compose_config_accepts_the_file(tmp_path: Path) -> None:
    checked = _compose_config(_compose(), tmp_path)
    assert checked.returncode == 0, checked.stderr


def test_compose_config_refuses_a_broken_file(tmp_path: Path) -> None:
    broken = _compose()
    broken["services"]["workers"]["stop_grace_period"] = {"seconds": 45}  # must be a duration string
    checked = _compose_config(broken, tmp_path)
    assert checked.returncode != 0 and "stop_grace_period" in checked.stderr


# -- Kubernetes ------------------------------------------------------------------------------------

def _manifests() -> dict[str, dict[str, Any]]:
    docs: dict[str, dict[str, Any]] = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            docs[f"{doc['kind']}/{doc['metadata']['name']}"] = doc
    return docs


def test_kubernetes_manifests_match_the_schemas() -> None:
    tool = _tool("kubernetes-validate")
    files = [str(p) for p in sorted((DEPLOY / "kubernetes").glob("*.yaml"))
             if p.name != "keda-scaledobject.yaml"]  # a CRD: checked by structure below
    result = subprocess.run([tool, "--strict", "-k", KUBERNETES_VERSION, *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_workers_drain_scale_and_probe_as_documented() -> None:
    docs = _manifests()
    workers = docs["Deployment/gabay-workers"]
    pod = workers["spec"]["template"]["spec"]
    config = docs["ConfigMap/gabay-config"]["data"]
    assert workers["spec"]["replicas"] >= 2
    assert pod["terminationGracePeriodSeconds"] >= float(config["DRAIN_TIMEOUT"]) + 10
    [container] = pod["containers"]
    readme = (ROOT / "README.md").read_text()
    block = readme.split("### Kubernetes probe", 1)[1].split("```yaml", 1)[1].split("```", 1)[0]
    probes = yaml.safe_load(block)
    assert container["readinessProbe"] == probes["readinessProbe"]
    assert container["livenessProbe"] == probes["livenessProbe"]
    assert {"secretRef": {"name": "gabay-secrets"}} in container["envFrom"]
    assert "Secret/gabay-secrets" in docs
    limits = container["resources"]
    assert limits["requests"]["memory"] and limits["limits"]["memory"]
    limit_mi = int(limits["limits"]["memory"].removesuffix("Mi"))
    assert int(config["WORKER_MAX_MEMORY"].removesuffix("M")) < limit_mi  # recycled before OOM
    pdb = docs["PodDisruptionBudget/gabay-workers"]
    assert pdb["spec"]["selector"]["matchLabels"] == workers["spec"]["selector"]["matchLabels"]
    assert docs["Job/gabay-migrate"]["spec"]["template"]["spec"]["containers"][0]["args"] == ["db", "upgrade"]
    assert "Deployment/gabay-dashboard" in docs and "Service/gabay-dashboard" in docs
    scaled = docs["ScaledObject/gabay-workers"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "gabay-workers"
    assert scaled["spec"]["minReplicaCount"] >= 2
    triggers = scaled["spec"]["triggers"]
    assert triggers and all(t["type"] == "prometheus" and t["metadata"]["threshold"] == "1"
                            for t in triggers)
    assert all("desired_replicas" in t["metadata"]["query"] for t in triggers)  # not list length


# -- systemd and PM2 -------------------------------------------------------------------------------

def test_systemd_units_verify(tmp_path: Path) -> None:
    tool = _tool("systemd-analyze")
    for unit in (DEPLOY / "systemd").glob("*.service"):  # the real binary in place of /opt/gabay
        text = unit.read_text().replace("/opt/gabay/venv/bin/gabay", str(BIN / "gabay"))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run([tool, "verify", *map(str, tmp_path.glob("*.service"))],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_systemd_workers_unit_outlasts_the_drain() -> None:
    unit = _unit("gabay-workers.service")
    assert unit["ExecStart"] == ["/opt/gabay/venv/bin/gabay workers"]
    assert float(unit["TimeoutStopSec"][0]) > DEFAULT_DRAIN_TIMEOUT + 10
    assert unit["Restart"] == ["on-failure"] and unit["KillMode"] == ["mixed"]
    assert _unit("gabay-dashboard.service")["ExecStart"][0].startswith("/opt/gabay/venv/bin/gabay dashboard")


def test_pm2_ecosystem_runs_the_python_workers() -> None:
    node = _tool("node")
    script = ("const c = require(process.argv[1]);"
              "console.log(JSON.stringify(c.apps))")
    out = subprocess.run([node, "-e", script, str(DEPLOY / "pm2" / "ecosystem.config.js")],
                         capture_output=True, text=True, check=True,
                         env={**os.environ, "DRAIN_TIMEOUT": "30"}).stdout
    apps = {app["name"]: app for app in json.loads(out)}
    workers = apps["gabay-workers"]
    assert workers["script"].endswith("/bin/gabay") and workers["args"].split()[0] == "workers"
    assert workers["interpreter"].endswith("/bin/python")
    assert workers["kill_timeout"] > (30 + 10) * 1000
    assert workers["max_memory_restart"] and "--max-memory" in workers["args"]
    assert workers["treekill"] is False
    assert apps["gabay-dashboard"]["args"].split()[0] == "dashboard"


def test_systemd_command_line_drains_on_a_group_sigterm(
    redis_client: redis.Redis, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """ExecStart's command, 2 worker processes, SIGTERM to the whole group (KillMode=control-group,
    the harsher case of the unit's mixed): exit 0, nothing lost, nothing run twice."""
    [exec_start] = _unit("gabay-workers.service")["ExecStart"]
    binary, *args = exec_start.split()
    assert binary == "/opt/gabay/venv/bin/gabay"
    argv = [sys.executable, "-m", "gabay.cli", *args, "--module", memory_actors.__name__]
    env = {**worker_env, "WORKER_PROCESSES": "2", "WORKER_THREADS": "2"}
    tokens = [f"j{i}" for i in range(12)]
    for token in tokens:
        memory_actors.slow.send(token, 0.6)
    first = LoggedProcess(argv, env, tmp_path / "first.log").launch()
    try:
        wait_for(lambda: redis_client.llen(memory_actors.key("started")) >= 4, timeout=30,
                 message="jobs to run in both processes")
        os.killpg(first.pid, signal.SIGTERM)  # the supervisor, Dramatiq and its workers at once
        assert first.wait(timeout=30) == 0, first.log()
    finally:
        first.stop()
    second = LoggedProcess(argv, env, tmp_path / "second.log").launch()

    def finished() -> list[str]:
        return [s.decode() for s in redis_client.lrange(memory_actors.key("finished"), 0, -1)]

    try:
        wait_for(lambda: len(finished()) >= len(tokens), timeout=30, message="every job to finish")
    finally:
        assert second.stop(timeout=30) == 0, second.log()
    started = [s.decode() for s in redis_client.lrange(memory_actors.key("started"), 0, -1)]
    assert Counter(s.split(":")[0] for s in finished()) == Counter(tokens)  # none lost or twice
    assert Counter(s.split(":")[0] for s in started) == Counter(tokens)     # none cut off, rerun
    assert all(s.endswith(":0") for s in finished())  # no retry used
