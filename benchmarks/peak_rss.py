"""Runs `aigc ARGS...` in this process and, on exit, writes this process's own peak RSS (VmHWM) to a file.

Why not the kernel's rusage of the child (os.wait4 / `resource.RUSAGE_CHILDREN`)? On Linux a child's
ru_maxrss starts from its parent's high-water mark: exec records the replaced address space's peak in
the process's `maxrss`, and Python's subprocess launches with vfork, whose replaced address space is
the parent's. A benchmark process holding 1.5 GB therefore "measured" every child at >= 1.5 GB (the
2,087 MB of an earlier run). VmHWM belongs to the address space exec created, so it is the child's own.

    python -m benchmarks.peak_rss OUT.json train fashion-dcgan ...
"""
from __future__ import annotations

import atexit
import json
import runpy
import sys
from pathlib import Path


def vm_kb(field: str, status: str = "/proc/self/status") -> int:
    """A `VmXXX:` line of /proc/self/status, in KiB."""
    for line in Path(status).read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in {status}")


def main() -> None:
    out, args = Path(sys.argv[1]), sys.argv[2:]

    def report() -> None:  # atexit runs after `aigc` finished, also when it exits through sys.exit
        try:
            out.write_text(json.dumps({"peak_rss_mb": vm_kb("VmHWM") / 1024, "final_rss_mb": vm_kb("VmRSS") / 1024}))
        except OSError as e:  # never bury aigc's own last line under a traceback of ours
            print(f"peak_rss: cannot write {out}: {e}", file=sys.stderr)

    atexit.register(report)
    sys.argv = ["aigc", *args]
    runpy.run_module("aigc", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
