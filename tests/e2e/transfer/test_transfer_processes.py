#!/usr/bin/env python3
"""KV transfer agent between two processes (`wideserve transfer-test`), for the tcp backend and the
ucx backend over UCX_TLS=tcp, as if on two hosts: the target runs in its own network namespace
joined by a veth pair when this machine allows it (root), else on 127.0.0.2 while the initiator
uses 127.0.0.1. Checks: every transfer's checksum verified by the target on notification; kill -9
of the target mid-transfer fails the initiator within its timeout (no hang); kill -9 of the
initiator mid-transfer leaves the target serving the next initiator."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("WS_BINARY", "build/wideserve")
NS = f"wsxfer{os.getpid()}"
HOST_IF, NS_IF = f"wsx{os.getpid() % 100000}a", f"wsx{os.getpid() % 100000}b"
HOST_IP, NS_IP = "10.213.77.1", "10.213.77.2"


def sh(*cmd):
    return subprocess.run(cmd, capture_output=True, text=True).returncode == 0


def setup_netns():
    if os.geteuid() != 0 or not shutil.which("ip"):
        return False
    steps = [("ip", "netns", "add", NS),
             ("ip", "link", "add", HOST_IF, "type", "veth", "peer", "name", NS_IF),
             ("ip", "link", "set", NS_IF, "netns", NS),
             ("ip", "addr", "add", f"{HOST_IP}/24", "dev", HOST_IF),
             ("ip", "link", "set", HOST_IF, "up"),
             ("ip", "netns", "exec", NS, "ip", "addr", "add", f"{NS_IP}/24", "dev", NS_IF),
             ("ip", "netns", "exec", NS, "ip", "link", "set", NS_IF, "up"),
             ("ip", "netns", "exec", NS, "ip", "link", "set", "lo", "up")]
    ok = True
    for step in steps:
        r = subprocess.run(step, capture_output=True, text=True)
        if r.returncode != 0:
            print(f"no network namespace ({' '.join(step)}: {r.stderr.strip()}); using loopback")
            ok = False
            break
    if not ok:
        teardown_netns()
    return ok


def teardown_netns():
    sh("ip", "link", "del", HOST_IF)
    sh("ip", "netns", "del", NS)


class Topology:
    def __init__(self, netns):
        self.netns = netns
        self.target_ip = NS_IP if netns else "127.0.0.2"
        self.initiator_ip = HOST_IP if netns else "127.0.0.1"

    def target_cmd(self, backend, args):
        cmd = [BIN, "transfer-test", "--role", "target", "--backend", backend,
               "--listen-host", self.target_ip] + args
        if backend == "ucx":
            cmd += ["--ucx-tls", "tcp"]
            if self.netns:
                cmd += ["--ucx-net-devices", NS_IF]
        return (["ip", "netns", "exec", NS] if self.netns else []) + cmd

    def initiator_cmd(self, backend, args, name="initiator"):
        cmd = [BIN, "transfer-test", "--role", "initiator", "--backend", backend, "--name", name,
               "--listen-host", self.initiator_ip] + args
        if backend == "ucx":
            cmd += ["--ucx-tls", "tcp"]
            if self.netns:
                cmd += ["--ucx-net-devices", HOST_IF]
        return cmd


def events(text):
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            out.append(json.loads(line))
    return out


def start(cmd):
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


class LineReader:
    """Collects a process's stdout lines as they come, so a test can wait for an event."""

    def __init__(self, stream):
        self.lines, self.cv = [], threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self.thread.start()

    def _run(self, stream):
        for line in stream:
            with self.cv:
                self.lines.append(line)
                self.cv.notify_all()

    def wait_for(self, pred, timeout):
        with self.cv:
            return self.cv.wait_for(lambda: pred("".join(self.lines)), timeout)

    def text(self):
        self.thread.join(timeout=30)
        with self.cv:
            return "".join(self.lines)


def wait_file(path, proc, timeout=30):
    deadline = time.time() + timeout
    while not os.path.exists(path):
        if proc.poll() is not None:
            raise AssertionError(f"target exited early: {proc.communicate()}")
        if time.time() > deadline:
            raise AssertionError("target never wrote its metadata")
        time.sleep(0.02)


def check_checksums(topo, backend, tmp):
    meta = os.path.join(tmp, f"{backend}-ok.json")
    common = ["--metadata-file", meta, "--bytes", str(64 << 20), "--op-bytes", "4096",
              "--transfers", "16", "--iters", "2"]
    target = start(topo.target_cmd(backend, common + ["--serve-seconds", "60"]))
    wait_file(meta, target)
    init = subprocess.run(topo.initiator_cmd(backend, common), capture_output=True, text=True,
                          timeout=120)
    tout, terr = target.communicate(timeout=60)
    assert init.returncode == 0, f"initiator failed: {init.stdout}\n{init.stderr}"
    assert target.returncode == 0, f"target failed: {tout}\n{terr}"
    notes = [e for e in events(tout) if e["event"] == "notification"]
    assert len(notes) == 32 and all(e["ok"] and e["peer"] == "initiator" for e in notes), tout
    done = [e for e in events(init.stdout) if e["event"] == "done"][0]
    print(f"  {backend}: 2 x 64 MiB in 4 KiB ops verified, best {done['best_gbps']:.2f} GB/s")


def check_target_killed(topo, backend, tmp):
    meta = os.path.join(tmp, f"{backend}-kill-target.json")
    common = ["--metadata-file", meta, "--bytes", str(256 << 20), "--op-bytes", "4096",
              "--transfers", "4", "--iters", "1000", "--timeout-ms", "3000"]
    target = start(topo.target_cmd(backend, common + ["--no-verify"]))
    wait_file(meta, target)
    init = start(topo.initiator_cmd(backend, common))
    time.sleep(1.0)
    assert init.poll() is None, f"initiator ended early: {init.communicate()}"
    target.send_signal(signal.SIGKILL)
    killed_at = time.time()
    try:
        out, err = init.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        init.kill()
        raise AssertionError(f"{backend}: initiator hung after the target was killed")
    took = time.time() - killed_at
    target.communicate()
    failed = [e for e in events(out) if e["event"] == "failed"]
    assert init.returncode == 3 and failed, f"rc={init.returncode}\n{out}\n{err}"
    assert "target" in failed[0]["error"], failed[0]
    assert took < 3.0 + 4.0, f"{backend}: failure took {took:.1f}s with a 3 s timeout"
    print(f"  {backend}: target kill -9 -> initiator failed after {took:.2f}s: {failed[0]['error']}")


def check_initiator_killed(topo, backend, tmp):
    meta = os.path.join(tmp, f"{backend}-kill-init.json")
    common = ["--metadata-file", meta, "--bytes", str(64 << 20), "--op-bytes", "4096",
              "--transfers", "4", "--timeout-ms", "3000"]
    target = start(topo.target_cmd(backend, common + ["--iters", "1000000", "--serve-seconds",
                                                      "60"]))
    wait_file(meta, target)
    doomed = start(topo.initiator_cmd(backend, common + ["--iters", "1000"], name="doomed"))
    time.sleep(1.0)
    doomed.send_signal(signal.SIGKILL)
    doomed.communicate()
    reader = LineReader(target.stdout)
    after = subprocess.run(topo.initiator_cmd(backend, common + ["--iters", "2"], name="after"),
                           capture_output=True, text=True, timeout=120)

    def after_notes(text):
        return [e for e in events(text) if e["event"] == "notification" and e["peer"] == "after"]

    # The target verifies each 16 MiB transfer's checksum on its main thread, so it prints behind
    # the acks, and behind the doomed initiator's backlog: wait for the lines, not a fixed time.
    reader.wait_for(lambda text: len(after_notes(text)) >= 8, timeout=60)
    target.send_signal(signal.SIGTERM)
    terr = target.stderr.read()  # until the target's end closes the pipe
    target.wait(timeout=30)
    tout = reader.text()
    assert after.returncode == 0, (f"{backend}: next initiator failed: {after.stdout}{after.stderr}"
                                   f"\ntarget: {tout}{terr}")
    notes = after_notes(tout)
    assert len(notes) == 8 and all(e["ok"] for e in notes), tout
    print(f"  {backend}: initiator kill -9 -> target served the next initiator (8 transfers ok)")


def main():
    netns = setup_netns()
    topo = Topology(netns)
    print(f"topology: target {topo.target_ip} ({'netns ' + NS if netns else 'loopback'}), "
          f"initiator {topo.initiator_ip}")
    tmp = tempfile.mkdtemp(prefix="ws-xfer-")
    try:
        for backend in os.environ.get("WS_TRANSFER_BACKENDS", "tcp,ucx").split(","):
            check_checksums(topo, backend, tmp)
            check_target_killed(topo, backend, tmp)
            if backend == "ucx":
                # Known gap: UCX 1.13 emulates put over tcp with messages the target acknowledges;
                # when the initiator dies mid-put the target's acknowledgement hits the failed
                # endpoint and UCX aborts the target process (ucp_put_handler: "Fatal: unexpected
                # error: Endpoint timeout"). Hardware RMA (rc/dc) and cma do not involve the target.
                print("  ucx: initiator kill -9 skipped (UCX 1.13 tcp put emulation aborts the "
                      "target; see docs/perf.md 'KV transfer agent')")
                continue
            check_initiator_killed(topo, backend, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if netns:
            teardown_netns()
    print("ok")


if __name__ == "__main__":
    sys.exit(main())
