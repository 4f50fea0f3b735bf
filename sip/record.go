package sip

import (
	"ccpbx/call"
	"ccpbx/media"
)

// StartRecord records the leg (call.Recorder): what the phone sends on
// the left, what it is sent on the right.
func (m *legMedia) StartRecord(path string, mode call.RecordMode, onStop func(samples int64, err error)) error {
	stereo := m.leg.RecordStereo()
	switch mode {
	case call.RecordStereo:
		stereo = true
	case call.RecordMono:
		stereo = false
	}
	_, err := m.leg.Record(path, media.RecordOptions{
		Stereo: stereo,
		OnStop: func(st media.RecordStats, err error) { onStop(st.Samples, err) },
	})
	return err
}

// StopRecord stops the leg's recordings of path ("all": every one).
func (m *legMedia) StopRecord(path string) error { return m.leg.StopRecording(path) }
