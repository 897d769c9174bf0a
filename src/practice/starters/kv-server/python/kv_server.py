"""Your key-value server, for the `kv-server` step (lesson 05).

Read first: the book's "The key-value protocol", and "Lesson 05: a key-value server", sections
"The code" and "What goes wrong, and how to see it". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
    workbook check kv-server -- python3 kv_server.py --port {port}
Check it again on every save:
    workbook check --watch kv-server -- python3 kv_server.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    kv-server: python3 kv_server.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket

MAX_LINE = 64 * 1024  # the longest command line accepted, newline included


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65433, help="0 = any free port")
    return parser.parse_args()


def answer(store, line):
    """One command line (its \\n or \\r\\n removed) to one reply line (without its \\n)."""
    raise NotImplementedError(
        "SET key value -> store it, 'OK'; GET key -> the value, or ERROR; DELETE key -> 'OK'; "
        "anything else -> a line starting with ERROR"
    )


def serve(conn, store):
    """Answer every line until the client closes."""
    raise NotImplementedError(
        "loop: data = conn.recv(4096), b'' means the client closed; add it to a buffer; for every "
        "complete line in the buffer (a line can come in pieces, several can come in one recv), "
        "conn.sendall((answer(store, line) + '\\n').encode()); refuse a line longer than MAX_LINE"
    )


def main():
    args = parse_args()
    store = {}  # one store for every client
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR; bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError("conn, addr = listener.accept(); serve(conn, store); conn.close()")


if __name__ == "__main__":
    main()
