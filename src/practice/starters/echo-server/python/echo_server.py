"""Your echo server, for the `echo-server` step (lesson 01).

Read first: the book's "Lesson 01: an echo server", sections "The code" and "What goes wrong,
and how to see it". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
    workbook check echo-server -- python3 echo_server.py --port {port}
Check it again on every save:
    workbook check --watch echo-server -- python3 echo_server.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    echo-server: python3 echo_server.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket


def parse_args():
    parser = argparse.ArgumentParser(description="an echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65432, help="0 = any free port")
    return parser.parse_args()


def serve(conn):
    """Answer every read with b"Echo: " and exactly the bytes read, until the client closes."""
    raise NotImplementedError(
        "loop: data = conn.recv(1024); stop when it is b'' (the client closed); "
        "otherwise conn.sendall(b'Echo: ' + data)"
    )


def main():
    args = parse_args()
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR; bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError("conn, addr = listener.accept(); serve(conn); conn.close()")


if __name__ == "__main__":
    main()
