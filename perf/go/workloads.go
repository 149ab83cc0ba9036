// The workloads. Every one sets GOMAXPROCS itself; each slice starts fresh
// goroutines (and channels), the way gx-bench starts fresh coroutines.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// yield: two goroutines call runtime.Gosched n times each on one P, so every
// call switches to the other one: 2n switches. Figure: ns per switch.
func benchYield(n int) {
	runtime.GOMAXPROCS(1)
	best, med := measure(n, func(n int) time.Duration {
		done := make(chan struct{})
		go func() {
			for i := 0; i < n; i++ {
				runtime.Gosched()
			}
			close(done)
		}()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			runtime.Gosched()
		}
		t := time.Since(t0)
		<-done
		return t
	})
	result("go_yield_switch", best/(2*float64(n)), 2, "ns",
		fmt.Sprintf("switches=%d slices=%d stat=best median=%.2f", 2*n, slices, med/(2*float64(n))))
}

// pingpong / select: the main goroutine sends v on ping and receives it back,
// incremented, on pong (both unbuffered), n times; the echo goroutine
// receives with a plain receive, or (select) with a select over ping and a
// channel that is never ready. Figure: ns per round trip.
func benchPingpong(n int, sel bool) {
	runtime.GOMAXPROCS(1)
	best, med := measure(n, func(n int) time.Duration {
		ping, pong, idle := make(chan int64), make(chan int64), make(chan int64)
		go func() {
			for i := 0; i < n; i++ {
				var v int64
				if sel {
					select {
					case v = <-ping:
					case v = <-idle:
					}
				} else {
					v = <-ping
				}
				pong <- v + 1
			}
		}()
		var v int64
		t0 := time.Now()
		for i := 0; i < n; i++ {
			ping <- v
			v = <-pong
		}
		t := time.Since(t0)
		if v != int64(n) {
			fail("pingpong: got %d back after %d rounds", v, n)
		}
		return t
	})
	name := "go_pingpong_rtt"
	if sel {
		name = "go_select_rtt"
	}
	result(name, best/float64(n), 2, "ns",
		fmt.Sprintf("rounds=%d slices=%d stat=best median=%.2f", n, slices, med/float64(n)))
}

// spawn: `go func() { wg.Done() }()` n times in batches of 1024 (add 1024,
// spawn them, wg.Wait, repeat), on one P. Figure: ns per goroutine.
func benchSpawn(n int) {
	runtime.GOMAXPROCS(1)
	best, med := measure(n, func(n int) time.Duration {
		var wg sync.WaitGroup
		t0 := time.Now()
		for i := 0; i < n; {
			b := n - i
			if b > 1024 {
				b = 1024
			}
			wg.Add(b)
			for k := 0; k < b; k++ {
				go func() { wg.Done() }()
			}
			i += b
			wg.Wait()
		}
		return time.Since(t0)
	})
	result("go_spawn_exit", best/float64(n), 2, "ns",
		fmt.Sprintf("goroutines=%d slices=%d stat=best median=%.2f", n, slices, med/float64(n)))
}

const xcoreCap = 1024

// xcore: with GOMAXPROCS=2, the main goroutine sends 1..n over a buffered
// channel (capacity 1024) to a consumer goroutine that checks their sum. A
// slice runs from the first send, once the consumer is running, to the
// consumer's last receive. Figure: million messages per second.
//
// Unpinned (the default), Go decides where each goroutine runs, and a woken
// receiver is queued on the sender's P: the two mostly take turns on one P
// (cpu_util=, process CPU time over the slices' wall time, stays well under
// 2). With pin, each goroutine locks its thread (runtime.LockOSThread) and
// pins it to its own CPU (the first two of the process's affinity mask), so
// each side stays on its own core; but a woken locked goroutine has to be
// handed to its thread (a futex wake across cores), which is slower, and
// the two sides still mostly take turns (cpu_util under 1 on the VM).
func benchXcore(n int, pin bool) {
	runtime.GOMAXPROCS(2)
	cpus := [2]int{-1, -1}
	if pin {
		cpus = twoCPUs()
		pinThread(cpus[0]) // the main goroutine, for the whole run
	}
	var busy, wall time.Duration // over the timed slices
	best, med := measure(n, func(n int) time.Duration {
		ch := make(chan int64, xcoreCap)
		ready := make(chan struct{})
		end := make(chan time.Time)
		go func() {
			if pin {
				pinThread(cpus[1]) // exits locked: Go ends the thread
			}
			close(ready)
			var sum int64
			for i := 0; i < n; i++ {
				sum += <-ch
			}
			t := time.Now()
			if want := int64(n) * int64(n+1) / 2; sum != want {
				fail("xcore: received sum %d, expected %d", sum, want)
			}
			end <- t
		}()
		<-ready
		c0 := cpuTime()
		t0 := time.Now()
		for i := int64(1); i <= int64(n); i++ {
			ch <- i
		}
		d := (<-end).Sub(t0)
		busy += cpuTime() - c0
		wall += d
		return d
	})
	mode := "none"
	if pin {
		mode = "threads"
	}
	// messages per ns * 1e3 = million per second; the best slice is the least time
	result("go_xcore_chan_throughput", float64(n)/best*1e3, 2, "Mmsg/s",
		fmt.Sprintf("msgs=%d slices=%d stat=best median=%.2f capacity=%d pin=%s cpus=%d,%d cpu_util=%.2f",
			n, slices, float64(n)/med*1e3, xcoreCap, mode, cpus[0], cpus[1],
			float64(busy)/float64(wall)))
}

// xpingpong / xselect: benchPingpong's round trip with GOMAXPROCS=2, so
// that the two goroutines may run on two cores (Go decides: a woken
// goroutine is queued on its waker's P, and an idle P steals it or not;
// cpu_util= says how much of two cores the process used). With pin, every
// thread of the process is pinned to the first two CPUs of its affinity
// mask (as `taskset -c A,B` would; threads made later inherit it) and
// pin=process is printed; the goroutines are not locked to threads. Figure:
// ns per round trip, go_xcore_pingpong_rtt or go_xselect_rtt.
func benchXPingpong(n int, sel, pin bool) {
	runtime.GOMAXPROCS(2)
	cpus := [2]int{-1, -1}
	mode := "none"
	if pin {
		cpus = twoCPUs()
		pinProcess(cpus)
		mode = "process"
	}
	var busy, wall time.Duration // over the timed slices
	best, med := measure(n, func(n int) time.Duration {
		ping, pong, idle := make(chan int64), make(chan int64), make(chan int64)
		go func() {
			for i := 0; i < n; i++ {
				var v int64
				if sel {
					select {
					case v = <-ping:
					case v = <-idle:
						fail("xselect: a value on the idle channel")
					}
				} else {
					v = <-ping
				}
				pong <- v + 1
			}
		}()
		var v int64
		c0 := cpuTime()
		t0 := time.Now()
		for i := 0; i < n; i++ {
			ping <- v
			v = <-pong
		}
		t := time.Since(t0)
		busy += cpuTime() - c0
		wall += t
		if v != int64(n) {
			fail("xpingpong: got %d back after %d rounds", v, n)
		}
		return t
	})
	name := "go_xcore_pingpong_rtt"
	if sel {
		name = "go_xselect_rtt"
	}
	result(name, best/float64(n), 2, "ns",
		fmt.Sprintf("rounds=%d slices=%d stat=best median=%.2f pin=%s cpus=%d,%d cpu_util=%.2f",
			n, slices, med/float64(n), mode, cpus[0], cpus[1], float64(busy)/float64(wall)))
}

// pinProcess sets the affinity of every thread of the process to the two
// CPUs (new threads inherit it from the thread that makes them).
func pinProcess(cpus [2]int) {
	var m cpuMask
	for _, c := range cpus {
		m[c/64] |= 1 << (c % 64)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fail("pin: %v", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid), unsafe.Sizeof(m),
			uintptr(unsafe.Pointer(&m)))
		if e != 0 && e != syscall.ESRCH { // ESRCH: the thread has exited
			fail("sched_setaffinity(thread %d, CPUs %d,%d): %v", tid, cpus[0], cpus[1], e)
		}
	}
}

// cpuTime: the process's user + system CPU time (all threads).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		fail("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

type cpuMask [1024 / 64]uint64

// twoCPUs: the first two CPUs of the process's affinity mask.
func twoCPUs() [2]int {
	var m cpuMask
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		fail("sched_getaffinity: %v", e)
	}
	cpus, k := [2]int{}, 0
	for c := 0; c < len(m)*64 && k < 2; c++ {
		if m[c/64]&(1<<(c%64)) != 0 {
			cpus[k] = c
			k++
		}
	}
	if k < 2 {
		fail("xcore pin: the process may run on fewer than two CPUs")
	}
	return cpus
}

// pinThread locks the calling goroutine to its thread and that thread to cpu.
func pinThread(cpu int) {
	runtime.LockOSThread()
	var m cpuMask
	m[cpu/64] = 1 << (cpu % 64)
	_, _, e := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, 0, unsafe.Sizeof(m), uintptr(unsafe.Pointer(&m)))
	if e != 0 {
		fail("sched_setaffinity(CPU %d): %v", cpu, e)
	}
}

// work is the work function of BENCHMARKS.md (xorshift64, u units). Not
// inlined, as gx-bench calls its copy through a pointer.
//
//go:noinline
func work(u uint64) uint64 {
	x := uint64(88172645463325252)
	for i := uint64(0); i < u; i++ {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
	}
	return x
}

const parWindow = 4096 // tasks queued at most, as gx-bench's futures in flight

// parRound: p worker goroutines (started before the clock) take tasks from a
// buffered channel; the main goroutine sends t tasks (each its unit count),
// closes the channel and waits for the workers. Each worker sums its results
// and the total is checked, so no work can be dropped.
func parRound(t int, u uint64, p int) time.Duration {
	tasks := make(chan uint64, parWindow)
	sums := make([]uint64, p)
	var wg sync.WaitGroup
	wg.Add(p)
	for w := 0; w < p; w++ {
		go func(w int) {
			var s uint64
			for units := range tasks {
				s += work(units)
			}
			sums[w] = s
			wg.Done()
		}(w)
	}
	t0 := time.Now()
	for i := 0; i < t; i++ {
		tasks <- u
	}
	close(tasks)
	wg.Wait()
	d := time.Since(t0)
	var total uint64
	for _, s := range sums {
		total += s
	}
	if want := uint64(t) * work(u); total != want {
		fail("parallel: results sum to %#x, expected %#x", total, want)
	}
	return d
}

// parallel: T tasks of U units on P workers with GOMAXPROCS=P; when P > 1 the
// same on 1 worker with GOMAXPROCS=1 as the baseline, slices interleaved
// (baseline, figure, baseline, ...) as gx-bench does. Figure: tasks per second.
func benchParallel(t, u, p int) {
	if p > 1024 {
		fail("parallel: %d workers is too many (at most 1024)", p)
	}
	tp, t1 := make([]float64, slices), make([]float64, slices)
	for i := -1; i < slices; i++ { // i == -1: the warm-up
		n := t
		if i < 0 {
			n = t/10 + 1
		}
		if p > 1 {
			runtime.GOMAXPROCS(1)
			d := parRound(n, uint64(u), 1)
			if i >= 0 {
				t1[i] = float64(d.Nanoseconds())
			}
		}
		runtime.GOMAXPROCS(p)
		d := parRound(n, uint64(u), p)
		if i >= 0 {
			tp[i] = float64(d.Nanoseconds())
		}
	}
	best, med := stats(tp)
	rate, mrate := float64(t)/best*1e9, float64(t)/med*1e9
	tail := fmt.Sprintf("tasks=%d units=%d workers=%d slices=%d stat=best median=%.0f ns_per_task=%.1f window=%d",
		t, u, p, slices, mrate, best/float64(t), parWindow)
	if p > 1 {
		b1, m1 := stats(t1)
		r1, mr1 := float64(t)/b1*1e9, float64(t)/m1*1e9
		tail += fmt.Sprintf(" vs_1_worker=%.2f median_vs_1_worker=%.2f one_worker=%.0f one_worker_median=%.0f",
			rate/r1, mrate/mr1, r1, mr1)
	}
	result("go_parallel_tasks_per_s", rate, 0, "tasks/s", tail)
}
