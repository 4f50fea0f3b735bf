//go:build benchprofile

package main

import (
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

// Built only with -tags benchprofile (bench/overload.sh): profiles the
// whole process under load. CCPBX_PROFILE_DIR names the folder;
// CCPBX_PROFILE_AFTER (seconds, default 5) is when the CPU profile starts,
// CCPBX_PROFILE_FOR (default 10) how long it runs; a heap profile is
// written when it stops.
func init() {
	dir := os.Getenv("CCPBX_PROFILE_DIR")
	if dir == "" {
		return
	}
	secs := func(name string, def int) time.Duration {
		if n, err := strconv.Atoi(os.Getenv(name)); err == nil {
			return time.Duration(n) * time.Second
		}
		return time.Duration(def) * time.Second
	}
	after, length := secs("CCPBX_PROFILE_AFTER", 5), secs("CCPBX_PROFILE_FOR", 10)
	go func() {
		time.Sleep(after)
		f, err := os.Create(dir + "/cpu.pprof")
		if err != nil {
			return
		}
		defer f.Close()
		if pprof.StartCPUProfile(f) != nil {
			return
		}
		time.Sleep(length)
		pprof.StopCPUProfile()
		h, err := os.Create(dir + "/heap.pprof")
		if err != nil {
			return
		}
		defer h.Close()
		_ = pprof.Lookup("heap").WriteTo(h, 0)
	}()
}
