#!/usr/bin/env python3
"""Counts the system calls of lesson 08 (poll) and lesson 12 (epoll) serving the same work while
1,000 idle clients are connected: `strace -c` on the server, 5,000 round trips from one busy
client. Writes benches/results/idle/strace-08.txt and strace-12.txt, which chapter 12 includes.

    cargo build --release --bins && python3 benches/strace-idle.py

Needs strace (`apt-get install strace`). The counts hardly depend on the machine; the times do.
"""
import os, resource, signal, socket, subprocess, sys, time

IDLE, ROUND_TRIPS = 1000, 5000
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "benches", "results", "idle")

def count(lesson):
    program = os.path.join(ROOT, "target", "release", lesson)
    summary = os.path.join(OUT, f"strace-{lesson[:2]}.txt")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, IDLE + 500), hard))
    server = subprocess.Popen(
        ["strace", "-c", "-o", summary, program, "--quiet", "--port", "0",
         "--max-connections", str(IDLE + 10)],
        stdout=subprocess.PIPE, text=True)
    port = int(server.stdout.readline().rsplit(":", 1)[1])
    idle = []
    for i in range(IDLE):
        idle.append(socket.create_connection(("127.0.0.1", port), timeout=60))
        if i % 500 == 499:  # let the server accept them before the backlog fills
            probe = socket.create_connection(("127.0.0.1", port), timeout=60)
            probe.sendall(b"GET probe\n"); probe.recv(100); probe.close()
    busy = socket.create_connection(("127.0.0.1", port), timeout=60)
    busy.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    started = time.monotonic()
    for i in range(ROUND_TRIPS):
        busy.sendall(b"SET k v\n" if i % 5 == 0 else b"GET k\n")
        if not busy.recv(100).endswith(b"\n"):
            sys.exit("a reply was cut short")
    elapsed = time.monotonic() - started
    # Ctrl-C for the server itself (strace's child); strace writes its summary when it exits.
    with open(f"/proc/{server.pid}/task/{server.pid}/children") as f:
        os.kill(int(f.read().split()[0]), signal.SIGINT)
    server.wait(timeout=30)
    with open(summary) as f:
        text = f.read()
    with open(summary, "w") as f:
        f.write(f"$ strace -c {lesson} (with {IDLE} idle clients; {ROUND_TRIPS} round trips "
                f"from one busy client took {elapsed:.1f} s under strace)\n" + text)
    print(f"wrote {summary}")

for lesson in ["08_kv_server_events", "12_kv_server_epoll"]:
    count(lesson)
