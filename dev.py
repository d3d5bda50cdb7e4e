#!/usr/bin/env python3
"""Developer commands for the loss service (standard library only; runs with any Python 3.11+).

    python3 dev.py serve [--host H --port P] serve the service: python -m service (LOSS_SERVICE_* settings)
    python3 dev.py test  [pytest options]    run the test suite; its exit code is pytest's (no tests = failure)
    python3 dev.py lock  [--upgrade]         regenerate requirements.lock and requirements-dev.lock with uv

`serve` and `test` create ./.venv when it is missing and install the lock file they need
(requirements.lock, or requirements-dev.lock for tests) with `pip install --require-hashes`,
only when that lock file changed since it was last installed into this .venv.
"""

from __future__ import annotations

import sys

if sys.version_info < (3, 11):
    sys.exit(f"dev.py: Python 3.11 or newer is required (this is {sys.version.split()[0]}); "
             f"run it as `python3.11 dev.py ...` or with a newer python3.")

import argparse
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / "loss-service-locks.json"   # {lock file name: sha256 of the lock that was installed}
RUNTIME_LOCK = "requirements.lock"
DEV_LOCK = "requirements-dev.lock"
UV_VERSION = "0.13.9"                      # the uv that `dev.py lock` runs (from a throwaway venv)
LOG_LEVELS = ("critical", "error", "warning", "info", "debug", "trace")


def say(message: str) -> None:
    print(f"dev.py: {message}", flush=True)


class DevError(Exception):
    """A problem the user can fix; printed without a traceback."""


# --------------------------------------------------------------------------- virtual environment

def scripts_dir(venv: Path) -> Path:
    return venv / ("Scripts" if os.name == "nt" else "bin")


def venv_python(venv: Path) -> Path:
    return scripts_dir(venv) / ("python.exe" if os.name == "nt" else "python")


def create_venv(venv: Path) -> None:
    say(f"creating the virtual environment {venv.name}/ with Python {sys.version.split()[0]} ({sys.executable})")
    result = subprocess.run([sys.executable, "-m", "venv", str(venv)])
    if result.returncode != 0 or not venv_python(venv).exists():
        raise DevError("could not create the virtual environment. On Debian/Ubuntu install the venv module "
                       "(`apt-get install python3-venv`, or python3.11-venv), then run this command again.")


def ensure_venv() -> Path:
    """Return the .venv interpreter, creating .venv first if it is missing or its interpreter is gone."""
    python = venv_python(VENV)
    if python.exists():
        probe = subprocess.run([str(python), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                               capture_output=True, text=True)
        if probe.returncode != 0:
            say(f"{VENV.name}/ exists but its interpreter does not run (was its base Python removed?): recreating it")
            shutil.rmtree(VENV)
        else:
            major, minor = (int(part) for part in probe.stdout.strip().split("."))
            if (major, minor) < (3, 11):
                raise DevError(f"{VENV.name}/ uses Python {major}.{minor}; 3.11+ is required. Delete {VENV.name}/ "
                               f"and run this command again with python3.11 or newer.")
            return python
    create_venv(VENV)
    return python


def _pins(lock: Path) -> dict[str, set[str]]:
    """name -> pinned versions (a name can have several under different environment markers)."""
    pins: dict[str, set[str]] = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line)
        if match:
            name = re.sub(r"[-_.]+", "-", match.group(1)).lower()
            pins.setdefault(name, set()).add(match.group(2))
    return pins


def _read_stamps() -> dict[str, str]:
    try:
        data = json.loads(STAMP.read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def sync(python: Path, lock_name: str) -> None:
    """Install lock_name into the venv with --require-hashes, unless this exact lock was installed already."""
    lock = ROOT / lock_name
    if not lock.exists():
        raise DevError(f"{lock_name} is missing; run `python3 dev.py lock` to create it.")
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    stamps = _read_stamps()
    if stamps.get(lock_name) == digest:
        say(f"{VENV.name}/ is up to date with {lock_name}")
        return
    say(f"installing {lock_name} into {VENV.name}/ (pip --require-hashes; only when the lock changes)")
    command = [str(python), "-m", "pip", "install", "--require-hashes", "--no-input", "--disable-pip-version-check",
               "--quiet", "-r", lock_name]
    if subprocess.run(command, cwd=ROOT).returncode != 0:
        raise DevError(f"installing {lock_name} failed (see pip's message above). If the lock is out of date "
                       f"with pyproject.toml, run `python3 dev.py lock`; a broken {VENV.name}/ can simply be deleted.")
    # Other locks stay recorded as installed only if this install could not have changed their pins.
    installed = _pins(lock)
    kept = {}
    for other, other_digest in stamps.items():
        other_path = ROOT / other
        if other == lock_name or not other_path.exists():
            continue
        other_pins = _pins(other_path)
        if all(other_pins[name] == versions for name, versions in installed.items() if name in other_pins):
            kept[other] = other_digest
    kept[lock_name] = digest
    # A lock whose every pin this install put in place (requirements.lock inside requirements-dev.lock) is satisfied too.
    for other in (RUNTIME_LOCK, DEV_LOCK):
        other_path = ROOT / other
        if other not in kept and other_path.exists():
            other_pins = _pins(other_path)
            if other_pins and all(installed.get(name) == versions for name, versions in other_pins.items()):
                kept[other] = hashlib.sha256(other_path.read_bytes()).hexdigest()
    tmp = STAMP.with_suffix(".tmp")
    tmp.write_text(json.dumps(kept, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, STAMP)


# --------------------------------------------------------------------------- commands

def _env_int(name: str, default: int, low: int, high: int) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise DevError(f"{name}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise DevError(f"{name}={value} is out of range ({low}..{high})")
    return value


def cmd_serve(extra: list[str]) -> int:
    host = os.environ.get("LOSS_SERVICE_HOST", "").strip() or "127.0.0.1"
    port = _env_int("LOSS_SERVICE_PORT", 8000, 1, 65535)
    workers = _env_int("LOSS_SERVICE_WORKERS", 1, 1, 1024)
    log_level = (os.environ.get("LOSS_SERVICE_LOG_LEVEL", "").strip() or "info").lower()
    if log_level not in LOG_LEVELS:
        raise DevError(f"LOSS_SERVICE_LOG_LEVEL={log_level!r} is not one of {', '.join(LOG_LEVELS)}")
    python = ensure_venv()
    sync(python, RUNTIME_LOCK)
    # python -m service reads every setting itself (service/server.py), as the image's CMD does
    command = [str(python), "-m", "service", *extra]
    shown = f"[{host}]" if ":" in host else host
    say(f"serving service.app:app on http://{shown}:{port} with {workers} worker(s); Ctrl+C stops it")
    os.chdir(ROOT)
    sys.stdout.flush()
    if os.name == "nt":
        return subprocess.call(command)
    os.execv(command[0], command)   # uvicorn replaces this process (signals go straight to it)
    return 1  # not reached


def cmd_test(extra: list[str]) -> int:
    python = ensure_venv()
    sync(python, DEV_LOCK)
    say("running: " + shlex.join(["python", "-m", "pytest", *extra]))
    code = subprocess.call([str(python), "-m", "pytest", *extra], cwd=ROOT)
    if code == 5:
        say("pytest collected no tests (exit code 5): that counts as a failure")
        return 1
    say(f"pytest finished with exit code {code}")
    return code


def _uv_compile(extra: list[str], output: str) -> list[str]:
    return ["uv", "pip", "compile", "--quiet", "pyproject.toml", *extra, "--universal", "--fork-strategy", "fewest",
            "--python-version", "3.11", "--generate-hashes", "--custom-compile-command", "python3 dev.py lock",
            "-o", output]


LOCK_COMMANDS = {
    RUNTIME_LOCK: _uv_compile([], RUNTIME_LOCK),
    DEV_LOCK: _uv_compile(["--extra", "dev", "-c", RUNTIME_LOCK], DEV_LOCK),  # same pins as the runtime lock
}
LOCK_PURPOSE = {
    RUNTIME_LOCK: "exact pins, with hashes, of pyproject.toml [project] dependencies (the service and its image)",
    DEV_LOCK: "requirements.lock's pins plus the `dev` extra (tests); never torch (`bench` extra)",
}


def lock_header(lock_name: str) -> str:
    lines = [
        f"# {lock_name}: {LOCK_PURPOSE[lock_name]}.",
        f"# Install: pip install --require-hashes -r {lock_name}",
        "# Regenerate from the repository root: python3 dev.py lock   (add --upgrade to take newer releases).",
        f"# That runs uv {UV_VERSION} (pip-installed into a throwaway venv outside the repository):",
    ]
    lines += [f"#   {shlex.join(LOCK_COMMANDS[name])}" for name in (RUNTIME_LOCK, DEV_LOCK)]
    return "\n".join(lines) + "\n"


def cmd_lock(extra: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="dev.py lock", description="Regenerate the lock files with uv.")
    parser.add_argument("--upgrade", action="store_true", help="move every pin to the newest allowed release")
    options = parser.parse_args(extra)
    with tempfile.TemporaryDirectory(prefix="loss-service-uv-") as tmp:
        tool_venv = Path(tmp) / "venv"
        say(f"installing uv {UV_VERSION} into a throwaway venv")
        subprocess.run([sys.executable, "-m", "venv", str(tool_venv)], check=True)
        pip = [str(venv_python(tool_venv)), "-m", "pip", "install", "--quiet", "--no-input",
               "--disable-pip-version-check", f"uv=={UV_VERSION}"]
        if subprocess.run(pip).returncode != 0:
            raise DevError(f"could not install uv {UV_VERSION} from the package index")
        uv = scripts_dir(tool_venv) / ("uv.exe" if os.name == "nt" else "uv")
        for lock_name in (RUNTIME_LOCK, DEV_LOCK):
            command = [str(uv), *LOCK_COMMANDS[lock_name][1:]]
            if options.upgrade:
                command.append("--upgrade")
            say("running: " + shlex.join(LOCK_COMMANDS[lock_name] + (["--upgrade"] if options.upgrade else [])))
            if subprocess.run(command, cwd=ROOT).returncode != 0:
                raise DevError(f"uv could not resolve {lock_name} (see its message above)")
            path = ROOT / lock_name
            path.write_text(lock_header(lock_name) + path.read_text(encoding="utf-8"), encoding="utf-8")
    say(f"wrote {RUNTIME_LOCK} and {DEV_LOCK}; `python3 dev.py test` installs them into {VENV.name}/")
    return 0


COMMANDS = {"serve": cmd_serve, "test": cmd_test, "lock": cmd_lock}


def main(argv: list[str]) -> int:
    if not argv or argv[0] in {"-h", "--help", "help"} or argv[0] not in COMMANDS:
        print(__doc__.strip())
        if argv and argv[0] not in {"-h", "--help", "help"}:
            say(f"unknown command {argv[0]!r}; use one of: {', '.join(COMMANDS)}")
            return 2
        return 0 if argv else 2
    try:
        return COMMANDS[argv[0]](argv[1:])
    except DevError as error:
        say(f"error: {error}")
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
