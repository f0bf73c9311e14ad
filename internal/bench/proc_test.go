package bench

import (
	"context"
	"os"
	"testing"
	"time"
)

func TestParseProc(t *testing.T) {
	rss, err := parseVmRSS([]byte("Name:\tx\nVmPeak:\t 100 kB\nVmRSS:\t    1996 kB\nRssAnon:\t 1 kB\n"))
	if err != nil || rss != 1996*1024 {
		t.Errorf("parseVmRSS = %d, %v", rss, err)
	}
	if _, err := parseVmRSS([]byte("Name:\tx\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
	stat := "15251 (a (weird) name) R 15249 15249 2589 0 -1 4194304 101 0 0 0 250 150 0 0 20 0 1 0 62086 3133440 349"
	cpu, err := parseStatCPU([]byte(stat))
	if err != nil || cpu != 4*time.Second {
		t.Errorf("parseStatCPU = %v, %v", cpu, err)
	}
	if _, err := parseStatCPU([]byte("1 (x) R 1 2")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestProcSelf(t *testing.T) {
	p := procStats{os.Getpid()}
	rss, err := p.rss()
	if err != nil || rss <= 0 {
		t.Fatalf("rss = %d, %v", rss, err)
	}
	if _, err := p.cpu(); err != nil {
		t.Fatal(err)
	}
	s := startPeakSampler(context.Background(), p, time.Millisecond, 0)
	if peak := s.Peak(); peak <= 0 {
		t.Errorf("peak %d", peak)
	}
	if _, err := (procStats{-1}).rss(); err == nil {
		t.Error("rss of a missing process")
	}
}
