"""The gateway never logs query strings (a secret a client puts there) or ``Authorization``,
and serves every service's API docs under ``/docs/<service>/`` without collisions.

The configuration is run for real by nginx when it is installed: a request carrying a
secret in its query and its header leaves neither in the access log nor the error log;
the docs pages of real service apps (served by uvicorn) load completely through it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from libs.messaging.broker import free_port
from libs.runtime.settings import DEFAULT_PORTS
from o2c.apps import service_app
from tests.conftest import integration_unavailable, wait_until

GATEWAY = Path(__file__).resolve().parents[2] / "deploy" / "gateway.conf"
SECRET = "s3cr3t-token-value"


def test_the_log_format_names_no_query_and_no_header() -> None:
    conf = GATEWAY.read_text()
    formats = re.findall(r"log_format\s+(\w+)((?:\s+'[^']*')+)\s*;", conf)
    assert [name for name, _ in formats] == ["o2c_private"]
    (_, fields), = formats
    for leaky in ("$request ", "$request\"", "$request_uri", "$args", "$query_string", "$arg_",
                  "$http_", "$cookie_"):
        assert leaky not in fields, leaky
    assert re.findall(r"^\s*access_log\s+(\S+)(?:\s+(\S+))?;", conf, re.M) == [
        ("/var/log/nginx/access.log", "o2c_private")]


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """deploy/gateway.conf under a real nginx, on a free port, logging into ``tmp_path``."""
    yield from _nginx(tmp_path, {})


def _nginx(tmp_path: Path, upstreams: dict[str, str]) -> Iterator[tuple[str, Path]]:
    """The gateway with each ``service:port`` of ``upstreams`` pointed at the given address."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        integration_unavailable("nginx is not installed (.ci/run installs Debian's nginx-light)")
    port = free_port()
    conf = GATEWAY.read_text().replace("listen 8080;", f"listen 127.0.0.1:{port};")
    for upstream, address in upstreams.items():
        assert upstream in conf, upstream
        conf = conf.replace(upstream, address)
    conf = conf.replace("/var/log/nginx/", f"{tmp_path}/")
    (tmp_path / "gateway.conf").write_text(conf)
    (tmp_path / "nginx.conf").write_text(
        f"pid {tmp_path}/nginx.pid;\nerror_log {tmp_path}/main-error.log;\n"
        "events {}\n"
        f"http {{\n  access_log off;\n  client_body_temp_path {tmp_path};\n"
        f"  proxy_temp_path {tmp_path};\n  include {tmp_path}/gateway.conf;\n}}\n")
    command = [nginx, "-p", str(tmp_path), "-c", str(tmp_path / "nginx.conf")]
    checked = subprocess.run([*command, "-t"], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    process = subprocess.Popen([*command, "-g", "daemon off;"], stderr=subprocess.PIPE)
    try:
        yield f"http://127.0.0.1:{port}", tmp_path
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_secret_in_the_query_or_header_is_never_logged(gateway: tuple[str, Path]) -> None:
    url, logs = gateway
    async with httpx.AsyncClient(base_url=url, timeout=10) as client:
        async def up() -> bool:
            try:
                return (await client.get("/health")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, 10, "nginx to answer")
        headers = {"Authorization": f"Bearer {SECRET}"}
        for path in (f"/dashboard?token={SECRET}", f"/v1/orders?partner_id={SECRET}",
                     f"/nowhere?token={SECRET}"):
            response = await client.get(path, headers=headers)
            assert response.status_code in (404, 502, 503, 504), response.text

    async def logged() -> bool:
        access = (logs / "access.log").read_text() if (logs / "access.log").exists() else ""
        return access.count("\n") >= 4

    await wait_until(logged, 10, "the access log")
    access = (logs / "access.log").read_text()
    assert "GET /dashboard HTTP/1.1" in access and "GET /nowhere HTTP/1.1" in access
    for log in logs.glob("*.log"):
        assert SECRET not in log.read_text(), log.name


DOCS_SERVICES = ("orders", "credit")


@pytest.fixture
async def docs_gateway(tmp_path: Path) -> AsyncIterator[str]:
    """The gateway in front of real orders and credit apps (docs need no database: no lifespan)."""
    servers: list[uvicorn.Server] = []
    upstreams: dict[str, str] = {}
    for name in DOCS_SERVICES:
        port = free_port()
        servers.append(uvicorn.Server(uvicorn.Config(service_app(name), host="127.0.0.1", port=port,
                                                     log_level="warning", lifespan="off")))
        upstreams[f"{name}:{DEFAULT_PORTS[name]}"] = f"127.0.0.1:{port}"
    serving = [asyncio.create_task(server.serve()) for server in servers]

    async def started() -> bool:
        return all(server.started for server in servers)

    nginx = _nginx(tmp_path, upstreams)
    url, _ = next(nginx)
    try:
        await wait_until(started, 20, "the service apps")
        yield url
    finally:
        for server in servers:
            server.should_exit = True
        await asyncio.gather(*serving)
        nginx.close()


async def test_each_services_docs_load_completely_through_the_gateway(docs_gateway: str) -> None:
    async with httpx.AsyncClient(base_url=docs_gateway, timeout=10) as client:
        async def up() -> bool:
            try:
                return (await client.get("/docs/orders/openapi.json")).status_code == 200
            except httpx.TransportError:
                return False

        await wait_until(up, 10, "the docs through nginx")
        for name in DOCS_SERVICES:
            for entry in (f"/docs/{name}/", f"/docs/{name}"):
                page = await client.get(entry)
                assert page.status_code == 200 and "swagger-ui" in page.text, (entry, page.text[:200])
            sources = re.findall(r'(?:src|href)="([^"]+)"', page.text) + re.findall(
                r"url: '([^']+)'", page.text)
            assert f"/docs/{name}/openapi.json" in sources, sources
            assert sources and all(s.startswith(f"/docs/{name}/") for s in sources), sources
            for source in sources:
                loaded = await client.get(source)
                assert loaded.status_code == 200 and loaded.content, source
            document = (await client.get(f"/docs/{name}/openapi.json")).json()
            assert document["info"]["title"] == f"o2c {name}"
            assert "servers" not in document  # "Try it out" calls /v1/... on the gateway itself
        for elsewhere in ("/docs/orders/metrics", "/docs/orders/v1/orders", "/docs/orders/docs/static/",
                          "/docs/nowhere/", "/docs/credit/internal/dead-letters"):
            refused = await client.get(elsewhere)
            assert refused.status_code == 404, elsewhere
            assert refused.headers["content-type"] == "application/problem+json", elsewhere
