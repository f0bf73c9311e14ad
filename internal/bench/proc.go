package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"time"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/<pid>/stat.
// It is 100 on every Linux architecture Go supports; reading it properly
// needs sysconf, which needs cgo.
const clockTicks = 100

// procStats reads a process's memory and CPU use from /proc.
type procStats struct {
	pid int
}

// rss returns the resident set size in bytes (VmRSS).
func (p procStats) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.pid))
	if err != nil {
		return 0, fmt.Errorf("bench: read server memory: %w", err)
	}
	return parseVmRSS(b)
}

func parseVmRSS(status []byte) (int64, error) {
	_, after, ok := bytes.Cut(status, []byte("\nVmRSS:"))
	if !ok {
		return 0, fmt.Errorf("bench: no VmRSS in /proc status")
	}
	line, _, _ := bytes.Cut(after, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("bench: bad VmRSS line %q", line)
	}
	kb, err := strconv.ParseInt(string(f[0]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bench: bad VmRSS line %q", line)
	}
	return kb * 1024, nil
}

// cpu returns the user plus system CPU time the process has used.
func (p procStats) cpu() (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.pid))
	if err != nil {
		return 0, fmt.Errorf("bench: read server cpu: %w", err)
	}
	return parseStatCPU(b)
}

func parseStatCPU(stat []byte) (time.Duration, error) {
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after its closing parenthesis start with field 3 (state).
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, fmt.Errorf("bench: bad /proc stat")
	}
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("bench: bad /proc stat")
	}
	var ticks int64
	for _, s := range f[11:13] { // utime (field 14), stime (field 15)
		n, err := strconv.ParseInt(string(s), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bench: bad /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// peakSampler samples a process's RSS until stopped and keeps the highest.
type peakSampler struct {
	stop context.CancelFunc
	done chan struct{}
	peak int64 // written by the sampling goroutine, read after done
}

func startPeakSampler(ctx context.Context, p procStats, every time.Duration, first int64) *peakSampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &peakSampler{stop: cancel, done: make(chan struct{}), peak: first}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			if rss, err := p.rss(); err == nil {
				s.peak = max(s.peak, rss)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

// Peak stops the sampler and returns the highest RSS seen.
func (s *peakSampler) Peak() int64 {
	s.stop()
	<-s.done
	return s.peak
}
