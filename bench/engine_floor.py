#!/usr/bin/env python3
"""The floor of `bv up` for scripts/bench-services.sh: a project brought up by calling the
Engine API directly, from one process on one kept-alive connection (what curl in a shell loop
cannot do: it pays a process, and jq another, for every call).

    engine_floor.py SOCKET up|down PREFIX IMAGE CMD-JSON HEALTH-TEST-JSON SERVICE...

up: creates the network PREFIX-net, then for each SERVICE in order creates PREFIX-SERVICE
(the command, a healthcheck every 100 ms, the network with the service as its alias), starts
it and polls its health every 10 ms until it is healthy; prints the milliseconds taken.
down: removes those containers and the network (untimed).
"""
import http.client
import json
import socket
import sys
import time


class UnixConnection(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(conn, method, path, body=None, ok=(200, 201, 204, 304, 404)):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, "/v1.41" + path, json.dumps(body) if body is not None else None, headers)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status not in ok:
        sys.exit(f"engine_floor: {method} {path}: {resp.status} {data[:200]!r}")
    return json.loads(data) if data else None


def up(conn, prefix, image, cmd, test, services):
    start = time.monotonic()
    net = call(conn, "POST", "/networks/create",
               {"Name": prefix + "-net", "CheckDuplicate": True}, ok=(201,))["Id"]
    for svc in services:
        body = {"Image": image, "Cmd": cmd,
                "Healthcheck": {"Test": test, "Interval": 100_000_000, "Retries": 50},
                "HostConfig": {"NetworkMode": net},
                "NetworkingConfig": {"EndpointsConfig": {net: {"Aliases": [svc]}}}}
        cid = call(conn, "POST", f"/containers/create?name={prefix}-{svc}", body, ok=(201,))["Id"]
        call(conn, "POST", f"/containers/{cid}/start", ok=(204,))
        while call(conn, "GET", f"/containers/{cid}/json", ok=(200,))["State"]["Health"]["Status"] != "healthy":
            time.sleep(0.01)
    print("%.1f" % ((time.monotonic() - start) * 1000))


def down(conn, prefix, services):
    for svc in services:
        call(conn, "DELETE", f"/containers/{prefix}-{svc}?force=1")
    call(conn, "DELETE", f"/networks/{prefix}-net")


def main():
    sock, what, prefix, image, cmd, test, *services = sys.argv[1:]
    conn = UnixConnection(sock)
    if what == "up":
        up(conn, prefix, image, json.loads(cmd), json.loads(test), services)
    else:
        down(conn, prefix, services)


if __name__ == "__main__":
    main()
