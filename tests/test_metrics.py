"""Sanity of every metric: identical signals give zero distortion / the best score, a known degradation
gives worse numbers, and DTW copes with time stretching."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from shared.metrics.dtw import dtw, dtw_backtrack, dtw_cost_matrix, pairwise_euclidean
from shared.metrics.signal import PESQ_WB_MAX, PESQ_WB_MIN, MultiResolutionMelDistance, RTFMeter, pesq_wb, real_time_factor, si_sdr, stoi
from shared.metrics.spectral import alpha_for_rate, mcd_dtw, mel_cepstrum, tts_metrics, warp_frequency
from shared.metrics.text import EditCounts, edit_distance, error_rate
from shared.phone_recognizer.toy import toy_utterance

PHONES = ["a", "s", "i", "m", "o", "f", "u", "e"]
OTHER = ["i", "f", "a", "o", "s", "e", "m", "u"]


@pytest.fixture(scope="module")
def speech():
    ref = toy_utterance(PHONES, [0.1] * 8, f0=120.0)
    return {
        "ref": ref,
        "stretched": toy_utterance(PHONES, [0.13] * 8, f0=120.0),
        "other": toy_utterance(OTHER, [0.1] * 8, f0=120.0),
        "pitch_up": toy_utterance(PHONES, [0.1] * 8, f0=120.0 * 2 ** (100 / 1200)),  # +100 cents
        "noisy": ref + 0.03 * np.random.default_rng(0).standard_normal(ref.size).astype(np.float32),
    }


# ---- DTW -------------------------------------------------------------------------------------------
def _brute_force_dtw(cost: np.ndarray) -> float:
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    for i, j in itertools.product(range(1, n + 1), range(1, m + 1)):
        acc[i, j] = cost[i - 1, j - 1] + min(acc[i - 1, j - 1], acc[i - 1, j], acc[i, j - 1])
    return acc[n, m]


@pytest.mark.parametrize("n,m", [(1, 1), (1, 5), (6, 1), (7, 9), (12, 5)])
def test_dtw_matches_brute_force(n, m):
    rng = np.random.default_rng(n * 10 + m)
    x, y = rng.standard_normal((n, 3)), rng.standard_normal((m, 3))
    cost = pairwise_euclidean(x, y)
    acc = dtw_cost_matrix(cost)
    assert acc[-1, -1] == pytest.approx(_brute_force_dtw(cost))
    path = dtw_backtrack(acc)
    assert tuple(path[0]) == (0, 0) and tuple(path[-1]) == (n - 1, m - 1)
    steps = np.diff(path, axis=0)
    assert ((steps >= 0) & (steps <= 1)).all() and (steps.sum(1) >= 1).all()
    assert cost[path[:, 0], path[:, 1]].sum() == pytest.approx(acc[-1, -1])


def test_dtw_of_repeated_frames_is_free():
    x = np.arange(5.0)[:, None]
    path, total = dtw(x, np.repeat(x, 3, axis=0))
    assert total == 0.0 and len(path) == 15


# ---- mel-cepstrum / MCD --------------------------------------------------------------------------------
def test_warp_and_alpha():
    w = np.linspace(0, np.pi, 9)
    assert np.allclose(warp_frequency(warp_frequency(w, 0.42), -0.42), w)
    assert warp_frequency(np.array([np.pi / 8]), 0.42)[0] > np.pi / 8  # low frequencies are expanded
    assert alpha_for_rate(16000) == 0.42 and 0.42 < alpha_for_rate(20000) < 0.455


def test_mel_cepstrum_shape_and_gain(speech):
    c = mel_cepstrum(speech["ref"])
    assert c.shape == (speech["ref"].size // 160 + 1, 25)
    noise = 0.1 * np.random.default_rng(1).standard_normal(8000).astype(np.float32)
    diff = mel_cepstrum(2.0 * noise) - mel_cepstrum(noise)  # a gain only moves c0, by ln 2
    assert np.allclose(diff[:, 0], np.log(2.0), atol=1e-4) and np.abs(diff[:, 1:]).max() < 1e-4


@pytest.mark.parametrize("alpha", [0.0, 0.42])
def test_mel_cepstrum_of_a_known_filter_is_sptk_scaled(alpha):
    """``H(z~) = 1 - b z~^-1`` on the warped axis has ``ln H = -sum_m b^m / m z~^-m``: SPTK's mel-cepstrum ``c_m =
    -b^m / m`` (m >= 1), on the scale MCD's ``10 / ln 10 * sqrt(2 ...)`` assumes (the symmetric cepstrum is half);
    and the MCD between two such filters is the RMS of their log-spectral difference in dB (c_0 apart)."""
    from shared.metrics.spectral import MCD_CONST, _mcep_matrix

    n_fft, order = 4096, 24
    w = np.linspace(0.0, np.pi, n_fft // 2 + 1)
    w_tilde = warp_frequency(w, alpha)

    def log_amp(b: float) -> np.ndarray:  # ln|H| at each FFT bin's unwarped frequency
        return np.log(np.abs(1.0 - b * np.exp(-1j * w_tilde)))

    c = _mcep_matrix(n_fft, order, alpha) @ log_amp(0.6)
    m = np.arange(1, order + 1)
    assert abs(c[0]) < 1e-4 and np.allclose(c[1:], -(0.6**m) / m, atol=1e-4)
    # MCD against the log spectra's own RMS difference (over the warped axis, where c is orthogonal)
    d = _mcep_matrix(n_fft, order, alpha) @ (log_amp(0.6) - log_amp(0.3))
    grid = np.linspace(0.0, np.pi, 20001)
    diff = np.interp(grid, w_tilde, log_amp(0.6) - log_amp(0.3))
    rms_db = 20 / np.log(10) * np.sqrt(np.mean((diff - diff.mean()) ** 2))
    assert MCD_CONST * np.sqrt((d[1:] ** 2).sum()) == pytest.approx(rms_db, rel=1e-3)


def test_mcd_identical_is_zero_and_degradations_are_worse(speech):
    ref = mel_cepstrum(speech["ref"])
    assert mcd_dtw(ref, ref)[0] == 0.0
    stretched = mcd_dtw(ref, mel_cepstrum(speech["stretched"]))[0]
    noisy = mcd_dtw(ref, mel_cepstrum(speech["noisy"]))[0]
    other = mcd_dtw(ref, mel_cepstrum(speech["other"]))[0]
    assert 0.0 < stretched < 0.4 * other, (stretched, other)
    assert noisy > 1.0


def test_tts_metrics_f0_and_duration(speech):
    same = tts_metrics(speech["ref"], speech["ref"])
    assert same["mcd_dtw"] == 0.0 and same["f0_rmse_cents"] == 0.0 and same["vuv_error"] == 0.0
    assert same["duration_ratio"] == 1.0 and same["f0_corr"] == pytest.approx(1.0)
    up = tts_metrics(speech["ref"], speech["pitch_up"])
    assert 70.0 < up["f0_rmse_cents"] < 130.0, up
    st = tts_metrics(speech["ref"], speech["stretched"], with_f0=False)
    assert st["duration_ratio"] == pytest.approx(speech["stretched"].size / speech["ref"].size)
    assert "f0_rmse_cents" not in st


def test_pyins_viterbi_by_its_nonzero_transitions_is_librosas_path(speech):
    """shared.metrics.viterbi decodes pYIN's HMM over each state's nonzero transitions (librosa's is dense, most of
    pYIN's time at 0.1-semitone bins): the same F0 and voicing, on voiced, noisy, pitch-shifted and silent audio."""
    import librosa

    from shared.metrics import viterbi
    from shared.metrics.spectral import DEFAULT_ANALYSIS, pyin_kwargs

    calls = []
    real = viterbi.sparse_viterbi
    kw = pyin_kwargs(DEFAULT_ANALYSIS)  # the evaluation's settings: 0.1-semitone bins
    assert kw["resolution"] == 0.1
    silence_then_voice = np.concatenate([np.zeros(4000, np.float32), speech["pitch_up"]])
    for wav in (speech["ref"], speech["noisy"], speech["other"], silence_then_voice):
        dense = librosa.pyin(wav, **kw)
        with pytest.MonkeyPatch.context() as m:
            m.setattr(viterbi, "sparse_viterbi", lambda *a, **k: calls.append(1) or real(*a, **k))
            with viterbi.faster_pyin_viterbi():
                fast = librosa.pyin(wav, **kw)
        assert np.array_equal(dense[1], fast[1]) and np.array_equal(dense[0], fast[0], equal_nan=True)
        assert dense[1].any() and not dense[1].all()
    assert len(calls) == 4  # it decoded, not librosa's
    assert librosa.sequence.viterbi is not None and librosa.sequence.viterbi.__module__.startswith("librosa")


def test_sparse_viterbi_takes_a_zero_transition_where_librosa_would():
    """librosa's log transition of 0 is log(tiny), not -inf: where every nonzero path is far less likely, a zero
    transition wins, and the sparse decoding must find it as librosa does (its fallback to every predecessor)."""
    import librosa

    from shared.metrics.viterbi import sparse_viterbi

    stay = np.eye(2)  # no state can leave its own, yet the best paths do: through a zero transition
    for prob, path in ((np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, 1.0]]), [0, 1, 1, 1]),  # a tie, to the lower index
                       (np.array([[1.0, 1e-200, 0.0, 0.0], [0.0, 0.0, 1.0, 1.0]]), [0, 0, 1, 1])):
        assert librosa.sequence.viterbi(prob, stay).tolist() == path
        assert sparse_viterbi(prob, stay).tolist() == path
    rng = np.random.default_rng(0)
    band = librosa.sequence.transition_local(12, 3, window="triangle", wrap=False)
    hmm = np.kron(librosa.sequence.transition_loop(2, 0.99), band)
    for _ in range(5):
        p = rng.random((24, 40)) ** 8
        assert np.array_equal(sparse_viterbi(p, hmm), librosa.sequence.viterbi(p, hmm))


# ---- codec metrics ---------------------------------------------------------------------------------------
def test_si_sdr(speech):
    ref = speech["ref"]
    assert si_sdr(ref, ref) > 80.0
    assert si_sdr(ref, 0.3 * ref) > 80.0  # scale invariant
    assert si_sdr(ref, speech["noisy"]) < 30.0


def test_pesq_stoi_mel_distance(speech):
    ref, noisy = speech["ref"], speech["noisy"]
    assert pesq_wb(ref, ref, 16000) == pytest.approx(PESQ_WB_MAX, abs=0.01)
    assert pesq_wb(ref, noisy, 16000) < 3.5
    assert stoi(ref, ref, 16000) == pytest.approx(1.0, abs=1e-6)
    assert 0.9 < stoi(ref, noisy, 16000) < 0.99  # 0.966: noise at about 20 dB SNR costs a little intelligibility
    dist = MultiResolutionMelDistance(16000)
    assert dist(ref, ref) == 0.0 and dist(ref, noisy) > 0.1
    assert np.isnan(pesq_wb(np.zeros(16000), np.zeros(16000), 16000))  # no speech: NaN, not an exception
    # a silent output is the system's failure: the worst score, not NaN (left out of the mean) nor SI-SDR's 0 dB
    # (above any real output's) that eps alone decided; a silent reference leaves SI-SDR undefined, not -120 dB
    silence = np.zeros_like(ref)
    assert pesq_wb(ref, silence, 16000) == PESQ_WB_MIN < pesq_wb(ref, np.random.default_rng(0).normal(size=ref.shape), 16000)
    assert stoi(ref, silence, 16000) == 0.0
    assert np.isnan(si_sdr(ref, silence)) and np.isnan(si_sdr(silence, ref))
    # too short for either (0.2 s): NaN, not pesq's exception nor pystoi's 1e-5 as if it were unintelligible
    short = ref[: 16000 // 5]
    assert np.isnan(pesq_wb(short, short, 16000)) and np.isnan(stoi(short, short, 16000))


def test_rtf():
    assert real_time_factor(1.0, 4.0) == 0.25
    meter = RTFMeter()
    with meter.measure():
        sum(range(1000))
    meter.add_audio(2.0)
    assert meter.calls == 1 and 0 < meter.rtf < 1 and set(meter.as_dict()) >= {"rtf", "audio_seconds"}
    with pytest.raises(ValueError, match="audio duration must be positive"):
        real_time_factor(1.0, 0.0)


# ---- edit distance / PER ----------------------------------------------------------------------------------
@pytest.mark.parametrize("ref,hyp,counts", [
    ("abc", "abc", (0, 0, 0)),
    ("abc", "abd", (1, 0, 0)),
    ("abc", "ab", (0, 0, 1)),
    ("abc", "abxc", (0, 1, 0)),
    ("kitten", "sitting", (2, 1, 0)),
    ("", "", (0, 0, 0)),
    ("ab", "", (0, 0, 2)),
])
def test_edit_distance(ref, hyp, counts):
    c = edit_distance(list(ref), list(hyp))
    assert (c.sub, c.ins, c.dele) == counts and c.ref_len == len(ref)


def test_error_rate_is_corpus_level():
    refs = [["p", "a", "t"], ["s", "i"]]
    hyps = [["p", "a", "t"], ["s", "u", "i", "n"]]  # 0 errors; 1 sub? no: 2 insertions
    total = error_rate(refs, hyps)
    assert total.errors == 2 and total.ref_len == 5 and total.rate == pytest.approx(0.4)
    assert edit_distance([], ["x"]).rate == float("inf") and EditCounts().rate == 0.0
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        error_rate(refs, hyps[:1])
