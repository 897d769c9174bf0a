"""Your key-value server that keeps its data, for the `kv-server-persistent` step (the exercise
"Persistence" of lesson 05).

Read first: the book's "Lesson 05: a key-value server", section "Exercises". What the step
expects: `workbook list`. Start from your kv-server solution: copy its parts in.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in, and adds
`--data-file PATH` itself, a file in a fresh folder that does not exist at first):
    workbook check kv-server-persistent -- python3 kv_server_persistent.py --port {port}
Check it again on every save:
    workbook check --watch kv-server-persistent -- python3 kv_server_persistent.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    kv-server-persistent: python3 kv_server_persistent.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import json
import os
import socket


def parse_args():
    parser = argparse.ArgumentParser(description="a key-value server that keeps its store in a file")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65433, help="0 = any free port")
    parser.add_argument("--data-file", default="kv-data.json", help="where the store is kept")
    return parser.parse_args()


def load(path):
    """The store saved in path, or an empty one if there is no such file yet."""
    raise NotImplementedError("if os.path.exists(path): read it (json.load) and return it; else return {}")


def save(store, path):
    """Writes the store to path so that a crash in the middle never leaves half a file."""
    raise NotImplementedError(
        "write json.dumps(store) to path + '.new', then os.replace(path + '.new', path), which is atomic"
    )


def serve(conn, store, data_file):
    """Answer every line until the client closes, saving after every change and before the reply."""
    raise NotImplementedError("as in your kv-server; after a SET or DELETE that changed the store: save(store, data_file)")


def main():
    args = parse_args()
    store = load(args.data_file)
    raise NotImplementedError(
        "listener = socket.socket(); set SO_REUSEADDR (you will bind the same port again after a restart); "
        "bind((args.host, args.port)); listen()"
    )
    host, port = listener.getsockname()
    # The checker waits for this line: the real port (with --port 0 the system picks it), flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError("conn, addr = listener.accept(); serve(conn, store, args.data_file); conn.close()")


if __name__ == "__main__":
    main()
