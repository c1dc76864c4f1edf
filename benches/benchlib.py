"""Helpers the Python bench scripts share: a 3-node cluster of `dkv-node`
processes, RESP encoding and a process's resident set."""

import os
import subprocess


class Cluster:
    """Three `dkv-node`s (N=3, W=2, R=2, fsync never) on 127.0.0.1 ports
    base+1..base+3, data under `work`; `extra` flags go to every node."""

    def __init__(self, binary, work, base, extra=()):
        self.binary, self.work, self.extra = binary, work, list(extra)
        self.conf = os.path.join(work, "cluster.conf")
        with open(self.conf, "w") as out:
            out.write("cluster_name = bench\nreplication_factor = 3\nwrite_quorum = 2\nread_quorum = 2\n")
            for i in (1, 2, 3):
                out.write(f"node {i} 127.0.0.1:{base + i}\n")
        self.nodes = {i: self.start(i) for i in (1, 2, 3)}

    def data_dir(self, i):
        return os.path.join(self.work, f"node-{i}")

    def start(self, i):
        return subprocess.Popen(
            [self.binary, "--node-id", str(i), "--cluster-conf", self.conf,
             "--data-dir", self.data_dir(i), "--fsync", "never", *self.extra],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def restart(self, i):
        self.nodes[i] = self.start(i)

    def kill(self, i):
        self.nodes[i].kill()
        self.nodes[i].wait()

    def stop(self):
        for i in self.nodes:
            self.kill(i)


def encode(*args):
    """One RESP command of byte-string arguments."""
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def rss_mib(proc):
    """The resident set of a running `subprocess.Popen`, in MiB."""
    with open(f"/proc/{proc.pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return int(line.split()[1]) // 1024
    return 0
