package call

import (
	"slices"
	"sort"
	"testing"
)

// TestNewChannelVarOrder: a new channel's variables are direction and uuid,
// then the spec's sorted by name, as setting them one by one in sorted
// order gave them, also when the spec sets direction or uuid itself or has
// empty values.
func TestNewChannelVarOrder(t *testing.T) {
	specs := []map[string]string{
		nil,
		{"b": "2", "a": "1", "c": "3"},
		{"zz": "z", "direction": "sideways", "aa": "a", "uuid": "mine", "empty": ""},
		{"direction": "", "x": "1"},
		{"uuid": "", "x": "1", "y": ""},
	}
	for i, vars := range specs {
		c := newTestCore(t)
		ch := c.NewChannel(ChannelSpec{UUID: "id", Name: "n", Direction: Inbound, Vars: vars})
		// The reference: every variable through setVarLocked, in order.
		ref := &Channel{}
		ref.setVarLocked("direction", string(Inbound))
		ref.setVarLocked("uuid", "id")
		keys := make([]string, 0, len(vars))
		for k := range vars {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ref.setVarLocked(k, vars[k])
		}
		ref.setVarLocked("channel_name", "n")
		ch.mu.Lock()
		got := slices.Clone(ch.vars)
		ch.mu.Unlock()
		if !slices.Equal(got, ref.vars) {
			t.Errorf("spec %d: variables\n got %v\nwant %v", i, got, ref.vars)
		}
	}
}
