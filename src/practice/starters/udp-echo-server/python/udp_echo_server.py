"""Your UDP echo server, for the `udp-echo-server` step (lesson 10).

Read first: the book's "Lesson 10: a UDP echo server", sections "The code" (10-udp-echo.md#the-code:
"Bind, and nothing else", "Receive one datagram", "Reply to the sender") and "What goes wrong,
and how to see it" (10-udp-echo.md#what-goes-wrong-and-how-to-see-it). What the step expects:
`workbook list`.

Check it, from this folder (`{port}` is typed as it is; the checker fills it in, and waits until
your program has a UDP socket bound to that port):
    workbook check udp-echo-server -- python3 udp_echo_server.py --port {port}
Check it again on every save:
    workbook check --watch udp-echo-server -- python3 udp_echo_server.py --port {port}
Its line in a class's `workbook-commands.txt` (the book's "Teaching a class"):
    udp-echo-server: python3 udp_echo_server.py --port {port}

Replace every `raise NotImplementedError(...)` with the socket calls it names.
"""
import argparse
import socket

BUFFER = 2048  # at least 1024: the step sends datagrams of up to 1024 bytes


def parse_args():
    parser = argparse.ArgumentParser(description="a UDP echo server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=65440, help="0 = any free port")
    return parser.parse_args()


def main():
    args = parse_args()
    raise NotImplementedError(
        "sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); sock.bind((args.host, args.port)): "
        "no listen, no accept (10-udp-echo.md#bind-and-nothing-else)"
    )
    host, port = sock.getsockname()
    # People (and `workbook check` for TCP steps) read this line: the real port, flushed.
    print(f"listening on {host}:{port}", flush=True)
    while True:
        raise NotImplementedError(
            "data, sender = sock.recvfrom(BUFFER): one whole datagram and who sent it; b'' is an "
            "empty datagram, not the end (10-udp-echo.md#an-empty-datagram-is-not-the-end)"
        )
        raise NotImplementedError(
            "sock.sendto(data, sender): back to the address recvfrom gave, as one datagram; on an "
            "OSError print it and go on (10-udp-echo.md#reply-to-the-sender)"
        )


if __name__ == "__main__":
    main()
