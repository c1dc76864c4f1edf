"""examples/python/cluster.py runs and shows a QUORUM read surviving a
stopped node."""

import os
import subprocess
import sys

EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "..", "examples", "python", "cluster.py")


def test_cluster_example_runs():
    done = subprocess.run([sys.executable, EXAMPLE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after_stop = done.stdout.split("stopped node 3", 1)[1]
    assert "QUORUM user:1   -> b'ada'" in after_stop
    assert "Unavailable" in after_stop
    assert "ALL    user:4   -> b'margaret'" in after_stop
