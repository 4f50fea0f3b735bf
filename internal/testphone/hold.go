package testphone

import "strings"

// loudLevel is the RMS level above which a packet is heard sound, not
// silence (see Loud).
const loudLevel = 300

// answerReoffer records a re-INVITE's offer, takes its audio address and
// builds the phone's answer: a=recvonly to an a=sendonly offer (the PBX
// puts the phone on hold), a=inactive to an a=inactive one, sendrecv
// otherwise, as a desk phone does.
func (c *Call) answerReoffer(offer []byte) []byte {
	c.mu.Lock()
	c.reoffers = append(c.reoffers, string(offer))
	c.mu.Unlock()
	if len(offer) > 0 {
		_ = c.Audio.SetRemote(offer)
	}
	ans := string(c.Audio.SDP())
	switch o := string(offer); {
	case strings.Contains(o, "a=sendonly"):
		ans = strings.Replace(ans, "a=sendrecv", "a=recvonly", 1)
	case strings.Contains(o, "a=inactive"):
		ans = strings.Replace(ans, "a=sendrecv", "a=inactive", 1)
	}
	return []byte(ans)
}

// Reoffers lists the SDP offers of the re-INVITEs the call received.
func (c *Call) Reoffers() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.reoffers...)
}

// Varied reports how many loud packets arrived whose payload is not one
// repeated byte: music or a prompt, told apart from a test phone's fill.
func (a *Audio) Varied() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.varied
}

// RefuseReoffers makes the call answer the re-INVITEs that follow with
// code (491 Request Pending, 488 …); 0 accepts them again.
func (c *Call) RefuseReoffers(code int) {
	c.mu.Lock()
	c.refuse = code
	c.mu.Unlock()
}

func (c *Call) refusal() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.refuse
}
