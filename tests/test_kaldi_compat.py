"""What we write passes the checks of Kaldi's ``utils/validate_data_dir.sh --no-feats``, re-done here with
the same coreutils commands (LC_ALL=C sort order, uniqueness, speaker order, matching key lists), so the
test needs no Kaldi checkout."""

import subprocess

from shared.datadir import DataDir, compute_utt2dur

KALDI_CHECKS = r"""
set -eu
export LC_ALL=C
d=$1
sorted_uniq() { awk '{print $1}' "$1" | sort | uniq | cmp -s - <(awk '{print $1}' "$1"); }
for f in utt2spk spk2utt text wav.scp utt2dur; do sorted_uniq "$d/$f" || { echo "$f not sorted/unique"; exit 1; }; done
awk '{ if (NF != 2) exit 1 }' "$d/utt2spk" || { echo "utt2spk format"; exit 1; }
sort -k2 "$d/utt2spk" | cmp -s - "$d/utt2spk" || { echo "utt2spk not sorted by speaker"; exit 1; }
cmp -s <(awk '{print $1, $2}' "$d/utt2spk") \
       <(awk '{for (i = 2; i <= NF; i++) print $i, $1}' "$d/spk2utt") || { echo "spk2utt mismatch"; exit 1; }
awk '{print $1}' "$d/utt2spk" > "$d/.utts"
for f in text wav.scp utt2dur; do
  cmp -s "$d/.utts" <(awk '{print $1}' "$d/$f") || { echo "utterances differ: $f"; exit 1; }
done
! grep -qwE '<s>|</s>|#0' "$d/text" || { echo "illegal symbol in text"; exit 1; }
! grep -qE '^\S+\s+~' "$d/wav.scp" || { echo "tilde in wav.scp"; exit 1; }
awk '{ if (NF != 2 || !($2 > 0)) exit 1 }' "$d/utt2dur" || { echo "bad utt2dur"; exit 1; }
rm "$d/.utts"
echo OK
"""


def _kaldi_ok(path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", KALDI_CHECKS, "_", str(path)], capture_output=True, text=True)


def test_written_dirs_pass_kaldi_checks(tiny_data_dir, tmp_path):
    data = DataDir.load(tiny_data_dir)
    data.utt2dur = compute_utt2dur(data)
    data.save(tmp_path / "out")
    r = _kaldi_ok(tmp_path / "out")
    assert r.returncode == 0 and r.stdout.strip() == "OK", r.stdout + r.stderr


def test_kaldi_checks_can_fail(tiny_data_dir, tmp_path):
    data = DataDir.load(tiny_data_dir)
    data.utt2dur = compute_utt2dur(data)
    data.save(tmp_path / "out")
    lines = (tmp_path / "out" / "text").read_text().splitlines()
    (tmp_path / "out" / "text").write_text("\n".join(lines[1:] + lines[:1]) + "\n")
    assert "not sorted" in _kaldi_ok(tmp_path / "out").stdout
