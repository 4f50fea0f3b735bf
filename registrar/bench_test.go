package registrar

import (
	"testing"

	sipmsg "github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"ccpbx/store"
)

// BenchmarkRefresh measures one authenticated REGISTER refresh end to end
// in the handler: digest check, planning, the SQLite write and the 200.
// (The client-side digest computation is included in the loop.)
func BenchmarkRefresh(b *testing.B) {
	st, err := store.OpenMemory()
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	r, err := New(Config{Users: testUsers()}, st, quietLog())
	if err != nil {
		b.Fatal(err)
	}
	first := rawRegister(b, "bench", 1, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
	chalRes := r.challenge(first, false, false, r.realmFor(first))
	chal, err := digest.ParseChallenge(chalRes.GetHeader("WWW-Authenticate").Value())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		req := rawRegister(b, "bench", i+1, "1001", "Contact: <sip:1001@127.0.0.1:5999>", "Expires: 3600")
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(),
			Username: "1001", Password: "1234", Count: i + 1})
		if err != nil {
			b.Fatal(err)
		}
		req.AppendHeader(sipmsg.NewHeader("Authorization", cred.String()))
		tx := newFakeTx()
		b.StartTimer()
		r.HandleRegister(req, tx)
		if tx.responses[0].StatusCode != 200 {
			b.Fatalf("status %d", tx.responses[0].StatusCode)
		}
	}
}
