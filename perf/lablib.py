"""perf/lablib.py: what perf/lab and perf/compare share (imported, not run).

- Statistics without third-party packages: the median and a
  distribution-free confidence interval for it (order statistics of the
  binomial), and the Mann-Whitney U test (exact without ties for up to 50
  runs a side, else the normal approximation with the tie correction).
- Which way a figure is better, from its unit and name.
- Reading result files of perf/run.sh, perf/scan.sh and perf/lab into one
  shape: {key: Figure}.
- Plots through gnuplot (SVG, and PNG through pngcairo): a line with an
  interval band, a heatmap, a bar chart.
"""
import json
import math
import os
import shutil
import statistics
import subprocess
import sys

# ---- statistics ----


def median(vs):
    return statistics.median(vs)


def _binom_cdf(k, n):
    """P(X <= k) for X ~ Binomial(n, 1/2)."""
    if k < 0:
        return 0.0
    return sum(math.comb(n, i) for i in range(0, min(k, n) + 1)) / 2.0**n


def median_ci(vs, conf=0.95):
    """(lo, hi, coverage): the order statistics x(j) <= median <= x(n+1-j)
    with the largest j whose coverage 1 - 2 P(X < j) is at least conf; with
    too few runs for conf (n < 6 at 95%), [min, max] and its coverage."""
    xs = sorted(vs)
    n = len(xs)
    if n == 0:
        return (None, None, 0.0)
    if n == 1:
        return (xs[0], xs[0], 0.0)
    best = (xs[0], xs[-1], 1 - 2 * _binom_cdf(0, n))
    for j in range(1, n // 2 + 1):
        cov = 1 - 2 * _binom_cdf(j - 1, n)
        if cov >= conf:
            best = (xs[j - 1], xs[n - j], cov)
        else:
            break
    return best


def _mw_exact_p(a, b):
    """The exact two-sided p of the rank-sum test, ties or not: over every
    way of splitting the pooled runs into groups of len(a) and len(b),
    the share whose rank sum for the first group is at least as far from
    its mean as a's is. Mid-ranks for ties, doubled to stay integers; the
    count runs over the tie groups (binomial ways to take j of a group)."""
    n1, n2 = len(a), len(b)
    pooled = sorted(list(a) + list(b))
    groups = []  # (size, doubled mid-rank)
    i = 0
    while i < len(pooled):
        j = i
        while j < len(pooled) and pooled[j] == pooled[i]:
            j += 1
        groups.append((j - i, i + 1 + j))  # 2 * (i+1 + j) / 2
        i = j
    rank2 = {}
    for (t, r2), v in zip(groups, sorted(set(pooled))):
        rank2[v] = r2
    w_obs = sum(rank2[x] for x in a)
    # ways[k] = {rank sum: count} over the groups so far, k taken for a
    ways = [dict() for _ in range(n1 + 1)]
    ways[0][0] = 1
    for t, r2 in groups:
        nxt = [dict() for _ in range(n1 + 1)]
        for k in range(n1 + 1):
            for w, c in ways[k].items():
                for j in range(0, min(t, n1 - k) + 1):
                    key = w + j * r2
                    nxt[k + j][key] = nxt[k + j].get(key, 0) + c * math.comb(t, j)
        ways = nxt
    total = math.comb(n1 + n2, n1)
    mean2 = n1 * (n1 + n2 + 1)  # the mean rank sum, doubled like the ranks
    far = abs(w_obs - mean2)
    hit = sum(c for w, c in ways[n1].items() if abs(w - mean2) >= far)
    return min(1.0, hit / total)


def mann_whitney(a, b):
    """Two-sided Mann-Whitney U test of a against b: (U of a, p). Exact
    (every split of the pooled runs counted, ties by mid-ranks) when the
    two sides hold 60 runs or fewer together; else the normal
    approximation with the tie correction and a continuity correction."""
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        return (None, 1.0)
    u = 0.0
    for x in a:
        for y in b:
            u += 1.0 if x > y else 0.5 if x == y else 0.0
    allv = list(a) + list(b)
    if len(set(allv)) == 1:
        return (u, 1.0)  # every value the same
    if n1 + n2 <= 60:
        return (u, _mw_exact_p(a, b))
    n = n1 + n2
    mu = n1 * n2 / 2.0
    groups = {}
    for v in allv:
        groups[v] = groups.get(v, 0) + 1
    tie = sum(t**3 - t for t in groups.values())
    var = n1 * n2 / 12.0 * ((n + 1) - tie / (n * (n - 1)))
    if var <= 0:
        return (u, 1.0)
    z = max((abs(u - mu) - 0.5) / math.sqrt(var), 0.0)
    return (u, min(1.0, math.erfc(z / math.sqrt(2))))


# ---- which way is better ----

LOWER_UNITS = {"ns", "us", "ms", "s", "bytes", "B", "KiB", "MiB", "cores", "ticks"}


def direction(name, unit):
    """-1 when a lower value is better, +1 when higher is, 0 when unknown.
    A name that speaks of cpu, p99, latency, rtt, wake-ups or rss is
    lower-better whatever its unit; then rates (a unit with /s, a name
    ending in _per_s, rps, throughput) are higher-better, other ratios
    (servers.sh's req/s against a peer) too; times and sizes are
    lower-better."""
    n = name.lower()
    u = (unit or "").strip()
    if any(w in n for w in ("cpu", "p99", "latency", "rtt", "wakeup", "rss")):
        return -1  # CPU time or share, tail latency, round trips, wake-ups, memory
    if "/s" in u or n.endswith("_per_s") or "rps" in n or "throughput" in n or "msgs_per" in n:
        return +1
    if u == "ratio":
        return +1  # servers.sh's req/s against a peer
    if u in LOWER_UNITS:
        return -1
    return 0


# ---- result files ----


class Figure:
    def __init__(self, key, name, unit, values, source):
        if not isinstance(values, list) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in values):
            raise ValueError("figure %s: its values are not a list of finite numbers" % key)
        if unit is not None and not isinstance(unit, str):
            raise ValueError("figure %s: its unit is not text" % key)
        self.key, self.name, self.unit, self.values, self.source = key, name, unit or "", list(values), source


def load_results(path):
    """{key: Figure} from a result file: perf/run.sh's latest.json,
    perf/scan.sh's scan-*-summary.json, or perf/lab's summary.json (or the
    lab directory holding it). A lab result may carry selectors,
    PATH:NAME=VALUE[:NAME=VALUE...]: only the cells with those settings,
    keyed without them, so that two cells of one run compare
    (lab-x:build=old against lab-x:build=new). Raises ValueError for
    anything else."""
    sel = {}
    while not os.path.exists(path) and ":" in path:
        path, s = path.rsplit(":", 1)
        if "=" not in s:
            raise ValueError("%s: a selector is NAME=VALUE, not '%s'" % (path, s))
        k, v = s.split("=", 1)
        if k in sel and sel[k] != v:
            raise ValueError("%s: two selectors name %s (%s and %s)" % (path, k, v, sel[k]))
        sel[k] = v
    try:
        return _load(path, sel)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError("%s: not a well-formed result file (%s: %s)" % (path, type(e).__name__, e))


def _load(path, sel):
    if os.path.isdir(path):
        p = os.path.join(path, "summary.json")
        if not os.path.exists(p):
            raise ValueError("%s: a directory without summary.json (not a perf/lab result)" % path)
        path = p
    try:
        d = json.load(open(path))
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError("%s: not a readable JSON file (%s)" % (path, e))
    out = {}
    if isinstance(d, dict) and d.get("kind") == "gonex-lab":
        axes = set(k for c in d["cells"] for k in c.get("settings", {}))
        for k in sel:
            if k not in axes:
                raise ValueError("%s: no axis '%s' in this lab result (its axes: %s)" % (path, k, ", ".join(
                    sorted(axes)) or "none"))
        for c in d["cells"]:
            st = c.get("settings", {})
            if any(st.get(k) != v for k, v in sel.items()):
                continue
            rest = " ".join("%s=%s" % (k, v) for k, v in st.items() if k not in sel) or "-"
            for name, f in c["figures"].items():
                key = "%s [%s]" % (name, rest if sel else c["label"])
                out[key] = Figure(key, name, f["unit"], f["values"], "lab")
        if sel and not out:
            raise ValueError("%s: no cell with %s" % (path, " ".join("%s=%s" % kv for kv in sel.items())))
        return out
    if sel:
        raise ValueError("%s: selectors (:NAME=VALUE) work on perf/lab results only" % path)
    if isinstance(d, dict) and "rows" in d and "knob" in d:
        for r in d["rows"]:
            for name, f in r.get("figures", {}).items():
                key = "%s [%s=%s]" % (name, d["knob"], r["value"])
                out[key] = Figure(key, name, f["unit"], f["values"], "scan")
        return out
    if isinstance(d, dict) and isinstance(d.get("results"), list) and "targets" in d:
        for r in d["results"]:
            if not r.get("values"):
                continue
            where = r.get("command") or r.get("workload")
            if r.get("env"):
                where += " " + r["env"]
            key = "%s [%s]" % (r["figure"], where)
            out[key] = Figure(key, r["figure"], r.get("unit"), r["values"], "run")
        return out
    raise ValueError("%s: not a result of perf/run.sh, perf/scan.sh or perf/lab" % path)


# ---- plots (gnuplot) ----


def gnuplot():
    return shutil.which("gnuplot")


def _run_gnuplot(script, svg, height=560):
    """Run script once for SVG and once for PNG (pngcairo); the script has
    @TERM@ and @OUT@ where those go. True when the SVG was written."""
    gp = gnuplot()
    if not gp:
        return False
    png = svg[:-4] + ".png"
    both = script.replace("@TERM@", 'svg size 900,%d dynamic font "sans,11" background rgb "white"' % height)
    both = both.replace("@OUT@", svg)
    both += script.replace("@TERM@", 'pngcairo size 900,%d font "sans,10" background rgb "white"' % height).replace(
        "@OUT@", png)
    try:
        subprocess.run([gp], input=both, text=True, check=True, capture_output=True, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as e:
        sys.stderr.write("gnuplot failed: %s\n" % (getattr(e, "stderr", "") or e))
        return False
    return os.path.exists(svg)


def _plot(svg, rows, script, height=560):
    """Run script (which reads its data from @DAT@) over rows, the data
    file's lines, for svg and its PNG; the data file goes afterwards."""
    dat = svg + ".dat"
    with open(dat, "w") as f:
        f.writelines(rows)
    try:
        return _run_gnuplot(script.replace("@DAT@", dat), svg, height)
    finally:
        if os.path.exists(dat):
            os.remove(dat)


def _q(s):
    return '"%s"' % str(s).replace("\\", "\\\\").replace('"', '\\"')


def line_plot(svg, title, xlabel, ylabel, points, logx=False):
    """points: [(x label, x value or None, median, lo, hi)]. A line through
    the medians with the interval as a band; x on a log scale when asked
    (and every x > 0), else the labels evenly spaced."""
    numeric = logx and all(p[1] is not None and p[1] > 0 for p in points)
    rows = ["%s %g %g %g %s\n" % (repr(x) if numeric else i, m, lo, hi, _q(lab))
            for i, (lab, x, m, lo, hi) in enumerate(points)]
    script = """
set terminal @TERM@
set output "@OUT@"
set termoption noenhanced
set title %s
set xlabel %s
set ylabel %s
set grid
set key top left
set style fill transparent solid 0.25 noborder
%s
plot "@DAT@" using 1:3:4 with filledcurves lc rgb "#4682b4" title "95%% interval of the median", \\
     "" using 1:2%s with linespoints lw 2 pt 7 lc rgb "#1f4e79" title "median"
""" % (_q(title), _q(xlabel), _q(ylabel),
       "set logscale x" if numeric else "set xtics rotate by -30\nset offsets 0.2, 0.2, 0, 0",
       "" if numeric else ":xtic(5)")
    return _plot(svg, rows, script)


def heatmap(svg, title, xlabel, ylabel, xs, ys, z, unit):
    """z[i][j]: the median at x label xs[j], y label ys[i] (None: no
    value). Each cell coloured by its value and labelled with it."""
    rows = []
    for i in range(len(ys)):
        for j in range(len(xs)):
            v = z[i][j]
            rows.append("%d %d %s %s\n" % (j, i, "NaN" if v is None else "%g" % v,
                                           _q("-" if v is None else "%.0f" % v if abs(v) >= 1e4 else "%.4g" % v)))
        rows.append("\n")
    vs = [v for row in z for v in row if v is not None]
    # a log colour scale when the values span two decades or more
    logcb = "set logscale cb" if vs and min(vs) > 0 and max(vs) / min(vs) >= 100 else ""
    xt = ", ".join("%s %d" % (_q(x), j) for j, x in enumerate(xs))
    yt = ", ".join("%s %d" % (_q(y), i) for i, y in enumerate(ys))
    script = """
set terminal @TERM@
set output "@OUT@"
set termoption noenhanced
set title %s
set xlabel %s
set ylabel %s
set xtics (%s)
set ytics (%s)
set xrange [-0.5:%g]
set yrange [-0.5:%g]
set cblabel %s
%s
set palette defined (0 "#f7fbff", 1 "#9ecae1", 2 "#4292c6")
set view map
unset key
plot "@DAT@" using 1:2:3 with image, "" using 1:2:4 with labels tc rgb "black" font ",10"
""" % (_q(title), _q(xlabel), _q(ylabel), xt, yt, len(xs) - 0.5, len(ys) - 0.5,
       _q(unit + (", log scale" if logcb else "")), logcb)
    return _plot(svg, rows, script)


def bar_chart(svg, title, rows):
    """rows: [(label, change in %, verdict)] with verdict 'better', 'worse'
    or '~'. Horizontal bars, green better, red worse, grey not
    significant."""
    colours = {"better": "0x2e8b57", "worse": "0xc0392b", "~": "0x9e9e9e"}
    lines = []
    for i, (lab, pct, verdict) in enumerate(rows):
        lo, hi = (0, pct) if pct >= 0 else (pct, 0)
        lines.append("%d %g %g %s %s\n" % (len(rows) - 1 - i, lo, hi, colours.get(verdict, "0x9e9e9e"), _q(lab)))
    height = 140 + 24 * len(rows)
    script = """
set terminal @TERM@
set output "@OUT@"
set termoption noenhanced
set title %s
set xlabel "change of the median, %% (green: better, red: worse, grey: not significant)"
set yrange [-1:%d]
set grid xtics
set style fill solid 0.85 noborder
set arrow from 0, graph 0 to 0, graph 1 nohead lw 1 lc rgb "black"
unset key
plot "@DAT@" using (($2+$3)/2):1:2:3:($1-0.35):($1+0.35):4:ytic(5) with boxxyerror lc rgb variable
""" % (_q(title), len(rows))
    return _plot(svg, lines, script, height)
