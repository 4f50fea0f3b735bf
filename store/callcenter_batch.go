package store

import (
	"context"
	"errors"
	"fmt"
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
// error). Several writes go in one transaction, each statement prepared
// once per transaction for all its rows (as ApplyRegistrations), and
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
	if err := s.applyBatch(ctx, collapseWrites(ws)); err == nil {
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
// collapsed (see ApplyCallcenter); dropped writes have Kind 0. Tiers are
// left alone: DeleteAgent also deletes them, so moving a tier's upsert
// earlier could cross it.
func collapseWrites(ws []CallcenterWrite) []CallcenterWrite {
	out := make([]CallcenterWrite, 0, len(ws))
	agents := map[string]int{}
	members := map[string]int{}
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
	return out
}

// The statements of a batch, each prepared at most once per transaction.
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

// applyBatch runs ws (Kind 0: skipped) in one transaction.
func (s *Store) applyBatch(ctx context.Context, ws []CallcenterWrite) error {
	var rows [nBatchQueries]int
	for i := range ws {
		switch ws[i].Kind {
		case UpsertAgentWrite:
			rows[qUpsertAgent]++
		case DeleteAgentWrite:
			rows[qDeleteAgent]++
			rows[qDeleteAgentTiers]++
		case UpsertTierWrite:
			rows[qUpsertTier]++
		case DeleteTierWrite:
			rows[qDeleteTier]++
		case UpsertMemberWrite:
			rows[qUpsertMember]++
		case DeleteMemberWrite:
			rows[qDeleteMember]++
		}
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: apply call-center writes: %w", err)
	}
	defer tx.Rollback()
	var execs [nBatchQueries]func(args ...any) error
	var dones []func()
	defer func() {
		for _, done := range dones {
			done()
		}
	}()
	exec := func(q int, args ...any) error {
		if execs[q] == nil {
			e, done, err := txExecer(ctx, tx, batchQueries[q], rows[q])
			if err != nil {
				return err
			}
			execs[q] = e
			dones = append(dones, done)
		}
		return execs[q](args...)
	}
	for i := range ws {
		w := &ws[i]
		var err error
		switch w.Kind {
		case UpsertAgentWrite:
			err = exec(qUpsertAgent, agentArgs(w.Agent)...)
		case DeleteAgentWrite:
			if err = exec(qDeleteAgent, w.Agent.Name); err == nil {
				err = exec(qDeleteAgentTiers, w.Agent.Name)
			}
		case UpsertTierWrite:
			t := &w.Tier
			err = exec(qUpsertTier, t.Queue, t.Agent, t.State, t.Level, t.Position)
		case DeleteTierWrite:
			err = exec(qDeleteTier, w.Tier.Queue, w.Tier.Agent)
		case UpsertMemberWrite:
			err = exec(qUpsertMember, memberArgs(w.Member)...)
		case DeleteMemberWrite:
			err = exec(qDeleteMember, w.Member.UUID)
		}
		if err != nil {
			return fmt.Errorf("store: apply call-center writes: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: apply call-center writes: %w", err)
	}
	return nil
}

// agentArgs are upsertAgentSQL's arguments.
func agentArgs(a AgentRow) []any {
	return []any{a.Name, a.InstanceID, nullable(a.UUID, a.UUIDNull), a.Type, nullable(a.Contact, a.ContactNull), a.Status,
		a.State, a.MaxNoAnswer, a.WrapUpTime, a.RejectDelayTime, a.BusyDelayTime, a.NoAnswerDelayTime,
		a.LastBridgeStart, a.LastBridgeEnd, a.LastOffered, a.LastStatusChange, a.NoAnswerCount, a.CallsAnswered,
		a.TalkTime, a.ReadyTime, a.ExternalCallsCount}
}

// memberArgs are upsertMemberSQL's arguments.
func memberArgs(m MemberRow) []any {
	return []any{m.Queue, m.InstanceID, m.UUID, m.SessionUUID, m.CIDNumber, m.CIDName, m.SystemEpoch, m.JoinedEpoch,
		m.RejoinedEpoch, m.BridgeEpoch, m.AbandonedEpoch, m.BaseScore, m.SkillScore, m.ServingAgent,
		m.ServingSystem, m.State}
}
