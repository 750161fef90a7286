package bench

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// Placing the processes of a run. OneCPU pins every thread of this
// process and of the two daemons to one CPU; the clients, started after,
// inherit it (a child starts with its parent thread's affinity). Unpinned
// gives them back every CPU the run started with.

// cpuSets are the affinity masks of the placements.
type cpuSets struct {
	all CPUSet // what the run may use (its affinity at start)
	one CPUSet // the CPU of OneCPU
	cpu int
}

// CPUSet is an affinity mask.
type CPUSet = unix.CPUSet

// newCPUSets reads this process's affinity and picks the CPU of OneCPU:
// want, or the first allowed if want < 0.
func newCPUSets(want int) (cpuSets, error) {
	var s cpuSets
	if err := unix.SchedGetaffinity(0, &s.all); err != nil {
		return s, fmt.Errorf("bench: sched_getaffinity: %w", err)
	}
	s.cpu = want
	if want < 0 {
		s.cpu = firstCPU(&s.all)
	}
	if s.cpu < 0 || s.cpu >= len(s.all)*64 || !s.all.IsSet(s.cpu) {
		return s, fmt.Errorf("bench: CPU %d is not one this process may run on", want)
	}
	s.one.Set(s.cpu)
	return s, nil
}

func firstCPU(set *CPUSet) int {
	for i := range len(set) * 64 {
		if set.IsSet(i) {
			return i
		}
	}
	return -1
}

// place moves this process and the daemons to placement pl.
func (e *env) place(pl string) error {
	set := &e.cpus.all
	if pl == OneCPU {
		set = &e.cpus.one
	}
	pids := []int{os.Getpid()}
	for _, d := range e.daemons() {
		pids = append(pids, d.Cmd.Process.Pid)
	}
	for _, pid := range pids {
		if err := pinThreads(pid, set); err != nil {
			return fmt.Errorf("bench: placing process %d %s: %w", pid, pl, err)
		}
	}
	return nil
}

// pinThreads sets the affinity of every thread of process pid, again
// until no thread appears that it has not set (a new thread takes its
// creator's affinity, which may not have been set yet).
func pinThreads(pid int, set *CPUSet) error {
	done := map[int]bool{}
	for range 10 {
		ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "task"))
		if err != nil {
			return err
		}
		fresh := 0
		for _, ent := range ents {
			tid, err := strconv.Atoi(ent.Name())
			if err != nil || done[tid] {
				continue
			}
			fresh++
			err = unix.SchedSetaffinity(tid, set)
			if err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("sched_setaffinity of thread %d: %w", tid, err)
			}
			done[tid] = true
		}
		if fresh == 0 {
			return nil
		}
	}
	return errors.New("its threads keep appearing")
}
