"""Your time server, for the `time-server` step (lesson 03).

Read first: the book's "Lesson 03: a time server", sections "The code" and "What goes wrong,
and how to see it". What the step expects: `workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in):
    workbook check time-server -- python3 time_server.py --port {port}
Check it again on every save:
    workbook check --watch time-server -- python3 time_server.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    time-server: python3 time_server.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import datetime
import socket


def parse_args():
    parser = argparse.ArgumentParser(description="a time server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65431, help="0 = any free port")
    return parser.parse_args()


def now():
    """The current time like 2026-11-25T14:03:07+01:00, and a newline."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds") + "\n"


def main():
    args = parse_args()
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR; bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError(
            "conn, addr = listener.accept(); conn.sendall(now().encode()); conn.close(); "
            "an error on one connection must not stop the server"
        )


if __name__ == "__main__":
    main()
