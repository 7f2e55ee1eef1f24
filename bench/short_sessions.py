"""Short TCP sessions for bench/l4-instructions.sh: PORT SESSIONS [PARALLEL]. Each session
connects, sends one GET with `Connection: close` and reads to the end; PARALLEL threads
(default 8) share the sessions. Exits 1 if an answer is not a 200."""
import socket
import sys
import threading

port, sessions = int(sys.argv[1]), int(sys.argv[2])
parallel = int(sys.argv[3]) if len(sys.argv) > 3 else 8
request = b"GET / HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n"
failed = []


def run(count):
    for _ in range(count):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(request)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        if not answer.startswith(b"HTTP/1.1 200"):
            failed.append(answer[:40])


threads = [threading.Thread(target=run, args=(sessions // parallel,)) for _ in range(parallel)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failed:
    print(f"{len(failed)} sessions failed, first: {failed[0]!r}")
    sys.exit(1)
