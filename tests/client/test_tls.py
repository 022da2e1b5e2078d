"""TLS when ``ssl`` is set: the client speaks AMQP through a TLS terminator (a self-signed
certificate made with openssl) in front of the simulated node."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading

import pytest

from client import Connection, Producer, Queue


@pytest.fixture
def tls_port(tmp_path, sim_node):
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate (apt-get install openssl)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.2)
    stop = threading.Event()

    def pipe(src, dst):
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.close()
                except OSError:
                    pass

    def serve():
        while not stop.is_set():
            try:
                raw, _ = listener.accept()
            except TimeoutError:
                continue
            try:
                tls = context.wrap_socket(raw, server_side=True)
            except (ssl.SSLError, OSError):
                raw.close()
                continue
            upstream = socket.create_connection((sim_node.host, sim_node.port))
            threading.Thread(target=pipe, args=(tls, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, tls), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join(timeout=2)
    listener.close()


def test_amqps_round_trip(tls_port, uid):
    url = f"amqps://guest:guest@127.0.0.1:{tls_port}//"
    with Connection(url, ssl={"cert_reqs": ssl.CERT_NONE}) as conn:
        queue = Queue(f"tls-{uid}", routing_key=f"tls-{uid}", auto_delete=True, durable=False)
        Producer(conn).publish({"secure": True}, routing_key=f"tls-{uid}", declare=[queue])
        message = queue(conn.default_channel).get(no_ack=True)
        assert message.payload == {"secure": True}
        assert isinstance(conn.connection.transport.sock, ssl.SSLSocket)


def test_tls_with_verification_refuses_a_self_signed_certificate(tls_port):
    conn = Connection(f"amqps://guest:guest@127.0.0.1:{tls_port}//", ssl=True)
    with pytest.raises(ConnectionRefusedError, match="CERTIFICATE_VERIFY_FAILED"):
        conn.connect()
