//go:build !linux

package main

import "syscall"

// portsPerDestination is false: a source address's ports are counted in
// all, whatever the destination.
const portsPerDestination = false

func dialControl(_, _ string, _ syscall.RawConn) error { return nil }

func childAttr() *syscall.SysProcAttr { return nil }

func openFileLimit() int { return 0 }

func ephemeralPorts() int { return 16384 }
