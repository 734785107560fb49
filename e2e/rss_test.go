package e2e_test

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// rssWatch records the peak resident set size of each service process of a
// pipeline: every interval it reads the kernel's high-water mark (VmHWM in
// /proc/<pid>/status, the largest RSS the process ever had), so nothing
// between two samples is missed, and a restarted process's own peak counts
// too.
type rssWatch struct {
	mu   sync.Mutex
	peak map[string]int64 // bytes, by service
	stop chan struct{}
	done chan struct{}
}

// watchRSS starts sampling the services of p every interval until Stop.
func watchRSS(t testing.TB, p *pipeline, interval time.Duration) *rssWatch {
	t.Helper()
	w := &rssWatch{peak: map[string]int64{}, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			w.sample(p)
			select {
			case <-w.stop:
				w.sample(p)
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(w.Stop)
	return w
}

func (w *rssWatch) sample(p *pipeline) {
	for name, proc := range p.stack.Procs {
		hwm, err := vmHWM(proc.Pid())
		if err != nil {
			continue // exited between two samples: its last sample stands
		}
		w.mu.Lock()
		w.peak[name] = max(w.peak[name], hwm)
		w.mu.Unlock()
	}
}

// Stop ends the sampling (after one last sample); it is idempotent.
func (w *rssWatch) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// Peak returns the peak RSS of service in bytes (0: never sampled).
func (w *rssWatch) Peak(service string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.peak[service]
}

// vmHWM returns the peak resident set size of process pid in bytes.
func vmHWM(pid int) (int64, error) { return procStatus(pid, "VmHWM:") }

// vmRSS returns the resident set size of process pid in bytes.
func vmRSS(pid int) (int64, error) { return procStatus(pid, "VmRSS:") }

// procStatus reads a "<field> <n> kB" line of /proc/<pid>/status.
func procStatus(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), field)
		if !ok {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parsing %s of %d: %w", field, pid, err)
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}
