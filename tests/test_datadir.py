from pathlib import Path

import numpy as np
import pytest
import torch

from shared.datadir import DataDir, DataDirError, compute_utt2dur, fix_data_dir, main, validate_data_dir
from shared.io import read_kv


def _messages(path):
    return [str(p) for p in validate_data_dir(path)]


def test_valid_dir_round_trip(tiny_data_dir, tmp_path):
    assert validate_data_dir(tiny_data_dir) == []
    data = DataDir.load(tiny_data_dir)
    assert len(data) == 6 and data.speakers == ["spk1", "spk2"]
    data.utt2dur = compute_utt2dur(data)
    assert data.utt2dur["spk1-utt0"] == pytest.approx(0.5, abs=1e-3)
    data.save(tmp_path / "copy")
    assert validate_data_dir(tmp_path / "copy") == []
    assert (tmp_path / "copy" / "spk2utt").read_text().splitlines()[0] == "spk1 spk1-utt0 spk1-utt1 spk1-utt2"
    assert DataDir.load(tmp_path / "copy").utt2dur == pytest.approx(data.utt2dur, abs=1e-4)


def test_every_problem_is_reported_with_file_line_and_utt(tiny_data_dir):
    text = (tiny_data_dir / "text").read_text().splitlines()
    text[1] = "spk1-utt1"  # empty transcript
    text.append("spk3-extra only in text")
    (tiny_data_dir / "text").write_text("\n".join(text) + "\n")
    (tiny_data_dir / "spk1-utt2.wav").unlink(missing_ok=True)
    (tiny_data_dir / "wav" / "spk2-utt0.wav").unlink()
    msgs = _messages(tiny_data_dir)
    assert any("text:2: spk1-utt1: empty transcript" in m for m in msgs), msgs
    assert any("text:7: spk3-extra: not in utt2spk, wav.scp" in m for m in msgs), msgs
    assert any("wav.scp:4: spk2-utt0: audio file not found" in m for m in msgs), msgs
    with pytest.raises(DataDirError, match="3 problem"):
        DataDir.load(tiny_data_dir)


def test_unsorted_and_duplicates_and_speaker_order(tiny_data_dir):
    lines = (tiny_data_dir / "utt2spk").read_text().splitlines()
    (tiny_data_dir / "utt2spk").write_text("\n".join([lines[1], lines[0], lines[0]] + lines[2:]) + "\n")
    msgs = _messages(tiny_data_dir)
    assert any("utt2spk:2: spk1-utt0: not sorted" in m for m in msgs), msgs
    assert any("utt2spk:3: spk1-utt0: duplicate key" in m for m in msgs), msgs


def test_speaker_prefix_rule(tmp_path):
    from conftest import write_data_dir

    d = write_data_dir(tmp_path / "d", {"a1": ("zed", "x", 0.3), "b1": ("amy", "y", 0.3)})
    msgs = _messages(d)
    assert any("sorting by utterance does not sort speakers" in m for m in msgs), msgs


def test_missing_required_file(tiny_data_dir):
    (tiny_data_dir / "text").unlink()
    assert any("text: missing (required)" in m for m in _messages(tiny_data_dir))


def test_check_audio_wrong_rate_and_corrupt(tiny_data_dir):
    (tiny_data_dir / "wav" / "spk1-utt0.wav").write_bytes(b"not a wav at all")
    msgs = [str(p) for p in validate_data_dir(tiny_data_dir, check_audio_files=True, sample_rate=22050)]
    assert any("wav.scp:1: spk1-utt0:" in m and "cannot read audio" in m for m in msgs), msgs
    assert any("wav.scp:2: spk1-utt1:" in m and "expected 22050 Hz" in m for m in msgs), msgs


def test_fix_drops_and_reports(tiny_data_dir):
    with open(tiny_data_dir / "text", "a") as f:
        f.write("spk3-orphan text only\n")
    text = (tiny_data_dir / "text").read_text().replace("spk2-utt1 hello world number 1", "spk2-utt1 ")
    (tiny_data_dir / "text").write_text(text)
    report = fix_data_dir(tiny_data_dir)
    assert report["not in utt2spk"] == ["spk3-orphan"]
    assert report["text: empty transcript"] == ["spk2-utt1"]
    assert validate_data_dir(tiny_data_dir) == []
    assert len(DataDir.load(tiny_data_dir)) == 5
    assert (tiny_data_dir / ".backup" / "text").exists()


def test_fix_drops_every_utterance_with_a_flagged_line(tiny_data_dir):
    """A line of a file that validation flags drops its utterance (a speakerless utt2spk line used to be kept, giving
    spk2utt an empty speaker); an unsorted line is only sorted; the result validates."""
    lines = (tiny_data_dir / "utt2spk").read_text().splitlines()
    lines[1] = "spk1-utt1"  # no speaker
    lines[4] = "spk2-utt1 spk2 x"  # two tokens
    (tiny_data_dir / "utt2spk").write_text("\n".join([lines[0], lines[2], lines[1], *lines[3:]]) + "\n")  # unsorted
    (tiny_data_dir / "utt2dur").write_text("".join(f"spk{s}-utt{i} {'-1' if (s, i) == (2, 2) else '0.5'}\n"
                                                   for s in (1, 2) for i in range(3)))
    report = fix_data_dir(tiny_data_dir)
    assert report == {"utt2spk: no value": ["spk1-utt1"], "utt2spk: speaker id must be one token": ["spk2-utt1"],
                      "utt2dur: bad duration": ["spk2-utt2"]}
    assert validate_data_dir(tiny_data_dir) == []
    assert DataDir.load(tiny_data_dir).utts == ["spk1-utt0", "spk1-utt2", "spk2-utt0"]
    assert (tiny_data_dir / "spk2utt").read_text() == "spk1 spk1-utt0 spk1-utt2\nspk2 spk2-utt0\n"


def test_fix_reports_what_dropping_cannot_fix(tmp_path):
    from conftest import write_data_dir

    d = write_data_dir(tmp_path / "d", {"a1": ("zed", "x", 0.3), "b1": ("amy", "y", 0.3)})
    with pytest.raises(DataDirError, match="sorting by utterance does not sort speakers"):
        fix_data_dir(d)
    assert main(["fix", str(d)]) == 1


def test_subset_split_and_cli(tiny_data_dir, tmp_path, capsys):
    data = DataDir.load(tiny_data_dir)
    parts = data.split(2, by_speaker=True)
    assert [p.speakers for p in parts] == [["spk1"], ["spk2"]]
    # three speakers of 5, 1 and 1 utterances in three parts: one speaker each, no part empty (was 5, 0, 2)
    utts = [f"a-{i}" for i in range(5)] + ["b-0", "c-0"]
    skewed = DataDir(wav_scp={u: f"/{u}.wav" for u in utts}, text={u: "x" for u in utts}, utt2spk={u: u[0] for u in utts})
    assert [p.speakers for p in skewed.split(3, by_speaker=True)] == [["a"], ["b"], ["c"]]
    assert [len(p) for p in skewed.split(3)] == [3, 2, 2] and [len(p) for p in skewed.split(7)] == [1] * 7
    assert sum(len(p) for p in data.split(4)) == 6
    with pytest.raises(KeyError, match="nope"):
        data.subset(["nope"])
    assert main(["subset", str(tiny_data_dir), str(tmp_path / "sub"), "--first", "2"]) == 0
    assert DataDir.load(tmp_path / "sub").utts == ["spk1-utt0", "spk1-utt1"]
    assert main(["utt2dur", str(tiny_data_dir)]) == 0
    assert main(["validate", str(tiny_data_dir)]) == 0
    (tiny_data_dir / "text").write_text("spk1-utt0 x\n")
    assert main(["validate", str(tiny_data_dir)]) == 1
    assert "not in text" in capsys.readouterr().err


def test_utt2lang_round_trips_subsets_and_is_checked(tiny_data_dir, tmp_path):
    data = DataDir.load(tiny_data_dir)
    data.utt2lang = {u: "en-gb-x-rp" if u.startswith("spk2") else "en-us" for u in data.utts}
    data.save(tmp_path / "lang")
    loaded = DataDir.load(tmp_path / "lang")
    assert loaded.utt2lang == data.utt2lang
    assert set(loaded.subset(["spk2-utt0"]).utt2lang.values()) == {"en-gb-x-rp"}
    # an utterance missing from utt2lang is a problem named like any other; fix drops it
    (tmp_path / "lang" / "utt2lang").write_text("".join(f"{u} en-us\n" for u in data.utts[1:]))
    problems = [str(p) for p in validate_data_dir(tmp_path / "lang")]
    assert any(data.utts[0] in p and "not in utt2lang" in p for p in problems), problems
    assert fix_data_dir(tmp_path / "lang") == {"not in utt2lang": [data.utts[0]]}
    assert DataDir.load(tmp_path / "lang").utts == data.utts[1:]


def test_token_is_carried_and_checked_and_combine_is_split_undone(tiny_data_dir, tmp_path):
    data = DataDir.load(tiny_data_dir)
    data.token = {u: "h e l l o" for u in data.utts}
    data.utt2dur = {u: 1.0 for u in data.utts}
    data.save(tiny_data_dir)
    assert main(["split", str(tiny_data_dir), "2"]) == 0
    parts = [tiny_data_dir / "split2" / k for k in ("1", "2")]
    assert all(DataDir.load(p).token for p in parts)
    assert main(["combine", str(tmp_path / "all"), *map(str, parts)]) == 0
    assert DataDir.load(tmp_path / "all") == DataDir.load(tiny_data_dir)
    # an optional table only some parts have is dropped, not left half-filled; utt2lang is an error (dropped, the
    # parts that had it would be phonemised in the default language)
    first = DataDir.load(parts[0])
    second = DataDir.load(parts[1])
    second.utt2dur = {}
    assert first.utt2dur and DataDir.combine([first, second]).utt2dur == {}
    first.utt2lang = {u: "en-gb-x-rp" for u in first.utts}
    with pytest.raises(ValueError, match="a have utt2lang, b not"):
        DataDir.combine([first, DataDir.load(parts[1])], names=["a", "b"])
    first.utt2lang = {}
    # the same utterance twice is an error naming it and both parts
    with pytest.raises(ValueError, match=f"'{first.utts[0]}' is in both a and b"):
        DataDir.combine([first, first], names=["a", "b"])
    segmented = DataDir(wav_scp={"rec": "/a.wav"}, text={"spk9-x": "t"}, utt2spk={"spk9-x": "spk9"},
                        segments={"spk9-x": ("rec", 0.0, 1.0)})
    with pytest.raises(ValueError, match="seg have segments, the others not"):
        DataDir.combine([segmented, first], names=["seg", "plain"])
    # a token line missing is a problem like any other utterance table's
    (tiny_data_dir / "token").write_text("".join(f"{u} h i\n" for u in data.utts[1:]))
    assert any(data.utts[0] in str(p) and "not in token" in str(p) for p in validate_data_dir(tiny_data_dir))


def test_segments(tmp_path, tiny_data_dir):
    data = DataDir.load(tiny_data_dir)
    reco = data.wav_scp["spk1-utt2"]
    seg = DataDir(wav_scp={"rec1": reco}, text={"spk1-a": "one", "spk1-b": "two"},
                  utt2spk={"spk1-a": "spk1", "spk1-b": "spk1"},
                  segments={"spk1-a": ("rec1", 0.0, 0.4), "spk1-b": ("rec1", 0.4, 1.0)})
    seg.save(tmp_path / "seg")
    assert validate_data_dir(tmp_path / "seg") == []
    loaded = DataDir.load(tmp_path / "seg")
    assert loaded.load_audio("spk1-b", 16000).shape == (9600,)
    assert compute_utt2dur(loaded) == pytest.approx({"spk1-a": 0.4, "spk1-b": 0.6})
    # Kaldi's end time -1: to the recording's end (spk1-utt2 is 1.0 s)
    loaded.segments["spk1-b"] = ("rec1", 0.4, -1.0)
    loaded.save(tmp_path / "seg")
    assert validate_data_dir(tmp_path / "seg") == []
    assert DataDir.load(tmp_path / "seg").load_audio("spk1-b", 16000).shape == (9600,)
    assert compute_utt2dur(DataDir.load(tmp_path / "seg"))["spk1-b"] == pytest.approx(0.6)
    # times to the nearest sample, as Kaldi's extract-segments: 0.29 * 24000 is 6959.999..., cut at 6959 before
    loaded.segments["spk1-b"] = ("rec1", 0.29, 0.5)
    whole = DataDir.load(tiny_data_dir).load_audio("spk1-utt2", 24000)
    assert torch.equal(loaded.load_audio("spk1-b", 24000), whole[6960:12000])
    # a fifth field (a channel) is refused with a reason, not read as something else
    with open(tmp_path / "seg" / "segments", "a") as f:
        f.write("spk1-c rec1 0.0 0.5 1\n")
    msgs = _messages(tmp_path / "seg")
    assert any("segments:3: spk1-c: a fifth field (channel 1) is not supported" in m for m in msgs), msgs


def test_kaldi_pipes_in_wav_scp(tiny_data_dir):
    """``<utt> <command> |``: the command's output is the audio, for loading, durations, validation and fix."""
    data = DataDir.load(tiny_data_dir)
    plain = {u: data.load_audio(u, 16000) for u in data.utts}
    data.wav_scp = {u: f"cat '{p}' |" for u, p in data.wav_scp.items()}
    data.save(tiny_data_dir)
    assert validate_data_dir(tiny_data_dir, check_audio_files=True, sample_rate=16000) == []
    piped = DataDir.load(tiny_data_dir)
    assert all(torch.equal(piped.load_audio(u, 16000), plain[u]) for u in piped.utts)
    assert compute_utt2dur(piped) == pytest.approx({u: w.numel() / 16000 for u, w in plain.items()})
    assert fix_data_dir(tiny_data_dir) == {} and len(DataDir.load(tiny_data_dir)) == 6  # kept: a pipe is no missing file
    (tiny_data_dir / "wav.scp").write_text((tiny_data_dir / "wav.scp").read_text().replace("cat '", "cat '/nonexistent"))
    msgs = [str(p) for p in validate_data_dir(tiny_data_dir, check_audio_files=True)]
    assert any("wav.scp:1: spk1-utt0: cat '/nonexistent" in m and "the command failed (exit status 1)" in m for m in msgs), msgs


def test_fix_keeps_every_backup_and_never_empties_a_dir(tiny_data_dir):
    for f in ("text", "wav.scp"):  # one utterance goes in each of two fixes
        lines = (tiny_data_dir / f).read_text().splitlines(keepends=True)
        (tiny_data_dir / f).write_text("".join(lines[1:] if f == "text" else lines))
    original = (tiny_data_dir / "text").read_text()
    assert fix_data_dir(tiny_data_dir) == {"not in text": ["spk1-utt0"]}
    (tiny_data_dir / "text").write_text("".join((tiny_data_dir / "text").read_text().splitlines(keepends=True)[1:]))
    assert fix_data_dir(tiny_data_dir) == {"not in text": ["spk1-utt1"]}
    assert (tiny_data_dir / ".backup" / "text").read_text() == original  # the first fix's backup is still there
    assert (tiny_data_dir / ".backup.1" / "wav.scp").is_file()
    before = {f: (tiny_data_dir / f).read_text() for f in ("text", "utt2spk", "wav.scp")}
    (tiny_data_dir / "wav.scp").write_text("".join(f"{u} /nonexistent/{u}.wav\n" for u in DataDir.load(tiny_data_dir).utts))
    before["wav.scp"] = (tiny_data_dir / "wav.scp").read_text()
    with pytest.raises(DataDirError, match="fix would drop every utterance \\(audio file not found: 4\\)"):
        fix_data_dir(tiny_data_dir)
    assert {f: (tiny_data_dir / f).read_text() for f in before} == before and not (tiny_data_dir / ".backup.2").exists()
    (tiny_data_dir / "utt2spk").write_text("")
    assert any("utt2spk: no utterances" in str(p) for p in validate_data_dir(tiny_data_dir))


def test_kaldi_format_rules(tiny_data_dir):
    (tiny_data_dir / "text").write_text((tiny_data_dir / "text").read_text().replace("spk1-utt0 hello", "spk1-utt0 <s> hello"))
    (tiny_data_dir / "utt2spk").write_text((tiny_data_dir / "utt2spk").read_text().replace("spk1-utt1 spk1", "spk1-utt1 spk1 x"))
    msgs = _messages(tiny_data_dir)
    assert any("text:1: spk1-utt0: reserved Kaldi symbol" in m for m in msgs), msgs
    assert any("utt2spk:2: spk1-utt1: speaker id must be one token" in m for m in msgs), msgs


def test_a_byte_order_mark_is_reported_and_does_not_join_the_first_key(tiny_data_dir):
    # Windows editors start UTF-8 files with a BOM. The validator names it (Kaldi's tools would read it as part
    # of the first id); the readers drop it, so it never becomes part of an utterance or speaker id.
    for name in ("text", "utt2spk"):
        path = tiny_data_dir / name
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    msgs = _messages(tiny_data_dir)
    assert len(msgs) == 2 and all("byte-order mark at the start of the file" in m for m in msgs), msgs
    assert any(m.endswith("text:1: byte-order mark at the start of the file") for m in msgs), msgs
    assert read_kv(tiny_data_dir / "utt2spk")["spk1-utt0"] == "spk1"
    fix_data_dir(tiny_data_dir)
    assert _messages(tiny_data_dir) == [] and (tiny_data_dir / "text").read_bytes().startswith(b"spk1-utt0 ")


def test_validation_and_load_read_each_file_once(tiny_data_dir, monkeypatch):
    """Problems' line numbers come from the one pass that reads the tables: looking each one up by rereading the file
    made validation quadratic (a 20,000-utterance dir took a minute, LibriTTS's 150,000 most of an hour)."""
    import shared.datadir

    with open(tiny_data_dir / "text", "a") as f:
        f.write("spk3-extra only in text\n")
    (tiny_data_dir / "wav" / "spk2-utt0.wav").unlink()
    (tiny_data_dir / "utt2dur").write_text("".join(f"spk{s}-utt{i} {'-1' if (s, i) == (2, 1) else '0.5'}\n"
                                                   for s in (1, 2) for i in range(3)))
    opened: list[str] = []

    def counting_open(file, *args, **kwargs):
        opened.append(Path(file).name)
        return open(file, *args, **kwargs)

    monkeypatch.setattr(shared.datadir, "open", counting_open, raising=False)
    msgs = _messages(tiny_data_dir)
    assert any("text:7: spk3-extra: not in utt2spk, wav.scp, utt2dur" in m for m in msgs), msgs
    assert any("wav.scp:4: spk2-utt0: audio file not found" in m for m in msgs), msgs
    assert any("utt2dur:5: spk2-utt1: bad duration '-1'" in m for m in msgs), msgs
    assert sorted(opened) == ["spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]
    fix_data_dir(tiny_data_dir)
    opened.clear()
    assert len(DataDir.load(tiny_data_dir)) == 4  # validated, then read: still once each
    assert sorted(opened) == ["spk2utt", "text", "utt2dur", "utt2spk", "wav.scp"]


def test_an_interrupted_save_keeps_the_old_wav_scp(tiny_data_dir, monkeypatch):
    """A data dir from another recipe may have no other copy of its wav.scp: save() replaces it by a rename, last,
    and never deletes it first."""
    import shared.datadir

    original = (tiny_data_dir / "wav.scp").read_text()
    data = DataDir.load(tiny_data_dir).subset(["spk1-utt0", "spk2-utt0"])
    write_kv = shared.datadir.write_kv

    def dying_write_kv(path, table):
        if Path(path).name == "spk2utt":
            raise KeyboardInterrupt
        write_kv(path, table)

    monkeypatch.setattr(shared.datadir, "write_kv", dying_write_kv)
    with pytest.raises(KeyboardInterrupt):
        data.save(tiny_data_dir)
    assert (tiny_data_dir / "wav.scp").read_text() == original
    assert any("wav.scp:2: spk1-utt1: not in utt2spk, text" in m for m in _messages(tiny_data_dir))  # the mix: invalid
    monkeypatch.setattr(shared.datadir, "write_kv", write_kv)
    data.save(tiny_data_dir)
    assert DataDir.load(tiny_data_dir) == data
    assert sorted(p.name for p in tiny_data_dir.iterdir()) == ["spk2utt", "text", "utt2spk", "wav", "wav.scp"]


def test_utt2dur_command_writes_utt2dur_alone(tiny_data_dir, tmp_path, monkeypatch):
    """It used to load and save the whole dir: segments' times came back rounded, and an interruption could cost
    the wav.scp."""
    import shared.datadir

    reco = DataDir.load(tiny_data_dir).wav_scp["spk1-utt2"]  # 1.0 s
    d = tmp_path / "seg"
    d.mkdir()
    files = {"wav.scp": f"rec1 {reco}\n", "text": "spk1-a one\nspk1-b two\n", "utt2spk": "spk1-a spk1\nspk1-b spk1\n",
             "spk2utt": "spk1 spk1-a spk1-b\n", "segments": "spk1-a rec1 0.0 0.4321\nspk1-b rec1 0.4321 -1\n"}
    for name, content in files.items():
        (d / name).write_text(content)
    written, write_kv = [], shared.datadir.write_kv
    monkeypatch.setattr(shared.datadir, "write_kv", lambda path, table: written.append(Path(path).name) or write_kv(path, table))
    assert main(["utt2dur", str(d)]) == 0
    assert written == ["utt2dur"] and {name: (d / name).read_text() for name in files} == files
    assert (d / "utt2dur").read_text() == "spk1-a 0.4321\nspk1-b 0.5679\n"


def test_utt2dur_command_rebuilds_a_bad_or_incomplete_utt2dur(tiny_data_dir, capsys):
    """The command meant to repair utt2dur refused to run on a dir whose utt2dur was the problem: loading validated it
    first. Every other file is still checked."""
    assert main(["utt2dur", str(tiny_data_dir)]) == 0
    good = (tiny_data_dir / "utt2dur").read_text()
    lines = good.splitlines()
    for bad in ("\n".join(lines[:-1]) + "\n",  # a line short
                good.replace(lines[1], lines[1].split()[0] + " -1"), "spk1-utt0 x\n", "\ufeff\r\n"):
        (tiny_data_dir / "utt2dur").write_text(bad)
        with pytest.raises(DataDirError, match="utt2dur"):
            DataDir.load(tiny_data_dir)
        assert main(["utt2dur", str(tiny_data_dir)]) == 0
        assert (tiny_data_dir / "utt2dur").read_text() == good and DataDir.load(tiny_data_dir).utt2dur
    (tiny_data_dir / "text").write_text("")  # another file's problem still stops it, and utt2dur is left as it was
    assert main(["utt2dur", str(tiny_data_dir)]) == 1
    assert "text" in capsys.readouterr().err and (tiny_data_dir / "utt2dur").read_text() == good
    with pytest.raises(ValueError, match="only optional tables"):
        DataDir.load(tiny_data_dir, skip=("wav.scp",))


def test_utt2dur_names_every_unreadable_file(tiny_data_dir, capsys):
    for utt in ("spk1-utt0", "spk2-utt1"):
        (tiny_data_dir / "wav" / f"{utt}.wav").write_bytes(b"not a wav at all")
    with pytest.raises(DataDirError, match="2 problem") as e:
        compute_utt2dur(DataDir.load(tiny_data_dir), tiny_data_dir)
    assert [(Path(p.file).name, p.line, p.utt) for p in e.value.problems] == [("wav.scp", 1, "spk1-utt0"),
                                                                             ("wav.scp", 5, "spk2-utt1")]
    assert main(["utt2dur", str(tiny_data_dir)]) == 1
    err = capsys.readouterr().err
    assert f"{tiny_data_dir / 'wav.scp'}:5: spk2-utt1: {tiny_data_dir / 'wav' / 'spk2-utt1.wav'}: cannot read audio" in err
    assert "fix --check-audio" in err and not (tiny_data_dir / "utt2dur").exists()


def test_fix_check_audio_drops_what_validate_check_audio_rejects(tiny_data_dir, capsys):
    import soundfile as sf

    sf.write(tiny_data_dir / "wav" / "spk1-utt1.wav", np.zeros(8000, dtype="float32"), 16000)
    (tiny_data_dir / "wav" / "spk2-utt0.wav").write_bytes(b"not a wav at all")
    rejected = {p.utt: p for p in validate_data_dir(tiny_data_dir, check_audio_files=True)}
    assert sorted(rejected) == ["spk1-utt1", "spk2-utt0"]
    assert fix_data_dir(tiny_data_dir) == {}  # without --check-audio: only missing files go
    with open(tiny_data_dir / "text", "a") as f:
        f.write("spk3-orphan text only\n")
    assert main(["fix", str(tiny_data_dir), "--check-audio", "--sample-rate", "16000"]) == 0
    out = capsys.readouterr().out
    for utt, p in rejected.items():  # the message validate gives, with its wav.scp line
        assert f"dropped 1 utterance(s): wav.scp:{p.line}: {p.message}: {utt}" in out, out
    assert f"{tiny_data_dir}: 4 utterances kept, 3 dropped" in out  # the orphan once, though not in two files
    assert validate_data_dir(tiny_data_dir, check_audio_files=True, sample_rate=16000) == []
    # at another rate every file is rejected: nothing changes
    assert main(["fix", str(tiny_data_dir), "--check-audio", "--sample-rate", "22050"]) == 1
    assert "fix would drop every utterance" in capsys.readouterr().err and len(DataDir.load(tiny_data_dir)) == 4


def test_spk2utt_is_compared_in_order_and_names_each_speaker(tiny_data_dir):
    """Kaldi's validate_data_dir.sh turns spk2utt back into utt2spk and cmp's the two: a speaker's utterances out
    of order are wrong, as every writer here writes them in utt2spk's (sorted) order."""
    (tiny_data_dir / "spk2utt").write_text("spk1 spk1-utt2 spk1-utt1 spk1-utt0\nspk2 spk2-utt0 spk2-utt2\n")
    msgs = _messages(tiny_data_dir)
    assert any("spk2utt:1: spk1: utterances not in utt2spk's (sorted) order: 'spk1-utt2' is where 'spk1-utt0' "
               "belongs (regenerate spk2utt from utt2spk)" in m for m in msgs), msgs
    assert any("spk2utt:2: spk2: lacks spk2-utt1, this speaker's in utt2spk" in m for m in msgs), msgs
    (tiny_data_dir / "spk2utt").write_text("spk1 spk1-utt0 spk1-utt1 spk1-utt2 spk2-utt0\n")
    msgs = _messages(tiny_data_dir)
    assert any("spk2utt:1: spk1: lists spk2-utt0, not this speaker's in utt2spk" in m for m in msgs), msgs
    assert any("spk2utt: spk2: speaker missing (3 utterance(s) in utt2spk" in m for m in msgs), msgs
    # save() (and so fix, the corpora, subset, split, combine) writes the order Kaldi wants, whatever the order
    # the tables were built in; "utt10" sorts before "utt9" in C order
    utts = ["b-utt9", "a-utt9", "b-utt10", "a-utt10"]
    data = DataDir(wav_scp={u: str(tiny_data_dir / "wav" / "spk1-utt0.wav") for u in utts}, text={u: "x" for u in utts},
                   utt2spk={u: u[0] for u in utts})
    data.save(tiny_data_dir / "new")
    assert (tiny_data_dir / "new" / "spk2utt").read_text() == "a a-utt10 a-utt9\nb b-utt10 b-utt9\n"
    assert validate_data_dir(tiny_data_dir / "new") == []
