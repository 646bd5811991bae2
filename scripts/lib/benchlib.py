"""What scripts/bench-compare, bench-w3 and bench-engines share: running fio and `wal bench`.

Imported from the repository's root (each script `cd`s there): sys.path gets scripts/lib.
"""
import json
import subprocess


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
    out = subprocess.run([".build/release/wal", "bench", "--json", "--duration", str(seconds), "--directory", directory,
                          *args], check=True, capture_output=True, text=True).stdout
    subprocess.run(["rm", "-rf", directory], check=True)
    return json.loads(out.strip().splitlines()[-1])
