package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of CPU times in /proc/PID/stat;
// it is 100 on every architecture Go supports.
const clockTicks = 100

// procSample is a process's memory and CPU time at one moment.
type procSample struct {
	At     time.Time
	RSSKiB int64
	// HWMKiB is the peak RSS so far.
	HWMKiB int64
	CPU    time.Duration
}

// readProc samples /proc/pid.
func readProc(pid int) (procSample, error) {
	s := procSample{At: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		switch k {
		case "VmRSS":
			s.RSSKiB = kib(v)
		case "VmHWM":
			s.HWMKiB = kib(v)
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name may hold spaces; the fields after it do not.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is field 3 (state); utime and stime are fields 14 and 15.
	if len(f) < 13 {
		return s, fmt.Errorf("/proc/%d/stat: too few fields", pid)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad CPU times", pid)
	}
	s.CPU = time.Duration(utime+stime) * time.Second / clockTicks
	return s, nil
}

func kib(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
	return n
}

// cpuPercent is the CPU the process used between a and b, in percent of one
// core (a busy process on two cores shows 200).
func cpuPercent(a, b procSample) float64 {
	wall := b.At.Sub(a.At)
	if wall <= 0 {
		return 0
	}
	return float64(b.CPU-a.CPU) / float64(wall) * 100
}

// machineSample is the CPU time of the whole machine, in ticks.
type machineSample struct {
	busy, total int64
	cores       int
}

// readMachine samples the first line of /proc/stat.
func readMachine() (machineSample, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return machineSample{}, err
	}
	var m machineSample
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "cpu "):
			f := strings.Fields(line)[1:]
			for i, v := range f {
				n, _ := strconv.ParseInt(v, 10, 64)
				// guest and guest_nice (9th and 10th) are already in user and nice.
				if i >= 8 {
					break
				}
				m.total += n
				// idle and iowait (4th and 5th) are not busy.
				if i != 3 && i != 4 {
					m.busy += n
				}
			}
		case strings.HasPrefix(line, "cpu"):
			m.cores++
		}
	}
	if m.total == 0 {
		return m, errors.New("/proc/stat: no cpu line")
	}
	return m, nil
}

// machinePercent is the machine's busy time between a and b, in percent of
// one core.
func machinePercent(a, b machineSample) float64 {
	total := b.total - a.total
	if total <= 0 {
		return 0
	}
	return float64(b.busy-a.busy) / float64(total) * float64(b.cores) * 100
}
