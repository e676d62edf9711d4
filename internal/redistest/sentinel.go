package redistest

import (
	"fmt"
	"testing"
	"time"
)

// StartSentinel starts a Redis Sentinel on a free loopback port that
// monitors master under masterName with a quorum of one, and waits until it
// reports the master's address. master must listen on TCP (WithTCP).
func StartSentinel(t testing.TB, masterName string, master *Server) *Server {
	t.Helper()
	if master.Network != "tcp" {
		t.Fatal("redistest: a sentinel monitors a master on TCP; start it WithTCP")
	}
	host, port := splitAddr(master.Addr)
	conf := fmt.Sprintf("sentinel monitor %s %s %s 1\nsentinel down-after-milliseconds %s 1000\n", masterName, host, port, masterName)
	s := Start(t, WithTCP(), func(c *config) { c.sentinel = conf })
	deadline := time.Now().Add(startTimeout)
	for {
		reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", masterName)
		if err == nil && reply == host+"\n"+port {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: sentinel does not report master %s: %q, %v", masterName, reply, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
