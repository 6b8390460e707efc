//go:build !linux

package main

import "time"

type cpuSample struct {
	at                   time.Time
	server, self         time.Duration
	db                   time.Duration
	machineBusy, machine time.Duration
	ok                   bool
}

// readCPU is only implemented on Linux; elsewhere the CPU columns stay empty.
func readCPU(serverPID int, withDB bool) cpuSample { return cpuSample{at: time.Now()} }
