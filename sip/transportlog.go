package sip

import (
	"context"
	"log/slog"
)

// peerNoise wraps the handler sipgo's transport layer logs through. sipgo
// logs every datagram it cannot parse at ERROR, with the whole datagram
// attached; on a public port that is anyone's to trigger, so a flood of
// garbage would flood the log. Malformed input from the network is the
// peer's fault, not ours: such records are kept at DEBUG, with the data cut
// to a short prefix, and everything else passes unchanged.
type peerNoise struct{ next slog.Handler }

// maxLoggedDatagram is how much of an unparsable datagram a DEBUG record
// keeps: enough to recognise the sender's software.
const maxLoggedDatagram = 200

func (h peerNoise) Enabled(ctx context.Context, l slog.Level) bool {
	// ERROR records may be demoted, so whether they are wanted is known
	// only in Handle.
	return l >= slog.LevelError || h.next.Enabled(ctx, l)
}

func (h peerNoise) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelError && r.Message == "failed to parse" {
		if !h.next.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		d := slog.NewRecord(r.Time, slog.LevelDebug, "unparsable SIP message dropped", r.PC)
		r.Attrs(func(a slog.Attr) bool {
			if a.Key == "data" {
				if s := a.Value.String(); len(s) > maxLoggedDatagram {
					a = slog.String("data", s[:maxLoggedDatagram]+"…")
				}
			}
			d.AddAttrs(a)
			return true
		})
		return h.next.Handle(ctx, d)
	}
	return h.next.Handle(ctx, r)
}

func (h peerNoise) WithAttrs(as []slog.Attr) slog.Handler { return peerNoise{h.next.WithAttrs(as)} }
func (h peerNoise) WithGroup(g string) slog.Handler       { return peerNoise{h.next.WithGroup(g)} }
