"""A fake APNs provider API for the push tests: HTTP/2 over TLS (h2).

    fake-apns.py CERT KEY LOG REPLY PORTFILE

Listens on 127.0.0.1 (a free port, written to PORTFILE), logs every
request as one JSON line {method, path, headers, body} to LOG, and
answers each with the JSON in REPLY: {"status", "body", "headers"}, read
again for every request.  It exits when the test that started it is gone.
"""

import fcntl
import json
import time
import os
import socket
import ssl
import sys
import threading

import h2.config
import h2.connection
import h2.events


def reply_of(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {"status": 200, "body": "", "headers": {}}


def log_request(path, req):
    with open(path, "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(json.dumps(req) + "\n")
        fcntl.flock(f, fcntl.LOCK_UN)


def serve(ctx, sock, log, reply):
    try:
        tls = ctx.wrap_socket(sock, server_side=True)
    except (ssl.SSLError, OSError):
        sock.close()
        return

    conn = h2.connection.H2Connection(
        config=h2.config.H2Configuration(client_side=False,
                                         header_encoding="utf-8"))
    conn.initiate_connection()
    tls.sendall(conn.data_to_send())
    streams = {}

    try:
        while True:
            data = tls.recv(65535)
            if not data:
                break
            for ev in conn.receive_data(data):
                if isinstance(ev, h2.events.RequestReceived):
                    streams[ev.stream_id] = {"headers": dict(ev.headers),
                                             "body": b""}
                elif isinstance(ev, h2.events.DataReceived):
                    streams[ev.stream_id]["body"] += ev.data
                    conn.acknowledge_received_data(
                        ev.flow_controlled_length, ev.stream_id)
                elif isinstance(ev, h2.events.StreamEnded):
                    s = streams.pop(ev.stream_id)
                    h = s["headers"]
                    log_request(log, {
                        "method": h.get(":method"), "path": h.get(":path"),
                        "headers": {k: v for k, v in h.items()
                                    if not k.startswith(":")},
                        "body": s["body"].decode("utf-8", "replace"),
                        "at": time.time()})
                    r = reply_of(reply)
                    body = (r.get("body") or "").encode()
                    hdrs = [(":status", str(r.get("status", 200))),
                            ("apns-id", "00000000-0000-0000-0000-000000000001")]
                    hdrs += [(k.lower(), str(v))
                             for k, v in (r.get("headers") or {}).items()]
                    if body:
                        hdrs.append(("content-length", str(len(body))))
                    conn.send_headers(ev.stream_id, hdrs,
                                      end_stream=not body)
                    if body:
                        conn.send_data(ev.stream_id, body, end_stream=True)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    return
            out = conn.data_to_send()
            if out:
                tls.sendall(out)
    except (OSError, ssl.SSLError, h2.exceptions.ProtocolError):
        pass
    finally:
        tls.close()


def main():
    cert, key, log, reply, portfile = sys.argv[1:6]
    parent = os.getppid()

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])

    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    srv.settimeout(1.0)

    with open(portfile + ".tmp", "w") as f:
        f.write(str(srv.getsockname()[1]))
    os.rename(portfile + ".tmp", portfile)

    while os.getppid() == parent:
        try:
            sock, _ = srv.accept()
        except socket.timeout:
            continue
        sock.settimeout(None)
        threading.Thread(target=serve, args=(ctx, sock, log, reply),
                         daemon=True).start()


if __name__ == "__main__":
    main()
