"""Check that requirements.lock and requirements-dev.lock still match pyproject.toml, offline.

    python scripts/check_lock.py            exit 1 with the reason when a lock is stale
    python scripts/check_lock.py --stamp    record the current digests (scripts/lock.sh does)

Each lock carries a digest of the dependency ranges it was compiled from, so any change to
pyproject.toml's lists (a new, removed or re-ranged dependency) is caught without asking an index
and without flapping when a new release appears. The pins are also checked directly: every
dependency is pinned within its range, and the dev lock pins every runtime package at the same
version as the runtime lock, so tests run on exactly what a deploy installs.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
RUNTIME_LOCK = ROOT / "requirements.lock"
DEV_LOCK = ROOT / "requirements-dev.lock"
STAMP = "# pyproject-deps-sha256: "
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


def dependency_lists() -> tuple[str, list[str], list[str]]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    dev = project.get("optional-dependencies", {}).get("dev", [])
    return project.get("requires-python", ""), project["dependencies"], dev


def digest(requires_python: str, *lists: list[str]) -> str:
    """Hash the ranges independent of order and spelling: reordering is not a change."""
    canonical = [sorted(str(Requirement(r)) for r in reqs) for reqs in lists]
    payload = json.dumps([requires_python, canonical], separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


def expected_digests() -> dict[Path, str]:
    requires_python, runtime, dev = dependency_lists()
    return {
        RUNTIME_LOCK: digest(requires_python, runtime),
        DEV_LOCK: digest(requires_python, runtime, dev),
    }


def pins(text: str) -> dict[str, str]:
    return {canonicalize_name(name): version for name, version in PIN.findall(text)}


def stamp() -> None:
    for lock, value in expected_digests().items():
        lines = [ln for ln in lock.read_text().splitlines() if not ln.startswith(STAMP)]
        lock.write_text("\n".join([STAMP + value, *lines]) + "\n")


def problems() -> list[str]:
    found = []
    _, runtime, dev = dependency_lists()
    texts = {}
    for lock, value in expected_digests().items():
        if not lock.exists():
            found.append(f"{lock.name} is missing")
            continue
        texts[lock] = lock.read_text()
        recorded = next(
            (ln.removeprefix(STAMP) for ln in texts[lock].splitlines() if ln.startswith(STAMP)),
            None,
        )
        if recorded != value:
            found.append(f"{lock.name} was compiled from other dependency lists in pyproject.toml")
    for lock, wanted in ((RUNTIME_LOCK, runtime), (DEV_LOCK, runtime + dev)):
        if lock not in texts:
            continue
        pinned = pins(texts[lock])
        for line in wanted:
            requirement = Requirement(line)
            version = pinned.get(canonicalize_name(requirement.name))
            if version is None:
                found.append(f"{lock.name} does not pin {requirement.name}")
            elif not requirement.specifier.contains(version, prereleases=True):
                found.append(f"{lock.name} pins {requirement.name}=={version}, outside {line!r}")
    if RUNTIME_LOCK in texts and DEV_LOCK in texts:
        dev_pins = pins(texts[DEV_LOCK])
        for name, version in pins(texts[RUNTIME_LOCK]).items():
            if dev_pins.get(name) != version:
                found.append(
                    f"{DEV_LOCK.name} pins {name}=={dev_pins.get(name)} but "
                    f"{RUNTIME_LOCK.name} pins {version}"
                )
    return found


def main() -> int:
    if sys.argv[1:] == ["--stamp"]:
        stamp()
        return 0
    found = problems()
    for problem in found:
        print(f"check-lock: {problem}", file=sys.stderr)
    if found:
        print("check-lock: run `make lock` and commit both lock files", file=sys.stderr)
        return 1
    print("check-lock: requirements.lock and requirements-dev.lock match pyproject.toml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
