package main

import (
	"os"
	"strconv"
	"strings"
)

// Socket drops per process: the kernel counts, per UDP socket, the
// datagrams it dropped because the socket's receive buffer was full (the
// last column of /proc/net/udp and udp6, by inode). Summed over the
// sockets a process holds (/proc/PID/fd → socket:[inode]) they say which
// side lost what: ccpbx's leg sockets overflowing when ccpbx falls behind,
// or sipload's own when the generator does.

// sockDrops is a snapshot: drops (and local port) by inode over the
// machine's UDP sockets.
type sockDrops map[uint64]sockDrop

type sockDrop struct {
	drops uint64
	port  uint64
}

func readSockDrops() sockDrops {
	d := make(sockDrops)
	for _, f := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		lines := strings.Split(string(b), "\n")
		for _, l := range lines[1:] {
			fs := strings.Fields(l)
			if len(fs) < 13 {
				continue
			}
			ino, err1 := strconv.ParseUint(fs[9], 10, 64)
			n, err2 := strconv.ParseUint(fs[len(fs)-1], 10, 64)
			var port uint64
			if i := strings.LastIndexByte(fs[1], ':'); i >= 0 {
				port, _ = strconv.ParseUint(fs[1][i+1:], 16, 16)
			}
			if err1 == nil && err2 == nil {
				d[ino] = sockDrop{drops: n, port: port}
			}
		}
	}
	return d
}

// socketInodes is the set of socket inodes pid holds ("self" for this
// process).
func socketInodes(pid string) map[uint64]bool {
	dir := "/proc/" + pid + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil
	}
	out := make(map[uint64]bool, len(ents))
	for _, e := range ents {
		t, err := os.Readlink(dir + "/" + e.Name())
		if err != nil {
			continue
		}
		if s, ok := strings.CutPrefix(t, "socket:["); ok {
			if ino, err := strconv.ParseUint(strings.TrimSuffix(s, "]"), 10, 64); err == nil {
				out[ino] = true
			}
		}
	}
	return out
}

// dropCount is what the sockets of one process dropped in the window.
type dropCount struct {
	drops, oddPort uint64 // oddPort: of drops, those on odd local ports (RTCP for ccpbx's legs)
	socks          int    // sockets that dropped any
}

// dropsOf is how many datagrams the sockets in inodes dropped between
// before and after. A socket that is in after only (opened during the
// window) counts from zero.
func dropsOf(inodes map[uint64]bool, before, after sockDrops) dropCount {
	var c dropCount
	for ino := range inodes {
		a, ok := after[ino]
		if !ok {
			continue
		}
		b := before[ino].drops
		if a.drops > b {
			c.drops += a.drops - b
			c.socks++
			if a.port%2 == 1 {
				c.oddPort += a.drops - b
			}
		}
	}
	return c
}
