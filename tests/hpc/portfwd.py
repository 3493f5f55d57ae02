#!/usr/bin/python3
"""Relays loopback TCP ports of the host into the harness's node network namespaces.

    portfwd.py --netns FILE [--netns FILE ...] PORT [PORT ...]

The fixture registry listens on the host's 127.0.0.1 only, and a Slurm task runs in its
node's network namespace, where 127.0.0.1 is another loopback.  This one process opens a
listening socket on 127.0.0.1:PORT inside every namespace (setns around socket creation: a
socket stays in the namespace it was made in) and relays each connection to the same port of
the host's loopback, so a task reaches the registry at the address the tests already use.
Single-threaded (setns changes the calling thread only); runs until killed.
"""
import argparse
import ctypes
import os
import selectors
import socket
import sys

CLONE_NEWNET = 0x40000000
libc = ctypes.CDLL(None, use_errno=True)


def setns(fd):
    if libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, "setns: " + os.strerror(err))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--netns", action="append", required=True)
    ap.add_argument("ports", nargs="+", type=int)
    args = ap.parse_args()

    sel = selectors.DefaultSelector()
    host = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    for ns in args.netns:
        fd = os.open(ns, os.O_RDONLY | os.O_CLOEXEC)
        setns(fd)
        os.close(fd)
        try:
            for port in args.ports:
                ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                ls.bind(("127.0.0.1", port))
                ls.listen(128)
                ls.setblocking(False)
                sel.register(ls, selectors.EVENT_READ, ("listen", port))
        finally:
            setns(host)
    print("ready", flush=True)

    peers = {}

    def close(s):
        p = peers.pop(s, None)
        for x in (s, p):
            if x is None:
                continue
            try:
                sel.unregister(x)
            except (KeyError, ValueError):
                pass
            peers.pop(x, None)
            x.close()

    while True:
        for key, _ in sel.select():
            s = key.fileobj
            kind = key.data[0]
            if kind == "listen":
                try:
                    c, _ = s.accept()
                except BlockingIOError:
                    continue
                try:
                    u = socket.create_connection(("127.0.0.1", key.data[1]))
                except OSError:
                    c.close()
                    continue
                c.setblocking(True)
                u.setblocking(True)
                peers[c] = u
                peers[u] = c
                sel.register(c, selectors.EVENT_READ, ("relay",))
                sel.register(u, selectors.EVENT_READ, ("relay",))
                continue
            try:
                data = s.recv(65536)
            except OSError:
                data = b""
            if not data:
                close(s)
                continue
            try:
                peers[s].sendall(data)
            except (OSError, KeyError):
                close(s)


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(0)
