package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is Linux's USER_HZ, the unit of /proc's CPU times: 100 on
// every architecture Go supports.
const clockTicks = 100

// cpuSnapshot is the CPU time used so far by the machine and by the
// processes a load involves, in clock ticks.
type cpuSnapshot struct {
	at                  time.Time
	busy                uint64 // the machine's non-idle time, all cores
	steal               uint64 // time the hypervisor ran something else while this machine wanted to run
	all                 uint64 // every state, steal included
	server, load, store uint64
}

// cpuUse is how many cores each party kept busy, on average, between two
// snapshots.
type cpuUse struct {
	Server  float64 `json:"server"`  // the measured system's processes
	Load    float64 `json:"load"`    // the load generator and this harness
	Store   float64 `json:"store"`   // redis-server and postgres processes
	Other   float64 `json:"other"`   // everything else on the machine
	Machine float64 `json:"machine"` // all of it
}

// takeCPU reads /proc: the machine's busy time, the time of the processes
// in the server's process groups (a gateway row has several: the proxy,
// sessionguard, the upstream), in this process's group and of its
// children waited for (the harness and wrk), and of the database servers. On a system without /proc it returns
// a zero snapshot.
func takeCPU(serverGroups ...int) cpuSnapshot {
	s := machineTicks()
	self := os.Getpid()
	selfGroup := self
	if st, ok := readStat(strconv.Itoa(self)); ok {
		selfGroup = st.group
		// wrk has exited by the second snapshot: its time is in ours.
		s.load += st.children
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		st, ok := readStat(filepath.Base(d))
		if !ok {
			continue
		}
		switch {
		case st.group > 0 && slices.Contains(serverGroups, st.group):
			s.server += st.ticks
		case st.group == selfGroup:
			s.load += st.ticks
		case st.comm == "redis-server" || st.comm == "postgres":
			s.store += st.ticks
		}
	}
	return s
}

// machineTicks reads the machine's own lines of /proc/stat: its busy time,
// the time stolen by the hypervisor, and all of it. Steal is not busy time:
// this machine did not run then. The guest columns are already counted in
// user and nice, so they are left out.
func machineTicks() cpuSnapshot {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return cpuSnapshot{at: time.Now()}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return parseMachineTicks(line, time.Now())
}

// parseMachineTicks parses the first line of /proc/stat, taken at at.
func parseMachineTicks(line string, at time.Time) cpuSnapshot {
	s := cpuSnapshot{at: at}
	f := strings.Fields(line)
	if len(f) < 2 || f[0] != "cpu" {
		return s
	}
	// cpu user nice system idle iowait irq softirq steal guest guest_nice
	for i, v := range f[1:min(len(f), 9)] {
		n, _ := strconv.ParseUint(v, 10, 64)
		s.all += n
		switch i {
		case 3, 4: // idle, iowait
		case 7:
			s.steal += n
		default:
			s.busy += n
		}
	}
	return s
}

// stolen is the share of the machine's time from a to b that the
// hypervisor gave to others while this machine wanted to run: time no
// process here could use, however light the load.
func stolen(a, b cpuSnapshot) float64 {
	if b.all <= a.all || b.steal < a.steal {
		return 0
	}
	return float64(b.steal-a.steal) / float64(b.all-a.all)
}

type procStat struct {
	comm     string
	group    int
	ticks    uint64 // user and system time
	children uint64 // the same of its children that have exited and been waited for
}

// readStat parses /proc/PID/stat.
func readStat(pid string) (procStat, bool) {
	b, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return procStat{}, false
	}
	s := string(b)
	open, end := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || end < open {
		return procStat{}, false
	}
	f := strings.Fields(s[end+1:])
	// After the command: state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
	// cutime(13) cstime(14).
	if len(f) < 15 {
		return procStat{}, false
	}
	group, _ := strconv.Atoi(f[2])
	var t [4]uint64
	for i := range t {
		t[i], _ = strconv.ParseUint(f[11+i], 10, 64)
	}
	return procStat{comm: s[open+1 : end], group: group, ticks: t[0] + t[1], children: t[2] + t[3]}, true
}

// cpuBetween is the average cores each party used from a to b.
func cpuBetween(a, b cpuSnapshot) cpuUse {
	secs := b.at.Sub(a.at).Seconds()
	if secs <= 0 || b.busy == 0 {
		return cpuUse{}
	}
	cores := func(x, y uint64) float64 {
		if y < x {
			return 0
		}
		return float64(y-x) / clockTicks / secs
	}
	u := cpuUse{
		Server:  cores(a.server, b.server),
		Load:    cores(a.load, b.load),
		Store:   cores(a.store, b.store),
		Machine: cores(a.busy, b.busy),
	}
	u.Other = max(0, u.Machine-u.Server-u.Load-u.Store)
	return u
}
