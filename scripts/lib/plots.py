"""Charts for `scripts/bench-compare --plot DIR`, drawn with matplotlib from the raw results
bench-compare saves as DIR/plot-data.json:

  commit-latency-cdf.png   W1 and W2 (64 committers) commit latency against fio's
                           write + fdatasync, every run a line
  commits-per-second.png   W2 commits/s against committers, one line per flush depth
  rollover-timeline.png    W6 per-interval p50 / p99 / max with the segment rollovers

Run on its own to draw the charts again from a saved file:
    python3 scripts/lib/plots.py DIR/plot-data.json DIR
It needs matplotlib (bench-compare installs it into a venv of its own).
"""
import json
import os
import statistics
import sys
import textwrap

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402  (matplotlib's own dependency)
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

DPI = 100
WAL_COLOR, FIO_COLOR = "tab:blue", "tab:orange"
DEPTH_COLORS = ["tab:blue", "tab:green", "tab:purple", "tab:red", "tab:brown"]
TAIL_LIMIT = 0.99999  # the CDF's y axis ends at 99.999 %


def parse_hgrm(text):
    """HdrHistogram's percentile distribution (`wal bench --hgrm`, values in ms) as
    [(fraction, µs)], in order."""
    points = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 4 or line.lstrip().startswith("#"):
            continue
        try:
            value, fraction = float(fields[0]), float(fields[1])
        except ValueError:
            continue  # the header
        points.append((fraction, value * 1000))
    return points


def fio_points(write_percentiles, sync_percentiles):
    """fio's percentiles (ns, keyed "99.900000") of the write's completion latency and of the
    fdatasync after it, summed at each percentile (what a write + fdatasync takes, as the
    table counts it), as [(fraction, µs)]."""
    points = []
    for key, write in write_percentiles.items():
        sync = sync_percentiles.get(key, 0) if sync_percentiles else 0
        points.append((float(key) / 100, (write + sync) / 1000))
    return sorted(points)


def _tail_axis(ax):
    """A y axis of fractions stretched towards 1 (-log10(1 - p)), so that the tail shows."""
    forward = lambda p: -numpy.log10(1 - numpy.clip(p, 0.0, TAIL_LIMIT))  # noqa: E731
    inverse = lambda y: 1 - 10.0 ** (-numpy.asarray(y))  # noqa: E731
    ax.set_yscale("function", functions=(forward, inverse))
    ax.yaxis.set_major_locator(FixedLocator([0, 0.5, 0.9, 0.99, 0.999, 0.9999, TAIL_LIMIT]))
    ax.yaxis.set_minor_locator(NullLocator())
    ax.yaxis.set_major_formatter(FuncFormatter(lambda p, _: f"{p * 100:g} %"))
    ax.set_ylim(0, TAIL_LIMIT)


def _footer(fig, meta):
    """What was measured, where and when, in small print under the chart; returns the height
    (a fraction of the figure) to leave for it."""
    width = fig.get_size_inches()[0]
    lines = textwrap.wrap(meta.get("footer", ""), width=int(width * 19))
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=7, color="dimgray", ha="left", va="bottom")
    return (0.12 * len(lines) + 0.05) / fig.get_size_inches()[1]


def _step_cdf(points):
    """(x, y) for a CDF drawn from (fraction, µs) points, clipped to the axis."""
    xs = [v for p, v in points if p <= TAIL_LIMIT and v > 0]
    ys = [p for p, v in points if p <= TAIL_LIMIT and v > 0]
    return xs, ys


def latency_cdf(data, path):
    meta, cdf = data["meta"], data["cdf"]
    panels = [(key, panel) for key, panel in cdf.items() if panel["wal"] or panel["fio"]]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.6), squeeze=False)
    for ax, (key, panel) in zip(axes[0], panels):
        for index, text in enumerate(panel["wal"]):
            xs, ys = _step_cdf(parse_hgrm(text))
            ax.plot(xs, ys, color=WAL_COLOR, lw=1.3, alpha=0.8, drawstyle="steps-post",
                    label=f"wal ({len(panel['wal'])} run{'s' if len(panel['wal']) > 1 else ''})" if index == 0 else None)
        for index, run in enumerate(panel["fio"]):
            xs, ys = _step_cdf(fio_points(run["write"], run.get("sync")))
            ax.plot(xs, ys, color=FIO_COLOR, lw=1.3, alpha=0.8, marker=".", ms=3,
                    label=panel["fio_label"] if index == 0 else None)
        ax.set_xscale("log")
        _tail_axis(ax)
        ax.set_xlabel("commit latency (µs, log scale)")
        ax.set_ylabel("commits at or below (percentile)")
        ax.set_title(panel["title"], fontsize=10)
        ax.grid(True, which="major", alpha=0.3)
        ax.grid(True, which="minor", axis="x", alpha=0.1)
        ax.legend(fontsize=8, loc="upper left")
    fig.suptitle("Commit latency distribution: wal vs fio 4 KiB write + fdatasync", fontsize=11)
    fig.tight_layout(rect=(0, _footer(fig, meta), 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def commits_per_second(data, path):
    meta, scaling = data["meta"], data["scaling"]
    fig, ax = plt.subplots(figsize=(7, 4.6))
    for index, series in enumerate(scaling["series"]):
        xs = sorted(int(w) for w in series["rates"])
        rates = [series["rates"][str(x)] for x in xs]
        medians = [statistics.median(r) for r in rates]
        low = [m - min(r) for m, r in zip(medians, rates)]
        high = [max(r) - m for m, r in zip(medians, rates)]
        color = DEPTH_COLORS[index % len(DEPTH_COLORS)]
        ax.errorbar(xs, medians, yerr=[low, high], color=color, marker="o", capsize=3, lw=1.5, label=series["label"])
        if index < 2:  # the first series' values right of its points, the second's left
            for x, m in zip(xs, medians):
                ax.annotate(f"{m / 1000:.1f}k", (x, m), textcoords="offset points", xytext=(7, -10) if index == 0 else (-7, 3),
                            ha="left" if index == 0 else "right", fontsize=7, color=color)
    for threads, rates in sorted(scaling.get("fio", {}).items(), key=lambda kv: int(kv[0])):
        if rates:
            m = statistics.median(rates)
            ax.errorbar([int(threads)], [m], yerr=[[m - min(rates)], [max(rates) - m]], color=FIO_COLOR, marker="s",
                        capsize=3, ls="none", label="fio 4 KiB write + fdatasync, 1 and 64 threads" if threads == "1" else None)
            ax.annotate(f"fio {m / 1000:.1f}k", (int(threads), m), textcoords="offset points", xytext=(-7, -3), fontsize=7,
                        color=FIO_COLOR, ha="right")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.margins(x=0.12, y=0.12)
    ticks = sorted({int(w) for s in scaling["series"] for w in s["rates"]} | {int(t) for t in scaling.get("fio", {})})
    ax.xaxis.set_major_locator(FixedLocator(ticks))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _: f"{x:g}"))
    ax.set_xlabel("concurrent committers (async tasks; fio: threads)")
    ax.set_ylabel("commits/s (log scale; median, bars min–max)")
    ax.set_title(scaling["title"], fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout(rect=(0, _footer(fig, meta), 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def rollover_timeline(data, path):
    meta, timelines = data["meta"], data["timeline"]
    panels = [(label, t) for label, t in timelines.items() if t["entries"]]
    fig, axes = plt.subplots(len(panels), 1, figsize=(9, 2.6 * len(panels) + 0.8), sharex=True, sharey=True, squeeze=False)
    for ax, (label, timeline) in zip(axes[:, 0], panels):
        intervals = [e for e in timeline["entries"] if e["kind"] == "interval"]
        rollovers = [e["at"] for e in timeline["entries"] if e["kind"] == "rollover"]
        for index, at in enumerate(rollovers):
            ax.axvline(at, color="tab:red", lw=0.6, alpha=0.45, label=f"rollover ({len(rollovers)})" if index == 0 else None)
        # The last interval is cut short by the end of the run (a few commits): not drawn.
        length = intervals[0]["end"] - intervals[0]["at"] if intervals else 0
        if len(intervals) > 1 and intervals[-1]["end"] - intervals[-1]["at"] < length / 2:
            intervals = intervals[:-1]
        if intervals:  # one step per interval, a gap where no commit returned
            edges = [intervals[0]["at"]] + [e["end"] for e in intervals]
            for key, color, width in (("max", "gray", 0.8), ("p99", "tab:orange", 1.2), ("p50", "tab:blue", 1.2)):
                ax.stairs([e.get(key, float("nan")) for e in intervals], edges, baseline=None, color=color, lw=width, label=key)
        for index, e in enumerate(e for e in intervals if e["commits"] == 0):
            ax.axvspan(e["at"], e["end"], color="black", alpha=0.25, lw=0,
                       label="no commit returned" if index == 0 else None)
        ax.set_yscale("log")
        ax.set_ylabel("commit latency (µs)")
        ax.set_title(f"{timeline['summary']}; per {round(length * 1000)} ms", fontsize=8)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="upper right", ncol=5)
    axes[-1, 0].set_xlabel("seconds into the run")
    fig.suptitle("W6: 4 KiB commits (1 writer), latency over time across segment rollovers", fontsize=11)
    fig.tight_layout(rect=(0, _footer(fig, meta), 1, 1))
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def render(data, directory):
    os.makedirs(directory, exist_ok=True)
    written = []
    for name, draw, key in (("commit-latency-cdf.png", latency_cdf, "cdf"),
                            ("commits-per-second.png", commits_per_second, "scaling"),
                            ("rollover-timeline.png", rollover_timeline, "timeline")):
        if data.get(key):
            path = os.path.join(directory, name)
            draw(data, path)
            written.append(path)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: plots.py PLOT_DATA.json OUTPUT_DIR")
    with open(sys.argv[1]) as f:
        for path in render(json.load(f), sys.argv[2]):
            print(path)
