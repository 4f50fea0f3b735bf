package store

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"ccpbx/store/pgtest"
)

// The adopter takes exactly the dead node's bridge dialogs, once; a
// dropped bridge is not among them, a survivor's stay, and a node
// declared dead can record none.
func TestAdoptNodeTakesTheDeadNodesBridgeDialogs(t *testing.T) {
	dsn := pgtest.NewDatabase(t)
	a, b := openPG(t, dsn), openPG(t, dsn)
	fa, fb := join(t, a, "a"), join(t, b, "b")
	ctx := context.Background()
	talk := []BridgeDialog{{Bridge: "c1", Leg: "caller", Agent: "1001", Dialog: `{"call_id":"x"}`},
		{Bridge: "c1", Leg: "agent", Agent: "1001", Dialog: `{"call_id":"y"}`}}
	if err := a.SaveBridgeDialogs(ctx, fa, talk); err != nil {
		t.Fatal(err)
	}
	if err := a.SaveBridgeDialogs(ctx, fa, []BridgeDialog{{Bridge: "c2", Leg: "agent", Agent: "1002", Dialog: "{}"}}); err != nil {
		t.Fatal(err)
	}
	if err := a.DropBridgeDialogs(ctx, fa, "c2"); err != nil {
		t.Fatal(err)
	}
	if err := b.SaveBridgeDialogs(ctx, fb, []BridgeDialog{{Bridge: "c3", Leg: "agent", Agent: "1003", Dialog: "{}"}}); err != nil {
		t.Fatal(err)
	}
	states, err := b.Heartbeat(ctx, fb)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := b.MarkDead(ctx, fb, "a", renewSeq(t, states, "a")); !ok || err != nil {
		t.Fatalf("mark dead: %v %v", ok, err)
	}
	if err := a.SaveBridgeDialogs(ctx, fa, talk); !errors.Is(err, ErrFenced) {
		t.Errorf("a dead node recorded dialogs: %v", err)
	}
	res, err := b.AdoptNode(ctx, fb, "a", 200)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]BridgeDialog{}
	for _, d := range res.Dialogs {
		got[d.Leg] = d
	}
	if len(res.Dialogs) != 2 || !reflect.DeepEqual(got, map[string]BridgeDialog{"caller": talk[0], "agent": talk[1]}) {
		t.Errorf("adopted dialogs %+v", res.Dialogs)
	}
	if res, err := b.AdoptNode(ctx, fb, "a", 300); err != nil || len(res.Dialogs) != 0 {
		t.Errorf("second adoption: %+v %v", res, err)
	}
	var left int
	if err := b.db.ScanRow(ctx, `SELECT count(*) FROM cc_dialogs WHERE node = 'b'`, nil, &left); err != nil || left != 1 {
		t.Errorf("survivor's dialogs: %d %v", left, err)
	}
}
