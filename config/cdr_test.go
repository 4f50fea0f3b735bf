package config

import (
	"strings"
	"testing"
)

func TestCDRSettings(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		want       CDR
		err        string
	}{
		{"defaults", "", CDR{CSV: true, Rotate: CDRRotateNone}, ""},
		{"csv off, daily", "[cdr]\ncsv = false\nrotate = \"Daily\"\n", CDR{CSV: false, Rotate: CDRRotateDaily}, ""},
		{"bad rotation", "[cdr]\nrotate = \"hourly\"\n", CDR{}, `t.toml:10: key "cdr.rotate": "hourly" is not a CDR rotation (none, daily)`},
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
			if c.CDR != tt.want {
				t.Errorf("cdr = %+v, want %+v", c.CDR, tt.want)
			}
		})
	}
}
