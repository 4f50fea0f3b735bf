package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// CallcenterWriteKind says which call-center write a CallcenterWrite is.
type CallcenterWriteKind uint8

// The writes ApplyCallcenter takes: the one-row methods' (UpsertAgent …).
const (
	UpsertAgentWrite CallcenterWriteKind = iota + 1
	DeleteAgentWrite
	UpsertTierWrite
	DeleteTierWrite
	UpsertMemberWrite
	DeleteMemberWrite
)

// CallcenterWrite is one call-center write of a batch. Kind says which
// row it uses: Agent (a delete reads only Agent.Name), Tier (a delete
// reads Queue and Agent) or Member (a delete reads UUID).
type CallcenterWrite struct {
	Kind   CallcenterWriteKind
	Agent  AgentRow
	Tier   TierRow
	Member MemberRow
}

// ApplyCallcenter runs writes in order with the one-row methods' meaning
// (DeleteAgent takes the agent's tiers, deleting a missing row is not an
// error). Several writes go in one transaction, each statement the
// Store's, prepared once per connection (prepared.go), and
// repeated upserts of one agent or member collapse into one carrying the
// last row, in the first one's place (a delete in between ends the
// collapse; upserts before a delete are dropped): the tables end exactly
// as if each write had run on its own, insertion order included. If the
// transaction fails the writes are replayed one at a time, so a bad row
// costs only itself, as before batching.
//
// With notices on (a cluster node) every write runs on its own as the
// one-row method does, fenced and announcing its row, and the errors of
// all that failed come back joined (errors.Is finds ErrFenced).
func (s *Store) ApplyCallcenter(ctx context.Context, ws []CallcenterWrite) error {
	if _, on := s.cluster.get(); on || len(ws) <= 1 {
		return s.applyEach(ctx, ws)
	}
	c := collapsers.Get().(*collapser)
	defer putCollapser(c)
	if err := s.applyBatch(ctx, collapseWrites(c, ws), c); err == nil {
		return nil
	}
	return s.applyEach(ctx, ws)
}

// applyEach runs each write through its one-row method.
func (s *Store) applyEach(ctx context.Context, ws []CallcenterWrite) error {
	var errs []error
	for i := range ws {
		w := &ws[i]
		var err error
		switch w.Kind {
		case UpsertAgentWrite:
			err = s.UpsertAgent(ctx, w.Agent)
		case DeleteAgentWrite:
			err = s.DeleteAgent(ctx, w.Agent.Name)
		case UpsertTierWrite:
			err = s.UpsertTier(ctx, w.Tier)
		case DeleteTierWrite:
			err = s.DeleteTier(ctx, w.Tier.Queue, w.Tier.Agent)
		case UpsertMemberWrite:
			err = s.UpsertMember(ctx, w.Member)
		case DeleteMemberWrite:
			err = s.DeleteMember(ctx, w.Member.UUID)
		default:
			err = fmt.Errorf("store: unknown call-center write %d", w.Kind)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// collapseWrites returns ws with repeated upserts of an agent or member
// collapsed (see ApplyCallcenter) into c's buffers; dropped writes have
// Kind 0. Tiers are left alone: DeleteAgent also deletes them, so moving a
// tier's upsert earlier could cross it.
func collapseWrites(c *collapser, ws []CallcenterWrite) []CallcenterWrite {
	out := c.out[:0]
	agents, members := c.agents, c.members
	for _, w := range ws {
		switch w.Kind {
		case UpsertAgentWrite:
			if i, ok := agents[w.Agent.Name]; ok {
				out[i].Agent = w.Agent
				continue
			}
			agents[w.Agent.Name] = len(out)
		case DeleteAgentWrite:
			if i, ok := agents[w.Agent.Name]; ok {
				out[i].Kind = 0
				delete(agents, w.Agent.Name)
			}
		case UpsertMemberWrite:
			if i, ok := members[w.Member.UUID]; ok {
				out[i].Member = w.Member
				continue
			}
			members[w.Member.UUID] = len(out)
		case DeleteMemberWrite:
			if i, ok := members[w.Member.UUID]; ok {
				out[i].Kind = 0
				delete(members, w.Member.UUID)
			}
		}
		out = append(out, w)
	}
	c.out = out
	return out
}

// collapser is collapseWrites' buffers, kept between batches (a pool:
// the persister's batches come one at a time, every few milliseconds at
// load, and each allocated its copy of the batch).
type collapser struct {
	out             []CallcenterWrite
	agents, members map[string]int
	args            []any // applyBatch's row arguments
}

var collapsers = sync.Pool{New: func() any {
	return &collapser{agents: map[string]int{}, members: map[string]int{}}
}}

// maxCollapser bounds the batch a pooled collapser keeps room for.
const maxCollapser = 1024

func putCollapser(c *collapser) {
	clear(c.out)
	clear(c.agents)
	clear(c.members)
	clear(c.args)
	if cap(c.out) > maxCollapser {
		c.out = nil
	}
	c.out = c.out[:0]
	collapsers.Put(c)
}

// The statements of a batch.
const (
	qUpsertAgent = iota
	qDeleteAgent
	qDeleteAgentTiers
	qUpsertTier
	qDeleteTier
	qUpsertMember
	qDeleteMember
	nBatchQueries
)

var batchQueries = [nBatchQueries]string{upsertAgentSQL, deleteAgentSQL, deleteAgentTiersSQL, upsertTierSQL,
	deleteTierSQL, upsertMemberSQL, deleteMemberSQL}

// applyBatch runs ws (Kind 0: skipped) in one transaction, each statement
// the Store's prepared one (prepared.go), the row arguments built in c's
// buffer.
func (s *Store) applyBatch(ctx context.Context, ws []CallcenterWrite, c *collapser) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: apply call-center writes: %w", err)
	}
	defer tx.Rollback()
	var stmts [nBatchQueries]*sql.Stmt
	exec := func(q int, args ...any) error {
		if stmts[q] == nil {
			st, err := s.txStmt(ctx, tx, batchQueries[q])
			if err != nil {
				return err
			}
			stmts[q] = st
		}
		_, err := stmts[q].ExecContext(ctx, args...)
		return err
	}
	args := c.args[:0]
	for i := range ws {
		w := &ws[i]
		var err error
		switch w.Kind {
		case UpsertAgentWrite:
			args = appendAgentArgs(args[:0], &w.Agent)
			err = exec(qUpsertAgent, args...)
		case DeleteAgentWrite:
			if err = exec(qDeleteAgent, w.Agent.Name); err == nil {
				err = exec(qDeleteAgentTiers, w.Agent.Name)
			}
		case UpsertTierWrite:
			t := &w.Tier
			args = append(args[:0], t.Queue, t.Agent, t.State, t.Level, t.Position)
			err = exec(qUpsertTier, args...)
		case DeleteTierWrite:
			err = exec(qDeleteTier, w.Tier.Queue, w.Tier.Agent)
		case UpsertMemberWrite:
			args = appendMemberArgs(args[:0], &w.Member)
			err = exec(qUpsertMember, args...)
		case DeleteMemberWrite:
			err = exec(qDeleteMember, w.Member.UUID)
		}
		if err != nil {
			return fmt.Errorf("store: apply call-center writes: %w", err)
		}
	}
	c.args = args
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: apply call-center writes: %w", err)
	}
	return nil
}

// agentArgs are upsertAgentSQL's arguments.
func agentArgs(a AgentRow) []any { return appendAgentArgs(make([]any, 0, 21), &a) }

// appendAgentArgs appends upsertAgentSQL's arguments to args.
func appendAgentArgs(args []any, a *AgentRow) []any {
	return append(args, a.Name, a.InstanceID, nullable(a.UUID, a.UUIDNull), a.Type, nullable(a.Contact, a.ContactNull), a.Status,
		a.State, a.MaxNoAnswer, a.WrapUpTime, a.RejectDelayTime, a.BusyDelayTime, a.NoAnswerDelayTime,
		a.LastBridgeStart, a.LastBridgeEnd, a.LastOffered, a.LastStatusChange, a.NoAnswerCount, a.CallsAnswered,
		a.TalkTime, a.ReadyTime, a.ExternalCallsCount)
}

// memberArgs are upsertMemberSQL's arguments.
func memberArgs(m MemberRow) []any { return appendMemberArgs(make([]any, 0, 16), &m) }

// appendMemberArgs appends upsertMemberSQL's arguments to args.
func appendMemberArgs(args []any, m *MemberRow) []any {
	return append(args, m.Queue, m.InstanceID, m.UUID, m.SessionUUID, m.CIDNumber, m.CIDName, m.SystemEpoch, m.JoinedEpoch,
		m.RejoinedEpoch, m.BridgeEpoch, m.AbandonedEpoch, m.BaseScore, m.SkillScore, m.ServingAgent,
		m.ServingSystem, m.State)
}
