package sip

import (
	"testing"

	"ccpbx/config"
)

func TestCallerIDFromAccount(t *testing.T) {
	for _, c := range []struct {
		name      string
		u         config.User
		num, cidn string
	}{
		{"effective caller id", config.User{ID: "1002", Variables: map[string]string{
			"effective_caller_id_number": "1002", "effective_caller_id_name": "Extension 1002"}}, "1002", "Extension 1002"},
		{"none set: the user id", config.User{ID: "1003"}, "1003", "1003"},
		{"presented number allowed", config.User{ID: "1004", Params: map[string]string{ParamAllowPresentedCallerID: "true"},
			Variables: map[string]string{"effective_caller_id_number": "1004"}}, "1001", "Spoofed"},
	} {
		v := map[string]string{"caller_id_number": "1001", "caller_id_name": "Spoofed"}
		callerIDFromAccount(v, c.u)
		if v["caller_id_number"] != c.num || v["caller_id_name"] != c.cidn {
			t.Errorf("%s: %q <%s>, want %q <%s>", c.name, v["caller_id_name"], v["caller_id_number"], c.cidn, c.num)
		}
	}
}
