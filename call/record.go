package call

import (
	"errors"
	"fmt"
	"strconv"
	"time"
	"weak"
)

// RecordMode says how a recording lays out the two directions.
type RecordMode int

// Record modes: the media's configured default, or the channel's choice
// (the RECORD_STEREO variable).
const (
	RecordDefault RecordMode = iota
	RecordStereo             // what the channel receives left, what it is sent right
	RecordMono               // both mixed
)

// Recorder is implemented by a Media that can record its channel's audio
// to a file (FreeSWITCH's record_session media bug).
type Recorder interface {
	// StartRecord starts writing path; onStop is called once when the
	// recording ends (StopRecord, hangup, or a write error), with the
	// number of 8 kHz samples (per channel) written and nil or the error.
	StartRecord(path string, mode RecordMode, onStop func(samples int64, err error)) error
	// StopRecord stops the recordings of path ("all": every one).
	StopRecord(path string) error
}

// ErrCannotRecord is returned by StartRecording when the channel has no
// media that records.
var ErrCannotRecord = errors.New("channel media cannot record")

// StartRecording records the channel's audio to path until StopRecording
// or hangup, as record_session and uuid_record do: RECORD_STEREO picks
// stereo or mono (else the configured default). It fires RECORD_START
// with Record-File-Path, and RECORD_STOP when the recording ends. When
// the file cannot be written (refused path, unwritable folder, full disk)
// the call goes on: an ERROR line is logged and RECORD_STOP fires with
// Record-Completion-Cause "error" and the reason in Record-Error.
func (c *Channel) StartRecording(path string) error {
	rec, ok := c.Media().(Recorder)
	if !ok {
		err := fmt.Errorf("record %s: %w", path, ErrCannotRecord)
		c.recordStopped(path, 0, err)
		return err
	}
	mode := RecordDefault
	if v, set := c.LookupVar("RECORD_STEREO"); set {
		mode = RecordMono
		if SwitchTrue(v) {
			mode = RecordStereo
		}
	}
	if err := rec.StartRecord(path, mode, func(samples int64, err error) { c.recordStopped(path, samples, err) }); err != nil {
		c.recordStopped(path, 0, err)
		return err
	}
	c.log.Info("recording", "path", path)
	ev := c.Event("RECORD_START")
	ev.Add("Record-File-Path", path)
	c.Fire(ev)
	return nil
}

// StartRecordingFor is StartRecording with a time limit (record_session's
// "+N", uuid_record's limit; none when limit <= 0): the recording stops
// after limit unless it ended first. The timer reaches the channel through
// a weak pointer: the runtime keeps a timer's function until the time it
// was due, and a function holding the channel would keep an ended call in
// memory for the rest of the limit (the media timeout had the same hold,
// media/timeout.go).
func (c *Channel) StartRecordingFor(path string, limit time.Duration) error {
	if err := c.StartRecording(path); err != nil || limit <= 0 {
		return err
	}
	w := weak.Make(c)
	time.AfterFunc(limit, func() {
		if c := w.Value(); c != nil {
			c.StopRecording(path) // a no-op when it already ended (hangup)
		}
	})
	return nil
}

// StopRecording stops the recordings of path ("all": every one).
func (c *Channel) StopRecording(path string) error {
	rec, ok := c.Media().(Recorder)
	if !ok {
		return fmt.Errorf("stop record %s: %w", path, ErrCannotRecord)
	}
	return rec.StopRecord(path)
}

// recordStopped reports the end of a recording as FreeSWITCH does: the
// record_samples, record_seconds and record_ms variables, and RECORD_STOP.
func (c *Channel) recordStopped(path string, samples int64, err error) {
	ev := c.Event("RECORD_STOP")
	ev.Add("Record-File-Path", path)
	if err != nil {
		c.log.Error("recording failed; the call goes on without it", "path", path, "err", err)
		ev.Add("Record-Completion-Cause", "error")
		ev.Add("Record-Error", err.Error())
	} else {
		c.SetVar("record_samples", strconv.FormatInt(samples, 10))
		c.SetVar("record_seconds", strconv.FormatInt(samples/8000, 10))
		c.SetVar("record_ms", strconv.FormatInt(samples/8, 10))
	}
	c.Fire(ev)
}
