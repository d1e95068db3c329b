"""TLS (``rediss://``) and Sentinel (``redis+sentinel://``) URLs, against real servers.

Each test starts the redis-server processes it needs (a TLS server with a throwaway CA made by
the ``openssl`` CLI; a primary, a replica and a Sentinel) on free ports and stops them by pid.
The URL parsing and password masking are checked without any server.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis

from gabay.broker import build_broker
from gabay.cluster.connection import (
    SentinelURL,
    connect,
    describe_url,
    parse_sentinel_url,
    tls_options,
)
from gabay.errors import ConfigError
from gabay.settings import Settings, load_settings
from tests.chaos.redis_server import free_port, server_binary, supports_tls
from tests.chaos.sentinel import (
    DATA_PASSWORD,
    SENTINEL_PASSWORD,
    SERVICE,
    ServerProcess,
    Servers,
    in_sync,
    sentinel_knows,
)
from tests.support.polling import wait_for

FAST = {"redis_socket_timeout": 2.0, "redis_connect_timeout": 1.0}


def settings_for(url: str, **overrides: Any) -> Settings:
    return load_settings(redis_url=url, **{**FAST, **overrides})


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    started = Servers(tmp_path / "servers")
    yield started
    started.stop_all()


def round_trip(settings: Settings) -> None:
    """Enqueue one message through gabay's broker on ``settings`` and fetch and ack it."""
    broker = build_broker(settings)
    try:
        queue = f"urls-{uuid.uuid4().hex[:8]}"
        broker.declare_queue(queue)
        sent = broker.enqueue(dramatiq.Message(queue_name=queue, actor_name="probe", args=("hello",),
                                               kwargs={}, options={}))
        consumer = broker.consume(queue, prefetch=1, timeout=100)
        try:
            received = wait_for(lambda: next(consumer), timeout=10, message="the message to arrive")
            assert received.message_id == sent.message_id
            assert received.args == ("hello",)
            consumer.ack(received)
            assert broker.client.hlen(f"{broker.namespace}:{queue}.msgs") == 0
        finally:
            consumer.close()
    finally:
        broker.client.close()


# --- TLS -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Certificates:
    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30)


def _signed(name: str, extensions: str, ca: Path, ca_key: Path, cwd: Path) -> tuple[Path, Path]:
    """A P-256 key and a certificate for it signed by the CA, with these X.509v3 extensions."""
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN=gabay-test-{name}", cwd=cwd)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca), "-CAkey", str(ca_key),
             "-CAcreateserial", "-days", "2", "-sha256", "-out", f"{name}.crt",
             "-extfile", f"{name}.ext", cwd=cwd)
    return cwd / f"{name}.crt", cwd / f"{name}.key"


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    """A throwaway CA, a server certificate for IP 127.0.0.1 only, and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is needed to make test certificates")
    if not supports_tls(server_binary()):
        pytest.skip(f"{server_binary()} was built without TLS (install Debian's redis-server)")
    cwd = tmp_path_factory.mktemp("tls")
    _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-sha256", "-subj", "/CN=gabay-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=cwd)
    ca, ca_key = cwd / "ca.crt", cwd / "ca.key"
    common = ("basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\n"
              "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n")
    server_cert, server_key = _signed(
        "server", common + "extendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n", ca, ca_key, cwd)
    client_cert, client_key = _signed("client", common + "extendedKeyUsage=clientAuth\n", ca, ca_key, cwd)
    return Certificates(ca, server_cert, server_key, client_cert, client_key)


def start_tls_server(servers: Servers, certs: Certificates, *, auth_clients: str = "no") -> ServerProcess:
    """A redis-server that speaks TLS only (``--port 0``) on a free port."""
    port = free_port()
    args = ["--port", "0", "--tls-port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--tls-cert-file", str(certs.server_cert),
            "--tls-key-file", str(certs.server_key), "--tls-ca-cert-file", str(certs.ca),
            "--tls-auth-clients", auth_clients]
    return servers.start(f"tls-{port}", args, port=port, client_options={
        "ssl": True, "ssl_ca_certs": str(certs.ca), "ssl_certfile": str(certs.client_cert),
        "ssl_keyfile": str(certs.client_key)})


@pytest.fixture
def tls_server(servers: Servers, certificates: Certificates) -> ServerProcess:
    return start_tls_server(servers, certificates)


def test_rediss_with_the_ca_setting_verifies_the_server_and_runs_commands_and_scripts(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    settings = settings_for(f"rediss://127.0.0.1:{tls_server.port}/0", redis_tls_ca_file=certificates.ca)
    client = connect(settings)
    try:
        assert client.set("tls:key", "over tls")
        assert client.get("tls:key") == b"over tls"
        script = client.register_script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
        assert script(keys=["tls:counter"], args=[5]) == 5
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["ssl_check_hostname"] is True and kwargs["ssl_cert_reqs"] == "required"
        assert kwargs["socket_keepalive"] is True and kwargs["health_check_interval"] == 15
    finally:
        client.close()
    with tls_server.client() as direct:  # the server has no plain port: that was TLS
        assert direct.get("tls:key") == b"over tls"


def test_rediss_without_the_ca_fails_to_verify_the_server(tls_server: ServerProcess) -> None:
    client = connect(settings_for(f"rediss://127.0.0.1:{tls_server.port}/0"))
    with pytest.raises(redis.ConnectionError, match="certificate verify failed"):
        client.ping()
    client.close()


def test_required_checks_the_host_name_optional_only_the_chain_none_nothing(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    url = f"rediss://localhost:{tls_server.port}/0"  # the certificate names 127.0.0.1 only
    required = connect(settings_for(url, redis_tls_ca_file=certificates.ca))
    with pytest.raises(redis.ConnectionError, match="match"):
        required.ping()
    optional = connect(settings_for(url, redis_tls_ca_file=certificates.ca, redis_tls_verify="optional"))
    assert optional.ping()
    unverified = connect(settings_for(url, redis_tls_verify="none"))
    assert unverified.ping()
    for client in (required, optional, unverified):
        client.close()


def test_tls_options_in_the_query_string_work_too(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    base = f"rediss://127.0.0.1:{tls_server.port}/0"
    with connect(settings_for(f"{base}?ssl_ca_certs={certificates.ca}")) as client:
        assert client.ping()
    with connect(settings_for(f"{base}?ssl_cert_reqs=none")) as client:  # wins over the setting
        assert client.ping()


def test_client_certificates_from_the_settings(servers: Servers, certificates: Certificates) -> None:
    server = start_tls_server(servers, certificates, auth_clients="yes")
    url = f"rediss://127.0.0.1:{server.port}/0"
    anonymous = connect(settings_for(url, redis_tls_ca_file=certificates.ca))
    with pytest.raises(redis.ConnectionError):
        anonymous.ping()
    anonymous.close()
    with connect(settings_for(url, redis_tls_ca_file=certificates.ca,
                              redis_tls_cert_file=certificates.client_cert,
                              redis_tls_key_file=certificates.client_key)) as client:
        assert client.ping()


def test_a_message_goes_through_the_broker_over_tls(
    tls_server: ServerProcess, certificates: Certificates
) -> None:
    round_trip(settings_for(f"rediss://127.0.0.1:{tls_server.port}/0", redis_tls_ca_file=certificates.ca))


def test_missing_or_incomplete_tls_files_are_configuration_errors(tmp_path: Path) -> None:
    url = "rediss://127.0.0.1:6390/0"
    with pytest.raises(ConfigError, match=r"REDIS_TLS_CA_FILE: no such file"):
        tls_options(settings_for(url, redis_tls_ca_file=tmp_path / "missing.crt"), url)
    key = tmp_path / "client.key"
    key.write_text("not used")
    with pytest.raises(ConfigError, match="REDIS_TLS_KEY_FILE is set without REDIS_TLS_CERT_FILE"):
        connect(settings_for(url, redis_tls_key_file=key))


def test_tls_settings_are_validated_and_the_sentinel_password_is_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("REDIS_TLS_VERIFY", "sometimes")
    with pytest.raises(ConfigError, match="REDIS_TLS_VERIFY"):
        load_settings()
    monkeypatch.setenv("REDIS_TLS_VERIFY", "none")
    monkeypatch.setenv("REDIS_SENTINEL_PASSWORD", "hunter2-sentinel")
    settings = load_settings()
    assert settings.redis_tls_verify == "none"
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.model_dump_json()
    assert json.loads(settings.model_dump_json())["redis_sentinel_password"] == "**********"


# --- Sentinel -----------------------------------------------------------------------------


def sentinel_url(sentinel: ServerProcess, db: int = 0) -> str:
    return f"redis+sentinel://127.0.0.1:{sentinel.port}/{SERVICE}/{db}"


def sentinel_settings(sentinel: ServerProcess, **overrides: Any) -> Settings:
    return settings_for(sentinel_url(sentinel), redis_password=DATA_PASSWORD,
                        redis_sentinel_password=SENTINEL_PASSWORD, **overrides)


def test_a_sentinel_url_reaches_the_primary_and_carries_the_broker(servers: Servers) -> None:
    primary = servers.primary()
    sentinel = servers.sentinel(primary)
    client = connect(sentinel_settings(sentinel))
    try:
        assert client.set("ha:key", "via sentinel")
        with primary.client() as direct:
            assert direct.get("ha:key") == b"via sentinel"
        script = client.register_script("return redis.call('GET', KEYS[1])")
        assert script(keys=["ha:key"]) == b"via sentinel"
    finally:
        client.close()
    round_trip(sentinel_settings(sentinel))


def test_the_sentinel_password_is_not_the_data_password(servers: Servers) -> None:
    primary = servers.primary()
    sentinel = servers.sentinel(primary)
    no_sentinel_password = connect(settings_for(sentinel_url(sentinel), redis_password=DATA_PASSWORD))
    with pytest.raises(redis.ConnectionError, match=f"No master found for '{SERVICE}'"):
        no_sentinel_password.ping()
    no_data_password = connect(settings_for(sentinel_url(sentinel),
                                            redis_sentinel_password=SENTINEL_PASSWORD))
    with pytest.raises(redis.AuthenticationError):
        no_data_password.ping()
    url_password = f"redis+sentinel://:{DATA_PASSWORD}@127.0.0.1:{sentinel.port}/{SERVICE}/3"
    with connect(settings_for(url_password, redis_sentinel_password=SENTINEL_PASSWORD)) as client:
        assert client.set("ha:db3", "three")
    with primary.client(db=3) as direct:
        assert direct.get("ha:db3") == b"three"
    for client in (no_sentinel_password, no_data_password):
        client.close()


def test_after_a_failover_the_same_client_writes_to_the_promoted_replica(servers: Servers) -> None:
    primary = servers.primary()
    replica = servers.primary("replica", replica_of=primary)
    wait_for(lambda: in_sync(primary, replica), timeout=10, message="the replica to be in sync")
    sentinel = servers.sentinel(primary)  # after the replica: its first INFO of the primary lists it
    wait_for(lambda: sentinel_knows(sentinel, replica), timeout=12,
             message="the Sentinel to know the replica")
    client = connect(sentinel_settings(sentinel, redis_socket_timeout=1.0, redis_connect_timeout=0.5))
    try:
        assert client.set("ha:before", "written before the failover")
        assert client.execute_command("WAIT", 1, 1000) == 1  # the replica has it

        primary.kill()

        def written() -> bool:
            try:
                return bool(client.set("ha:after", "written after the failover"))
            except redis.RedisError:  # primary gone, no master yet, or the old one still named
                return False

        wait_for(written, timeout=20, interval=0.1, message="a write after the failover")
        with replica.client() as promoted:
            assert promoted.info("replication")["role"] == "master"
            assert promoted.get("ha:after") == b"written after the failover"
            assert promoted.get("ha:before") == b"written before the failover"
        assert client.get("ha:before") == b"written before the failover"
    finally:
        client.close()


# --- parsing and masking ------------------------------------------------------------------


def test_a_sentinel_url_names_the_sentinels_the_service_and_the_database() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:p%40ss@sentinel-a:26380,sentinel-b,[::1]:26381/cache/2")
    assert parsed == SentinelURL(
        sentinels=(("sentinel-a", 26380), ("sentinel-b", 26379), ("::1", 26381)),
        service="cache", db=2, password="p@ss")
    assert "p@ss" not in repr(parsed)
    assert parse_sentinel_url("sentinel://10.0.0.1/mymaster") == SentinelURL(
        sentinels=(("10.0.0.1", 26379),), service="mymaster", db=0)
    assert parse_sentinel_url("redis+sentinel://app:pw@h:1/svc/").username == "app"


@pytest.mark.parametrize(("url", "problem"), [
    ("redis+sentinel://:pw@host:26379", "no service name"),
    ("redis+sentinel://:pw@host:26379/", "no service name"),
    ("redis+sentinel://:pw@host:port/svc", "Sentinel address 1 is not host[:port]"),
    ("redis+sentinel://:pw@a:1,,b:2/svc", "Sentinel address 2 is not host[:port]"),
    ("redis+sentinel://:pw@::1/svc", "Sentinel address 1 is not host[:port]"),
    ("redis+sentinel://:pw@host:70000/svc", "not in 1-65535"),
    ("redis+sentinel://:pw@host/svc/zero", "database after the service name is not a number"),
    ("redis+sentinel://:pw@host/svc/0/extra", "more than /service_name/db"),
    ("redis+sentinel://:pw@host/svc?db=1", "query options are not supported"),
    ("rediss+sentinel://:pw@host/svc", "rediss+sentinel://, is not supported"),
])
def test_a_bad_sentinel_url_is_a_one_line_configuration_error(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        connect(settings_for(url))
    message = str(caught.value)
    assert problem in message
    assert message.startswith("invalid configuration: REDIS_URL: invalid Sentinel URL ")
    assert "\n" not in message
    assert ":pw@" not in message and "***@" in message


def test_a_bad_redis_url_is_a_configuration_error_without_the_password() -> None:
    expected = r"invalid Redis URL http://\*\*\*@host/0: Redis URL must specify"
    with pytest.raises(ConfigError, match=expected) as caught:
        connect(settings_for("http://:hunter2@host/0"))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(("url", "shown"), [
    ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ("redis://:hunter2@redis.internal:6379/0", "redis://***@redis.internal:6379/0"),
    ("rediss://app:hunter2@redis.internal:6380/1", "rediss://***@redis.internal:6380/1"),
    ("redis://:hun@ter/2@host/0", "redis://***@host/0"),
    ("rediss://host/0?password=hunter2&ssl_cert_reqs=none", "rediss://host/0?password=***&ssl_cert_reqs=none"),
    ("redis+sentinel://:hunter2@s1:26379,s2:26379/gabaymaster/0",
     "redis+sentinel://***@s1:26379,s2:26379/gabaymaster/0"),
    ("sentinel://s1/gabaymaster", "sentinel://s1/gabaymaster"),
    ("unix://:hunter2@/run/redis.sock?db=0", "unix://***@/run/redis.sock?db=0"),
    ("unix:///run/gabay/redis.sock?db=0", "unix:///run/gabay/redis.sock?db=0"),
])
def test_describe_url_never_shows_a_password(url: str, shown: str) -> None:
    assert describe_url(url) == shown
