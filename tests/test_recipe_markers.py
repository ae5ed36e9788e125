"""What a finished stage's marker records (egs/utils/markers.sh), and what a rerun does with it.

A marker used to be an empty file: a rerun with other settings (tts.sh's own --help example, `--nfe 8 --stage2-args
...`) found every stage "done already" and ran nothing; a new test set was never encoded or synthesised; a stage redone
with --overwrite left the stages after it marked done on its old outputs; and a stage that failed under --overwrite
kept its old marker. The recipe tests run with ``python`` stubbed (tests/recipe_utils.py), in seconds.
"""

import subprocess
from pathlib import Path

from recipe_utils import copy_egs, run_recipe, stub_python_env

UTILS = Path(__file__).resolve().parent.parent / "egs" / "utils"


def _bash(script: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "-c", f"set -euo pipefail\n. {UTILS}/log.sh\n{script}", "test.sh", *args],
                          capture_output=True, text=True, timeout=30, cwd=cwd)


def _stubbed(tmp_path: Path, recipe: str = "espeak_mini"):
    """``run(*args) -> (result, the python commands it ran)`` of the recipe with every python command a stub."""
    recipe_dir = copy_egs(tmp_path) / recipe / "tts1"
    env, log = stub_python_env(tmp_path), tmp_path / "python.log"

    def run(*args: str):
        log.unlink(missing_ok=True)
        r = run_recipe(recipe_dir, *args, env=env, timeout=120)
        return r, log.read_text() if log.is_file() else ""
    return recipe_dir, run


def _calls(calls: str, verb: str) -> list[str]:
    return [line for line in calls.splitlines() if f"-m {verb} " in line]


def test_a_stage_that_fails_under_overwrite_is_not_done(tmp_path):
    """--overwrite makes the verbs remove the old outputs first: a failure then left the old marker, and the next run
    skipped the stage over what was no longer there."""
    script = "overwrite=$1\nrun_stage 1 hello bash -c 'echo ran >> count.txt; [ ! -f fail ]'\n"
    assert _bash(script, "false", cwd=tmp_path).returncode == 0
    (tmp_path / "fail").touch()
    r = _bash(script, "true", cwd=tmp_path)
    assert r.returncode == 1 and "FAILED" in r.stdout
    assert not (tmp_path / "exp" / ".done" / "stage1.hello").exists()
    (tmp_path / "fail").unlink()
    assert _bash(script, "false", cwd=tmp_path).returncode == 0
    assert (tmp_path / "count.txt").read_text() == "ran\n" * 3  # done again, not skipped


def test_a_stage_command_heads_its_log(tmp_path):
    """The README sends multi-node users to a training's command "as its log shows it": the log held only the output.
    A command's log now starts with it, quoted to be pasted back; in a stage function (stage 7's two trainings) a
    command run through ``logged`` is written the same way before its output."""
    script = ("run_stage 3 train printf '%s\\n' 'a b' \"c'd\"\n"
              "f() { echo from f; logged printf '%s\\n' 'x y'; }\nrun_stage 4 fn f\n")
    r = _bash(script, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    (log3,), (log4,) = (list((tmp_path / "exp" / "logs").glob(f"stage{n}.*.log")) for n in (3, 4))
    first, *output = log3.read_text().splitlines()
    where, command = first.removeprefix("# in ").split(": ", 1)
    assert Path(where).resolve() == tmp_path.resolve() and command.startswith("printf") and output == ["a b", "c'd"]
    assert subprocess.run(["bash", "-c", command], capture_output=True, text=True).stdout == "a b\nc'd\n"
    echoed, line, output = log4.read_text().splitlines()
    assert echoed == "from f" and line.startswith(f"# in {tmp_path}") and output == "x y"
    assert subprocess.run(["bash", "-c", line.split(": ", 1)[1]], capture_output=True, text=True).stdout == "x y\n"
    tts = (Path(__file__).parents[1] / "egs" / "TEMPLATE" / "tts1" / "tts.sh").read_text()
    assert "logged python -m stage2_flow.train" in tts and "logged python -m stage1_vae.train" in tts  # stage 7's


def test_a_marker_records_settings_configs_and_the_stages_it_consumes(tmp_path):
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "base.yaml").write_text("a: 1\n")
    (tmp_path / "conf" / "child.yaml").write_text("base: base.yaml  # only what differs\nb: 2\n")
    script = """lr=$1; sets=$2
one() { echo "one: $stage_sets" >> ran.txt; }  # $stage_sets: the sets it is to do
stage_with --sets "$sets" x=1
overwrite=${3:-false} run_stage 1 one one
stage_with --retag --my-tag --after stage1.one conf="$(conf_digest conf/child.yaml)" lr="$lr"
run_stage 2 two bash -c 'echo two >> ran.txt'
"""
    assert _bash(script, "1e-3", "a b", cwd=tmp_path).returncode == 0
    marker = (tmp_path / "exp" / ".done" / "stage2.two").read_text()
    assert "\nlr=1e-3\n" in marker and "\nconf=conf/child.yaml " in marker and "\nstage1.one=" in marker
    r = _bash(script, "1e-3", "a b", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.count("done already") == 2
    # other settings: refused, naming them and what to do; nothing runs
    r = _bash(script, "1e-4", "a b", cwd=tmp_path)
    assert r.returncode == 1 and "stage 2 (two) was done with other settings" in r.stderr, r.stderr
    assert "lr: '1e-3' then, now '1e-4'" in r.stderr and "--overwrite true" in r.stderr and "--my-tag NAME" in r.stderr
    # ...a config's base is part of it, also one whose name holds a space (the digest left it out)
    (tmp_path / "conf" / "base.yaml").write_text("a: 3\n")
    r = _bash(script, "1e-3", "a b", cwd=tmp_path)
    assert r.returncode == 1 and "conf: 'conf/child.yaml " in r.stderr
    (tmp_path / "conf" / "base.yaml").write_text("a: 1\n")
    (tmp_path / "conf" / "base one.yaml").write_text("a: 1\n")
    (tmp_path / "conf" / "spaced.yaml").write_text("base: 'base one.yaml'  \nb: 2\n")
    digests = []
    for a in (1, 2):
        (tmp_path / "conf" / "base one.yaml").write_text(f"a: {a}\n")
        digests.append(_bash("conf_digest conf/spaced.yaml", cwd=tmp_path).stdout)
    assert digests[0] != digests[1], digests
    # a new set is new work for a per-set stage, done alone; the stages after it stay done
    r = _bash(script, "1e-3", "a b c", cwd=tmp_path)
    assert r.returncode == 0 and "stage 1 (one): done for a b; now for c too" in r.stdout, r.stdout + r.stderr
    assert "stage 2 (two): done already" in r.stdout
    assert (tmp_path / "ran.txt").read_text() == "one: a b\ntwo\none: c\n"
    # a stage redone (--overwrite): the stages made from its outputs are no longer taken for done
    r = _bash(script, "1e-3", "a b c", "true", cwd=tmp_path)
    assert r.returncode == 1 and "stage1.one: a stage this one consumes, redone since" in r.stderr, r.stderr
    assert (tmp_path / "ran.txt").read_text().endswith("one: c\none: a b c\n")


def test_markers_from_before_they_recorded_settings_are_trusted(tmp_path):
    """An empty marker (as run_stage's `touch` left them) is trusted; a per-set stage's (1, 2, 4, 5, 8, 9) does not
    say which sets it did, so that stage is done again for all of them (its steps keep the outputs they find): else
    a set new to the tree (--test-sets "test screen") would be skipped."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    for marker in (recipe / "exp" / ".done").glob("stage*"):
        marker.write_text("")
    r, calls = run("--nfe", "8")
    assert r.returncode == 0 and r.stdout.count("done already") == 6, r.stdout + r.stderr
    assert r.stdout.count("from before markers recorded settings:") == 6
    assert r.stdout.count("done before markers recorded settings and sets") == 6
    assert "stage2_flow.synthesize" in calls and "stage1_vae.train" not in calls
    r, calls = run("--nfe", "8")  # now recorded: all done
    assert r.returncode == 0 and r.stdout.count("done already") == 12 and calls == "", r.stdout + r.stderr


def test_a_rerun_with_other_settings_is_refused(tmp_path):
    """tts.sh's --help example skipped every stage; `--frontend char` kept the phoneme tokens."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    r, calls = run("--stage", "6", "--stop-stage", "9", "--nfe", "8", "--stage2-args", "train.lr=1e-4 trainer.max_steps=2000")
    assert r.returncode == 1 and calls == "", r.stdout + r.stderr
    assert "stage 6 (stage2_train.flow) was done with other settings" in r.stderr
    assert "stage2_args: '' then, now 'train.lr=1e-4 trainer.max_steps=2000'" in r.stderr and "--stage2-tag NAME" in r.stderr
    # ...as the help now says: a system of its own
    r, calls = run("--stage", "6", "--stop-stage", "9", "--stage2-tag", "lr", "--stage2-args", "train.lr=1e-4")
    assert r.returncode == 0 and "--exp-dir exp/stage2/lr " in _calls(calls, "stage2_flow.train")[0], r.stderr
    assert "--exp-dir exp/stage2/lr_reflow --data-dir data/test " in calls
    r, calls = run("--stage", "8", "--nfe", "8")
    assert r.returncode == 1 and "nfe: '4' then, now '8'" in r.stderr and calls == "", r.stderr
    r, calls = run("--stage", "8", "--nfe", "8", "--overwrite", "true")
    assert r.returncode == 0 and "--nfe 8 " in _calls(calls, "stage2_flow.synthesize")[0]
    r, calls = run("--stage", "2", "--frontend", "char")
    assert r.returncode == 1 and "stage 2 (tokens) was done with other settings" in r.stderr and calls == ""
    assert "frontend: 'phoneme' then, now 'char'" in r.stderr and "a copy of the recipe dir" in r.stderr
    # settings that only say where a stage runs are not among them (stage 7's decoder was fine-tuned on 4-NFE output:
    # from there on, --nfe 8 is another setting)
    r, calls = run("--stage", "8", "--nfe", "8", "--synth-nj", "2", "--ngpu", "1", "--num-nodes", "2")
    assert r.returncode == 0 and r.stdout.count("done already") == 3 and calls == ""
    r, calls = run("--stage", "7", "--nfe", "8")
    assert r.returncode == 1 and "stage 7 (decoder.flow_reflow)" in r.stderr and "nfe: '4' then, now '8'" in r.stderr


def test_a_stage_redone_leaves_the_stages_after_it_to_be_redone(tmp_path):
    """`--stage 3 --overwrite true` retrains the codec: stages 4-10 stayed marked done on the old one."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    assert run("--stage", "3", "--stop-stage", "3", "--overwrite", "true")[0].returncode == 0
    r, calls = run("--stage", "4")
    assert r.returncode == 1 and calls == "" and "stage 4 (encode.vae) was done with other settings" in r.stderr
    assert "stage3.stage1_train.vae: a stage this one consumes, redone since" in r.stderr
    r, calls = run("--stage", "7")  # the reflow training reads the codec's latents and the codec itself
    assert r.returncode == 1 and "stage 7 (reflow.flow_reflow)" in r.stderr and calls == ""
    r, calls = run("--stage", "4", "--overwrite", "true")
    assert r.returncode == 0 and _calls(calls, "shared.pack")
    assert run()[0].stdout.count("done already") == 12


def test_a_stage_reading_outputs_made_before_an_earlier_stage_was_redone_is_refused(tmp_path):
    """A stage was compared only with the stages it reads itself: after `--stage 2 --stop-stage 2 --overwrite true`
    (new tokens), a stage 7 without a marker trained on the stage-6 model of the old tokens, and 7-10 were marked
    done."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    assert run("--stage", "2", "--stop-stage", "2", "--overwrite", "true")[0].returncode == 0
    done = recipe / "exp" / ".done"
    for marker in [*done.glob("stage[789].*"), *done.glob("stage10.*")]:
        marker.unlink()
    for args in (("--stage", "7"), ("--stage", "9", "--overwrite", "true")):
        r, calls = run(*args)
        assert r.returncode == 1 and calls == "", r.stdout + r.stderr
        assert ("would read the outputs of stage6.stage2_train.flow, which were made from those of stage2.tokens, since "
                "redone") in r.stderr and "Redo the stages from 6 on: --stage 6 --overwrite true" in r.stderr, r.stderr
    r, calls = run("--stage", "6", "--overwrite", "true")
    assert r.returncode == 0 and _calls(calls, "stage2_flow.train") and _calls(calls, "shared.pack"), r.stderr
    assert run()[0].stdout.count("done already") == 12


def test_a_run_adding_a_test_set_keeps_the_stage_times_of_the_first(tmp_path):
    """RESULTS.md reports each stage's latest time: a run that only added a set wrote its (shorter) time over it."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    before = (recipe / "exp" / "stage_times.tsv").read_text()
    assert run("--test-sets", "test screen")[0].returncode == 0
    assert (recipe / "exp" / "stage_times.tsv").read_text() == before


def test_an_overwrite_run_forgets_only_the_other_kinds_markers_it_replaced(tmp_path):
    """It removed the other kind of run's markers by stage number, those of other tags too, whose outputs stay: the
    next run of that tag trained again over a finished codec of the other kind (stage one called it finished)."""
    recipe, run = _stubbed(tmp_path)
    assert run("--smoke", "true", "--stop-stage", "3")[0].returncode == 0
    assert run("--smoke", "true", "--stage", "3", "--stop-stage", "3", "--stage1-tag", "tiny")[0].returncode == 0
    assert run("--overwrite", "true", "--stop-stage", "3")[0].returncode == 0
    smoke = sorted(m.name for m in (recipe / "exp" / ".done" / "smoke").glob("stage*"))
    assert smoke == ["stage3.stage1_train.tiny"]  # the vae codec's and the data stages' went: this run replaced them


def test_the_other_systems_outputs_go_with_its_markers(tmp_path):
    """A reflow model retrained by the system decoded by stage one's decoder left the other system's GTA latents and
    fine-tuned decoder (its marker gone): its stage 7 then stopped at the GTA latents' other settings. Stage 8 of one
    system removed the other's synthesis of this run's test sets only, and forgot the markers of all of them."""
    recipe, run = _stubbed(tmp_path)
    assert run("--test-sets", "test screen")[0].returncode == 0
    gta, decoder = recipe / "dump/vae/train_gta_flow_reflow", recipe / "exp/stage2/flow_reflow/decoder"
    screen = recipe / "exp/stage2/flow_reflow/synth/screen"
    for d in (gta, screen):
        d.mkdir(parents=True, exist_ok=True)
    assert decoder.is_dir()  # the stub's model.pt
    r, _ = run("--decoder-finetune", "false", "--test-sets", "test", "--stage", "8", "--stop-stage", "8")
    assert r.returncode == 0 and not screen.exists(), r.stdout + r.stderr
    r, _ = run("--decoder-finetune", "false", "--stage", "7", "--stop-stage", "7", "--overwrite", "true")
    assert r.returncode == 0 and not gta.exists() and not decoder.exists(), r.stdout + r.stderr
    r, calls = run("--stage", "7", "--stop-stage", "7")
    assert r.returncode == 0 and _calls(calls, "stage2_flow.gta") and "reflow.flow_reflow): done already" in r.stdout


def test_option_values_bash_reads_otherwise(tmp_path):
    """`--stage 08` passed the integer check and then failed bash's arithmetic (octal), skipping the cleanup;
    `--num-nodes 2` without --ngpu was dropped: the trainings ran on one CPU node."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    r, calls = run("--stage", "08", "--stop-stage", "09", "--overwrite", "true")
    assert r.returncode == 0 and "value too great" not in r.stderr, r.stderr
    assert _calls(calls, "stage2_flow.synthesize") and _calls(calls, "shared.evaluate") and not _calls(calls, "shared.pack")
    r, calls = run("--stage", "3", "--num-nodes", "2")
    assert r.returncode == 1 and "--num-nodes 2 trains on the GPUs of every node: give --ngpu too" in r.stderr and not calls
    for stages in (("--stage", "3", "--stop-stage", "1"), ("--stage", "12")):  # ran nothing and said "done. wavs: ..."
        r, calls = run(*stages)
        assert r.returncode == 1 and "selects no stage (they are 0 to 10)" in r.stderr and not calls, r.stdout


def test_a_new_test_set_is_done_not_refused(tmp_path):
    """`--test-sets "test screen"` after a run found every stage done and never encoded or synthesised screen."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    # but not by a stage whose earlier stage has not done it: stage 2 alone tokenised a set stage 1 never validated
    r, calls = run("--stage", "2", "--stop-stage", "2", "--test-sets", "test screen")
    assert r.returncode == 1 and calls == "", r.stdout + r.stderr
    assert ("stage 2 (tokens) would do screen, which stage 1 (datadirs) has not done (it did train dev test).\n"
            "Nothing was changed. Do it for them first: --stage 1") in r.stderr
    r, calls = run("--test-sets", "test screen")
    assert r.returncode == 0, r.stdout + r.stderr
    # the data stages work on the new set alone; the trainings stay done
    assert {c.split()[-1] for c in _calls(calls, "shared.datadir")} == {"data/screen", "--check-audio"}
    tokens = _calls(calls, "shared.text.tokenize")
    assert len(tokens) == 1 and "--data-dir data/screen " in tokens[0] and "--vocab exp/tokens.txt" in tokens[0]
    assert not _calls(calls, "stage1_vae.train") and not _calls(calls, "stage2_flow.train")
    for verb in ("stage1_vae.encode", "stage1_vae.decode", "stage2_flow.synthesize"):
        assert any("--data-dir data/screen " in c for c in _calls(calls, verb)), verb
    assert "--gen-dir exp/stage2/flow_reflow/synth/screen " in calls
    assert "stage 10 (pack.flow_reflow): done already" in r.stdout  # its results are the first test set's
    r, calls = run("--test-sets", "test screen")
    assert r.returncode == 0 and r.stdout.count("done already") == 12 and calls == ""
    r, calls = run("--test-sets", "test")
    assert r.returncode == 0 and r.stdout.count("done already") == 12 and calls == ""
    # the RESULTS' test set is a setting: another first test set is refused
    r, calls = run("--stage", "9", "--test-sets", "screen test")
    assert r.returncode == 1 and "results_set: 'test' then, now 'screen'" in r.stderr and calls == "", r.stderr


def test_each_codec_config_is_a_codec_of_its_own(tmp_path):
    """`--stage1-conf conf/stage1_rvq.yaml` after a default run found stages 3-10 done: the codec's tag was vae
    whatever the config (the stage-two tag named its config)."""
    recipe, run = _stubbed(tmp_path)
    assert run()[0].returncode == 0
    r, calls = run("--stage", "3", "--stage1-conf", "conf/stage1_rvq.yaml")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "--config conf/stage1_rvq.yaml " in calls and "--exp-dir exp/stage1/rvq " in calls
    assert "--exp-dir exp/stage2/flow_rvq " in calls and "--out exp/RESULTS_flow_rvq_reflow.md" in calls
    # another config under the same tag is refused
    r, calls = run("--stage", "3", "--stage1-conf", "conf/stage1_fsq.yaml", "--stage1-tag", "vae")
    assert r.returncode == 1 and "stage1_conf: 'conf/stage1.yaml " in r.stderr and calls == "", r.stderr


def test_words_left_after_the_options_and_relative_corpus_dirs(tmp_path):
    """A value with spaces passed unquoted stopped the option parsing there, and the rest was dropped unread (exit 0);
    a relative --corpus-dir was taken relative to the recipe dir run.sh changes into, not to where the user was."""
    recipe_dir, run = _stubbed(tmp_path, "ljspeech")
    r, calls = run("--stage", "3", "--stop-stage", "3", "--stage1-args", "train.lr=1e-4", "trainer.max_steps=5")
    assert r.returncode == 1 and "unexpected argument 'trainer.max_steps=5'" in r.stderr and not calls
    (tmp_path / "corpora" / "LJ Speech").mkdir(parents=True)
    r = subprocess.run(["bash", str(recipe_dir / "run.sh"), "--corpus-dir", "corpora/LJ Speech", "--stop-stage", "0"],
                       cwd=tmp_path, env=stub_python_env(tmp_path), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert f"--corpus-dir {tmp_path / 'corpora' / 'LJ Speech'} --data-dir" in (tmp_path / "python.log").read_text()
    r, _ = _stubbed(tmp_path / "mini")[1]("--stop-stage", "0")  # no corpus dir: no realpath complaint
    assert r.returncode == 0 and "realpath" not in r.stderr
