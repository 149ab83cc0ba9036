#!/usr/bin/env python3
"""perf/report.py: the benchmark report of perf/run.sh.

Reads what perf/run.sh collected in one invocation and writes
perf/results/latest.md, latest.json and latest.svg (the plot, when gnuplot
is installed), and prints the targets table.

Input directory (--dir):
  plan          one line per workload run: label|workload|N|env
  LABEL.results every RESULT line of that workload's runs, in run order
                (one line per figure per run)
  servers.results  perf/servers.sh's RESULT lines (optional)
  meta.json     the machine and build (date, commit, kernel, cpu, ...)
  scans         one line per scan: name|summary.md path (optional)

A figure's median is over the runs. A ratio against a baseline measured in
the same process (a floor printed as key=value on the same line) is taken
per run, and its median reported; against a baseline from another workload
(Go, 1 worker) it is the ratio of the medians. See shared/BENCHMARKS.md.
"""
import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys

# The targets: (label, figure, target kind, bound, baseline, note)
#   kind 'max' / 'min': the figure itself must be <= / >= bound
#   kind 'ratio_max' / 'ratio_min': figure / baseline must be <= / >= bound
#   kind 'speedup_min': baseline / figure must be >= bound (times faster)
# baseline: ('extra', key) a key=value of the same RESULT line (same run),
#           ('fig', label, figure) another workload's figure (medians), or None.
TARGETS = [
    ("yield", "yield_switch", "max", 10, None, "ns per switch"),
    ("yield", "yield_switch", "speedup_min", 3, ("fig", "go_yield", "go_yield_switch"), "vs Go runtime.Gosched"),
    ("pingpong", "pingpong_rtt", "max", 40, None, "ns per round trip"),
    ("pingpong", "pingpong_rtt", "speedup_min", 5, ("fig", "go_pingpong", "go_pingpong_rtt"),
     "vs Go unbuffered channel, GOMAXPROCS=1"),
    ("select", "select_rtt", "speedup_min", None, ("fig", "go_select", "go_select_rtt"), "vs Go select (no target)"),
    ("spawn", "spawn_exit", "max", 80, None, "ns per coroutine"),
    ("spawn", "spawn_exit", "speedup_min", 5, ("fig", "go_spawn", "go_spawn_exit"), "vs Go go f() + wg.Done()"),
    ("idle", "idle_rss_per_coroutine", "max", 4608, None, "bytes per parked coroutine"),
    ("parked_1m", "idle_rss_per_coroutine", "max", 4608, None, "1,000,000 parked, 16 KiB stacks"),
    ("ring", "ring_throughput", "min", 50, None, "Mmsg/s, bare MPMC ring"),
    ("ring", "ring_pingpong_rtt", "ratio_max", 2, ("extra", "floor_cacheline_rtt"), "vs cache-line round trip"),
    ("ring", "ring_wake_rtt", "ratio_max", 1.2, ("extra", "floor_futex_rtt"), "vs raw futex ping-pong"),
    ("chanxproc", "xcore_chan_throughput", "min", 50, None, "Mmsg/s, distributed channel"),
    ("chanxproc", "xcore_chan_throughput", "ratio_min", 1.5, ("fig", "go_xcore_unpinned", "go_xcore_chan_throughput"),
     "vs Go buffered channel, GOMAXPROCS=2 unpinned"),
    ("chanxproc", "xcore_chan_throughput", "ratio_min", None, ("fig", "go_xcore", "go_xcore_chan_throughput"),
     "vs Go buffered channel, goroutines pinned to 2 cores (no target)"),
    ("xpingpong", "xcore_pingpong_rtt", "ratio_max", 2.5, ("extra", "floor_cacheline_rtt"), "vs cache-line round trip"),
    ("xpingpong", "xcore_pingpong_rtt", "speedup_min", 1, ("fig", "go_xpingpong", "go_xcore_pingpong_rtt"),
     "vs Go unbuffered ping-pong, GOMAXPROCS=2 unpinned"),
    ("xpingpong", "xcore_pingpong_rtt", "speedup_min", None, ("fig", "go_xpingpong_pin", "go_xcore_pingpong_rtt"),
     "vs Go unbuffered ping-pong, GOMAXPROCS=2, process pinned to 2 CPUs (no target)"),
    ("wake", "xproc_wake_rtt", "ratio_max", 1.2, ("extra", "floor_futex_rtt"), "vs raw futex ping-pong"),
    ("xselect", "xselect_rtt", "ratio_max", 3, ("extra", "floor_cacheline_rtt"),
     "select over 2 distributed channels vs cache-line round trip"),
    ("xselect", "xselect_rtt", "speedup_min", None, ("fig", "go_xselect", "go_xselect_rtt"),
     "vs Go select ping-pong, GOMAXPROCS=2 unpinned (no target)"),
    ("xselectwake", "xselect_wake_rtt", "ratio_max", 1.2, ("extra", "floor_futex_rtt"),
     "select, both sides sleeping, vs raw futex ping-pong"),
    ("parallel_cpu", "parallel_tasks_per_s", "ratio_min", 1.9, ("extra", "one_worker"),
     "CPU-bound, 2 workers vs 1 (same run)"),
    ("parallel_u10", "parallel_tasks_per_s", "min", 10e6, None, "U=10, 2 workers"),
    ("parallel_u10", "parallel_tasks_per_s", "ratio_min", 1.0, ("extra", "one_worker"),
     "U=10, 2 workers vs 1 (same run)"),
    ("parallel_u10_batch", "parallel_tasks_per_s", "min", 10e6, None, "U=10, 2 workers, gx_go_parallel_n 32 a call"),
    ("parallel_u10_batch", "parallel_tasks_per_s", "ratio_min", 1.0, ("extra", "one_worker"),
     "U=10 in batches, 2 workers vs 1 (same run)"),
    ("parallel_u10_1w", "parallel_tasks_per_s", "min", 5e6, None, "U=10, 1 worker"),
    ("parallel_u10_1w", "parallel_tasks_per_s", "ratio_min", None, ("fig", "go_parallel_u10_1w", "go_parallel_tasks_per_s"),
     "vs Go, U=10, 1 worker goroutine (no target)"),
    ("dispatch", "parallel_roundtrip", "max", 2000, None, "ns, idle spinning worker"),
    ("restart", "restart_to_task", "max", 10, None, "ms from SIGKILL to a replacement's task"),
    ("quiet", "idle_cpu_percent", "max", 0.1, None, "an idle runtime with 2 workers: CPU of all its processes"),
    ("quiet", "idle_wakeups_per_s", "max", None, None,
     "its wake-ups a second, all processes (no target: the watchdog's timer is due once a second)"),
    ("servers", "httpd_rps_vs_nginx", "min", 1.0, None, "httpd req/s / nginx (wrk -t1 -c64)"),
    ("servers", "httpd_cpu_per_req_vs_nginx", "max", 0.6, None, "httpd server CPU per request / nginx's"),
    ("servers", "httpd_cpu_per_req_vs_epoll", "max", None, None, "httpd server CPU per request / epoll baseline's (no target)"),
    ("servers", "httpd_quota25_rps_vs_nginx", "min", 1.4, None, "httpd req/s / nginx, each under a 25% CPU quota"),
    ("servers", "echo_cpu_per_msg_vs_epoll_c16", "max", 0.8, None, "echo server CPU per message / epoll baseline's, 16 conns"),
    ("servers", "echo_cpu_per_msg_vs_epoll_c128", "max", 0.8, None, "echo server CPU per message / epoll baseline's, 128 conns"),
    ("servers", "httpd_p99_vs_nginx", "max", 1.0, None, "httpd p99 / nginx p99"),
    ("servers", "echo_vs_epoll_c16", "min", 1.0, None, "echo msg/s / epoll baseline, 16 conns"),
    ("servers", "echo_vs_epoll_c128", "min", 1.0, None, "echo msg/s / epoll baseline, 128 conns"),
    ("servers", "echo_p99_vs_epoll_c16", "max", 1.0, None, "echo p99 / epoll baseline p99, 16 conns"),
    ("servers", "echo_p99_vs_epoll_c128", "max", 1.0, None, "echo p99 / epoll baseline p99, 128 conns"),
    ("servers", "httpd_epoll_backend_vs_baseline", "min", 0.9, None, "epoll backend httpd / epoll baseline"),
    ("servers", "kv_set_p1_vs_redis", "min", 1.0, None, "kv SET req/s / redis-server, -P 1"),
    ("servers", "kv_get_p1_vs_redis", "min", 1.0, None, "kv GET req/s / redis-server, -P 1"),
    ("servers", "kv_set_p16_vs_redis", "min", 1.0, None, "kv SET req/s / redis-server, -P 16"),
    ("servers", "kv_get_p16_vs_redis", "min", 1.0, None, "kv GET req/s / redis-server, -P 16"),
    ("servers", "kv_cpu_per_req_p1_vs_redis", "max", 0.5, None, "kv server CPU per request / redis-server's, -P 1"),
    ("servers", "kv_cpu_per_req_p16_vs_redis", "max", 0.5, None, "kv server CPU per request / redis-server's, -P 16"),
    ("servers", "kv_set_p1_p99_vs_redis", "max", 1.0, None, "kv SET p99 / redis-server's, -P 1"),
    ("servers", "kv_get_p16_p99_vs_redis", "max", 1.0, None, "kv GET p99 / redis-server's, -P 16"),
    ("servers", "kv_quota25_set_p1_vs_redis", "min", 1.6, None, "kv SET req/s / redis-server, each under a 25% CPU quota, -P 1"),
    ("servers", "kv_quota25_get_p16_vs_redis", "min", 1.6, None, "kv GET req/s / redis-server, each under a 25% CPU quota, -P 16"),
    ("servers", "echo_epoll_backend_vs_baseline_c16", "min", 0.9, None, "epoll backend echo / baseline, 16"),
    ("servers", "echo_epoll_backend_vs_baseline_c128", "min", 0.9, None, "epoll backend echo / baseline, 128"),
]

NUM = re.compile(r"^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$")


def parse_results(path):
    """RESULT lines of a file -> {figure: [(value, unit, {key: value}), ...]} in run order."""
    figs = {}
    if not os.path.exists(path):
        return figs
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) < 4 or p[0] != "RESULT" or not NUM.match(p[2]):
                continue
            extras = {}
            for kv in p[4:]:
                if "=" in kv:
                    k, v = kv.split("=", 1)
                    extras[k] = v
            figs.setdefault(p[1], []).append((float(p[2]), p[3], extras))
    return figs


def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 1e6:
        return "%.3g M" % (v / 1e6) if a < 1e9 else "%.3g G" % (v / 1e9)
    if a >= 1000:
        return "%.0f" % v
    if a >= 10:
        return "%.1f" % v
    return "%.3g" % v


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    d = args.dir
    meta = json.load(open(os.path.join(d, "meta.json")))
    plan = []
    with open(os.path.join(d, "plan")) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                label, workload, n, env = (line.split("|") + ["", "", "", ""])[:4]
                plan.append({"label": label, "workload": workload, "n": n, "env": env})
    data = {p["label"]: parse_results(os.path.join(d, p["label"] + ".results")) for p in plan}
    data["servers"] = parse_results(os.path.join(d, "servers.results"))

    # every figure: median, min, max over the runs
    figures = []
    for p in plan + [{"label": "servers", "workload": "servers.sh", "n": "", "env": ""}]:
        for fig, runs in data.get(p["label"], {}).items():
            vals = [r[0] for r in runs]
            figures.append({
                "workload": p["label"], "command": p["workload"], "n": p["n"], "env": p["env"],
                "figure": fig, "unit": runs[0][1], "runs": len(vals), "median": statistics.median(vals),
                "min": min(vals), "max": max(vals), "values": vals,
                "last_run": " ".join("%s=%s" % kv for kv in runs[-1][2].items()),
            })

    def med(label, fig):
        runs = data.get(label, {}).get(fig)
        return statistics.median([r[0] for r in runs]) if runs else None

    rows = []
    for label, fig, kind, bound, base, note in TARGETS:
        runs = data.get(label, {}).get(fig)
        row = {"workload": label, "figure": fig, "note": note, "kind": kind, "target": bound,
               "ours": None, "baseline": None, "ratio": None, "met": None, "unit": ""}
        if runs:
            row["ours"] = statistics.median([r[0] for r in runs])
            row["unit"] = runs[0][1]
        if base and runs:
            if base[0] == "extra":
                pairs = [(r[0], float(r[2][base[1]])) for r in runs if NUM.match(r[2].get(base[1], "x"))]
                if pairs:
                    row["baseline"] = statistics.median([b for _, b in pairs])
                    row["ratio"] = statistics.median([o / b for o, b in pairs if b])
            else:
                b = med(base[1], base[2])
                if b:
                    row["baseline"] = b
                    row["ratio"] = (b / row["ours"]) if kind == "speedup_min" else (row["ours"] / b)
        v = row["ratio"] if kind.startswith("ratio") or kind == "speedup_min" else row["ours"]
        if v is not None and bound is not None:
            row["met"] = v <= bound if kind.endswith("max") else v >= bound
            # headroom: >= 1 when met, for the plot
            row["headroom"] = (bound / v if v else 0) if kind.endswith("max") else v / bound
        rows.append(row)

    def target_text(r):
        if r["target"] is None:
            return "-"
        sign = "<=" if r["kind"].endswith("max") else ">="
        if r["kind"] in ("max", "min") and r["unit"] == "ratio":
            return "%s %g" % (sign, r["target"])
        if r["kind"] in ("max", "min"):
            return "%s %s %s" % (sign, fmt(r["target"]), r["unit"])
        return "%s %gx" % (sign, r["target"])

    def met_text(r):
        return "-" if r["met"] is None else ("yes" if r["met"] else "**no**")

    lines = ["| figure | what | ours | baseline | ratio | target | met |", "|---|---|---:|---:|---:|---|---|"]
    for r in rows:
        if r["ours"] is None:
            ours = "-"
        elif r["unit"] == "ratio":
            ours = "%.3f" % r["ours"]
        else:
            ours = "%s %s" % (fmt(r["ours"]), r["unit"])
        lines.append("| %s (%s) | %s | %s | %s | %s | %s | %s |" % (
            r["figure"], r["workload"], r["note"], ours, fmt(r["baseline"]),
            "-" if r["ratio"] is None else "%.2fx" % r["ratio"], target_text(r), met_text(r)))
    targets_md = "\n".join(lines)

    detail = ["| workload | figure | median | min | max | unit | runs | N | env | last run |",
              "|---|---|---:|---:|---:|---|---:|---|---|---|"]
    for f in figures:
        detail.append("| %s | %s | %s | %s | %s | %s | %d | %s | %s | %s |" % (
            f["workload"], f["figure"], fmt(f["median"]), fmt(f["min"]), fmt(f["max"]), f["unit"], f["runs"],
            f["n"] or "-", f["env"] or "-", f["last_run"] or "-"))

    met = sum(1 for r in rows if r["met"])
    judged = sum(1 for r in rows if r["met"] is not None)
    scans = []
    sp = os.path.join(d, "scans")
    if os.path.exists(sp):
        for line in open(sp):
            if "|" in line:
                name, path = line.rstrip("\n").split("|", 1)
                body = open(path).read() if os.path.exists(path) else "(missing: %s)\n" % path
                # the scan's plots sit beside its summary: link them from here
                body = re.sub(r"!\[([^\]]*)\]\(([^)/]+)\)", lambda m: "![%s](%s)" % (
                    m.group(1), os.path.relpath(os.path.join(os.path.dirname(os.path.abspath(path)), m.group(2)),
                                                os.path.abspath(args.out))), body)
                scans.append((name, body))

    os.makedirs(args.out, exist_ok=True)
    svg = os.path.join(args.out, "latest.svg")
    plotted = plot(rows, svg, meta)

    md = ["# Benchmark results", ""]
    for k in ("date", "mode", "commit", "kernel", "cpu", "cpus_online", "gcc", "cflags", "liburing", "hyperfine",
              "go", "nginx", "gonex_env"):
        if k in meta:
            md.append("- %s: %s" % (k, meta[k] if meta[k] != "" else "none"))
    md += ["", "## Targets", "",
           "%d of %d judged targets met. Ratios against a floor are per run (same process), "
           "then the median; against another workload (Go, nginx) the ratio of medians. "
           "Figures are medians of %s runs." % (met, judged, meta.get("runs", "?")), ""]
    md.append(targets_md)
    if plotted:
        md += ["", "![ratio to target](latest.svg)", "",
               "The plot: each bar runs from 1 (exactly on target) to how far the figure is from its "
               "target, on a log scale: green and right of 1 when met, by that factor; red and left of 1 "
               "when missed, by that factor."]
    md += ["", "## gx-bench config", "", "```", meta.get("config", "").rstrip(), "```", "",
           "## Every figure", ""] + detail
    for name, body in scans:
        md += ["", "## Scan: %s" % name, "", body.rstrip()]
    failed = meta.get("failed", [])
    if failed:
        md += ["", "FAILED: %s" % ", ".join(failed)]
    with open(os.path.join(args.out, "latest.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    out = dict(meta)
    out["targets"] = [{k: v for k, v in r.items()} for r in rows]
    out["results"] = figures
    out["scans"] = [n for n, _ in scans]
    with open(os.path.join(args.out, "latest.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")

    # the terminal: the targets table with padded columns
    print("== targets (%d of %d met)" % (met, judged))
    cells = [[c.strip() for c in l.strip("|").split("|")] for l in lines if not l.startswith("|---")]
    w = [max(len(c[i]) for c in cells) for i in range(len(cells[0]))]
    for i, c in enumerate(cells):
        print("  ".join(x.ljust(w[j]) for j, x in enumerate(c)).rstrip())
        if i == 0:
            print("  ".join("-" * x for x in w))
    return 0


def plot(rows, svg, meta):
    """One horizontal bar per judged target, from 1 to its room to the
    target (>= 1: met by that factor), on a log scale. Needs gnuplot."""
    gp = shutil.which("gnuplot")
    pts = [r for r in rows if r.get("headroom")]
    if not gp or not pts:
        return False
    dat = svg + ".dat"
    with open(dat, "w") as f:
        for i, r in enumerate(pts):
            h = max(min(r["headroom"], 1000), 0.001)
            lo, hi = (1, h) if h >= 1 else (h, 1)
            label = "%s (%s)%s" % (r["figure"], r["workload"], "" if r["kind"] in ("max", "min") else " ratio")
            f.write('%d %g %g %d "%s"\n' % (len(pts) - 1 - i, lo, hi, 1 if r["met"] else 0, label))
    script = """
set terminal svg size 1000,%d dynamic font "sans,11" background rgb "white"
set output "%s"
set title "gonex: each figure against its target (%s, %s run)" noenhanced
set logscale x
set termoption noenhanced
set xrange [0.03:300]
set xlabel "room to the target (1: on it; right of 1: met by that factor; left: missed by it)"
set yrange [-1:%d]
set grid xtics
set style fill solid 0.85 noborder
set arrow from 1, graph 0 to 1, graph 1 nohead lw 2 lc rgb "black"
unset key
plot "%s" using (sqrt($2*$3)):1:2:3:($1-0.35):($1+0.35):($4 > 0 ? 0x2e8b57 : 0xc0392b):ytic(5) \\
     with boxxyerror lc rgb variable
""" % (140 + 26 * len(pts), svg, meta.get("date", ""), meta.get("mode", ""), len(pts), dat)
    # the same plot as PNG (pngcairo), for viewers without SVG
    png = svg[:-4] + ".png"
    script += script.replace('set terminal svg size 1000,', 'set terminal pngcairo size 1000,').replace(
        ' dynamic font "sans,11" background rgb "white"', ' font "sans,9" background rgb "white"').replace(
        'set output "%s"' % svg, 'set output "%s"' % png)
    try:
        subprocess.run([gp], input=script, text=True, check=True, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as e:
        sys.stderr.write("report: gnuplot failed: %s\n" % getattr(e, "stderr", e))
        return False
    finally:
        if os.path.exists(dat):
            os.remove(dat)
    return os.path.exists(svg)


if __name__ == "__main__":
    sys.exit(main())
