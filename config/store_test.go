package config

import (
	"strings"
	"testing"
)

func TestStoreSettings(t *testing.T) {
	for _, tt := range []struct {
		name, file string
		want       Store
		err        string
	}{
		{"default sqlite", "", Store{Driver: StoreSQLite}, ""},
		{"postgres multi-host", "[store]\ndriver = \"PostgreS\"\ndsn = \"postgres://ccpbx:pw@db1:5432,db2:5432/ccpbx?target_session_attrs=read-write\"\n",
			Store{Driver: StorePostgres, DSN: "postgres://ccpbx:pw@db1:5432,db2:5432/ccpbx?target_session_attrs=read-write"}, ""},
		{"keyword form", "[store]\ndriver = \"postgres\"\ndsn = \"host=db1,db2 dbname=ccpbx target_session_attrs=read-write\"\n",
			Store{Driver: StorePostgres, DSN: "host=db1,db2 dbname=ccpbx target_session_attrs=read-write"}, ""},
		{"unknown driver", "[store]\ndriver = \"mysql\"\n", Store{}, `t.toml:10: key "store.driver": "mysql" is not a store driver (sqlite, postgres)`},
		{"postgres without dsn", "[store]\ndriver = \"postgres\"\n", Store{}, `t.toml:10: key "store.driver": driver "postgres" needs a dsn`},
		{"empty dsn", "[store]\ndriver = \"postgres\"\ndsn = \" \"\n", Store{}, `t.toml:11: key "store.dsn": driver "postgres" needs a dsn`},
		{"dsn with sqlite", "[store]\ndsn = \"host=db1\"\n", Store{}, `t.toml:10: key "store.dsn": dsn is for driver "postgres"`},
		{"bad port", "[store]\ndriver = \"postgres\"\ndsn = \"postgres://ccpbx:hunter2@db1:port/x\"\n", Store{}, `t.toml:11: key "store.dsn": invalid dsn`},
		{"bad session attrs", "[store]\ndriver = \"postgres\"\ndsn = \"host=db1 password=hunter2 target_session_attrs=sometimes\"\n", Store{}, `t.toml:11: key "store.dsn": invalid dsn`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse("t.toml", []byte(base+tt.file))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Fatalf("error repeats the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Store != tt.want {
				t.Errorf("store = %+v, want %+v", c.Store, tt.want)
			}
		})
	}
}
