#!/usr/bin/env python3
"""QMP side of tests/vm/boot.sh: waits for the guest to power off, reads
the root drive's block statistics, then quits QEMU.

    qmp-wait.py SOCKET TIMEOUT_S DRIVE_ID [QEMU_PID]

QEMU runs with -no-shutdown, so a guest poweroff pauses it instead of
exiting and the counters can still be read. Prints KEY=VALUE lines:
SHUTDOWN_AT (epoch seconds, float), RD_BYTES, RD_OPS, RD_MERGED, WR_BYTES.
Exit 0 after a shutdown, 2 on timeout (stats still printed when possible),
3 if QEMU went away or never opened the socket (QEMU_PID, when given,
ends the wait for the socket as soon as that process is gone).
"""
import os
import json
import socket
import sys
import time


class Qmp:
    def __init__(self, path, deadline, pid):
        self.sock = None
        while time.time() < deadline and alive(pid):
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self.sock = s
                break
            except OSError:
                s.close()
                time.sleep(0.02)
        if self.sock is None:
            raise ConnectionError("no QMP socket")
        self.buf = b""
        self.events = []
        self.recv(deadline)  # greeting
        self.command("qmp_capabilities", deadline)

    def recv(self, deadline):
        """Next message, or None at the deadline."""
        while b"\n" not in self.buf:
            left = deadline - time.time()
            if left <= 0:
                return None
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return None
            if not chunk:
                raise ConnectionError("QEMU closed QMP")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def command(self, name, deadline):
        self.sock.sendall(json.dumps({"execute": name}).encode() + b"\n")
        while True:
            msg = self.recv(deadline)
            if msg is None:
                raise TimeoutError(name)
            if "event" in msg:
                self.events.append(msg)
            elif "return" in msg or "error" in msg:
                return msg

    def wait_event(self, name, deadline):
        for msg in self.events:
            if msg["event"] == name:
                return msg
        while True:
            msg = self.recv(deadline)
            if msg is None:
                return None
            if msg.get("event") == name:
                return msg


def alive(pid):
    if pid is None:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def main():
    path, timeout, drive = sys.argv[1], float(sys.argv[2]), sys.argv[3]
    pid = int(sys.argv[4]) if len(sys.argv) > 4 else None
    deadline = time.time() + timeout
    try:
        qmp = Qmp(path, deadline, pid)
        ev = qmp.wait_event("SHUTDOWN", deadline)
        if ev is not None:
            # The event's own timestamp is QEMU's, taken at the poweroff.
            ts = ev["timestamp"]
            print("SHUTDOWN_AT=%d.%06d" % (ts["seconds"], ts["microseconds"]))
        stats = qmp.command("query-blockstats", time.time() + 5)
        for dev in stats.get("return", []):
            if dev.get("device") == drive or dev.get("qdev", "").endswith(drive):
                st = dev["stats"]
                print("RD_BYTES=%d" % st["rd_bytes"])
                print("RD_OPS=%d" % st["rd_operations"])
                print("RD_MERGED=%d" % st.get("rd_merged", 0))
                print("WR_BYTES=%d" % st["wr_bytes"])
        try:
            qmp.command("quit", time.time() + 5)
        except (ConnectionError, TimeoutError, OSError):
            pass  # QEMU may exit before it answers
    except (ConnectionError, TimeoutError, OSError, ValueError) as e:
        print("QMP_ERROR=%s" % e, flush=True)
        return 3
    return 0 if ev is not None else 2


if __name__ == "__main__":
    sys.exit(main())
