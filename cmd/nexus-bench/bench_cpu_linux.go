package main

import (
	"os"
	"strconv"
	"strings"
	"time"
)

// cpuSample is a reading of CPU time used so far: by the server process,
// by this process, and by the whole machine (all CPUs together).
type cpuSample struct {
	at                   time.Time
	server, self         time.Duration
	db                   time.Duration // every postgres process, reaped ones included
	machineBusy, machine time.Duration
	ok                   bool
}

// userHZ is the unit of /proc CPU times (USER_HZ, 100 on every Linux ABI).
const userHZ = 100

func ticks(n int64) time.Duration { return time.Duration(n) * time.Second / userHZ }

// readCPU samples /proc. serverPID 0 means the server runs in this process.
// withDB adds up the CPU time of the local PostgreSQL.
func readCPU(serverPID int, withDB bool) cpuSample {
	s := cpuSample{at: time.Now()}
	self, ok1 := procCPU("/proc/self/stat")
	server := self
	ok2 := ok1
	if serverPID != 0 {
		server, ok2 = procCPU("/proc/" + strconv.Itoa(serverPID) + "/stat")
	}
	busy, total, ok3 := machineCPU()
	s.self, s.server, s.machineBusy, s.machine = self, server, busy, total
	s.ok = ok1 && ok2 && ok3
	if withDB {
		s.db = postgresCPU()
	}
	return s
}

// postgresCPU is the CPU time of every process named postgres: the live
// ones' own time plus what their reaped children used (the postmaster's
// cutime and cstime), so that connections that came and went still count.
// It includes work for other clients of the same PostgreSQL, if any.
func postgresCPU() time.Duration {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var sum int64
	for _, d := range dirs {
		if d.Name()[0] < '0' || d.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + d.Name() + "/stat")
		if err != nil {
			continue
		}
		st := string(b)
		open, end := strings.IndexByte(st, '('), strings.LastIndexByte(st, ')')
		if open < 0 || end < open || st[open+1:end] != "postgres" {
			continue
		}
		f := strings.Fields(st[end+1:])
		if len(f) < 15 {
			continue
		}
		for _, i := range []int{11, 12, 13, 14} { // utime stime cutime cstime
			if v, err := strconv.ParseInt(f[i], 10, 64); err == nil {
				sum += v
			}
		}
	}
	return ticks(sum)
}

// procCPU is utime+stime of a process (fields 14 and 15 of its stat).
func procCPU(path string) (time.Duration, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	i := strings.LastIndexByte(string(b), ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:])) // f[0] is field 3 (state)
	if len(f) < 13 {
		return 0, false
	}
	u, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return ticks(u + st), true
}

// machineCPU is the busy and total time of all CPUs from /proc/stat.
func machineCPU() (busy, total time.Duration, ok bool) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0, false
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0, 0, false
	}
	var v [8]int64
	for i := range v {
		if v[i], err = strconv.ParseInt(f[i+1], 10, 64); err != nil {
			return 0, 0, false
		}
	}
	// user nice system idle iowait irq softirq steal
	b1 := v[0] + v[1] + v[2] + v[5] + v[6] + v[7]
	return ticks(b1), ticks(b1 + v[3] + v[4]), true
}
