package config

import (
	"strings"
	"testing"
)

// TestQueueStatisticsSettings: the statistics knobs have defaults, keep
// what is written (0 included) and refuse out-of-range values with
// file:line like every queue time.
func TestQueueStatisticsSettings(t *testing.T) {
	queue := "[[callcenter.queue]]\nname = \"q\"\n"
	for _, tt := range []struct {
		name, file string
		sl, short  int
		queueLog   bool
		err        string
	}{
		{"defaults", queue, 20, 5, true, ""},
		{"written", "[callcenter.settings]\nqueue-log = false\n" + queue + "service-level-threshold = 30\nshort-abandon-threshold = 0\n", 30, 0, false, ""},
		{"out of range", queue + "service-level-threshold = -1\n", 0, 0, false, `t.toml:11: key "callcenter.queue[0].service-level-threshold": -1 is outside 0-86400 seconds`},
		{"short too big", queue + "short-abandon-threshold = 90000\n", 0, 0, false, `key "callcenter.queue[0].short-abandon-threshold": 90000 is outside`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(base+tt.file))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q := c.Callcenter.Queues[0]
			if *q.ServiceLevelThreshold != tt.sl || *q.ShortAbandonThreshold != tt.short || *c.Callcenter.Settings.QueueLog != tt.queueLog {
				t.Errorf("sl %d short %d queue-log %v", *q.ServiceLevelThreshold, *q.ShortAbandonThreshold, *c.Callcenter.Settings.QueueLog)
			}
		})
	}
}
