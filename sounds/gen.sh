#!/usr/bin/env bash
# gen.sh regenerates the shipped sounds: 8 kHz mono 16-bit PCM WAV files.
#
# Prompts are spoken by espeak-ng; the music on hold is synthesised by sox
# (a I-vi-IV-V chord progression: plucked arpeggios, a soft sine pad and a
# bass line). The music's ringing tail is folded back onto its start, so the
# file loops without a gap or click, the way the MOH broadcaster plays it.
#
# Needs: espeak-ng, sox (Debian packages espeak-ng and sox).
# Usage: sounds/gen.sh   (from anywhere; writes next to this script)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
out="$here/ivr/common"
mkdir -p "$out"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# prompt FILE TEXT: a spoken prompt, 8 kHz mono 16-bit, 0.2 s lead-in and
# 0.3 s tail of silence so it never sounds cut off.
prompt() {
	espeak-ng -v en-us -s 150 -a 120 -w "$tmp/p.wav" "$2"
	sox "$tmp/p.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/$1" \
		highpass 120 norm -3 pad 0.2 0.3
}

prompt ivr-you_are_now_logged_in.wav "You are now logged in."
prompt ivr-you_are_now_logged_out.wav "You are now logged out."
prompt ivr-all_agents_busy.wav "All of our agents are busy. Please hold, and your call will be answered in the order it was received."
prompt ivr-please_hold.wav "Please hold."

# ---- music on hold ----
freq() { awk -v n="$1" 'BEGIN { printf "%.3f", 440 * 2 ^ ((n - 69) / 12) }'; }

beat=0.3           # one eighth note at 100 bpm
bar=2.4            # eight eighths per chord
chords=16          # 4 x (C Am F G) = 38.4 s
total=$(awk -v b="$bar" -v c="$chords" 'BEGIN { print b * c }')

# MIDI notes of each chord: root, third, fifth (C4 = 60).
chord_notes() {
	case $(($1 % 4)) in
	0) echo "60 64 67" ;; # C
	1) echo "57 60 64" ;; # Am
	2) echo "53 57 60" ;; # F
	3) echo "55 59 62" ;; # G
	esac
}

# Arpeggio patterns (indexes into root, third, fifth, +octave) per pass.
patterns=(
	"0 1 2 3 2 1 2 1"
	"0 2 3 2 1 2 3 1"
	"3 2 1 2 0 1 2 3"
	"0 1 2 3 3 2 1 0"
)

n=0
for ((c = 0; c < chords; c++)); do
	read -r r t f <<<"$(chord_notes $c)"
	notes=("$r" "$t" "$f" "$((r + 12))")
	pass=$((c / 4))
	read -r -a pat <<<"${patterns[$pass]}"
	start=$(awk -v b="$bar" -v c="$c" 'BEGIN { print b * c }')
	parts=()
	# plucked arpeggio, one octave up
	for ((i = 0; i < 8; i++)); do
		note=$((notes[pat[i]] + 12))
		sox -n -r 8000 -c 1 -b 16 "$tmp/n$i.wav" synth 1.2 pluck "$(freq $note)" \
			fade q 0.005 1.2 0.6 vol 0.3 pad "$(awk -v b="$beat" -v i="$i" 'BEGIN { print b * i }')"
		parts+=("-v" "1" "$tmp/n$i.wav")
	done
	# soft pad: the triad as sines, faded in and out across the chord change
	for note in "$r" "$t" "$f"; do
		sox -n -r 8000 -c 1 -b 16 "$tmp/pad$note.wav" synth 2.9 sine "$(freq $note)" \
			fade h 0.4 2.9 0.6 vol 0.07
		parts+=("-v" "1" "$tmp/pad$note.wav")
	done
	# bass: root two octaves down, a gentle triangle
	sox -n -r 8000 -c 1 -b 16 "$tmp/bass.wav" synth 2.6 triangle "$(freq $((r - 24)))" \
		fade h 0.05 2.6 0.4 vol 0.18
	parts+=("-v" "1" "$tmp/bass.wav")
	sox -m "${parts[@]}" "$tmp/seg$c.wav" pad "$start"
	n=$((n + 1))
done

segs=()
for ((c = 0; c < chords; c++)); do segs+=("-v" "1" "$tmp/seg$c.wav"); done
sox -m "${segs[@]}" "$tmp/full.wav"

# Fold everything that rings past the loop end back onto the start.
sox "$tmp/full.wav" "$tmp/body.wav" trim 0 "$total"
sox "$tmp/full.wav" "$tmp/tail.wav" trim "$total"
sox -m -v 1 "$tmp/body.wav" -v 1 "$tmp/tail.wav" "$tmp/loop.wav" trim 0 "$total"
sox "$tmp/loop.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/music-on-hold.wav" norm -4

ls -l "$out"
