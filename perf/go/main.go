// gobench: the Go 1.19 peers of gx-bench's workloads, one binary with one
// workload per subcommand (see shared/BENCHMARKS.md, "The contract").
// Each workload prints, last, one line:
//
//	RESULT <name> <value> <unit> [key=value ...]
//
// with the gx-bench figure's name prefixed by "go_". Like gx-bench, each
// workload runs one warm-up (a tenth of the count) and then 5 timed slices
// of the full count each; the figure is the BEST slice (noise on a shared VM
// only ever adds time) and median= gives the median slice. Argument errors
// print usage on stderr and exit 2; a failed check exits 1.
package main

import (
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"time"
)

const slices = 5

func usage() {
	fmt.Fprint(os.Stderr, `usage: gobench WORKLOAD ARGS
  yield N     two goroutines call runtime.Gosched N times each (GOMAXPROCS=1)
  pingpong N  N round trips of a value over two unbuffered channels (GOMAXPROCS=1)
  select N    as pingpong, the receiver selects over two channels (GOMAXPROCS=1)
  spawn N     N goroutines (batches of 1024) that call wg.Done and exit (GOMAXPROCS=1)
  xcore N [pin]  N int64 values over a buffered channel (capacity 1024) from
              one goroutine to another (GOMAXPROCS=2); with pin, each locked to
              its own thread, pinned to its own CPU
  xpingpong N [pin]  N round trips of a value over two unbuffered channels
              (GOMAXPROCS=2); with pin, the whole process (every thread)
              pinned to the first two CPUs of its affinity mask
  xselect N [pin]  as xpingpong, the receiver selects over two channels
  parallel T U P  T tasks of U xorshift units on P worker goroutines fed by a
              channel (GOMAXPROCS=P; when P > 1 also on 1 as the baseline)
Each runs a warm-up and 5 slices; the figure is the best slice, median= the median.
`)
	os.Exit(2)
}

// count parses a positive integer argument, or exits 2 with the usage.
func count(s string) int {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > 1<<40 {
		fmt.Fprintf(os.Stderr, "gobench: '%s' is not a positive count\n", s)
		usage()
	}
	return int(v)
}

// fail reports a failed check and exits 1.
func fail(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "gobench: "+format+"\n", a...)
	os.Exit(1)
}

// measure runs round(warm) once untimed, then round(n) slices times, and
// returns the best (least) and the median of the timed slices in ns.
func measure(n int, round func(n int) time.Duration) (best, median float64) {
	round(n/10 + 1)
	t := make([]float64, slices)
	for i := range t {
		t[i] = float64(round(n).Nanoseconds())
	}
	return stats(t)
}

// stats: the least and the median of t (t is sorted in place).
func stats(t []float64) (best, median float64) {
	sort.Float64s(t)
	m := len(t) / 2
	median = t[m]
	if len(t)%2 == 0 {
		median = (t[m-1] + t[m]) / 2
	}
	return t[0], median
}

// result prints the RESULT line; tail holds the workload's own keys.
func result(name string, value float64, prec int, unit, tail string) {
	fmt.Printf("RESULT %s %.*f %s %s go=%s gomaxprocs=%d\n", name, prec, value, unit, tail,
		runtime.Version(), runtime.GOMAXPROCS(0))
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	need := func(k int) {
		if len(args) != k {
			fmt.Fprintf(os.Stderr, "gobench: %s takes %d argument(s)\n", os.Args[1], k)
			usage()
		}
	}
	switch os.Args[1] {
	case "yield":
		need(1)
		benchYield(count(args[0]))
	case "pingpong":
		need(1)
		benchPingpong(count(args[0]), false)
	case "select":
		need(1)
		benchPingpong(count(args[0]), true)
	case "spawn":
		need(1)
		benchSpawn(count(args[0]))
	case "xcore":
		if len(args) != 1 && (len(args) != 2 || args[1] != "pin") {
			fmt.Fprintln(os.Stderr, "gobench: xcore takes N and optionally 'pin'")
			usage()
		}
		benchXcore(count(args[0]), len(args) == 2)
	case "xpingpong", "xselect":
		if len(args) != 1 && (len(args) != 2 || args[1] != "pin") {
			fmt.Fprintf(os.Stderr, "gobench: %s takes N and optionally 'pin'\n", os.Args[1])
			usage()
		}
		benchXPingpong(count(args[0]), os.Args[1] == "xselect", len(args) == 2)
	case "parallel":
		need(3)
		benchParallel(count(args[0]), count(args[1]), count(args[2]))
	default:
		fmt.Fprintf(os.Stderr, "gobench: unknown workload '%s'\n", os.Args[1])
		usage()
	}
}
