"""Cormorant on every supported CPython.

    python3 tests/matrix.py check [--versions 3.9,3.14]
        The extension compiles against each version's C API (cargo check
        with a PyO3 configuration for that version): no interpreter needed,
        so 3.14 is checked here too.

    python3 tests/matrix.py test [--versions 3.9,3.13] [--require] [-- PYTEST ARGS]
        For each version whose interpreter is on this machine (pyenv or
        PATH): a virtualenv in .matrix/VERSION with the test requirements,
        the extension built into it with maturin, and the black-box pytest
        suite. A version with no interpreter is reported and skipped; with
        --require it fails the run. The summary gives the counts per version.

Run by `make check-pythons` and `make test-matrix`.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

REPO = Path(__file__).resolve().parent.parent
# Every CPython the package declares (pyproject.toml: requires-python and
# the classifiers).
SUPPORTED = ["3.9", "3.10", "3.11", "3.12", "3.13", "3.14"]
MATRIX_DIR = REPO / ".matrix"


def log(msg: str) -> None:
    print(f"matrix: {msg}", flush=True)


def cargo_target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")


# ---- check: compile against each version's API ---------------------------------


def check(versions: list[str]) -> int:
    # A target directory of its own: each version recompiles PyO3 and the
    # extension, which must not invalidate the main build.
    target = cargo_target_dir() / "python-api-check"
    target.mkdir(parents=True, exist_ok=True)
    failed = []
    for version in versions:
        config = target / f"pyo3-{version}.cfg"
        # A configuration for a CPython that need not be installed: what
        # PyO3 reads instead of asking an interpreter.
        config.write_text(
            "implementation=CPython\n"
            f"version={version}\n"
            "shared=true\n"
            "abi3=false\n"
            "pointer_width=64\n"
            "build_flags=\n"
            "suppress_build_script_link_lines=false\n"
        )
        env = dict(os.environ, PYO3_CONFIG_FILE=str(config), CARGO_TARGET_DIR=str(target),
                   RUSTFLAGS="-D warnings")
        started = time.monotonic()
        r = subprocess.run(["cargo", "check", "-q", "-p", "cormorant", "--lib"], cwd=REPO, env=env)
        took = time.monotonic() - started
        if r.returncode == 0:
            log(f"CPython {version}: the extension compiles against its API ({took:.0f}s)")
        else:
            log(f"CPython {version}: FAILED to compile")
            failed.append(version)
    if failed:
        log(f"failed: {', '.join(failed)}")
        return 1
    log(f"all {len(versions)} versions compile: {', '.join(versions)}")
    return 0


# ---- test: build and run the suite on each interpreter --------------------------


def find_interpreter(version: str) -> Optional[str]:
    """The python{version} binary: from pyenv's versions, else on PATH (not
    a pyenv shim, which may point elsewhere)."""
    roots = [os.environ.get("PYENV_ROOT"), os.path.expanduser("~/.pyenv")]
    for root in filter(None, roots):
        for exe in sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"), reverse=True):
            if re.fullmatch(rf"{re.escape(version)}\.\d+", Path(exe).parent.parent.name):
                return exe
    for d in os.environ.get("PATH", "").split(os.pathsep):
        exe = Path(d) / f"python{version}"
        if "shims" not in d and exe.is_file() and os.access(exe, os.X_OK):
            return str(exe)
    return None


# What each matrix venv gets: the test requirements and maturin.
MATURIN = "maturin>=1.5,<2"


def requirements_digest() -> str:
    h = hashlib.sha256((REPO / "tests/requirements.txt").read_bytes())
    h.update(MATURIN.encode())
    return h.hexdigest()


def prepare_venv(version: str, exe: str) -> Path:
    venv = MATRIX_DIR / version
    marker = venv / ".installed"
    digest = requirements_digest()
    if marker.exists() and marker.read_text() == digest:
        return venv
    if venv.exists():
        shutil.rmtree(venv)
    log(f"CPython {version}: creating {venv.relative_to(REPO)} with the test requirements")
    subprocess.run([exe, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    subprocess.run([py, "-m", "pip", "install", "-q", "--upgrade", "pip"], check=True)
    subprocess.run([py, "-m", "pip", "install", "-q", "-r", str(REPO / "tests/requirements.txt"),
                    MATURIN], check=True)
    marker.write_text(digest)
    return venv


SUMMARY_RE = re.compile(r"^=*\s*(\d+ (passed|failed|error).*?)(?: in [\d.]+s.*)?\s*=*$")


def run_suite(version: str, exe: str, pytest_args: list[str]) -> tuple[bool, str]:
    venv = prepare_venv(version, exe)
    env = dict(os.environ, VIRTUAL_ENV=str(venv))
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    log(f"CPython {version}: building the extension")
    subprocess.run([str(venv / "bin" / "maturin"), "develop", "--release", "-q"],
                   cwd=REPO, env=env, check=True)
    log(f"CPython {version}: running the test suite")
    args = [str(venv / "bin" / "python"), "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider",
            *pytest_args]
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    assert proc.stdout is not None
    last = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        if line.strip():
            last = line.strip()
    code = proc.wait()
    m = SUMMARY_RE.match(last)
    summary = m.group(1) if m else last
    # pytest exits 5 when it ran nothing: never a pass.
    return code == 0, summary


def test(versions: list[str], require: bool, pytest_args: list[str]) -> int:
    results: list[tuple[str, str, str]] = []
    ok = True
    for version in versions:
        exe = find_interpreter(version)
        if exe is None:
            log(f"CPython {version}: no interpreter on this machine, SKIPPED")
            results.append((version, "-", "SKIPPED: no interpreter on this machine"))
            ok = ok and not require
            continue
        passed, summary = run_suite(version, exe, pytest_args)
        results.append((version, exe, ("" if passed else "FAILED: ") + summary))
        ok = ok and passed
    print()
    print("| CPython | interpreter | result |")
    print("|---|---|---|")
    for version, exe, result in results:
        print(f"| {version} | {exe} | {result} |")
    ran = [r for r in results if not r[2].startswith("SKIPPED")]
    if not ran:
        log("no version could be tested")
        return 1
    return 0 if ok else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["check", "test"])
    parser.add_argument("--versions", default=",".join(SUPPORTED),
                        help="comma- or space-separated, default: every supported version")
    parser.add_argument("--require", action="store_true",
                        help="fail when a version has no interpreter here")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args()
    versions = [v for v in re.split(r"[,\s]+", args.versions) if v]
    unknown = [v for v in versions if v not in SUPPORTED]
    if unknown:
        parser.error(f"not a supported version: {', '.join(unknown)} (supported: {', '.join(SUPPORTED)})")
    if args.mode == "check":
        return check(versions)
    return test(versions, args.require, args.pytest_args)


if __name__ == "__main__":
    sys.exit(main())
