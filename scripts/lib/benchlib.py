"""What scripts/bench-compare, bench-w3 and bench-engines share: running fio and `wal bench`.

Imported from the repository's root (each script `cd`s there): sys.path gets scripts/lib.
"""
import json
import os
import subprocess

# The release build of `wal` (WAL_BIN overrides it, e.g. to try another build).
WAL = os.environ.get("WAL_BIN", ".build/release/wal")


def fio(*args):
    """One fio job with O_DIRECT, never fallocating (so a file written beforehand is rewritten
    in place); returns fio's JSON for the job."""
    out = subprocess.run(["fio", "--output-format=json", "--direct=1", "--fallocate=none", *args],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["jobs"][0]


def wal_bench(directory, seconds, *args):
    """`wal bench --json` from the release build, on `directory` made fresh before and removed
    after; returns the result (the last line of its output)."""
    subprocess.run(["rm", "-rf", directory], check=True)
    out = subprocess.run([WAL, "bench", "--json", "--duration", str(seconds), "--directory", directory,
                          *args], check=True, capture_output=True, text=True).stdout
    subprocess.run(["rm", "-rf", directory], check=True)
    return json.loads(out.strip().splitlines()[-1])


def wal_bench_help():
    """`wal bench --help`: which options this build has."""
    return subprocess.run([WAL, "bench", "--help"], check=True, capture_output=True, text=True).stdout
