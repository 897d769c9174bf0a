"""Your key-value server for many clients at once, for the `concurrent-kv-server` step
(lessons 07 and 08).

Read first: the book's "Lesson 07: many clients at once" (a thread per client) or "Lesson 08:
one thread, many clients" (an event loop), sections "The code" and "What goes wrong, and how to
see it". What the step expects: `workbook list`. Start from your kv-server solution.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
    workbook check concurrent-kv-server -- python3 kv_server_threads.py --port {port}
Check it again on every save:
    workbook check --watch concurrent-kv-server -- python3 kv_server_threads.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    concurrent-kv-server: python3 kv_server_threads.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket
import threading

MAX_LINE = 64 * 1024  # the longest command line accepted, newline included


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value server for many clients at once")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65433, help="0 = any free port")
    return parser.parse_args()


def answer(store, lock, line):
    """One command line (its \\n or \\r\\n removed) to one reply line (without its \\n)."""
    raise NotImplementedError(
        "as in your kv-server, but every use of the store inside `with lock:` (other threads use it too)"
    )


def serve(conn, store, lock):
    """Answer every line until the client closes: as in your kv-server."""
    raise NotImplementedError("recv, split into lines, sendall one reply per line; close when recv returns b''")


def main():
    args = parse_args()
    store, lock = {}, threading.Lock()
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR; bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError(
            "conn, addr = listener.accept(); threading.Thread(target=serve, args=(conn, store, lock), "
            "daemon=True).start(): one slow or silent client must hold up nobody else"
        )


if __name__ == "__main__":
    main()
