"""Static checks on the Dockerfile (no Docker daemon here), plus running its HEALTHCHECK command.

Each test names one property the image must keep: multi-stage with a C compiler in the
builder only, non-root, read-only-root friendly, exec-form entrypoint matching the console
script, a curl-free health check that really detects a stalled loop, state on a volume, and a
build context that holds only what the image needs.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from detector.http import Health, StatusServer

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "Dockerfile"
STATE_DIR = "/var/lib/detector"


@dataclass(frozen=True)
class Instruction:
    stage: int  # -1 before the first FROM (global ARGs)
    keyword: str
    args: str


def parse(text: str) -> list[Instruction]:
    """Dockerfile instructions with continuation lines joined and comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):  # a comment inside a continued instruction
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "Dockerfile ends inside a continued line"

    out, stage = [], -1
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        out.append(Instruction(stage, keyword, " ".join(args.split())))
    return out


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return parse(DOCKERFILE.read_text())


def stage_of(instructions: list[Instruction], name: str) -> list[Instruction]:
    froms = [i for i in instructions if i.keyword == "FROM"]
    index = next(n for n, i in enumerate(froms) if i.args.lower().endswith(f" as {name}"))
    return [i for i in instructions if i.stage == index]


def final_stage(instructions: list[Instruction]) -> list[Instruction]:
    last = max(i.stage for i in instructions)
    return [i for i in instructions if i.stage == last]


def env(stage: list[Instruction]) -> dict[str, str]:
    values: dict[str, str] = {}
    for i in stage:
        if i.keyword == "ENV":
            for pair in shlex.split(i.args):
                key, _, value = pair.partition("=")
                values[key] = value
    return values


def exec_form(args: str) -> list[str]:
    assert args.startswith("["), f"not exec form (JSON array): {args}"
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value)
    return value


def resolve_image(instructions: list[Instruction], from_args: str) -> str:
    global_args = {}
    for i in instructions:
        if i.stage == -1 and i.keyword == "ARG":
            key, _, default = i.args.partition("=")
            global_args[key] = default
    image = from_args.split()[0]
    return re.sub(r"\$\{(\w+)\}", lambda m: global_args[m.group(1)], image)


def test_multi_stage_builder_then_slim_runtime(instructions: list[Instruction]) -> None:
    froms = [i for i in instructions if i.keyword == "FROM"]
    assert len(froms) >= 2
    assert [resolve_image(instructions, f.args) for f in froms] == ["python:3.11-slim"] * len(froms)
    builder = " ".join(i.args for i in stage_of(instructions, "builder") if i.keyword == "RUN")
    assert "python -m venv /opt/venv" in builder
    assert "pip wheel" in builder and "pip install" in builder


COMPILERS = re.compile(r"\b(gcc|g\+\+|clang|cc|build-essential|libc6-dev|python3-dev)\b")


def test_the_builder_installs_a_c_compiler_and_the_runtime_has_none(instructions: list[Instruction]) -> None:
    """detector/core is compiled in the builder (python:3.11-slim has no gcc); the runtime only
    copies the built venv, so it needs no compiler and must not carry one."""
    builder = " ".join(i.args for i in stage_of(instructions, "builder") if i.keyword == "RUN")
    install = re.search(r"apt-get install ([^&]*)", builder)
    assert install and {"gcc", "libc6-dev"} <= set(install.group(1).split()), "builder installs no C compiler"
    assert builder.index("apt-get install") < builder.index("pip wheel")
    runtime = " ".join(i.args for i in final_stage(instructions) if i.keyword == "RUN")
    assert "apt-get" not in runtime and not COMPILERS.search(runtime)


def test_runtime_copies_only_the_venv_models_and_config(instructions: list[Instruction]) -> None:
    runtime = final_stage(instructions)
    assert not [i for i in runtime if i.keyword == "ADD"]
    copies = sorted(i.args for i in runtime if i.keyword == "COPY")
    assert copies == ["--from=builder /opt/venv /opt/venv", "config/ /app/config/", "models/ /app/models/"]


def test_runs_as_uid_10001_from_before_the_entrypoint(instructions: list[Instruction]) -> None:
    runtime = final_stage(instructions)
    users = [(n, i.args) for n, i in enumerate(runtime) if i.keyword == "USER"]
    assert users, "no USER in the runtime stage: the container would run as root"
    position, user = users[-1]
    assert user.split(":")[0] == "10001"
    entry = next(n for n, i in enumerate(runtime) if i.keyword == "ENTRYPOINT")
    assert position < entry
    setup = " ".join(i.args for i in runtime if i.keyword == "RUN")
    assert "--uid 10001" in setup
    assert f"-o 10001 -g 10001 -m 0750 {STATE_DIR}" in setup, "state dir must be owned by the runtime user"


def test_entrypoint_is_the_console_script_in_exec_form(instructions: list[Instruction]) -> None:
    runtime = final_stage(instructions)
    [entrypoint] = [exec_form(i.args) for i in runtime if i.keyword == "ENTRYPOINT"]
    [cmd] = [exec_form(i.args) for i in runtime if i.keyword == "CMD"]
    assert entrypoint == ["detector"]
    assert cmd == ["run"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint[0] in scripts, "ENTRYPOINT must be a [project.scripts] entry"


def test_state_on_a_volume_and_read_only_root_friendly(instructions: list[Instruction]) -> None:
    runtime = final_stage(instructions)
    values = env(runtime)
    assert values["DETECTOR_STATE_DIR"] == STATE_DIR
    assert values["PYTHONDONTWRITEBYTECODE"] == "1"
    assert values["HOME"] == "/tmp", "libraries write under $HOME; keep it on the writable /tmp"
    [volume] = [exec_form(i.args) for i in runtime if i.keyword == "VOLUME"]
    assert volume == [STATE_DIR]
    assert [i.args for i in runtime if i.keyword == "WORKDIR"] == ["/app"]
    assert [i.args for i in runtime if i.keyword == "EXPOSE"] == ["9108"]
    # The config binds 127.0.0.1; a published port reaches only 0.0.0.0 inside the container.
    assert values["DETECTOR_METRICS__HOST"] == "0.0.0.0"


def healthcheck_command(instructions: list[Instruction]) -> list[str]:
    [check] = [i.args for i in final_stage(instructions) if i.keyword == "HEALTHCHECK"]
    options, sep, command = check.partition(" CMD ")
    assert sep, f"HEALTHCHECK without CMD: {check}"
    assert "--timeout=" in options and "--start-period=" in options
    return exec_form(command)


def test_healthcheck_is_curl_free_python_against_healthz(instructions: list[Instruction]) -> None:
    command = healthcheck_command(instructions)
    assert command[:2] == ["python", "-c"]
    assert "http://127.0.0.1:9108/healthz" in command[2]
    assert not re.search(r"\b(curl|wget)\b", " ".join(command))


@pytest.mark.parametrize("stalled", [False, True])
def test_healthcheck_command_follows_healthz(instructions: list[Instruction], stalled: bool) -> None:
    """Run the HEALTHCHECK's own Python against a real status server on a free port."""
    now = [0.0]
    health = Health(liveness_timeout=60, clock=lambda: now[0])
    if stalled:
        now[0] = 61.0
    server = StatusServer(CollectorRegistry(), health, port=0)
    server.start()
    try:
        code = healthcheck_command(instructions)[2].replace(":9108/", f":{server.port}/")
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)
    finally:
        server.stop()
    assert (result.returncode == 0) is not stalled, result.stderr.decode()[-500:]


def test_dockerignore_admits_only_what_the_image_copies(instructions: list[Instruction]) -> None:
    rules = [
        line.strip()
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*", ".dockerignore should start by excluding everything"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    sources: set[str] = set()
    for i in instructions:
        if i.keyword == "COPY" and not i.args.startswith("--from"):
            sources.update(p.rstrip("/") for p in i.args.split()[:-1])
    assert sources == allowed, f"COPY sources {sorted(sources)} vs allowlisted {sorted(allowed)}"
