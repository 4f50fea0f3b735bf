package acd

import (
	"reflect"

	"ccpbx/config"
)

// Reload takes a re-read callcenter configuration (reloadxml, SIGHUP)
// without touching live calls, with the semantics of FreeSWITCH's
// `callcenter_config queue reload <q>`, `agent reload <a>` and
// `tier reload`, applied to what changed: a new or changed queue is
// reloaded from the file (members keep waiting in it), a queue gone from
// the file is unloaded once no member waits in it, new or changed agents
// and tiers are re-applied; unchanged agents keep their live status and
// state. It returns one line per change.
func (a *ACD) Reload(cfg config.Callcenter) []string {
	var changes []string
	a.do(func() {
		old := a.cfg
		a.cfg = cfg
		a.resumeAny.Store(anyResume(cfg))
		a.publishKnown()
		oldQ := map[string]config.Queue{}
		for _, q := range old.Queues {
			oldQ[q.Name] = q
		}
		newQ := map[string]bool{}
		for _, q := range cfg.Queues {
			newQ[q.Name] = true
			prev, had := oldQ[q.Name]
			switch {
			case !had:
				a.addQueue(newQueue(q, a.log))
				changes = append(changes, "queue "+q.Name+" loaded")
			case !reflect.DeepEqual(prev, q):
				if _, loaded := a.queues[q.Name]; loaded {
					a.removeQueue(q.Name)
					a.addQueue(newQueue(q, a.log))
				}
				changes = append(changes, "queue "+q.Name+" reloaded")
			}
		}
		for _, name := range append([]string(nil), a.queueOrder...) {
			if newQ[name] {
				continue
			}
			if a.queueHasMembers(name) {
				changes = append(changes, "queue "+name+" removed from the file; unloaded when its callers are gone")
				continue
			}
			a.removeQueue(name)
			changes = append(changes, "queue "+name+" unloaded")
		}
		oldA := map[string]config.Agent{}
		for _, ag := range old.Agents {
			oldA[ag.Name] = ag
		}
		for _, ag := range cfg.Agents {
			if prev, had := oldA[ag.Name]; !had || !reflect.DeepEqual(prev, ag) {
				a.applyConfigAgents(ag.Name)
				changes = append(changes, "agent "+ag.Name+" reloaded")
			}
		}
		oldT := map[config.Tier]bool{}
		for _, t := range old.Tiers {
			oldT[t] = true
		}
		for _, t := range cfg.Tiers {
			if !oldT[t] {
				a.applyConfigTiers(t.Queue, t.Agent)
				changes = append(changes, "tier "+t.Queue+"/"+t.Agent+" reloaded")
			}
		}
		a.dirty = true
	})
	return changes
}

// queueHasMembers reports whether a member waits in (or is served by) the
// queue.
func (a *ACD) queueHasMembers(name string) bool {
	for _, m := range a.members {
		if m.Queue == name {
			return true
		}
	}
	return false
}
