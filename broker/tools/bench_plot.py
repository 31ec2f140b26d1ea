"""`runnel bench --plot FILE.png`: a latency histogram and a throughput-over-time chart.

matplotlib is optional (``pip install 'runnel[plot]'``): `available` is checked before the
run, the import happens only when the picture is drawn. No pyplot, no global backend: a
bare ``Figure`` saved as PNG by the Agg canvas.
"""
from __future__ import annotations

import importlib.util
from array import array
from typing import Any, Sequence

WIDTH_IN, HEIGHT_IN, DPI = 12.0, 4.5, 100


def available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def plot(path: str, res: dict[str, Any], pub_lat: array, sub_lat: array, pub_at: array,
         sub_at: array) -> None:
    """Write the PNG: latencies (ms, log-spaced bins) on the left, PubAcks and deliveries
    per second over the run on the right."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.ticker import FuncFormatter, NullFormatter

    cfg = res["config"]
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, layout="constrained")
    left, right = fig.subplots(1, 2)
    mode = f"async, window {cfg['window']}" if cfg["async"] else "sync"
    fig.suptitle(f"runnel bench: {cfg['msgs']:,} x {cfg['msg_size']} B, "
                 f"{cfg['publishers']} pub ({mode}), {cfg['subscribers']} sub"
                 + (" (interrupted)" if res["interrupted"] else ""))

    series = [(name, np.frombuffer(data, dtype=np.int64) / 1e6, color)
              for name, data, color in (("publish -> PubAck", pub_lat, "tab:blue"),
                                        ("publish -> delivery", sub_lat, "tab:orange"))
              if len(data)]
    if series:
        low = max(min(float(s.min()) for _, s, _ in series), 1e-3)
        high = max(max(float(s.max()) for _, s, _ in series), low * 1.01)
        bins = np.geomspace(low, high, 60)
        for name, values, color in series:
            p50, p99 = np.percentile(values, [50, 99])
            left.hist(np.clip(values, low, high), bins=bins, histtype="stepfilled", alpha=0.45,
                      color=color, label=f"{name} (p50 {p50:.2f}, p99 {p99:.2f} ms)")
            left.axvline(p99, color=color, linestyle="--", linewidth=1)
        left.set_xscale("log")
        left.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        left.xaxis.set_minor_formatter(NullFormatter())
        left.legend(loc="upper right", fontsize="small")
    else:
        left.text(0.5, 0.5, "no latency measured", ha="center", va="center",
                  transform=left.transAxes)
    left.set_title("latency")
    left.set_xlabel("ms (log scale)")
    left.set_ylabel("messages")

    _throughput(right, np, [("PubAcks", pub_at, "tab:blue"),
                            ("deliveries", sub_at, "tab:orange")])
    fig.savefig(path, format="png")


def _throughput(ax, np, series: Sequence[tuple[str, array, str]]) -> None:
    times = [(name, np.frombuffer(data, dtype=np.int64) / 1e9, color)
             for name, data, color in series if len(data)]
    ax.set_title("throughput over time")
    ax.set_xlabel("seconds since the start of publishing")
    ax.set_ylabel("msgs/s")
    if not times:
        ax.text(0.5, 0.5, "no messages", ha="center", va="center", transform=ax.transAxes)
        return
    end = max(float(t.max()) for _, t, _ in times)
    width = max(end / 50, 0.05)             # about 50 bins, at least 50 ms each
    edges = np.arange(0.0, end + width, width)
    for name, values, color in times:
        counts, _ = np.histogram(values, bins=edges)
        ax.step(edges[:-1], counts / width, where="post", color=color, label=name)
    ax.set_xlim(0, edges[-1])
    ax.set_ylim(bottom=0)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="best", fontsize="small")
