package redistest

import (
	"strings"
	"testing"
)

func TestStart_RestartLosesDataAndKeepsAddress(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []Option
	}{
		{"unix", nil},
		{"tcp", []Option{WithTCP()}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := Start(t, tc.opts...)
			if s.Network != tc.name {
				t.Fatalf("Network = %q, want %q", s.Network, tc.name)
			}
			if _, err := s.Do("SET", "k", "v"); err != nil {
				t.Fatal(err)
			}
			if got, _ := s.Do("GET", "k"); got != "v" {
				t.Fatalf("GET = %q, want v", got)
			}
			addr := s.Addr
			s.Restart()
			if s.Addr != addr {
				t.Fatalf("address changed from %s to %s", addr, s.Addr)
			}
			if got, err := s.Do("GET", "k"); err != nil || got != "" {
				t.Fatalf("after restart GET = %q, %v; want empty", got, err)
			}
			s.Kill()
			if s.Running() {
				t.Fatal("Running after Kill")
			}
			if _, err := s.Do("PING"); err == nil {
				t.Fatal("PING answered after Kill")
			}
			s.Restart()
			if got, err := s.Do("PING"); err != nil || got != "PONG" {
				t.Fatalf("PING after restart = %q, %v", got, err)
			}
		})
	}
}

func TestStart_WithArgsOverridesDefaults(t *testing.T) {
	s := Start(t, WithArgs("--maxmemory", "12mb"))
	got, err := s.Do("CONFIG", "GET", "maxmemory")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "12582912") {
		t.Fatalf("CONFIG GET maxmemory = %q", got)
	}
}

func TestStartCluster_AllSlotsServed(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs) != 3 {
		t.Fatalf("%d addrs, want 3", len(c.Addrs))
	}
	for _, s := range c.Servers {
		nodes, err := s.Do("CLUSTER", "NODES")
		if err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(nodes, "master"); n != 3 {
			t.Fatalf("%s sees %d masters:\n%s", s.Addr, n, nodes)
		}
	}
	// A key lands on exactly one master; the others redirect.
	var owners int
	for _, s := range c.Servers {
		if _, err := s.Do("SET", "somekey", "1"); err == nil {
			owners++
		} else if !strings.HasPrefix(err.Error(), "MOVED") {
			t.Fatalf("SET on %s: %v", s.Addr, err)
		}
	}
	if owners != 1 {
		t.Fatalf("%d nodes accepted the key, want 1", owners)
	}
}

func TestStartSentinel_ReportsMaster(t *testing.T) {
	master := Start(t, WithTCP())
	s := StartSentinel(t, "mymaster", master)
	reply, err := s.Do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster")
	if err != nil {
		t.Fatal(err)
	}
	if reply != strings.Replace(master.Addr, ":", "\n", 1) {
		t.Fatalf("sentinel reports %q for master %s", reply, master.Addr)
	}
}
