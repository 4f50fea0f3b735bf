package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// noticeChannel is the one LISTEN/NOTIFY channel of ccpbx nodes.
const noticeChannel = "ccpbx_cc"

// Bounds of the listener.
const (
	// listenBuffer is the notice channel's capacity; a slower reader
	// blocks the listener, and the server queues the rest.
	listenBuffer = 256
	listenPing   = 5 * time.Second
	// Reconnection backoff: doubling from the first to the last.
	listenBackoffMin = 50 * time.Millisecond
	listenBackoffMax = 2 * time.Second
)

// listenIdle: a listening connection silent this long is pinged, so a
// server that vanished without a reset (partition, failover) is noticed
// in listenIdle + listenPing rather than at TCP keepalive's pace (a
// variable for tests).
var listenIdle = 10 * time.Second

// clusterSelf is the node a Store speaks for: its id for notices (set by
// EnableNotices or JoinCluster), whether call-center writes send notices,
// and its fence once it joined. Every call-center write reads it (an
// atomic load: nothing for the single box to wait on).
type clusterSelf struct{ p atomic.Pointer[self] }

type self struct {
	node    string
	notices bool      // every call-center write sends its notice
	fence   NodeFence // Incarnation 0 until JoinCluster
}

func (c *clusterSelf) load() self {
	if v := c.p.Load(); v != nil {
		return *v
	}
	return self{}
}

func (c *clusterSelf) get() (node string, notices bool) {
	v := c.load()
	return v.node, v.notices
}

// update changes the current value with f, atomically.
func (c *clusterSelf) update(f func(*self)) {
	for {
		old := c.p.Load()
		next := &self{}
		if old != nil {
			*next = *old
		}
		f(next)
		if c.p.CompareAndSwap(old, next) {
			return
		}
	}
}

// EnableNotices makes every later call-center write (UpsertAgent,
// UpsertTier, UpsertMember, Delete*, Truncate*) send its notice from node
// in the same statement, so it is delivered at the write's commit.
// Once the store also joined the cluster (JoinCluster), those writes are
// fenced as well: they fail with ErrFenced, changing nothing and
// announcing nothing, while this node is declared dead or superseded (a
// paused node's late writes cannot undo an adoption). Cluster mode turns
// it on; it is off by default (a single box sends nothing).
// ErrClusterUnsupported on SQLite.
func (s *Store) EnableNotices(node string) error {
	if s.db.d.driver != Postgres {
		return ErrClusterUnsupported
	}
	s.cluster.update(func(v *self) {
		if v.node != node {
			v.fence = NodeFence{}
		}
		v.node, v.notices = node, true
	})
	return nil
}

// noticePayload is a notice on the wire: JSON, so any key survives.
type noticePayload struct {
	Kind string `json:"kind"`
	Key  string `json:"key"`
	From string `json:"from"`
}

// payload encodes a notice. PostgreSQL refuses payloads of 8000 bytes or
// more; a key that long (no name of ccpbx's is) becomes "" (every row of
// the kind), which receivers treat as a reload: bigger, never lost.
func payload(kind, key, from string) string {
	b, _ := json.Marshal(noticePayload{Kind: kind, Key: key, From: from})
	if len(b) >= 7900 {
		b, _ = json.Marshal(noticePayload{Kind: kind, From: from})
	}
	return string(b)
}

// notice names one row a write changed.
type notice struct{ kind, key string }

// stmt is one statement of a write.
type stmt struct {
	query string
	args  []any
}

// write runs the statements of one call-center write. With notices off
// they run one after another as before (no transaction, no cost for the
// single box). With notices on they and the notices become one
// statement, data-modifying WITH clauses followed by pg_notify calls:
// PostgreSQL runs it as one transaction, so the notices are delivered at
// its commit and never for a failed write.
func (s *Store) write(ctx context.Context, stmts []stmt, notices ...notice) error {
	me := s.cluster.load()
	if !me.notices || len(notices) == 0 {
		for _, st := range stmts {
			if _, err := s.db.ExecContext(ctx, st.query, st.args...); err != nil {
				return err
			}
		}
		return nil
	}
	var q strings.Builder
	var args []any
	q.WriteString("WITH ")
	fenced := me.fence.Incarnation != 0
	if fenced {
		// The fence: an error in the main query undoes the whole
		// statement, the writes of its WITH clauses included.
		q.WriteString("me AS (" + liveSelf + "), ")
		args = append(args, me.fence.Node, me.fence.Incarnation)
	}
	for i, st := range stmts {
		if i > 0 {
			q.WriteString(", ")
		}
		fmt.Fprintf(&q, "w%d AS (%s)", i, st.query)
		args = append(args, st.args...)
	}
	q.WriteString(" SELECT ")
	if fenced {
		q.WriteString("CASE WHEN EXISTS (SELECT 1 FROM me) THEN 0 ELSE cc_fenced() END, ")
	}
	for i, n := range notices {
		if i > 0 {
			q.WriteString(", ")
		}
		q.WriteString("pg_notify('" + noticeChannel + "', ?)")
		args = append(args, payload(n.kind, n.key, me.node))
	}
	_, err := s.db.ExecContext(ctx, q.String(), args...)
	if isFenceError(err) {
		return ErrFenced
	}
	return err
}

// fenceErrCode is the SQLSTATE cc_fenced() raises.
const fenceErrCode = "CC001"

func isFenceError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == fenceErrCode
}

// exec is write for one statement, with the single box's path exactly
// the ExecContext it was before notices existed (no allocation more).
func (s *Store) exec(ctx context.Context, n notice, query string, args ...any) error {
	if _, on := s.cluster.get(); !on {
		_, err := s.db.ExecContext(ctx, query, args...)
		return err
	}
	// A copy: args itself must not escape, or the single box's call
	// would allocate it on the heap.
	return s.write(ctx, []stmt{{query, append([]any(nil), args...)}}, n)
}

// Notify sends a notice from this node.
func (s *Store) Notify(ctx context.Context, kind, key string) error {
	if s.db.d.driver != Postgres {
		return ErrClusterUnsupported
	}
	node, _ := s.cluster.get()
	if _, err := s.db.ExecContext(ctx, `SELECT pg_notify('`+noticeChannel+`', ?)`, payload(kind, key, node)); err != nil {
		return fmt.Errorf("store: notify %s %s: %w", kind, key, err)
	}
	return nil
}

// Listen implements Cluster.Listen.
func (s *Store) Listen(ctx context.Context) (<-chan Notice, error) {
	if s.pgcfg == nil {
		return nil, ErrClusterUnsupported
	}
	conn, err := s.listenConn(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: listen: %w", err)
	}
	ch := make(chan Notice, listenBuffer)
	go s.listen(ctx, conn, ch)
	return ch, nil
}

// listenConn dials a connection of its own and subscribes it.
func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cctx, cancel := context.WithTimeout(ctx, pgConnectTimeout)
	defer cancel()
	cfg := s.pgcfg.Copy()
	// Named apart from the pool's connections in pg_stat_activity.
	cfg.RuntimeParams["application_name"] += " listen"
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(cctx, "LISTEN "+noticeChannel); err != nil {
		closeConn(conn)
		return nil, err
	}
	return conn, nil
}

func closeConn(c *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	c.Close(ctx)
}

// listen delivers notices until ctx ends, making the connection again
// whenever it breaks.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn, ch chan<- Notice) {
	defer close(ch)
	for {
		n, err := s.wait(ctx, conn)
		if err == nil {
			if !deliver(ctx, ch, n) {
				closeConn(conn)
				return
			}
			continue
		}
		closeConn(conn)
		if conn = s.reconnect(ctx); conn == nil {
			return
		}
		if !deliver(ctx, ch, Notice{Kind: NoticeResync}) {
			closeConn(conn)
			return
		}
	}
}

// wait returns the next notice, pinging the connection when it stays
// silent for listenIdle; an error means the connection is unusable (or
// ctx ended).
func (s *Store) wait(ctx context.Context, conn *pgx.Conn) (Notice, error) {
	for {
		wctx, cancel := context.WithTimeout(ctx, listenIdle)
		n, err := conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			var p noticePayload
			if json.Unmarshal([]byte(n.Payload), &p) != nil {
				continue // not ours: ignore
			}
			return Notice(p), nil
		}
		if ctx.Err() != nil || !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
			return Notice{}, err
		}
		pctx, cancel := context.WithTimeout(ctx, listenPing)
		err = conn.Ping(pctx)
		cancel()
		if err != nil {
			return Notice{}, err
		}
	}
}

// reconnect dials until it succeeds (nil when ctx ended first).
func (s *Store) reconnect(ctx context.Context) *pgx.Conn {
	backoff := listenBackoffMin
	for {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		if conn, err := s.listenConn(ctx); err == nil {
			return conn
		}
		backoff = min(2*backoff, listenBackoffMax)
	}
}

func deliver(ctx context.Context, ch chan<- Notice, n Notice) bool {
	select {
	case ch <- n:
		return true
	case <-ctx.Done():
		return false
	}
}
