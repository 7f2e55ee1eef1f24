"""Frame-level HTTP/2 probes of a proxy on 127.0.0.1: malformed requests and floods.

Usage: h2_frames.py PORT [CASE...]. Prints one JSON object: for each case, what the server
did (the response status, the RST_STREAM or GOAWAY error code, whether it closed). Every
case is bounded in time and frames; nothing leaves loopback.
"""
import json
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import hpack
from hyperframe.frame import ContinuationFrame, DataFrame, HeadersFrame

WAIT = 5.0


def connect(port):
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    config = h2.config.H2Configuration(
        client_side=True,
        header_encoding=None,
        validate_outbound_headers=False,
        normalize_outbound_headers=False,
        validate_inbound_headers=False,
    )
    conn = h2.connection.H2Connection(config)
    conn.initiate_connection()
    sock.sendall(conn.data_to_send())
    return sock, conn


def base(method=b"GET", path=b"/"):
    return [(b":method", method), (b":path", path), (b":scheme", b"http"), (b":authority", b"frames.test")]


def outcome(sock, conn, stream_id, until=None):
    """Reads until the stream ends, is reset, or the connection ends; returns what happened."""
    result = {"status": None, "reset": None, "goaway": None, "closed": False, "responses": 0}
    deadline = time.monotonic() + (until or WAIT)
    while time.monotonic() < deadline:
        try:
            sock.settimeout(max(0.05, deadline - time.monotonic()))
            data = sock.recv(65536)
        except socket.timeout:
            break
        except OSError:
            result["closed"] = True
            break
        if not data:
            result["closed"] = True
            break
        try:
            events = conn.receive_data(data)
        except Exception as error:  # the server sent something the client library refuses
            result["client_error"] = type(error).__name__
            break
        for event in events:
            if isinstance(event, h2.events.ResponseReceived):
                result["responses"] += 1
                if event.stream_id == stream_id:
                    result["status"] = int(dict(event.headers)[b":status"])
            elif isinstance(event, h2.events.StreamReset) and event.stream_id == stream_id:
                result["reset"] = int(event.error_code)
            elif isinstance(event, h2.events.ConnectionTerminated):
                result["goaway"] = int(event.error_code)
        try:
            pending = conn.data_to_send()
            if pending:
                sock.sendall(pending)
        except OSError:
            result["closed"] = True
            break
        done = result["reset"] is not None or result["goaway"] is not None
        if done or (result["status"] is not None and stream_id in ended(events)):
            break
    sock.close()
    return result


def ended(events):
    return {e.stream_id for e in events if isinstance(e, h2.events.StreamEnded)}


def send_headers(headers, end_stream=True, port=None):
    sock, conn = connect(port)
    conn.send_headers(1, headers, end_stream=end_stream)
    sock.sendall(conn.data_to_send())
    return sock, conn


def case_ok(port):
    sock, conn = send_headers(base(), port=port)
    return outcome(sock, conn, 1)


def malformed(extra, port, headers=None):
    sock, conn = send_headers(headers or base() + extra, port=port)
    return outcome(sock, conn, 1)


def case_content_length_mismatch(port):
    sock, conn = send_headers(base(b"POST") + [(b"content-length", b"10")], end_stream=False, port=port)
    conn.send_data(1, b"12345", end_stream=True)
    sock.sendall(conn.data_to_send())
    return outcome(sock, conn, 1)


def case_rapid_reset(port):
    sock, conn = connect(port)
    for i in range(500):
        stream_id = 1 + 2 * i
        conn.send_headers(stream_id, base(path=b"/reset"), end_stream=True)
        conn.reset_stream(stream_id)
    try:
        sock.sendall(conn.data_to_send())
    except OSError:
        return {"closed": True, "goaway": None, "reset": None, "status": None, "responses": 0}
    return outcome(sock, conn, 999, until=3.0)


def raw_frames(port, frames):
    sock, conn = connect(port)
    for frame in frames:
        sock.sendall(frame.serialize())
    return sock, conn


def case_continuation_flood(port):
    encoder = hpack.Encoder()
    block = encoder.encode(base())
    headers = HeadersFrame(1, block)
    headers.flags.add("END_STREAM")
    junk = b"\x40\x05x-pad\x7f\x81\x7f" + b"a" * 16000  # literal fields, never ending
    frames = [headers] + [ContinuationFrame(1, junk) for _ in range(200)]
    try:
        sock, conn = raw_frames(port, frames)
    except OSError:
        return {"closed": True, "goaway": None, "reset": None, "status": None, "responses": 0}
    return outcome(sock, conn, 1)


def case_hpack_bomb(port):
    # One large field enters the dynamic table; every later reference costs one byte on the
    # wire and 4 KB once decoded.
    headers = base() + [(b"x-bomb", b"A" * 4000)] * 2000
    encoder = hpack.Encoder()
    encoder.header_table_size = 4096 * 2
    block = encoder.encode(headers)
    frame = HeadersFrame(1, block)
    frame.flags.add("END_STREAM")
    frame.flags.add("END_HEADERS")
    try:
        sock, conn = raw_frames(port, [frame])
    except OSError:
        return {"closed": True, "goaway": None, "reset": None, "status": None, "responses": 0}
    return outcome(sock, conn, 1)


def case_empty_data_flood(port):
    sock, conn = send_headers(base(b"POST"), end_stream=False, port=port)
    try:
        for _ in range(20000):
            sock.sendall(DataFrame(1, b"").serialize())
    except OSError:
        return {"closed": True, "goaway": None, "reset": None, "status": None, "responses": 0}
    return outcome(sock, conn, 1)


def case_ping_flood(port):
    sock, conn = connect(port)
    try:
        for i in range(20000):
            conn.ping(i.to_bytes(8, "big"))
            if i % 1000 == 999:
                sock.sendall(conn.data_to_send())
        conn.send_headers(1, base(), end_stream=True)
        sock.sendall(conn.data_to_send())
    except OSError:
        return {"closed": True, "goaway": None, "reset": None, "status": None, "responses": 0}
    return outcome(sock, conn, 1)


def case_settings_flood(port):
    sock, conn = connect(port)
    try:
        for i in range(20000):
            conn.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 100 + i % 7})
            if i % 1000 == 999:
                sock.sendall(conn.data_to_send())
        conn.send_headers(1, base(), end_stream=True)
        sock.sendall(conn.data_to_send())
    except Exception:
        return {"closed": True, "goaway": None, "reset": None, "status": None, "responses": 0}
    return outcome(sock, conn, 1)


CASES = {
    "ok": case_ok,
    "connection_header": lambda p: malformed([(b"connection", b"keep-alive")], p),
    "keep_alive_header": lambda p: malformed([(b"keep-alive", b"5")], p),
    "te_gzip": lambda p: malformed([(b"te", b"gzip")], p),
    "transfer_encoding": lambda p: malformed([(b"transfer-encoding", b"chunked")], p),
    "upgrade_header": lambda p: malformed([(b"upgrade", b"websocket")], p),
    "uppercase_name": lambda p: malformed([(b"X-Upper", b"1")], p),
    "crlf_value": lambda p: malformed([(b"x-a", b"a\r\nx-b: c")], p),
    "nul_value": lambda p: malformed([(b"x-a", b"a\x00b")], p),
    "pseudo_after_regular": lambda p: malformed(
        [], p, headers=[(b":method", b"GET"), (b"x-a", b"1"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"t")]
    ),
    "unknown_pseudo": lambda p: malformed([(b":protocol-x", b"1")], p),
    "no_authority": lambda p: malformed([], p, headers=[(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http")]),
    "extended_connect_no_path": lambda p: malformed(
        [], p, headers=[(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"http"), (b":authority", b"t")]
    ),
    "extended_connect_no_scheme": lambda p: malformed(
        [], p, headers=[(b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":path", b"/"), (b":authority", b"t")]
    ),
    "protocol_without_connect": lambda p: malformed([(b":protocol", b"websocket")], p),
    "content_length_mismatch": case_content_length_mismatch,
    "rapid_reset": case_rapid_reset,
    "continuation_flood": case_continuation_flood,
    "hpack_bomb": case_hpack_bomb,
    "empty_data_flood": case_empty_data_flood,
    "ping_flood": case_ping_flood,
    "settings_flood": case_settings_flood,
}


def main():
    port = int(sys.argv[1])
    names = sys.argv[2:] or list(CASES)
    results = {}
    for name in names:
        try:
            results[name] = CASES[name](port)
        except Exception as error:
            results[name] = {"error": f"{type(error).__name__}: {error}"}
    print(json.dumps(results))


if __name__ == "__main__":
    main()
