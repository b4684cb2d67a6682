"""``python -m sparse_demo ARGS`` as a real process, without paying torch's import on every run.

Each CLI test used to start a fresh interpreter, and importing torch and transformers took 5-10 s of the
~6-40 s a run took on a 2-core machine. :func:`run_sparse_demo` instead asks a small fork server (this
file run as a script) that has imported those third-party libraries, and nothing of this project, to
``fork()`` a child per run. The child is a real process: it gets the run's environment, working folder,
its own stdin / stdout / stderr files (file descriptors 0, 1, 2) and ``sys.argv``, runs
``sparse_demo/__main__.py`` as ``python -m`` does, and its exit status is the run's. The project's code,
its settings and its logging start fresh in every child, as in a new interpreter.

A server serves only runs whose start-up environment (everything except the project's own
``SPARSE_DEMO_*`` / ``OPENSEARCH_*`` settings, ``TMPDIR`` and pytest's ``PYTEST_*``) equals its own;
another start-up environment gets its own server. ``real=True`` starts a fresh interpreter instead, for a
test whose point is the interpreter's start (``--help``, bytes that are not UTF-8 in ``argv``).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
#: Read by the project at run time (or, ``PYTEST_CURRENT_TEST``, not at all), so one server serves any values.
_RUN_TIME_VARS = ("SPARSE_DEMO_", "OPENSEARCH_", "TMPDIR", "PYTEST_")
#: Third-party modules the server imports once (what makes a fresh interpreter slow).
_PRELOAD = (
    "numpy",
    "scipy.sparse",
    "pandas",
    "torch",
    "tokenizers",
    "safetensors",
    "kiwipiepy",
    "transformers",
    "transformers.models.xlm_roberta.modeling_xlm_roberta",
    "transformers.models.bert.modeling_bert",
)

#: Servers alive at once (one per start-up environment, the oldest stopped first).
_MAX_SERVERS = 3
_servers: dict[tuple[tuple[str, str], ...], subprocess.Popen] = {}


def _startup_key(env: dict[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in env.items() if not k.startswith(_RUN_TIME_VARS)))


def _server(env: dict[str, str]) -> subprocess.Popen:
    key = _startup_key(env)
    proc = _servers.get(key)
    if proc is None or proc.poll() is not None:
        while len(_servers) >= _MAX_SERVERS:  # each holds torch in memory: stop the oldest
            _stop(_servers.pop(next(iter(_servers))))
        proc = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve())],
            env=dict(key),
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        _servers[key] = proc
    return proc


def _read_line(proc: subprocess.Popen, timeout: float | None) -> dict:
    if timeout is not None:
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        if not ready:
            raise TimeoutError
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the CLI fork server stopped (exit status {proc.wait()})")
    return json.loads(line)


def run_sparse_demo(
    args,
    *,
    env: dict[str, str] | None = None,
    stdin: bytes = b"",
    cwd: Path | str = ROOT,
    timeout: float = 300,
    text: bool = False,
    real: bool = False,
) -> subprocess.CompletedProcess:
    """Run ``python -m sparse_demo ARGS`` in a new process; like ``subprocess.run(..., capture_output=True)``.

    ``args`` may hold ``bytes`` (passed as the OS passes them). ``env`` defaults to ``os.environ``.
    ``real=True``: a fresh interpreter (``subprocess.run``) rather than a child of the fork server.
    """
    env = dict(os.environ if env is None else env)
    argv = [a if isinstance(a, bytes) else os.fsencode(a) for a in args]
    if real:
        proc = subprocess.run(
            [os.fsencode(sys.executable), b"-m", b"sparse_demo", *argv],
            input=stdin,
            capture_output=True,
            env=env,
            cwd=cwd,
            timeout=timeout,
        )
    else:
        with tempfile.TemporaryDirectory(prefix="cli_run_") as tmp:
            files = {name: Path(tmp) / name for name in ("stdin", "stdout", "stderr")}
            files["stdin"].write_bytes(stdin)
            files["stdout"].touch()
            files["stderr"].touch()
            server = _server(env)
            request = {
                "argv": [os.fsdecode(a) for a in argv],
                "env": env,
                "cwd": str(cwd),
                **{name: str(path) for name, path in files.items()},
            }
            server.stdin.write(json.dumps(request).encode() + b"\n")
            server.stdin.flush()
            pid = _read_line(server, 120)["pid"]
            try:
                status = _read_line(server, timeout)["status"]
            except TimeoutError:
                os.kill(pid, signal.SIGKILL)
                _read_line(server, 60)
                raise subprocess.TimeoutExpired(["python", "-m", "sparse_demo", *args], timeout) from None
            out, err = files["stdout"].read_bytes(), files["stderr"].read_bytes()
        proc = subprocess.CompletedProcess([sys.executable, "-m", "sparse_demo", *args], status, out, err)
    if text:
        proc.stdout, proc.stderr = proc.stdout.decode("utf-8"), proc.stderr.decode("utf-8")
    return proc


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@atexit.register
def _stop_servers() -> None:
    for proc in _servers.values():
        _stop(proc)


# ---------------------------------------------------------------------- the server (this file as a script)
def _child(request: dict, protocol_fds: tuple[int, int]) -> None:
    """In the forked child: become ``python -m sparse_demo ARGS`` and exit with its status."""
    import runpy
    import traceback

    code = 1
    try:
        for fd in protocol_fds:
            os.close(fd)
        for target, name, flags in (
            (0, "stdin", os.O_RDONLY),
            (1, "stdout", os.O_WRONLY | os.O_TRUNC),
            (2, "stderr", os.O_WRONLY | os.O_TRUNC),
        ):
            fd = os.open(request[name], flags)
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        tempfile.tempdir = None  # TMPDIR is read again, as a new interpreter would
        sys.argv = [sys.executable, *request["argv"]]
        sys.path[0] = os.getcwd()  # as ``python -m`` sets it
        try:
            runpy.run_module("sparse_demo", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            if exc.code is None:
                code = 0
            elif isinstance(exc.code, int):
                code = exc.code
            else:
                print(exc.code, file=sys.stderr)
                code = 1
        except BaseException:  # noqa: BLE001 - an uncaught error ends the run as it ends an interpreter
            traceback.print_exc()
            code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):  # a closed stream: nothing more to write
                stream.flush()
        os._exit(code)


def _serve() -> None:
    import importlib

    for name in _PRELOAD:
        with contextlib.suppress(Exception):  # a missing library is imported (and fails) in the child, as usual
            importlib.import_module(name)
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    for line in requests:
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(request, (requests.fileno(), replies.fileno()))
        replies.write(json.dumps({"pid": pid}).encode() + b"\n")
        replies.flush()
        _, status = os.waitpid(pid, 0)
        replies.write(json.dumps({"status": os.waitstatus_to_exitcode(status)}).encode() + b"\n")
        replies.flush()


if __name__ == "__main__":
    _serve()
