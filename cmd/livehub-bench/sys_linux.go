package main

import (
	"os"
	"strconv"
	"strings"
	"syscall"
)

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (not in package
// syscall for every architecture).
const ipBindAddressNoPort = 0x18

// portsPerDestination reports whether a source address's ephemeral ports
// are counted per destination (see dialControl), not in all.
const portsPerDestination = true

// dialControl lets the kernel pick a dial's local port at connect time,
// not at the bind to the source address: a port is then unique per
// source/destination pair rather than per source address, so one source
// reaches about 28,000 sockets on each node instead of in all.
func dialControl(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// childAttr makes a child process (a worker, a node, a redis-server) get
// SIGTERM when this process dies, even by SIGKILL or a crash that skips
// every deferred stop.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
}

// openFileLimit is this process's limit of open files (Go raises the soft
// limit to the hard one at start); zero when unknown.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}

// ephemeralPorts is the size of the kernel's range of local ports for
// dials; 28,232 (Linux's default range) when it cannot be read.
func ephemeralPorts() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 28232
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 28232
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	if err1 != nil || err2 != nil || hi < lo {
		return 28232
	}
	return hi - lo + 1
}
