package config

import (
	"strings"
	"testing"
)

func TestListingNames(t *testing.T) {
	for _, ok := range []string{"1001", "3000@default", "agent.x-y_z", "ünïcode", strings.Repeat("a", 255)} {
		if why := ListingNameProblem(ok); why != "" {
			t.Errorf("%q refused: %s", ok, why)
		}
	}
	for _, bad := range []string{"", "a|b", "a,b", "a\rb", "a\nb", "a b", "a\tb", "a'b", `a"b`, "a\x00", "a\u200bb", "\xff", strings.Repeat("a", 256)} {
		if ListingNameProblem(bad) == "" {
			t.Errorf("%q accepted", bad)
		}
	}
	_, err := Parse("t.toml", []byte(`[event_socket]
password = "s"
[[profile]]
name = "internal"
port = 5060
context = "default"
[[dialplan.context]]
name = "default"
[[callcenter.queue]]
name = "q,1"
[[callcenter.agent]]
name = "a|b"
type = "callback"
`))
	if err == nil || !strings.Contains(err.Error(), `t.toml:10: key "callcenter.queue[0].name": queue name "q,1" must not contain any of |,'"`) ||
		!strings.Contains(err.Error(), `t.toml:12: key "callcenter.agent[0].name": agent name "a|b" must not contain any of |,'"`) {
		t.Fatalf("err = %v", err)
	}
}
