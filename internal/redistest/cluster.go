package redistest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of masters without replicas, private to a test.
type Cluster struct {
	// Addrs are the masters' host:port addresses, usable as seeds.
	Addrs []string
	// Servers are the masters, in the order of Addrs.
	Servers []*Server
}

// StartCluster starts masters redis-server processes in cluster mode on free
// loopback ports, splits the hash slots evenly between them, joins them and
// waits until every node reports cluster_state:ok and knows all the others.
// A cluster that does not come together is torn down and built again, up to
// three times, since a port can be taken by another process between being
// found free and being bound.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	if masters < 1 {
		t.Fatalf("redistest: cluster needs at least one master, got %d", masters)
	}
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var c *Cluster
		if c, err = startCluster(t, masters); err == nil {
			return c
		}
		t.Logf("redistest: cluster attempt %d: %v", attempt+1, err)
	}
	t.Fatalf("redistest: %v", err)
	return nil
}

func startCluster(t testing.TB, masters int) (*Cluster, error) {
	c := &Cluster{}
	for i := 0; i < masters; i++ {
		s := Start(t, WithTCP(), func(cfg *config) { cfg.cluster = true })
		c.Servers = append(c.Servers, s)
		c.Addrs = append(c.Addrs, s.Addr)
	}
	fail := func(err error) (*Cluster, error) {
		for _, s := range c.Servers {
			s.Kill()
		}
		return nil, err
	}
	for i, s := range c.Servers {
		lo := i * clusterSlots / masters
		hi := (i+1)*clusterSlots/masters - 1
		// Distinct config epochs up front spare the nodes an epoch collision
		// round after the join, as redis-cli --cluster create does.
		if _, err := s.Do("CLUSTER", "SET-CONFIG-EPOCH", strconv.Itoa(i+1)); err != nil {
			return fail(err)
		}
		if _, err := s.Do("CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fail(err)
		}
	}
	for _, s := range c.Servers[1:] {
		host, port := splitAddr(s.Addr)
		if _, err := c.Servers[0].Do("CLUSTER", "MEET", host, port, strconv.Itoa(s.busPort)); err != nil {
			return fail(err)
		}
	}
	if err := c.waitReady(20 * time.Second); err != nil {
		return fail(err)
	}
	return c, nil
}

// waitReady polls CLUSTER INFO on every node until the cluster is whole.
func (c *Cluster) waitReady(timeout time.Duration) error {
	want := []string{
		"cluster_state:ok",
		"cluster_slots_ok:" + strconv.Itoa(clusterSlots),
		"cluster_known_nodes:" + strconv.Itoa(len(c.Servers)),
	}
	deadline := time.Now().Add(timeout)
	for {
		ready, last := true, ""
		for _, s := range c.Servers {
			info, err := s.Do("CLUSTER", "INFO")
			if err != nil {
				ready, last = false, err.Error()
				break
			}
			for _, w := range want {
				if !strings.Contains(info, w+"\r\n") {
					ready, last = false, fmt.Sprintf("%s: %s", s.Addr, info)
					break
				}
			}
			if !ready {
				break
			}
		}
		if ready {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cluster not ready after %v; last CLUSTER INFO:\n%s", timeout, last)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func splitAddr(addr string) (host, port string) {
	i := strings.LastIndexByte(addr, ':')
	return addr[:i], addr[i+1:]
}
