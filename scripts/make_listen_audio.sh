#!/bin/sh
# The fake-microphone WAVs of the demo's end-to-end test (xtask/e2e/demo.mjs, panel "Listen"),
# written into tests/data/listen/ and committed, so the test needs neither espeak-ng nor sox:
#
#   sentences.wav  1 s of silence, then each sentence below spoken by espeak-ng, with 2.5 s of
#                  silence after each (3.5 s after the last, so a looping fake microphone is silent
#                  long enough for the test to count); 16 kHz mono 16-bit
#   noise.wav      8 s of white and brown noise (no speech), same format
#   sentences.json where each sentence is in sentences.wav
#
# Needs espeak-ng, sox and bc (Debian: apt-get install espeak-ng sox). Run from the repository root:
#   sh scripts/make_listen_audio.sh
set -eu
OUT=tests/data/listen
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$OUT"

set -- "Turn on the lights in the kitchen." "What will the weather be like tomorrow?" "Please remind me to call my sister tonight."
FMT="-r 16000 -c 1 -b 16 -e signed-integer"
sox -R -n $FMT "$TMP/lead.wav" trim 0 1.0
sox -R -n $FMT "$TMP/gap.wav" trim 0 2.5
sox -R -n $FMT "$TMP/tail.wav" trim 0 3.5
parts="$TMP/lead.wav"
i=0
for sentence in "$@"; do
  i=$((i + 1))
  espeak-ng -v en-us -s 165 -w "$TMP/raw$i.wav" "$sentence"
  # 16 kHz, espeak-ng's own leading and trailing silence trimmed, peak at -3 dBFS.
  sox -R "$TMP/raw$i.wav" $FMT "$TMP/s$i.wav" rate -h silence 1 0.01 0.5% reverse silence 1 0.01 0.5% reverse norm -3
  if [ "$i" -lt "$#" ]; then parts="$parts $TMP/s$i.wav $TMP/gap.wav"; else parts="$parts $TMP/s$i.wav $TMP/tail.wav"; fi
done
# shellcheck disable=SC2086
sox -R $parts "$OUT/sentences.wav"
sox -R -n $FMT "$TMP/white.wav" synth 8 whitenoise vol 0.03
sox -R -n $FMT "$TMP/brown.wav" synth 8 brownnoise vol 0.05
sox -R -m "$TMP/white.wav" "$TMP/brown.wav" "$OUT/noise.wav"
# Where each sentence is in sentences.wav (seconds), for the test's checks of the segments.
at=1.0
spans=""
i=0
for sentence in "$@"; do
  i=$((i + 1))
  d=$(soxi -D "$TMP/s$i.wav")
  end=$(echo "$at + $d" | bc -l)
  spans="$spans${spans:+,}
  {\"text\": \"$sentence\", \"start\": $(printf %.3f "$at"), \"end\": $(printf %.3f "$end")}"
  at=$(echo "$end + 2.5" | bc -l)
done
printf '{\n "wav": "sentences.wav",\n "seconds": %.3f,\n "sentences": [%s\n ]\n}\n' "$(soxi -D "$OUT/sentences.wav")" "$spans" > "$OUT/sentences.json"
cat "$OUT/sentences.json"
for f in "$OUT/sentences.wav" "$OUT/noise.wav"; do
  echo "$f: $(soxi -D "$f") s"
done
echo "sentences: $#"
espeak-ng --version
sox -R --version
