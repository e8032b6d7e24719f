"""The ``o2c up`` supervisor, driven with fake services (tiny stdlib HTTP servers).

The fakes live in a package of their own (``o2cfake.<name>``) put first on the
children's ``PYTHONPATH``: a ``services`` package there would lose against the
repository's own, because ``python -m`` puts the working directory first.
"""

from __future__ import annotations

import itertools
import os
import signal
import stat
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from libs.messaging import broker
from o2c.supervisor import (
    DEFAULT_PORTS,
    SERVICES,
    RestartPolicy,
    ServiceStartError,
    Supervisor,
    SupervisorError,
    resolve_admin_token,
)

pytestmark = pytest.mark.broker

FAKE_COMMON = '''
"""A fake o2c service: GET /health answers 200 with the o2c environment it got (on both ports)."""
import json, os, signal, sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main(name: str) -> None:
    crash_flag = os.path.join(os.environ["O2C_DATA_DIR"], f"crash-{name}")
    if os.environ.get("FAKE_CRASH") == name or os.path.exists(crash_flag):
        print(f"boom: {name} cannot open its database", file=sys.stderr, flush=True)
        sys.exit(3)
    port = int(os.environ[f"O2C_{name.upper()}_PORT"])
    info = {"name": name, "pid": os.getpid(),
            **{k: v for k, v in os.environ.items() if k.startswith("O2C_")}}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            status = 200 if self.path == "/health" else 404
            body = json.dumps(info).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    def on_term(signum, frame):
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_term)
    host = os.environ.get("O2C_HOST", "127.0.0.1")
    server = ThreadingHTTPServer((host, port), Handler)
    ops = ThreadingHTTPServer((host, int(os.environ[f"O2C_{name.upper()}_OPS_PORT"])), Handler)
    threading.Thread(target=ops.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    print(f"{name} listening on {port}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    finally:
        server.server_close()
        ops.server_close()
        print(f"{name} stopped", flush=True)
'''


@pytest.fixture(scope="module")
def fake_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fakesvc")
    package = root / "o2cfake"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "common.py").write_text(FAKE_COMMON)
    for name in SERVICES:
        (package / name).mkdir()
        (package / name / "__init__.py").write_text("")
        (package / name / "__main__.py").write_text(f"from o2cfake.common import main\nmain({name!r})\n")
    return root


def service_ports() -> dict[str, int]:
    return dict(zip(SERVICES, broker.free_ports(len(SERVICES)), strict=True))


def make_supervisor(data_dir: Path, fake_path: Path, **options: object) -> Supervisor:
    settings: dict[str, object] = {
        "ports": service_ports(),
        "preferred_broker_port": None,  # never 9092 in tests: parallel runs would race for it
        "module_template": "o2cfake.{name}",
        "python_path": [fake_path],
        "admin_token": "test-admin-token",
        "stop_timeout": 5.0,
        "start_timeout": 20.0,
        **options,
    }
    return Supervisor(data_dir, **settings)  # type: ignore[arg-type]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def health(client: httpx.Client, url: str) -> dict[str, str]:
    response = client.get(f"{url}/health")
    assert response.status_code == 200
    body: dict[str, str] = response.json()
    return body


@pytest.fixture
def no_env_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("O2C_ADMIN_TOKEN", raising=False)
    yield


# --------------------------------------------------------------------------- admin token


def test_token_file_created_0600_and_reused(tmp_path: Path, no_env_token: None) -> None:
    data_dir = tmp_path / "data"
    token, path = resolve_admin_token(data_dir)
    assert path == data_dir / "admin-token"
    assert len(token) >= 40
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text().strip() == token

    again, again_path = resolve_admin_token(data_dir)
    assert (again, again_path) == (token, path)


def test_token_created_0600_even_with_permissive_umask(tmp_path: Path, no_env_token: None) -> None:
    previous = os.umask(0)
    try:
        _, path = resolve_admin_token(tmp_path)
    finally:
        os.umask(previous)
    assert path is not None
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_env_token_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "admin-token").write_text("from-file\n")
    monkeypatch.setenv("O2C_ADMIN_TOKEN", "from-env")
    assert resolve_admin_token(tmp_path) == ("from-env", None)
    monkeypatch.delenv("O2C_ADMIN_TOKEN")
    assert resolve_admin_token(tmp_path) == ("from-file", tmp_path / "admin-token")


def test_default_ports_and_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("O2C_CREDIT_PORT", "9303")
    sup = Supervisor(tmp_path, admin_token="x")
    assert sup.ports == {**DEFAULT_PORTS, "credit": 9303}
    assert sup.urls()["partners"] == "http://127.0.0.1:8101"
    based = Supervisor(tmp_path, admin_token="x", base_port=20000, ports={"rebates": 21000}, host="0.0.0.0")
    assert based.ports["partners"] == 20000
    assert based.ports["projections"] == 20005
    assert based.ports["rebates"] == 21000
    assert based.urls()["orders"] == "http://127.0.0.1:20001"
    with pytest.raises(ValueError):
        Supervisor(tmp_path, admin_token="x", ports={"billing": 1})


# --------------------------------------------------------------------------- supervisor


def test_starts_broker_and_services_then_stops_everything(
    tmp_path: Path, fake_path: Path, no_env_token: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("O2C_DATABASE_URL", "postgresql://inherited/should-not-leak")
    data_dir = tmp_path / "data"
    sup = make_supervisor(data_dir, fake_path, admin_token=None)
    assert sup.admin_token_path == data_dir / "admin-token"
    try:
        sup.start()
        pids = sup.pids()
        assert set(pids) == {*SERVICES, "broker"}
        assert sup.bootstrap.startswith("127.0.0.1:")
        assert (data_dir / "broker.port").read_text().strip() == sup.bootstrap.rsplit(":", 1)[1]
        with httpx.Client(trust_env=False, timeout=2) as client:
            for name, url in sup.urls().items():
                info = health(client, url)
                assert info["name"] == name
                assert info["pid"] == pids[name]
                assert info["O2C_DATA_DIR"] == str(data_dir.resolve())
                assert info["O2C_KAFKA_BOOTSTRAP"] == sup.bootstrap
                assert info["O2C_ADMIN_TOKEN"] == sup.admin_token
                assert info["O2C_EMBEDDED"] == "1"
                assert info["O2C_HOST"] == "127.0.0.1"
                assert info[f"O2C_{name.upper()}_PORT"] == str(sup.ports[name])
                assert "O2C_DATABASE_URL" not in info
            for name in SERVICES:
                assert (data_dir / "logs" / f"{name}.log").read_text().count("listening on") == 1
            assert (data_dir / "logs" / "broker.log").exists()

            old_pid = pids["credit"]
            sup.restart_service("credit")
            assert health(client, sup.urls()["credit"])["pid"] != old_pid
            assert not alive(old_pid)
            pids = sup.pids()
    finally:
        started = time.monotonic()
        codes = sup.stop()
        took = time.monotonic() - started
    assert codes == {**dict.fromkeys(SERVICES, 0), "broker": codes["broker"]}
    assert took < 5, f"stop took {took:.1f}s"
    assert sup.pids() == {}
    for name, pid in pids.items():
        assert not alive(pid), f"{name} (pid {pid}) still running after stop()"
    assert "credit stopped" in (data_dir / "logs" / "credit.log").read_text()
    assert sup.stop() == {}  # idempotent

    # A second run on the same data dir reuses the remembered broker port and the token.
    again = make_supervisor(data_dir, fake_path, admin_token=None)
    assert again.admin_token == sup.admin_token
    try:
        again.start()
        assert again.bootstrap == f"127.0.0.1:{(data_dir / 'broker.port').read_text().strip()}"
    finally:
        again.stop()


def test_crashing_service_reports_log_tail_and_cleans_up(tmp_path: Path, fake_path: Path) -> None:
    sup = make_supervisor(tmp_path, fake_path, extra_env={"FAKE_CRASH": "delivery"})
    spawned: list[int] = []
    original_spawn = sup._spawn

    def recording_spawn(name: str, why: str) -> None:
        original_spawn(name, why)
        spawned.append(sup._procs[name].pid)

    sup._spawn = recording_spawn  # type: ignore[method-assign]
    with pytest.raises(ServiceStartError) as caught:
        sup.start()
    message = str(caught.value)
    assert "delivery exited with code 3" in message
    assert "boom: delivery cannot open its database" in message
    assert str(tmp_path / "logs" / "delivery.log") in message
    assert len(spawned) == len(SERVICES)
    assert sup.pids() == {}
    for pid in spawned:
        assert not alive(pid)


def test_busy_port_and_second_supervisor_refused(tmp_path: Path, fake_path: Path) -> None:
    import socket

    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = {**service_ports(), "orders": blocker.getsockname()[1]}
        busy = make_supervisor(tmp_path, fake_path, ports=taken)
        with pytest.raises(SupervisorError, match=r"orders \(\d+\)"):
            busy.start()
    first = make_supervisor(tmp_path, fake_path)  # its free ports picked just before it starts
    try:
        first.start()
        with pytest.raises(SupervisorError, match="in use by another"):
            make_supervisor(tmp_path, fake_path).start()
    finally:
        first.stop()


def test_external_kafka_starts_no_broker(tmp_path: Path, fake_path: Path, broker_bootstrap: str) -> None:
    sup = make_supervisor(tmp_path, fake_path, kafka=broker_bootstrap, create_topics=False,
                          database_url="postgresql://o2c:secret@db:5432/o2c")
    with sup:
        assert "broker" not in sup.pids()
        assert sup.bootstrap == broker_bootstrap
        with httpx.Client(trust_env=False, timeout=2) as client:
            info = health(client, sup.urls()["orders"])
        assert info["O2C_KAFKA_BOOTSTRAP"] == broker_bootstrap
        assert info["O2C_DATABASE_URL"] == "postgresql://o2c:secret@db:5432/o2c"
        assert "O2C_EMBEDDED" not in info
    assert sup.pids() == {}


def test_inconsistent_kafka_settings_stop_o2c_up_before_any_service(
    tmp_path: Path, fake_path: Path, broker_bootstrap: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("O2C_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")  # and no credentials
    with pytest.raises(SupervisorError, match="O2C_KAFKA_SASL_USERNAME"):
        make_supervisor(tmp_path, fake_path, kafka=broker_bootstrap)
    assert not (tmp_path / "logs").exists()  # nothing was started


def test_check_restarts_a_dead_service(tmp_path: Path, fake_path: Path) -> None:
    with make_supervisor(tmp_path, fake_path) as sup:
        victim = sup.pids()["rebates"]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 5
        events: list[str] = []
        while not events and time.monotonic() < deadline:
            events = sup.check()
            time.sleep(0.05)
        assert events and events[0].startswith("rebates exited with code -9")
        sup._wait_healthy(["rebates"])
        assert sup.pids()["rebates"] != victim

        # The embedded broker comes back (empty) on the same port, so services keep their bootstrap.
        bootstrap, broker_pid = sup.bootstrap, sup.pids()["broker"]
        os.killpg(broker_pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        events = []
        while not events and time.monotonic() < deadline:
            events = sup.check()
            time.sleep(0.05)
        assert len(events) == 1 and events[0].startswith("broker exited with code -9"), events
        assert sup.bootstrap == bootstrap
        assert sup.pids()["broker"] != broker_pid


def test_up_command_runs_until_sigterm(tmp_path: Path, fake_path: Path) -> None:
    """The blocking ``o2c up`` prints the URLs, runs, and stops cleanly (exit 0) on SIGTERM."""
    ports = service_ports()
    script = textwrap.dedent(
        f"""
        from pathlib import Path
        from o2c.supervisor import up_command
        up_command(Path({str(tmp_path / "data")!r}), None, None, "127.0.0.1", options={{
            "ports": {ports!r}, "module_template": "o2cfake.{{name}}",
            "python_path": [{str(fake_path)!r}], "preferred_broker_port": None}})
        """
    )
    env = {**os.environ, "COLUMNS": "200", "TERM": "dumb"}
    env.pop("O2C_ADMIN_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "Ctrl-C" in line:
                break
        text = "".join(output)
        assert "Ctrl-C" in text, text
        for name, port in ports.items():
            assert name in text
            assert f"http://127.0.0.1:{port}" in text
        assert str(tmp_path / "data" / "admin-token") in text
        token = (tmp_path / "data" / "admin-token").read_text().strip()
        assert token not in text
        with httpx.Client(trust_env=False, timeout=2) as client:
            pids = [health(client, f"http://127.0.0.1:{port}")["pid"] for port in ports.values()]
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, "".join(output) + rest
    assert "stopped." in rest
    for pid in pids:
        assert not alive(pid)


def test_crash_loop_backs_off_and_the_others_keep_serving(tmp_path: Path, fake_path: Path) -> None:
    """A service that crashes at every start is retried with growing waits, never stopping the
    system; once its cause is gone it comes back and stays up."""
    policy = RestartPolicy(base_s=0.2, cap_s=0.8, stable_s=4.0)  # a crash at start takes far less
    with make_supervisor(tmp_path, fake_path, restart_policy=policy) as sup:
        others = {name: pid for name, pid in sup.pids().items() if name != "delivery"}
        spawned: list[float] = []
        original_spawn = sup._spawn

        def recording_spawn(name: str, why: str) -> None:
            original_spawn(name, why)
            if name == "delivery":
                spawned.append(time.monotonic())

        sup._spawn = recording_spawn  # type: ignore[method-assign]
        (tmp_path / "crash-delivery").touch()  # from now on delivery dies at every start
        os.kill(sup.pids()["delivery"], signal.SIGKILL)

        events: list[str] = []
        deadline = time.monotonic() + 20
        while len(spawned) < 6 and time.monotonic() < deadline:
            events += sup.check()
            time.sleep(0.02)
        assert len(spawned) >= 6, events
        delays = [float(event.split("restarting it in ")[1].split("s")[0])
                  for event in events if "restarting it in" in event]
        assert delays[:3] == [0.2, 0.4, 0.8] and set(delays[3:]) <= {0.8}, events  # doubling, capped
        waits = [later - earlier for earlier, later in itertools.pairwise(spawned)]
        assert all(wait >= delay for wait, delay in zip(waits, delays, strict=False)), (waits, delays)
        assert "crash loop" in (tmp_path / "logs" / "delivery.log").read_text()

        status = sup.status()
        assert status["delivery"]["restarts"] >= 6
        assert status["delivery"]["crashes_in_a_row"] >= 5
        assert status["delivery"]["last_exit_code"] == 3
        assert {status[name]["state"] for name in others} == {"running"}
        assert {name: pid for name, pid in sup.pids().items() if name != "delivery"} == others
        with httpx.Client(trust_env=False, timeout=2) as client:
            for name in others.keys() - {"broker"}:
                assert health(client, sup.urls()[name])["pid"] == others[name]

            (tmp_path / "crash-delivery").unlink()  # the cause is gone
            # A child spawned before the unlink may still be starting and will crash: wait for
            # one spawned after it.
            spawned_before_fix = len(spawned)
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                sup.check()
                if len(spawned) > spawned_before_fix and sup.status()["delivery"]["state"] == "running":
                    break
                time.sleep(0.02)
            sup._wait_healthy(["delivery"])
            healthy_pid = sup.pids()["delivery"]
            stable_until = time.monotonic() + policy.stable_s + 0.2
            while time.monotonic() < stable_until:
                assert sup.check() == []
                time.sleep(0.05)
            assert health(client, sup.urls()["delivery"])["pid"] == healthy_pid
        assert sup.status()["delivery"] == {"state": "running", "pid": healthy_pid,
                                            "restarts": len(spawned), "crashes_in_a_row": 0,
                                            "last_exit_code": 3, "restart_in_s": None}


def test_data_dir_is_private(tmp_path: Path, fake_path: Path) -> None:
    """Directories 0700; databases (with -wal/-shm), logs, the token and the port file 0600,
    new ones created so and old ones (from a version that left them 0644) tightened at start."""
    data_dir = tmp_path / "data"
    (data_dir / "logs").mkdir(parents=True)
    data_dir.chmod(0o755)
    (data_dir / "logs").chmod(0o755)
    old_files = [data_dir / "orders.db", data_dir / "orders.db-wal", data_dir / "orders.db-shm",
                 data_dir / "logs" / "orders.log", data_dir / "admin-token", data_dir / "audit-key"]
    for path in old_files:
        path.write_text("x\n")
        path.chmod(0o644)
    (data_dir / "notes.txt").write_text("the user's own file")
    (data_dir / "notes.txt").chmod(0o644)

    previous = os.umask(0o022)
    try:
        with make_supervisor(data_dir, fake_path, admin_token=None):
            created = [data_dir / "broker.port", data_dir / "supervisor.lock",
                       *(data_dir / "logs" / f"{name}.log" for name in [*SERVICES, "broker"])]
            for path in [*old_files, *created]:
                assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
            for path in (data_dir, data_dir / "logs"):
                assert stat.S_IMODE(path.stat().st_mode) == 0o700, path
            assert stat.S_IMODE((data_dir / "notes.txt").stat().st_mode) == 0o644
    finally:
        os.umask(previous)


def test_children_get_a_private_umask(tmp_path: Path, fake_path: Path) -> None:
    """What a service creates itself (its SQLite file, -wal, -shm) is private too."""
    with make_supervisor(tmp_path, fake_path) as sup:
        pid = sup.pids()["credit"]
        status = Path(f"/proc/{pid}/status").read_text()
    assert "Umask:\t0077" in status


def test_the_ports_picked_for_one_system_are_all_different(
        tmp_path: Path, fake_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A free port stays free until its process binds it, so the ops ports picked after the
    services' must skip those: from 12 ports, 6 services and 6 ops ports take all 12."""
    low = 20_000 + 500 * (os.getpid() % 20)  # workers pick from different stretches
    monkeypatch.setattr(broker, "_LISTEN_PORTS", range(low, low + 12))
    sup = make_supervisor(tmp_path, fake_path, ports=service_ports())
    handed_out = [*sup.ports.values(), *sup.ops_ports.values()]
    assert len(set(handed_out)) == len(handed_out) == 2 * len(SERVICES)
    assert set(broker.free_ports(3, taken=handed_out)).isdisjoint(handed_out)
