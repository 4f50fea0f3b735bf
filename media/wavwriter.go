package media

import (
	"encoding/binary"
	"errors"
	"io"
)

// wavHeaderLen is the canonical 44-byte header: RIFF, a 16-byte fmt chunk of
// PCM and the data chunk's header.
const wavHeaderLen = 44

// maxWAVData keeps a recording inside what the RIFF sizes (32 bits) can say.
const maxWAVData = 1<<32 - 1 - 64

// errWAVFull is the error of a recording that reached the format's limit.
var errWAVFull = errors.New("recording reached the 4 GiB WAV limit")

// wavWriter streams 16-bit PCM at 8 kHz into a RIFF/WAVE file. The header
// is written first with the sizes of an empty file and rewritten by
// syncHeader, so a file cut short (a crash) still reads as what was
// written up to the last sync. It is the writing side of decodeWAVSamples.
type wavWriter struct {
	w        io.WriterAt
	channels int
	data     int64 // data bytes written
	err      error // the first write error; every later call returns it
}

// newWAVWriter writes the header of an empty file to w.
func newWAVWriter(w io.WriterAt, channels int) (*wavWriter, error) {
	ww := &wavWriter{w: w, channels: channels}
	if err := ww.syncHeader(); err != nil {
		return nil, err
	}
	return ww, nil
}

// header is the 44-byte header for what was written so far.
func (ww *wavWriter) header() [wavHeaderLen]byte {
	var h [wavHeaderLen]byte
	copy(h[0:], "RIFF")
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], wavPCM)
	binary.LittleEndian.PutUint16(h[22:], uint16(ww.channels))
	binary.LittleEndian.PutUint32(h[24:], sampleRate)
	binary.LittleEndian.PutUint32(h[28:], uint32(sampleRate*2*ww.channels))
	binary.LittleEndian.PutUint16(h[32:], uint16(2*ww.channels))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	ww.putSizes(h[:])
	return h
}

func (ww *wavWriter) putSizes(h []byte) {
	binary.LittleEndian.PutUint32(h[4:], uint32(36+ww.data))
	binary.LittleEndian.PutUint32(h[40:], uint32(ww.data))
}

// write appends interleaved little-endian samples (b holds whole frames).
func (ww *wavWriter) write(b []byte) error {
	if ww.err != nil {
		return ww.err
	}
	if ww.data+int64(len(b)) > maxWAVData {
		ww.err = errWAVFull
		return ww.err
	}
	n, err := ww.w.WriteAt(b, wavHeaderLen+ww.data)
	ww.data += int64(n)
	if err != nil {
		ww.err = err
	}
	return err
}

// syncHeader rewrites the header (one write) so its sizes cover what was
// written.
func (ww *wavWriter) syncHeader() error {
	h := ww.header()
	_, err := ww.w.WriteAt(h[:], 0)
	return err
}

// frames is the number of sample frames (one sample per channel) written.
func (ww *wavWriter) frames() int64 { return ww.data / int64(2*ww.channels) }
