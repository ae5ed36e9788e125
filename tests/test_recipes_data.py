"""The real-corpus recipes' data stages (0 corpus, 1 data dirs, 2 tokens) on tiny fake corpora laid out
like the real ones."""

from pathlib import Path

import pytest
from recipe_utils import copy_egs, run_recipe
from test_corpora import _libritts, _tone
from test_kaldi_compat import _kaldi_ok

from shared.datadir import DataDir

pytestmark = pytest.mark.slow


def _ljspeech(root: Path) -> None:
    lines = []
    for i in range(1, 11):
        uid = f"LJ001-{i:04d}"
        _tone(root / "wavs" / f"{uid}.wav")
        lines.append(f"{uid}|Raw text {i}.|The quick brown fox number {i} jumps.")
    (root / "metadata.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _vctk(root: Path) -> None:
    for spk in ("p225", "p226"):
        for n in range(1, 7):
            _tone(root / "wav48_silence_trimmed" / spk / f"{spk}_{n:03d}_mic1.flac", sr=48000, fmt="FLAC")
            (root / "txt" / spk).mkdir(parents=True, exist_ok=True)
            (root / "txt" / spk / f"{spk}_{n:03d}.txt").write_text(f"Please call Stella {n}.\n")


CASES = {
    "ljspeech": (_ljspeech, ["--local-data-opts", "--num-dev 2 --num-test 3"], {"train": 5, "dev": 2, "test": 3}),
    "libritts": (_libritts, [], {"train": 8, "dev": 4, "test": 4}),
    "vctk": (_vctk, ["--local-data-opts", "--num-dev-per-spk 1 --num-test-per-spk 2"],
             {"train": 6, "dev": 2, "test": 4}),
}


@pytest.mark.parametrize("corpus", sorted(CASES))
def test_data_stages_on_fake_corpus(tmp_path, corpus):
    make, opts, sizes = CASES[corpus]
    make(tmp_path / "corpus")
    recipe = copy_egs(tmp_path) / corpus / "tts1"
    r = run_recipe(recipe, "--corpus-dir", str(tmp_path / "corpus"), "--stage", "0", "--stop-stage", "2", *opts)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for split, n in sizes.items():
        data = DataDir.load(recipe / "data" / split)
        assert len(data) == n, split
        assert (recipe / "data" / split / "token").is_file()
        assert _kaldi_ok(recipe / "data" / split).stdout.strip() == "OK"
    assert (recipe / "exp" / "tokens.txt").is_file()
    assert len(list((recipe / "exp" / ".done").iterdir())) == 3
    # whose voices the test set has: LibriTTS's (test-clean) none of the training speakers', so its stage two takes a
    # speech prompt (conf/stage2_prompt.yaml, the default); VCTK's by default only training speakers' (its id model
    # gives each its learned voice; held-out speakers: --heldout-speakers, data/test_unseen)
    speakers = {split: set(DataDir.load(recipe / "data" / split).utt2spk.values()) for split in ("train", "test")}
    if corpus == "libritts":
        assert not speakers["train"] & speakers["test"]
    else:
        assert speakers["test"] <= speakers["train"]
    assert not (recipe / "data" / "test_unseen").exists()
    again = run_recipe(recipe, "--corpus-dir", str(tmp_path / "corpus"), "--stage", "0", "--stop-stage", "2", *opts)
    assert again.returncode == 0 and again.stdout.count("done already") == 3  # reruns skip finished stages


def test_missing_corpus_is_a_clear_error(tmp_path):
    recipe = copy_egs(tmp_path) / "ljspeech" / "tts1"
    r = run_recipe(recipe, "--corpus-dir", str(tmp_path / "nowhere"), "--stop-stage", "0")
    assert r.returncode != 0
    assert "nowhere" in r.stdout + r.stderr
    assert not list((recipe / "exp").glob(".done/*"))  # a failed stage is not marked done
