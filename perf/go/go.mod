// The Go peers of gx-bench (shared/BENCHMARKS.md; see run.sh).
// Standard library only: the build needs no module downloads.
module gonex/perf/go

go 1.19
