package store

import (
	"context"
	"fmt"
	"testing"
	"time"

	"ccpbx/store/pgtest"
)

// BenchmarkRegistrationBatch times one transaction of the registrar's
// write-behind queue: batch distinct bindings refreshed at once (every
// REGISTER of a busy second). ns/row is what one REGISTER costs the store;
// compare it with BenchmarkStore's op=ApplyRegistrations (one binding, one
// transaction).
func BenchmarkRegistrationBatch(b *testing.B) {
	open := map[Driver]func(*testing.B) *Store{
		SQLite: func(b *testing.B) *Store {
			s, err := Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
		Postgres: func(b *testing.B) *Store {
			s, err := OpenConfig(context.Background(), Config{Driver: Postgres, DSN: pgtest.NewDatabase(b), DataDir: b.TempDir()})
			if err != nil {
				b.Fatal(err)
			}
			return s
		},
	}
	for _, d := range []Driver{SQLite, Postgres} {
		for _, n := range []int{1, 64, 1024} {
			b.Run(fmt.Sprintf("driver=%s/batch=%d", d, n), func(b *testing.B) {
				s := open[d](b)
				defer s.Close()
				ctx := context.Background()
				now := time.Now()
				batch := make([]Registration, n)
				for i := range batch {
					batch[i] = Registration{User: fmt.Sprintf("u%d", 1000+i%1000), Key: fmt.Sprintf("sip:u@192.0.2.1:%d", 5000+i),
						Realm: "pbx", Contact: fmt.Sprintf("sip:u@192.0.2.1:%d", 5000+i), CallID: fmt.Sprintf("c%d", i),
						Expires: now.Add(time.Hour), Registered: now, Source: "192.0.2.1:5060", Transport: "udp",
						UserAgent: "bench", Profile: "internal"}
				}
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					for j := range batch {
						batch[j].CSeq = uint32(i)
					}
					if err := s.ApplyRegistrations(ctx, batch, nil); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
			})
		}
	}
}
