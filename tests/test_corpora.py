"""Corpus preparation: espeak-ng synthesis + espeak_mini generator, fake LJSpeech/LibriTTS/VCTK, recipe utils."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from shared.corpora.common import CorpusError
from shared.corpora.espeak_mini import EN_US_INVENTORY, make_corpus, speaker_id, split_sentences, voice_language
from shared.corpora.espeak_synth import synthesize
from shared.corpora.libritts import prepare_libritts
from shared.corpora.ljspeech import prepare_ljspeech
from shared.corpora.sentences import generate_sentences
from shared.corpora.vctk import prepare_vctk
from shared.datadir import DataDir, validate_data_dir
from shared.io import read_kv
from shared.text import Frontend

REPO = Path(__file__).resolve().parents[1]
UTILS = REPO / "egs" / "utils"


# ---- espeak-ng synthesis and the default corpus ---------------------------------------------------
def test_synthesize_is_deterministic_and_history_free():
    a = synthesize("The quick brown fox.", "en-us", 16000)
    synthesize("Something else entirely, said by another voice.", "en-gb-x-rp+m1", 16000)
    Frontend.from_config({}).tokens("phonemizer loads espeak-ng too")
    b = synthesize("The quick brown fox.", "en-us", 16000)
    assert a.dtype == np.float32 and 0.5 < len(a) / 16000 < 3.0
    assert np.array_equal(a, b)
    assert 0.05 < np.abs(a).max() <= 1.0
    assert len(synthesize("The quick brown fox.", "en-us", 22050)) > len(a)
    with pytest.raises(ValueError, match="no-such-voice"):
        synthesize("x", "no-such-voice")


def test_synthesize_same_in_another_process():
    """Breathy voices (+f2) use espeak-ng's noise generator, which is seeded from the clock unless we seed it."""
    code = ("import hashlib; from shared.corpora.espeak_synth import synthesize; "
            "print(hashlib.md5(synthesize('A breathy voice.', 'en-us+f2', 16000).tobytes()).hexdigest())")
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    import hashlib

    assert res.stdout.strip() == hashlib.md5(synthesize("A breathy voice.", "en-us+f2", 16000).tobytes()).hexdigest()


def test_sentences_deterministic_and_distinct():
    s = generate_sentences(50, seed=3)
    assert s == generate_sentences(50, seed=3) and len(set(s)) == 50
    assert generate_sentences(20, seed=3) == s[:20]
    assert generate_sentences(20, seed=4) != s[:20]
    assert not any(c.isdigit() for line in s for c in line)


def test_split_sentences_disjoint():
    splits = split_sentences(100, 10, 10, seed=0)
    assert [len(splits[k]) for k in ("train", "dev", "test")] == [80, 10, 10]
    assert not set(splits["train"]) & set(splits["test"]) and not set(splits["dev"]) & set(splits["test"])
    with pytest.raises(ValueError, match="--num-dev 5 \\+ --num-test 5 must be < --num-sentences 10"):
        split_sentences(10, 5, 5, seed=0)


def test_speaker_ids_sort_cleanly():
    assert speaker_id("en-us+f2") == "enusf2" and speaker_id("en-gb-x-rp") == "engbxrp"
    assert voice_language("en-gb-x-rp+m1") == "en-gb-x-rp" and voice_language("en-us") == "en-us"


def _make_tiny(root: Path) -> dict:
    return make_corpus(root / "data", num_sentences=6, num_dev=1, num_test=1, voices=["en-us", "en-us+f2"],
                       voices_per_sentence=2, sample_rate=16000, seed=0, nj=1)


def test_espeak_mini_tiny_corpus(tmp_path):
    report = _make_tiny(tmp_path / "a")
    data = tmp_path / "a" / "data"
    for split in ("train", "dev", "test"):
        assert validate_data_dir(data / split) == [], split
    train, test = DataDir.load(data / "train"), DataDir.load(data / "test")
    assert len(train) == 8 and len(test) == 2 and train.speakers == ["enus", "enusf2"]
    assert set(train.utt2lang) == set(train.utts) and set(train.utt2lang.values()) == {"en-us"}
    # the same sentence by both voices, and no test sentence in train
    assert set(train.text.values()).isdisjoint(test.text.values())
    assert len(set(test.text.values())) == 1
    first = train.utts[0]
    assert abs(train.utt2dur[first] - sf.info(train.wav_scp[first]).duration) < 1e-3
    assert sf.info(train.wav_scp[first]).samplerate == 16000
    # the wav is the espeak-ng reference of its sentence
    ref = synthesize(test.text[test.utts[0]], "en-us", 16000)
    wav, _ = sf.read(test.wav_scp[test.utts[0]], dtype="float32")
    assert len(wav) == len(ref) and np.abs(wav - ref).max() < 1e-3
    # report
    saved = json.loads((data / "local" / "corpus_report.json").read_text())
    assert saved["splits"]["train"]["per_speaker"] == {"enus": 4, "enusf2": 4}
    cov = saved["phone_coverage"]
    assert cov["inventory_size"] == len(EN_US_INVENTORY) and 0 < cov["covered"] <= cov["inventory_size"]
    assert set(cov["missing"]) == {p for p in EN_US_INVENTORY if p not in cov["counts"]}
    assert saved["total_minutes"] > 0 and report["seconds_to_make"] > 0
    # determinism: a second run gives identical files
    _make_tiny(tmp_path / "b")
    for split in ("train", "dev", "test"):
        for name in ("text", "utt2spk", "utt2dur"):
            assert (data / split / name).read_text() == (tmp_path / "b" / "data" / split / name).read_text()
    utt = train.utts[3]
    other = read_kv(tmp_path / "b" / "data" / "train" / "wav.scp")[utt]
    assert Path(train.wav_scp[utt]).read_bytes() == Path(other).read_bytes()


# ---- fake real corpora ---------------------------------------------------------------------------------
def _tone(path: Path, seconds: float = 0.3, sr: int = 22050, fmt: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, 0.3 * np.sin(2 * np.pi * 220 * t), sr, format=fmt)


def test_ljspeech_fake(tmp_path):
    corpus = tmp_path / "LJSpeech-1.1"
    lines = []
    for i in range(1, 11):
        uid = f"LJ001-{i:04d}"
        _tone(corpus / "wavs" / f"{uid}.wav")
        lines.append(f"{uid}|Raw text {i}, Mr. X.|Normalized text {i}, mister X.")
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    dirs = prepare_ljspeech(corpus, tmp_path / "data", num_dev=2, num_test=3)
    assert {k: len(v) for k, v in dirs.items()} == {"train": 5, "dev": 2, "test": 3}
    for split in dirs:
        assert validate_data_dir(tmp_path / "data" / split) == []
    test = DataDir.load(tmp_path / "data" / "test")
    assert test.utts == ["LJ001-0008", "LJ001-0009", "LJ001-0010"] and test.speakers == ["LJ"]
    assert test.text["LJ001-0008"] == "Normalized text 8, mister X."
    assert abs(test.utt2dur["LJ001-0008"] - 0.3) < 1e-3
    (corpus / "wavs" / "LJ001-0004.wav").unlink()
    with pytest.raises(CorpusError, match="LJ001-0004"):
        prepare_ljspeech(corpus, tmp_path / "data2", num_dev=2, num_test=3)
    with pytest.raises(CorpusError, match="metadata.csv"):
        prepare_ljspeech(tmp_path / "nowhere", tmp_path / "data3")
    _tone(corpus / "wavs" / "LJ001-0004.wav")  # a '|' inside a text: its transcript was the part after it
    lines[2] = "LJ001-0003|Raw a | b 3.|Normalized a | b 3."
    (corpus / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=r"metadata.csv:3: 5 '\|'-separated field\(s\), expected 'id\|raw\|normalized'"):
        prepare_ljspeech(corpus, tmp_path / "data4", num_dev=2, num_test=3)
    # prepared again with no dev set: the old data/dev, whose utterances are now in train, goes
    (corpus / "metadata.csv").write_text("\n".join(lines[:2] + lines[3:]) + "\n", encoding="utf-8")
    dirs = prepare_ljspeech(corpus, tmp_path / "data", num_dev=0, num_test=3)
    assert "dev" not in dirs and not (tmp_path / "data" / "dev").exists() and len(dirs["train"]) == 6
    # a negative count sliced from the other end: the same utterances in train and in test
    with pytest.raises(CorpusError, match="--num-dev -2: must be 0 or more"):
        prepare_ljspeech(corpus, tmp_path / "data5", num_dev=-2, num_test=3)
    # a line in another encoding is named by file and line, with the others (it was a bare UnicodeDecodeError)
    (corpus / "metadata.csv").write_bytes("\n".join(lines[:2]).encode() + b"\nLJ001-0004|Caf\xe9|Caf\xe9\n")
    with pytest.raises(CorpusError, match=r"metadata.csv:3: not valid UTF-8 \(byte 0xe9 at position 14\)"):
        prepare_ljspeech(corpus, tmp_path / "data6", num_dev=0, num_test=1)


def _libritts(root: Path) -> None:
    for subset, spks in (("train-clean-100", ("103", "1034")), ("dev-clean", ("84",)), ("test-clean", ("121",))):
        for spk in spks:
            for chapter in ("1241", "5000"):
                for k in range(2):
                    base = root / subset / spk / chapter / f"{spk}_{chapter}_000000_00000{k}"
                    _tone(base.with_suffix(".wav"), sr=24000)
                    Path(f"{base}.normalized.txt").write_text(f"Text of {spk} {chapter} {k}.", encoding="utf-8")
                    Path(f"{base}.original.txt").write_text(f"TEXT of {spk} {chapter} {k}", encoding="utf-8")


def test_libritts_fake(tmp_path):
    corpus = tmp_path / "LibriTTS"
    _libritts(corpus)
    dirs = prepare_libritts(corpus, tmp_path / "data", ["train-clean-100"], ["dev-clean"], ["test-clean"])
    assert {k: len(v) for k, v in dirs.items()} == {"train": 8, "dev": 4, "test": 4}
    for split in dirs:
        assert validate_data_dir(tmp_path / "data" / split) == [], split
    train = DataDir.load(tmp_path / "data" / "train")
    assert train.speakers == ["103", "1034"]
    assert train.utts[0] == "103-1241_000000_000000" and train.text[train.utts[0]] == "Text of 103 1241 0."
    orig = prepare_libritts(corpus, tmp_path / "d2", [], [], ["test-clean"], text="original")
    assert orig["test"].text["121-1241_000000_000001"] == "TEXT of 121 1241 1"
    with pytest.raises(CorpusError, match="train-clean-360"):
        prepare_libritts(corpus, tmp_path / "d4", ["train-clean-360"], [], [])
    # prepared again without a dev set: the earlier data/dev goes (it would be validated on, or trained beside)
    dirs = prepare_libritts(corpus, tmp_path / "data", ["train-clean-100", "dev-clean"], [], ["test-clean"])
    assert sorted(dirs) == ["test", "train"] and not (tmp_path / "data" / "dev").exists()
    # a transcript in another encoding is named (it was a UnicodeDecodeError naming no file)
    bad = corpus / "dev-clean" / "84" / "1241" / "84_1241_000000_000000.normalized.txt"
    bad.write_bytes(b"Caf\xe9.")
    with pytest.raises(CorpusError, match=f"{bad}: not valid UTF-8 \\(byte 0xe9 at position 3\\)"):
        prepare_libritts(corpus, tmp_path / "d5", [], ["dev-clean"], [])


def test_libritts_skips_untranscribed_and_hidden_files_and_lists_them(tmp_path, capsys):
    """One wav without a transcript, an empty one, or LibriTTS-R's macOS '._*.wav' files (in dev-clean/84, the
    recipe's default dev set) stopped the whole preparation: they are skipped and listed, as VCTK's are."""
    corpus = tmp_path / "LibriTTS_R"
    _libritts(corpus)
    chapter = corpus / "dev-clean" / "84" / "5000"
    Path(f"{chapter}/84_5000_000000_000001.normalized.txt").unlink()
    Path(f"{chapter}/84_5000_000000_000000.normalized.txt").write_text("  \n", encoding="utf-8")
    (chapter / "._84_5000_000000_000000.wav").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    (chapter / "._84_5000_000000_000000.normalized.txt").write_bytes(b"\x00\x05")
    dirs = prepare_libritts(corpus, tmp_path / "data", [], ["dev-clean"], [])
    assert sorted(dirs["dev"].utts) == ["84-1241_000000_000000", "84-1241_000000_000001"]
    listed = (tmp_path / "data" / "local" / "libritts_skipped.txt").read_text().splitlines()
    assert len(listed) == 3 and "skipped 3 file(s)" in capsys.readouterr().err
    assert sorted(line.split(": ", 1)[1] for line in listed) == [
        "a hidden file (macOS metadata, not audio)", "empty transcript 84_5000_000000_000000.normalized.txt",
        "no transcript 84_5000_000000_000001.normalized.txt"]
    assert validate_data_dir(tmp_path / "data" / "dev") == []
    # a subset with no transcribed wav at all is still an error
    for txt in corpus.glob("test-clean/*/*/*.normalized.txt"):
        txt.unlink()
    with pytest.raises(CorpusError, match="no transcribed wavs under .*test-clean"):
        prepare_libritts(corpus, tmp_path / "d3", [], [], ["test-clean"])


@pytest.mark.parametrize("layout", ["0.92", "old"])
def test_vctk_fake(tmp_path, layout):
    corpus = tmp_path / "VCTK"
    for spk in ("p225", "p226", "p315"):
        for n in range(1, 7):
            if layout == "0.92":
                _tone(corpus / "wav48_silence_trimmed" / spk / f"{spk}_{n:03d}_mic1.flac", sr=48000, fmt="FLAC")
                _tone(corpus / "wav48_silence_trimmed" / spk / f"{spk}_{n:03d}_mic2.flac", sr=48000, fmt="FLAC")
            else:
                _tone(corpus / "wav48" / spk / f"{spk}_{n:03d}.wav", sr=48000)
            if spk != "p315":  # as in the real corpus: p315 has no transcripts
                (corpus / "txt" / spk).mkdir(parents=True, exist_ok=True)
                (corpus / "txt" / spk / f"{spk}_{n:03d}.txt").write_text(f"Please call Stella {n}.\n")
    dirs = prepare_vctk(corpus, tmp_path / "data", num_dev=1, num_test=2, heldout_speakers=["p226"])
    assert {k: len(v) for k, v in dirs.items()} == {"train": 3, "dev": 1, "test": 2, "test_unseen": 6}
    for split in dirs:
        assert validate_data_dir(tmp_path / "data" / split) == [], split
    test = DataDir.load(tmp_path / "data" / "test")
    assert test.utts == ["p225-005", "p225-006"] and test.text["p225-005"] == "Please call Stella 5."
    skipped = (tmp_path / "data" / "local" / "vctk_skipped.txt").read_text().splitlines()
    assert len(skipped) == 6 and all("p315" in s for s in skipped)
    if layout == "0.92":
        assert test.wav_scp["p225-005"].endswith("p225_005_mic1.flac")
    with pytest.raises(CorpusError, match="p999"):
        prepare_vctk(corpus, tmp_path / "d2", heldout_speakers=["p999"], num_dev=1, num_test=1)
    # prepared again without held-out speakers: the earlier test_unseen (p226, now a training speaker) goes
    dirs = prepare_vctk(corpus, tmp_path / "data", num_dev=1, num_test=2)
    assert "test_unseen" not in dirs and not (tmp_path / "data" / "test_unseen").exists()
    if layout == "0.92":  # a speaker with the other microphone's recordings only is listed, not lost unsaid
        for path in (corpus / "wav48_silence_trimmed" / "p226").glob("*_mic2.flac"):
            path.unlink()
        dirs = prepare_vctk(corpus, tmp_path / "d4", mic="mic2", num_dev=1, num_test=2)
        assert {u.split("-")[0] for u in DataDir.load(tmp_path / "d4" / "train").utts} == {"p225"}
        skipped = (tmp_path / "d4" / "local" / "vctk_skipped.txt").read_text()
        assert "p226: no mic2 recordings (only the other microphone's)" in skipped
    with pytest.raises(CorpusError, match="--num-dev-per-spk -1: must be 0 or more"):
        prepare_vctk(corpus, tmp_path / "d5", num_dev=-1, num_test=2)
    bad = corpus / "txt" / "p225" / "p225_001.txt"
    bad.write_bytes(b"Caf\xe9.\n")  # was read with a U+FFFD in its place
    with pytest.raises(CorpusError, match=r"p225_001.txt: not valid UTF-8 \(byte 0xe9 at position 3\)"):
        prepare_vctk(corpus, tmp_path / "d6", num_dev=1, num_test=2)
    with pytest.raises(CorpusError, match="VCTK directory not found"):
        prepare_vctk(tmp_path / "missing", tmp_path / "d3")
    (tmp_path / "empty" / "txt").mkdir(parents=True)
    with pytest.raises(CorpusError, match="wav48_silence_trimmed"):
        prepare_vctk(tmp_path / "empty", tmp_path / "d3")


# ---- recipe shell utilities --------------------------------------------------------------------------
def _bash(script: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", script, "test.sh", *args], capture_output=True, text=True, timeout=30,
                          cwd=cwd)


PO = f"""stage=0; stop_stage=100; foo_bar=x; smoke=false
help_message="Usage: test.sh [options] <dir>"
PARSE_OPTIONS_POSITIONAL=1
. {UTILS}/parse_options.sh
echo "stage=$stage stop_stage=$stop_stage foo_bar=$foo_bar smoke=$smoke rest=$*"
"""


def test_parse_options():
    res = _bash(PO, "--stage", "3", "--stop-stage", "5", "--foo-bar", "y z", "pos1")
    assert res.returncode == 0 and res.stdout.strip() == "stage=3 stop_stage=5 foo_bar=y z smoke=false rest=pos1"
    res = _bash(PO, "--smoke", "--foo-bar=q")
    assert res.stdout.strip() == "stage=0 stop_stage=100 foo_bar=q smoke=true rest="
    assert _bash(PO, "--smoke", "false", "a").stdout.strip().endswith("smoke=false rest=a")
    # a script that takes no positional arguments refuses words left after the options (they were dropped unread)
    res = _bash(PO.replace("PARSE_OPTIONS_POSITIONAL=1", ""), "--foo-bar", "a", "b")
    assert res.returncode == 1 and "unexpected argument 'b'" in res.stderr
    res = _bash(PO, "--no-such-option", "1")
    assert res.returncode == 1 and "unknown option --no-such-option" in res.stderr
    res = _bash(PO, "--smoke=maybe")
    assert res.returncode == 1 and "true or false" in res.stderr
    res = _bash(PO, "--foo-bar")
    assert res.returncode == 1 and "needs a value" in res.stderr
    res = _bash(PO, "--stage", "7", "--help")
    assert res.returncode == 0 and "Usage: test.sh" in res.stdout
    assert "--stop-stage" in res.stdout and "--foo-bar" in res.stdout and "7" in res.stdout
    # the environment's lower-case variables are no options of the script's
    env = subprocess.run(["bash", "-c", PO, "test.sh", "--help"], capture_output=True, text=True, timeout=30,
                         env={**os.environ, "http_proxy": "x"})
    assert "--foo-bar" in env.stdout and "--http-proxy" not in env.stdout


def test_run_stage_skips_done(tmp_path):
    script = f""". {UTILS}/log.sh
overwrite=${{1:-false}}
run_stage 1 hello bash -c 'echo ran >> count.txt'
"""
    for _ in range(2):
        assert _bash(script, cwd=tmp_path).returncode == 0
    assert (tmp_path / "count.txt").read_text() == "ran\n"
    assert (tmp_path / "exp" / ".done" / "stage1.hello").is_file()
    assert _bash(script, "true", cwd=tmp_path).returncode == 0
    assert (tmp_path / "count.txt").read_text() == "ran\nran\n"
    fail = f". {UTILS}/log.sh\nrun_stage 2 boom false\necho not reached\n"
    res = _bash(fail, cwd=tmp_path)
    assert res.returncode == 1 and "FAILED" in res.stdout and "not reached" not in res.stdout
    assert not (tmp_path / "exp" / ".done" / "stage2.boom").exists()
    assert len(list((tmp_path / "exp" / "logs").glob("stage1.hello.*.log"))) >= 1
    # a stage function stops at its first failing step, as the recipe (set -e) would, even if a later one succeeds
    steps = f"set -euo pipefail\n. {UTILS}/log.sh\nsteps() {{ false; echo second step ran; }}\nrun_stage 3 steps steps\n"
    res = _bash(steps, cwd=tmp_path)
    assert res.returncode == 1 and "second step ran" not in res.stdout and "FAILED" in res.stdout
    assert not (tmp_path / "exp" / ".done" / "stage3.steps").exists()


def test_wait_jobs_stops_at_the_first_failure(tmp_path):
    """Stage 8's parallel jobs: a job that fails while an earlier-started one still runs ends the wait at once
    and kills the rest (a job left running would hold the output pipe open for its 20 s); jobs that all
    succeed are all waited for."""
    script = f"""set -euo pipefail
. {UTILS}/log.sh
( exec sleep ${{1}} ) & a=$!
( sleep 0.3; exit ${{2}} ) & b=$!
wait_jobs "$a" "$b" || {{ rc=$?; echo "failed rc=$rc"; exit "$rc"; }}
echo "all done"
"""
    start = time.monotonic()
    res = _bash(script, "20", "3", cwd=tmp_path)
    assert res.returncode == 3 and "failed rc=3" in res.stdout, res.stdout + res.stderr
    assert time.monotonic() - start < 10
    res = _bash(script, "1", "0", cwd=tmp_path)
    assert res.returncode == 0 and "all done" in res.stdout


def test_local_data_sh_espeak_mini(tmp_path):
    script = REPO / "egs" / "espeak_mini" / "tts1" / "local" / "data.sh"
    res = subprocess.run(["bash", str(script), "--num-sentences", "4", "--num-dev", "1", "--num-test", "1",
                          "--voices", "en-us", "--nj", "1"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert validate_data_dir(tmp_path / "data" / "train") == []
    assert "phone coverage" in res.stdout
    res = subprocess.run(["bash", str(REPO / "egs" / "ljspeech" / "tts1" / "local" / "data.sh")], cwd=tmp_path,
                         capture_output=True, text=True, timeout=30)
    assert res.returncode == 1 and "--corpus-dir" in res.stderr


def test_espeak_library_copy_is_shared_not_left_per_process(tmp_path, monkeypatch):
    """Synthesis loads a copy of the espeak-ng library (phonemizer holds the original): one per library version,
    reused by every process, where each pool worker once left its own temporary copy behind."""
    import tempfile

    from shared.corpora.espeak_synth import private_library
    from shared.text.espeak import setup_espeak

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    library = Path(setup_espeak().library)
    code = "from pathlib import Path; from shared.corpora.espeak_synth import private_library; print(private_library(Path(%r)))"
    paths = {subprocess.run([sys.executable, "-c", code % str(library)], capture_output=True, text=True, check=True,
                            env={**os.environ, "TMPDIR": str(tmp_path)}).stdout.strip() for _ in range(2)}
    assert paths == {str(private_library(library))} and Path(paths.pop()).read_bytes() == library.read_bytes()
    assert [p.name for p in tmp_path.iterdir()] == [f"flowtts_espeak_{os.getuid()}"]


def test_generated_sentences_take_the_article_and_number_their_words_need():
    """The number list was split into words, so "a hundred" gave "a" and "hundred" as numbers ("washed a saucers",
    "admired thousand saucers"), and "hour" took "a"."""
    import re

    from shared.corpora.sentences import PLURALS

    plural = "|".join(PLURALS)
    sentences = generate_sentences(2000, seed=0)
    assert not [s for s in sentences if re.search(rf"(?<!\ba )\b(?:a|hundred|thousand) (?:{plural})\b", s)]
    assert not [s for s in sentences if re.search(r"\ba (?:hour|honest|heir)\b", s)]
    assert [s for s in sentences if re.search(rf"\ba thousand (?:{plural})\b", s)] and [s for s in sentences if " an hour" in s]
