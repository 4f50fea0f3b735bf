//go:build cluster

package cluster

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"ccpbx/internal/pbxtest"
	"ccpbx/internal/testphone"
)

// The chaos run's shape (scale-out.md §4.8 T9, shortened to stay well
// inside CI's budget on 2 cores).
const (
	chaosAgents   = 8
	chaosDuration = 60 * time.Second
	chaosCPS      = 3
	chaosKills    = 3
	// A killed node stays down this long (more than the lease TTL, so the
	// survivor declares it dead and adopts) before it is restarted.
	chaosDown = 5 * time.Second
	// Callers wait this long for an agent before hanging up themselves.
	patienceMin, patienceMax = 6 * time.Second, 15 * time.Second
	// No RTP at all for this long: the caller's node is gone.
	silence = 3 * time.Second
	// marker fills the callers' RTP; sipp agents echo it back, so a caller
	// that hears it is bridged to an agent.
	marker = 0x5a
)

// sippAgent is one agent phone: sipp registered through Kamailio, then the
// agent scenario on the same port with its message trace.
type sippAgent struct {
	name  string
	port  int
	trace string
	proc  *proc
}

func (c *cluster) startSippAgent(t *testing.T, sipp, name string) *sippAgent {
	t.Helper()
	a := &sippAgent{name: name, port: pbxtest.PortFor(t, "udp"), trace: filepath.Join(c.art, "agent-"+name+".msg")}
	media := pbxtest.UDPPortRange(t, 4)
	reg := filepath.Join(c.root, "test", "interop", "sipp", "register.xml")
	// Registration through Kamailio (which adds the Path), retried: the
	// first REGISTER may reach Kamailio before its dispatcher's first probe.
	var out []byte
	ok := pbxtest.Until(20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, sipp, "-sf", reg, c.phones, "-i", "127.0.0.1", "-p", strconv.Itoa(a.port), "-t", "u1",
			"-s", name, "-au", name, "-ap", "1234", "-key", "expires", "3600", "-key", "contact_params", "",
			"-m", "1", "-nostdin", "-recv_timeout", "3000")
		cmd.Dir = c.art
		var err error
		out, err = cmd.CombinedOutput()
		return err == nil
	})
	if !ok {
		t.Fatalf("sipp agent %s: REGISTER through kamailio failed:\n%s%s", name, out, c.logs())
	}
	a.proc = startProc(t, "agent-"+name, filepath.Join(c.art, "agent-"+name+".out"), c.art, sipp,
		"-sf", filepath.Join(c.root, "test", "cluster", "sipp", "agent.xml"),
		"-i", "127.0.0.1", "-p", strconv.Itoa(a.port), "-t", "u1", "-s", name,
		"-mi", "127.0.0.1", "-mp", strconv.Itoa(media), "-rtp_echo",
		"-nostdin", "-aa", "-max_recv_loops", "1000",
		"-trace_msg", "-message_file", a.trace,
		"-trace_err", "-error_file", filepath.Join(c.art, "agent-"+name+".err"))
	pbxtest.WaitFor(t, 15*time.Second, func() bool {
		if a.proc.exited() {
			t.Fatalf("sipp agent %s exited: %v\n%s", name, a.proc.err, tail(a.proc.outPath, 20))
		}
		return udpBound(t, a.port)
	}, "sipp agent %s to bind UDP %d", name, a.port)
	return a
}

// joined reads the queue's live members row of a caller (by its number):
// its joined_epoch and state.
func (c *cluster) joined(num string) (int64, string, bool) {
	rows, err := c.query(fmt.Sprintf(`SELECT joined_epoch, state FROM members WHERE cid_number = '%s' AND state <> 'Abandoned'`, num))
	if err != nil || len(rows) == 0 {
		return 0, "", false
	}
	epoch, err := strconv.ParseInt(rows[0][0], 10, 64)
	if err != nil {
		return 0, "", false
	}
	return epoch, rows[0][1], true
}

// udpBound reports whether the kernel's table lists a UDP socket on
// 127.0.0.1:port (looked up instead of bound, which could steal it).
func udpBound(t *testing.T, port int) bool {
	b, err := os.ReadFile("/proc/net/udp")
	if err != nil {
		t.Fatalf("read /proc/net/udp: %v", err)
	}
	suffix := fmt.Sprintf(":%04X", port)
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 && strings.HasPrefix(f[1], "0100007F:") && strings.HasSuffix(f[1], suffix) {
			return true
		}
	}
	return false
}

// outcome is what a caller lived, from its own side.
type outcome struct {
	num      string
	kind     string // served, abandoned, released, refused, unaccounted
	nodes    []string
	attempts int
	lost     int // calls of this caller lost with a killed node
	detail   string
	// invited is when the first call's INVITE left, answer how long its
	// 200 took (G4, reported: Kamailio moves a call off a dead node only
	// after its fr_timer).
	invited time.Time
	answer  time.Duration
	// resumed: the call back joined the queue with the first call's
	// joined_epoch (PostgreSQL's members row), as abandoned-resume-allowed
	// promises for a caller whose node died.
	resumed  bool
	rejoined string // what the call back's members row said
}

// caller places one trunk call for the queue and plays the customer:
// it waits (patience) for an agent, sending its marker; it is served when
// the marker comes back (an agent echoes it), then waits for the PBX's BYE
// (the agent hung up); it hangs up itself when its patience runs out; a
// call whose RTP stops altogether died with its node, and the caller calls
// back once (the queue resumes it: abandoned-resume-allowed; joined
// reads its members row's joined_epoch to tell).
func caller(ctx context.Context, trunk *testphone.Phone, server, num string, patience time.Duration, joined func(num string) (int64, string, bool)) outcome {
	o := outcome{num: num, kind: "unaccounted"}
	for o.attempts < 2 {
		o.attempts++
		invited := time.Now()
		var answered func()
		if o.attempts > 1 {
			// Resumed: the row kept the first call's joined_epoch, which
			// is earlier than this call's INVITE (the loss took `silence`
			// to notice). A new join is dated at or after the INVITE.
			// Not "at or before the first call's INVITE": its join may
			// fall in the next second (one run read 1796277544 for a
			// first INVITE at …543.9 and called that not resumed).
			first, again := o.invited.Unix(), invited.Unix()
			answered = func() {
				pbxtest.Until(3*time.Second, func() bool {
					epoch, state, ok := joined(num)
					if !ok {
						return false
					}
					o.resumed = epoch < again
					o.rejoined = fmt.Sprintf("joined_epoch %d (first call invited at %d, call back at %d), %s", epoch, first, again, state)
					return true
				})
			}
		}
		kind, node, detail, answer := oneCall(ctx, trunk, server, num, patience, answered)
		if o.attempts == 1 {
			o.invited, o.answer = invited, answer
		}
		o.nodes = append(o.nodes, node)
		o.kind, o.detail = kind, detail
		if kind != "lost" {
			return o
		}
		o.lost++
	}
	// Lost twice: accounted as lost with its nodes (the caller gave up).
	o.kind = "lost"
	return o
}

func oneCall(ctx context.Context, trunk *testphone.Phone, server, num string, patience time.Duration, answered func()) (kind, node, detail string, answer time.Duration) {
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	invited := time.Now()
	call, err := trunk.Invite(cctx, server, num, "3000")
	if err != nil {
		return "refused", "", err.Error(), 0
	}
	code, err := call.WaitFinal(cctx)
	answer = time.Since(invited)
	if code != 200 {
		return "refused", "", fmt.Sprintf("final %d %v (codes %v)", code, err, call.Codes()), answer
	}
	node = nodeOf(call.Final().Contact())
	if answered != nil {
		answered()
	}
	hangup := func() {
		hctx, hcancel := context.WithTimeout(ctx, 2*time.Second)
		defer hcancel()
		_ = call.Hangup(hctx)
	}
	start := time.Now()
	lastPackets, lastRTP := 0, time.Now()
	served := time.Time{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if call.Ended() {
			if !served.IsZero() {
				return "served", node, "", answer
			}
			return "released", node, "the PBX hung up before any agent", answer
		}
		_ = call.Audio.Send(1, marker)
		now := time.Now()
		if p := call.Audio.Packets(); p != lastPackets {
			lastPackets, lastRTP = p, now
		}
		if served.IsZero() && call.Audio.Received(marker) > 0 {
			served = now
		}
		switch {
		case now.Sub(lastRTP) > silence:
			hangup()
			if !served.IsZero() {
				return "served", node, "its node went silent during the bridge", answer
			}
			return "lost", node, "", answer
		case served.IsZero() && now.Sub(start) > patience:
			hangup()
			return "abandoned", node, "", answer
		case !served.IsZero() && now.Sub(served) > 15*time.Second:
			hangup()
			return "served", node, "no BYE from the PBX 15 s after the agent answered", answer
		}
		select {
		case <-ctx.Done():
			hangup()
			return "unaccounted", node, "the run ended first", answer
		case <-tick.C:
		}
	}
}

// TestClusterChaos is issue 16's chaos run: trunk calls at 3 per second
// through Kamailio to two nodes, sipp agents answering through Kamailio
// with a talk time, and a random node SIGKILLed and restarted three times.
// The oracle reads only the phones: no agent's offers overlap (the agents'
// own traces), every caller ends served, abandoned by itself, released by
// the PBX or lost with a killed node (and then calls back, and is resumed:
// its members row keeps the first call's joined_epoch); after the run
// every agent is Waiting (none stuck in Receiving or In a queue call) on
// every live node and in PostgreSQL, and no member is left Waiting or
// Trying.
func TestClusterChaos(t *testing.T) {
	sipp := need(t, "sipp", "sip-tester")
	var names []string
	for i := 1; i <= chaosAgents; i++ {
		names = append(names, fmt.Sprintf("%d", 1000+i))
	}
	c := newCluster(t, "chaos", names)
	trunk := testphone.New(t)
	c.waitKamailio(t, trunk)
	seed := uint64(time.Now().UnixNano())
	t.Logf("chaos: seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 16))
	agents := make([]*sippAgent, 0, len(names))
	for _, n := range names {
		agents = append(agents, c.startSippAgent(t, sipp, n))
	}
	for _, n := range names {
		// On either node: the other mirrors it.
		c.nodes[rng.IntN(len(c.nodes))].mustCLI(t, fmt.Sprintf("callcenter_config agent set status %s 'Available'", n))
	}
	c.waitAgents(t, "login", names, "Available", "Waiting")

	ctx, cancel := context.WithTimeout(context.Background(), chaosDuration+2*time.Minute)
	defer cancel()
	var (
		mu       sync.Mutex
		outcomes []outcome
		wg       sync.WaitGroup
	)
	// The chaos: kills spread over the run, each of a random node, which
	// comes back after chaosDown.
	var kills []string
	var killedAt []time.Time
	chaosDone := make(chan struct{})
	go func() {
		defer close(chaosDone)
		every := chaosDuration / (chaosKills + 1)
		for k := 0; k < chaosKills; k++ {
			select {
			case <-ctx.Done():
				return
			case <-time.After(every - chaosDown/2):
			}
			n := c.nodes[rng.IntN(len(c.nodes))]
			t.Logf("chaos: %s SIGKILL at %s", n.id, time.Now().Format("15:04:05.000"))
			n.proc.kill9()
			kills = append(kills, n.id)
			killedAt = append(killedAt, time.Now())
			select {
			case <-ctx.Done():
				return
			case <-time.After(chaosDown):
			}
			n.start(t)
			t.Logf("chaos: %s restarted at %s", n.id, time.Now().Format("15:04:05.000"))
		}
	}()

	began := time.Now()
	interval := time.Second / chaosCPS
	placed := 0
	for next := began; time.Since(began) < chaosDuration; next = next.Add(interval) {
		time.Sleep(time.Until(next))
		placed++
		num := fmt.Sprintf("555%04d", placed)
		patience := patienceMin + time.Duration(rng.Int64N(int64(patienceMax-patienceMin)))
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := caller(ctx, trunk, c.trunks, num, patience, c.joined)
			mu.Lock()
			outcomes = append(outcomes, o)
			mu.Unlock()
		}()
	}
	rate := float64(placed) / time.Since(began).Seconds()
	<-chaosDone
	wg.Wait()
	for _, n := range c.nodes {
		if n.proc.exited() {
			t.Fatalf("%s is not running after the run (it died by itself?): %v%s", n.id, n.proc.err, c.logs())
		}
		n.waitUp(t)
	}

	// The callers' side.
	counts := map[string]int{}
	var bad []string
	lostCalls, callbacks, resumed := 0, 0, 0
	var notResumed []string
	for _, o := range outcomes {
		counts[o.kind]++
		lostCalls += o.lost
		if o.attempts > 1 {
			callbacks++
			if o.resumed {
				resumed++
			} else {
				notResumed = append(notResumed, fmt.Sprintf("%s on %v: %s", o.num, o.nodes, o.rejoined))
			}
		}
		switch o.kind {
		case "served", "abandoned", "released":
		default:
			bad = append(bad, fmt.Sprintf("%s: %s on %v (%d attempts) %s", o.num, o.kind, o.nodes, o.attempts, o.detail))
		}
	}
	t.Logf("chaos: %d callers in %s (%.2f/s), kills %v; outcomes %v; %d calls lost with a node, %d callers called back, %d of them resumed",
		placed, chaosDuration, rate, kills, counts, lostCalls, callbacks, resumed)
	if len(notResumed) > 0 {
		t.Errorf("%d callers lost with a node called back and were not resumed (joined_epoch of their first call):\n%s",
			len(notResumed), strings.Join(notResumed, "\n"))
	}
	// G4, reported (no timing thresholds in tests): how long new calls
	// took to be answered, and the first call after each kill.
	sort.Slice(outcomes, func(i, j int) bool { return outcomes[i].invited.Before(outcomes[j].invited) })
	var slowest time.Duration
	over2 := 0
	for _, o := range outcomes {
		slowest = max(slowest, o.answer)
		if o.answer > 2*time.Second {
			over2++
		}
	}
	var firsts []string
	for i, k := range killedAt {
		for _, o := range outcomes {
			if o.invited.After(k) {
				firsts = append(firsts, fmt.Sprintf("%s+%s: %s", kills[i], o.invited.Sub(k).Round(time.Millisecond), o.answer.Round(time.Millisecond)))
				break
			}
		}
	}
	t.Logf("chaos: answer times: slowest %s, %d of %d over 2 s; first call after each kill (kill+sent: answered in) %v",
		slowest.Round(time.Millisecond), over2, len(outcomes), firsts)
	if len(kills) < chaosKills {
		t.Errorf("only %d node kills happened, want %d", len(kills), chaosKills)
	}
	if rate < chaosCPS*0.95 {
		t.Errorf("the run placed %.2f calls/s, want %d", rate, chaosCPS)
	}
	if counts["served"] == 0 {
		t.Errorf("no caller was served: %v%s", counts, c.logs())
	}
	if len(bad) > 0 {
		sort.Strings(bad)
		t.Errorf("%d callers not accounted for as served, abandoned or released:\n%s", len(bad), strings.Join(bad, "\n"))
	}

	// The agents' side: no agent offered twice at once. The phones' calls
	// have all ended (each lasts at most ~3 s from its INVITE).
	var double []string
	offered, answered := 0, 0
	servedBy := map[string]bool{}
	for _, a := range agents {
		f, err := os.Open(a.trace)
		if err != nil {
			t.Fatalf("agent %s trace: %v", a.name, err)
		}
		msgs, err := parseTrace(f)
		f.Close()
		if err != nil {
			t.Fatalf("agent %s trace: %v", a.name, err)
		}
		offs := offers(a.name, msgs)
		offered += len(offs)
		for _, o := range offs {
			if o.answered && o.acked {
				answered++
				servedBy[o.from] = true
			}
		}
		double = append(double, overlaps(offs)...)
	}
	t.Logf("chaos: agents saw %d offers, %d answered and ACKed", offered, answered)
	if len(double) > 0 {
		t.Errorf("%d double offers (an agent's calls overlapping):\n%s", len(double), strings.Join(double, "\n"))
	}

	// After the run: every agent Waiting (Idle while in wrap-up) on every
	// node and in PostgreSQL, no member left Waiting or Trying.
	var last string
	ok := pbxtest.Until(20*time.Second, func() bool {
		for _, n := range c.live() {
			rows, err := n.agents(t)
			if err != nil {
				last = err.Error()
				return false
			}
			for _, a := range names {
				if r := rows[a]; r.state != "Waiting" && r.state != "Idle" {
					last = fmt.Sprintf("%s lists %s as %s/%s", n.id, a, r.status, r.state)
					return false
				}
			}
		}
		rows, err := c.query(`SELECT name, state FROM agents WHERE state NOT IN ('Waiting', 'Idle')`)
		if err != nil || len(rows) > 0 {
			last = fmt.Sprintf("PostgreSQL agents not Waiting/Idle: %v %v", rows, err)
			return false
		}
		rows, err = c.query(`SELECT instance_id, uuid, cid_number, state FROM members WHERE state IN ('Waiting', 'Trying')`)
		if err != nil || len(rows) > 0 {
			last = fmt.Sprintf("PostgreSQL members still Waiting/Trying after every caller left: %v %v", rows, err)
			return false
		}
		return true
	})
	if !ok {
		t.Errorf("after the run: %s%s", last, c.logs())
	}
}
