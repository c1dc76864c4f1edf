"""Helpers the Python bench scripts share: RESP encoding and a process's
resident set."""


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
