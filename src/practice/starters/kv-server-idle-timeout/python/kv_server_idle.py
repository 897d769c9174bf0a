"""Your key-value server with an idle timeout, for the `kv-server-idle-timeout` step (the exercise
"An idle timeout" of lessons 07 and 08).

Read first: the book's "Lesson 07: many clients at once", section "Exercises", and "Lesson 08:
one thread, many clients", section "Exercises". What the step expects: `workbook list`. Start
from your concurrent-kv-server solution: copy its parts in.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in, and adds
`--idle-timeout 1` itself):
    workbook check kv-server-idle-timeout -- python3 kv_server_idle.py --port {port}
Check it again on every save:
    workbook check --watch kv-server-idle-timeout -- python3 kv_server_idle.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    kv-server-idle-timeout: python3 kv_server_idle.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket
import threading


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value server that closes idle connections")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65433, help="0 = any free port")
    parser.add_argument("--idle-timeout", type=float, default=60.0, help="seconds a client may stay silent")
    return parser.parse_args()


def serve(conn, store, lock, idle_timeout):
    """Answer every line until the client closes, or stays silent for idle_timeout seconds."""
    raise NotImplementedError(
        "conn.settimeout(idle_timeout): a recv that waits longer raises socket.timeout; catch it, log "
        "that the client was idle, and close; the rest as in your concurrent-kv-server"
    )


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
            "conn, addr = listener.accept(); a thread per client: "
            "threading.Thread(target=serve, args=(conn, store, lock, args.idle_timeout), daemon=True).start()"
        )


if __name__ == "__main__":
    main()
