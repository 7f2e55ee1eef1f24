"""Keep-alive GETs in lockstep for the callgrind scripts: PORT, REQUESTS, then optional extra
header lines ("Name: value"); 8 connections, each sends one request, then each reads its
answer, until REQUESTS are answered. Exits non-zero if an answer is not a 200 or a connection
closes."""
import socket
import sys

port, n, extra = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
conns = [socket.create_connection(("127.0.0.1", port), timeout=30) for _ in range(8)]
head = "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n"
req = (head + "".join(line + "\r\n" for line in extra) + "\r\n").encode()
done = 0
while done < n:
    for c in conns:
        c.sendall(req)
    for c in conns:
        buf = b""
        while not buf.endswith(b"hello, world\n"):
            chunk = c.recv(4096)
            if not chunk:
                raise SystemExit("connection closed")
            buf += chunk
        if not buf.startswith(b"HTTP/1.1 200"):
            raise SystemExit("not a 200: %r" % buf[:80])
    done += len(conns)
