package dialplan

import (
	"context"
	"strings"
	"time"

	"ccpbx/call"
)

// registerRecordApps adds record_session and stop_record_session.
func registerRecordApps(core *call.Core) {
	core.RegisterApp("record_session", appRecordSession)
	core.RegisterApp("stop_record_session", appStopRecordSession)
}

// appRecordSession is mod_dptools' record_session: "<path> [+<seconds>]".
// The channel's audio is recorded to path (inside recordings_dir) until
// hangup, stop_record_session or the optional limit; the app returns at
// once. A file that cannot be written is logged and reported by event
// (call.Channel.StartRecording); the dialplan goes on.
func appRecordSession(_ context.Context, ch *call.Channel, data string) error {
	path, limit := recordSessionArgs(data)
	if path == "" {
		return nil
	}
	// A failure is logged and fired as RECORD_STOP; the call goes on.
	_ = ch.StartRecordingFor(path, limit)
	return nil
}

// recordSessionArgs splits FreeSWITCH's record_session data: a trailing
// " +<digits>" is a time limit in seconds, everything before it the path
// (which may hold spaces).
func recordSessionArgs(data string) (string, time.Duration) {
	data = strings.TrimSpace(data)
	i := strings.LastIndex(data, "+")
	if i <= 0 || data[i-1] != ' ' {
		return data, 0
	}
	digits := data[i+1:]
	if digits == "" || strings.Trim(digits, "0123456789") != "" || len(digits) > 9 {
		return data, 0
	}
	return strings.TrimRight(data[:i], " "), time.Duration(call.Atoi(digits)) * time.Second
}

// appStopRecordSession is mod_dptools' stop_record_session: "<path>", or
// "all" for every recording of the channel.
func appStopRecordSession(_ context.Context, ch *call.Channel, data string) error {
	path := strings.TrimSpace(data)
	if path == "" {
		return nil
	}
	if err := ch.StopRecording(path); err != nil {
		ch.Log().Warn("stop_record_session", "path", path, "err", err)
	}
	return nil
}
