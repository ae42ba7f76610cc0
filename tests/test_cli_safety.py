"""The command line and the Python interface under a demanding user (issue 15).

Each test drives the real CLI (``enhance_main``, or ``sslse-enhance`` in a subprocess) or
the real enhancer on real files; nothing is mocked. Full and read-only file systems are
real ones: small tmpfs mounts inside a user namespace (``unshare -Urm``).
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from speechbrain_sslse.audio import audio_info, read_audio, write_audio
from speechbrain_sslse.cli import enhance_main
from speechbrain_sslse.inference import default_model_dir

ROOT = Path(__file__).resolve().parents[1]


def speech(real_speech, index, samples, rate=16000):
    """``samples`` samples of a real utterance at ``rate``."""
    wav = read_audio(real_speech[index % len(real_speech)], sample_rate=rate)
    return wav[:samples]


def snapshot(folder):
    """{relative path: bytes} of every file under ``folder``."""
    folder = Path(folder)
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("error:")]


@pytest.fixture(scope="module")
def unshare():
    """Whether tmpfs mounts in a user namespace work here (``unshare -Urm``)."""
    tool = shutil.which("unshare")
    if tool is None or subprocess.run([tool, "-Urm", "true"], capture_output=True).returncode != 0:
        pytest.skip("user namespaces (unshare -Urm) are not available to mount a small file system")
    return tool


def run_cli_on_mount(unshare, mount, options, argv, timeout=600):
    """Runs ``sslse-enhance argv`` with a fresh tmpfs (mount ``options``) on ``mount``."""
    code = "import sys; from speechbrain_sslse.cli import enhance_main; sys.exit(enhance_main(sys.argv[1:]))"
    script = f'mount -t tmpfs -o {options} tmpfs "$1" && shift && exec "$@"'
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.run(
        [unshare, "-Urm", "sh", "-c", script, "sh", str(mount), sys.executable, "-c", code, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        cwd=ROOT,
    )


# --- 1. inputs are never overwritten ----------------------------------------------------------


@pytest.fixture
def tree(tmp_path, real_speech):
    """``parent/{a.wav, b.flac, sub/}``: two inputs in a folder, and a subfolder to run from."""
    parent = tmp_path / "parent"
    (parent / "sub").mkdir(parents=True)
    write_audio(parent / "a.wav", speech(real_speech, 0, 4000))
    write_audio(parent / "b.flac", speech(real_speech, 1, 5000))
    return parent


def test_parent_folder_input_from_a_subfolder_is_refused_before_the_model_loads(tree, monkeypatch, capsys):
    before = snapshot(tree)
    monkeypatch.chdir(tree / "sub")
    status = enhance_main(["..", "-o", "../enhanced", "--model", str(tree / "not_a_model")])
    err = capsys.readouterr().err
    assert status == 2
    assert error_lines(err) == [error_lines(err)[0]] and "inside the input folder" in err
    assert "cannot load the model" not in err  # refused before the model is looked at
    assert snapshot(tree) == before


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_an_output_that_is_an_input_is_refused(tree, overwrite, capsys):
    before = snapshot(tree)
    status = enhance_main([str(tree / "a.wav"), "-o", str(tree), "--model", str(tree / "nope"), *overwrite])
    err = capsys.readouterr().err
    assert status == 2 and "would overwrite the input" in err and "cannot load" not in err
    status = enhance_main([str(tree), "-o", str(tree.parent), "--model", str(tree / "nope"), *overwrite])
    err = capsys.readouterr().err
    assert status == 2 and len(error_lines(err)) == 1 and "would overwrite the input" in err
    assert snapshot(tree) == before


def test_an_output_folder_inside_an_input_folder_is_refused(tree, capsys):
    before = snapshot(tree)
    assert enhance_main([str(tree), "-o", str(tree / "enhanced"), "--model", str(tree / "nope")]) == 2
    assert "inside the input folder" in capsys.readouterr().err
    assert snapshot(tree) == before and not (tree / "enhanced").exists()


def test_outputs_beside_the_inputs_are_fine_when_they_are_not_inputs(tree, capsys):
    out = tree.parent / "enhanced"
    assert enhance_main(["--overwrite", str(tree / "b.flac"), "-o", str(tree)]) == 0
    assert audio_info(tree / "b.wav") == (16000, 5000, 1) and (tree / "b.flac").is_file()
    assert enhance_main([str(tree), "-o", str(out)]) == 0
    assert sorted(snapshot(out)) == ["parent/a.wav", "parent/b.flac.wav", "parent/b.wav"]


# --- 2. no two inputs share an output -----------------------------------------------------------


def test_inputs_with_the_same_output_name_all_keep_their_result(tmp_path, real_speech, capsys):
    src = tmp_path / "in"
    lengths = {}

    def put(rel, fmt=None, subtype=None):
        n = 2000 + 137 * len(lengths)  # a length of its own: tells which input an output came from
        path = src / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speech(real_speech, len(lengths), n).numpy(), 16000, format=fmt, subtype=subtype)
        lengths[path] = n
        return path

    files = [put("x.flac"), put("x.ogg"), put("x.mp3", "MP3", "MPEG_LAYER_III")]
    files += [put("A/x.wav"), put("B/x.wav")]
    put("d1/data/y.wav"), put("d2/data/y.wav"), put("d2/data/z.wav")
    put("case/u.wav"), put("case/u.WAV")
    out = tmp_path / "out"
    argv = [
        *map(str, files),
        str(src / "d1" / "data"),
        str(src / "d2" / "data"),
        str(src / "case"),
        "-o",
        str(out),
    ]
    assert enhance_main([*argv, "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    outputs = sorted(p for p in out.rglob("*") if p.is_file())
    assert len(outputs) == len(lengths) == 10
    assert f"{len(lengths)} enhanced, 0 skipped" in captured.out
    # MP3 adds encoder padding: its decoded length is what its output must have
    expected = sorted(sf.info(p).frames if p.suffix == ".mp3" else n for p, n in lengths.items())
    assert sorted(audio_info(p)[1] for p in outputs) == expected
    assert len({str(p).casefold() for p in outputs}) == len(outputs)
    assert "x.flac.wav" in captured.err and "another input would have the same output name" in captured.err
    assert enhance_main([*argv, "--device", "cpu"]) == 0  # a rerun finds every output: nothing redone
    assert f"0 enhanced, {len(lengths)} skipped" in capsys.readouterr().out


def test_a_file_given_twice_is_enhanced_once(tree, tmp_path, capsys):
    out = tmp_path / "out"
    assert (
        enhance_main(
            [str(tree / "a.wav"), str(tree / "a.wav"), str(tree / "sub" / ".." / "a.wav"), "-o", str(out)]
        )
        == 0
    )
    assert "1 enhanced, 0 skipped" in capsys.readouterr().out
    assert sorted(snapshot(out)) == ["a.wav"]


# --- 3. outputs that cannot be written ------------------------------------------------------------


def test_an_output_path_that_is_a_file_is_refused_before_the_model_loads(tree, tmp_path, capsys):
    (tmp_path / "taken").write_bytes(b"mine")
    for out in (tmp_path / "taken", tmp_path / "taken" / "deeper"):
        assert enhance_main([str(tree / "a.wav"), "-o", str(out), "--model", str(tmp_path / "nope")]) == 2
        err = capsys.readouterr().err
        assert len(error_lines(err)) == 1 and f"-o {out}" in err and "cannot load" not in err
    assert (tmp_path / "taken").read_bytes() == b"mine"


def test_a_file_that_cannot_be_written_is_one_line_and_the_batch_goes_on(tree, tmp_path, real_speech, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "parent").write_bytes(b"a file where the mirrored folder would go")
    write_audio(tmp_path / "c.wav", speech(real_speech, 2, 5000))
    status = enhance_main([str(tree), str(tmp_path / "c.wav"), "-o", str(out)])
    captured = capsys.readouterr()
    errors = error_lines(captured.err)
    assert status == 1 and len(errors) == 2, captured.err
    assert all("cannot write" in line and str(out / "parent") in line for line in errors)
    assert audio_info(out / "c.wav") == (16000, 5000, 1)
    assert "1 enhanced, 0 skipped" in captured.out and "2 failed" in captured.out
    assert (out / "parent").read_bytes() == b"a file where the mirrored folder would go"


def test_a_read_only_output_folder_is_refused_up_front(unshare, tree, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    result = run_cli_on_mount(unshare, mount, "ro,size=1m", [str(tree / "a.wav"), "-o", str(mount / "out")])
    assert result.returncode == 2, result.stderr
    assert error_lines(result.stderr) == [
        f"error: -o {mount / 'out'}: cannot write there: Read-only file system ({mount / 'out'}); "
        "choose a folder you can write to"
    ]
    assert "Traceback" not in result.stderr


def test_a_full_disk_names_the_file_and_the_reason_and_the_batch_goes_on(unshare, tmp_path, real_speech):
    src = tmp_path / "in"
    src.mkdir()
    write_audio(src / "a_short.wav", speech(real_speech, 0, 8000))  # 16 kB out
    write_audio(src / "b_long.wav", speech(real_speech, 1, 48000))  # 96 kB out: does not fit
    write_audio(src / "c_short.wav", speech(real_speech, 2, 8000))
    mount = tmp_path / "small"
    mount.mkdir()
    result = run_cli_on_mount(unshare, mount, "size=64k", [str(src), "-o", str(mount / "out")])
    assert result.returncode == 1, result.stderr
    errors = error_lines(result.stderr)
    assert len(errors) == 1 and "Traceback" not in result.stderr
    assert str(mount / "out" / "in" / "b_long.wav") in errors[0] and "no space left on device" in errors[0]
    assert "2 enhanced, 0 skipped (output exists; --overwrite to redo), 1 failed" in result.stdout


# --- 4. a model folder cannot run code nobody asked for ----------------------------------------------


@pytest.fixture(scope="module")
def shipped_copy(tmp_path_factory):
    """A copy of the shipped model folder, to alter."""
    return shutil.copytree(default_model_dir(), tmp_path_factory.mktemp("models") / "shipped")


def altered(base, tmp_path, extra_yaml="", name="m"):
    """A copy of ``base`` (hard links to its checkpoints) whose hyperparams.yaml ends with ``extra_yaml``.

    Hard links, not symbolic ones: the pretrainer refuses files that resolve outside the folder.
    """
    folder = tmp_path / name
    folder.mkdir()
    for item in base.iterdir():
        if item.name != "hyperparams.yaml":
            os.link(item, folder / item.name)
    (folder / "hyperparams.yaml").write_text((base / "hyperparams.yaml").read_text() + extra_yaml)
    return folder


PAYLOADS = {
    "!!python/object/apply": 'evil: !!python/object/apply:os.system ["touch {marker}"]\n',
    "!apply:os.system": 'evil: !apply:os.system ["touch {marker}"]\n',
    "!new:subprocess.Popen": 'evil: !new:subprocess.Popen [["touch", "{marker}"]]\n',
    "torch.os.system (through an allowed prefix)": 'evil: !apply:torch.os.system ["touch {marker}"]\n',
    "superpowers.run_shell": 'evil: !apply:speechbrain.utils.superpowers.run_shell ["touch {marker}"]\n',
    "a tuple holding a tag": 'evil: (1, !!python/object/apply:os.system ["touch {marker}"])\n',
    "!applyref": 'evil: !applyref:os.system ["touch {marker}"]\n',
    "!name: partial of os.system": "evil: !name:os.system\n",
}


@pytest.mark.parametrize("how", sorted(PAYLOADS))
def test_model_folder_code_is_refused_with_its_line(how, shipped_copy, tmp_path):
    from speechbrain_sslse.inference import SpectrumAwareEnhancer
    from speechbrain_sslse.trust import ModelCodeError

    marker = tmp_path / "ran"
    folder = altered(shipped_copy, tmp_path, PAYLOADS[how].format(marker=marker))
    line = len((folder / "hyperparams.yaml").read_text().splitlines())
    with pytest.raises(
        ModelCodeError, match=rf"hyperparams\.yaml, line {line}: .* is refused .*--trust-model-code"
    ):
        SpectrumAwareEnhancer.from_hparams(source=folder)
    assert not marker.exists()


def test_cli_refuses_model_code_in_one_line_and_trust_lets_it_run(shipped_copy, tree, tmp_path, capsys):
    marker = tmp_path / "ran"
    folder = altered(shipped_copy, tmp_path, f'evil: !apply:os.system ["touch {marker}"]\n')
    status = enhance_main([str(tree / "a.wav"), "-o", str(tmp_path / "out"), "--model", str(folder)])
    errors = error_lines(capsys.readouterr().err)
    line = len((folder / "hyperparams.yaml").read_text().splitlines())
    assert status == 2 and len(errors) == 1 and f"line {line}: !apply:os.system is refused" in errors[0]
    assert not marker.exists() and not (tmp_path / "out" / "a.wav").exists()
    argv = [str(tree / "a.wav"), "-o", str(tmp_path / "out"), "--model", str(folder), "--trust-model-code"]
    assert enhance_main(argv) == 0
    assert marker.exists() and (tmp_path / "out" / "a.wav").is_file()


def test_packaged_model_folders_pass_the_restricted_loader(shipped_copy, tiny_model_dir):
    from speechbrain_sslse.trust import check_hparams

    for folder in (shipped_copy, Path(tiny_model_dir)):  # a mask-head model and a HiFi-GAN one
        text = (folder / "hyperparams.yaml").read_text()
        check_hparams(text)
        assert "getattr" not in text  # the parts' sizes are written out


# --- 5. checkpoints are read weights-only -------------------------------------------------------------


class Payload:
    """Unpickling this runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.mark.parametrize("kind", ["torch.save", "raw pickle"])
def test_a_pickle_payload_in_ssl_ckpt_does_not_run(kind, shipped_copy, tmp_path):
    import pickle

    from speechbrain_sslse.inference import SpectrumAwareEnhancer
    from speechbrain_sslse.lobes.ssl_encoder import CheckpointError

    marker = tmp_path / "ran"
    folder = altered(shipped_copy, tmp_path)
    (folder / "ssl.ckpt").unlink()
    states = torch.load(shipped_copy / "ssl.ckpt", weights_only=True)
    if kind == "torch.save":
        torch.save({**states, "Payload": Payload(marker)}, folder / "ssl.ckpt")
    else:
        (folder / "ssl.ckpt").write_bytes(pickle.dumps(Payload(marker)))
    with pytest.raises(CheckpointError, match=r"ssl\.ckpt holds pickled Python objects .*--trust-model-code"):
        SpectrumAwareEnhancer.from_hparams(source=folder)
    assert not marker.exists()
    if kind == "torch.save":  # trusted: s3prl's own loader, and the payload runs
        SpectrumAwareEnhancer.from_hparams(source=folder, trust_model_code=True)
        assert marker.exists()


def test_vocoder_ckpt_is_read_weights_only_whatever_the_environment(shipped_copy, tmp_path, monkeypatch):
    from speechbrain_sslse.inference import SpectrumAwareEnhancer
    from speechbrain_sslse.trust import ModelCodeError

    marker = tmp_path / "ran"
    folder = altered(shipped_copy, tmp_path)
    (folder / "vocoder.ckpt").unlink()
    state = torch.load(shipped_copy / "vocoder.ckpt", weights_only=True)
    torch.save({**state, "payload": Payload(marker)}, folder / "vocoder.ckpt")
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # turns torch's default off
    with pytest.raises(ModelCodeError, match=r"vocoder\.ckpt holds pickled Python objects"):
        SpectrumAwareEnhancer.from_hparams(source=folder)
    assert not marker.exists()


# --- 6. short inputs: the same result on both paths ----------------------------------------------


@pytest.fixture(scope="module")
def shipped():
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    return SpectrumAwareEnhancer.from_hparams(source=default_model_dir(), precision="fp32")


SHORT_LENGTHS = sorted(
    set(range(1, 41)) | set(range(41, 2001, 23)) | {190, 200, 320, 480, 640, 800, 960, 2000}
)


def test_short_inputs_give_the_same_finite_result_on_both_paths(shipped):
    rng = torch.Generator().manual_seed(0)
    noisy = 0.1 * torch.randn(1, 2000, generator=rng)
    try:
        for n in SHORT_LENGTHS:
            x = noisy[:, :n]
            shipped.configure_inference(fast=True, precision="fp32")
            fast, again = shipped.enhance_batch(x), shipped.enhance_batch(x)
            shipped.configure_inference(fast=False)
            eager = shipped.enhance_batch(x)
            assert fast.shape == eager.shape == (1, n), n
            assert bool(torch.isfinite(fast).all()) and bool(torch.isfinite(eager).all()), n
            assert torch.equal(fast, again), n  # no uninitialised memory read
            assert float((fast - eager).abs().max()) < 1e-3, n
        # a short row in a longer batch (relative length 0.02 of 16000 samples: 320 samples)
        batch = 0.1 * torch.randn(2, 16000, generator=rng)
        lengths = torch.tensor([1.0, 0.02])
        outputs = {}
        for fast in (True, False):
            shipped.configure_inference(fast=fast, precision="fp32" if fast else "auto")
            outputs[fast] = shipped.enhance_batch(batch, lengths)
            assert bool(torch.isfinite(outputs[fast]).all()) and bool((outputs[fast][1, 320:] == 0).all())
            alone = shipped.enhance_batch(batch[1:, :320])
            assert float((outputs[fast][1, :320] - alone[0]).abs().max()) < 1e-5
        assert float((outputs[True] - outputs[False]).abs().max()) < 1e-3
    finally:
        shipped.configure_inference(fast=True, precision="fp32")


# --- 7. each option error names its option -------------------------------------------------------


def test_option_errors_name_the_option_not_a_damaged_folder():
    from speechbrain_sslse.fast import InferenceOptionError
    from speechbrain_sslse.inference import SpectrumAwareEnhancer

    cases = {
        "fp16 is for CUDA": {"precision": "fp16"},
        r"num_threads \(--threads\) must be >= 1": {"num_threads": 0},
        "needs the fast path": {"precision": "bf16", "fast": False},
        "not a torch device": {"run_opts": {"device": "bogus"}},
    }
    if not torch.cuda.is_available():
        cases["CUDA is not available here"] = {"run_opts": {"device": "cuda"}}
    for pattern, kwargs in cases.items():
        with pytest.raises(InferenceOptionError, match=pattern) as info:
            SpectrumAwareEnhancer.from_hparams(source=default_model_dir(), **kwargs)
        assert "damaged" not in str(info.value) and "copy the model folder" not in str(info.value).lower()


@pytest.mark.parametrize("device", ["bogus", "cuda:7"])
def test_a_bad_device_ends_the_cli_in_one_line(device, tree, tmp_path, capsys):
    if device == "cuda:7" and torch.cuda.device_count() > 7:
        pytest.skip("this machine has 8 CUDA devices")
    with pytest.raises(SystemExit) as info:
        enhance_main([str(tree / "a.wav"), "-o", str(tmp_path / "out"), "--device", device])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if "error:" in line] == [
        line for line in err.splitlines() if f"device '{device}'" in line
    ]


def test_ctrl_c_ends_with_the_summary_so_far(tmp_path, real_speech):
    import signal
    import time

    src = tmp_path / "in"
    src.mkdir()
    clip = speech(real_speech, 0, 160000)
    for i in range(40):
        write_audio(src / f"f{i:02d}.wav", clip)
    out = tmp_path / "out"
    # Ctrl-C as in a terminal: a child of a background job of a non-interactive shell inherits
    # SIGINT ignored (POSIX), and Python then installs no KeyboardInterrupt handler.
    code = (
        "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "from speechbrain_sslse.cli import enhance_main; sys.exit(enhance_main(sys.argv[1:]))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(src), "-o", str(out), "--device", "cpu"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, OMP_NUM_THREADS="1"),
    )
    deadline = time.time() + 900
    while not (out / "in" / "f00.wav").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=900)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted:" in stderr
    done = len(list((out / "in").glob("*.wav")))
    assert 1 <= done < 40 and f"{done} enhanced, 0 skipped" in stdout
    assert not list((out / "in").glob(".*.part"))


# --- 8. tensors are checked like files --------------------------------------------------------------


def test_tensor_inputs_are_checked_and_converted(shipped):
    rng = torch.Generator().manual_seed(1)
    wav = (0.2 * torch.randn(2, 8000, generator=rng)).clamp(-1, 1)
    reference = shipped.enhance_batch(wav)
    for bad in ("nan", "inf"):
        x = wav.clone()
        x[1, 100] = float(bad)
        with pytest.raises(ValueError, match="NaN or Inf"):
            shipped.enhance_batch(x)
        with pytest.raises(ValueError, match="NaN or Inf"):
            shipped.enhance_waveform(x[1])
    pcm = (wav * 32768).round().clamp(-32768, 32767).to(torch.int16)
    assert float((shipped.enhance_batch(pcm) - shipped.enhance_batch(pcm.float() / 32768)).abs().max()) == 0
    assert float((shipped.enhance_batch(pcm) - reference).abs().max()) < 1e-2  # 16-bit rounding only
    with pytest.raises(TypeError, match="bool"):
        shipped.enhance_batch(wav > 0)
    with pytest.raises(TypeError, match="uint8"):
        shipped.enhance_batch(torch.zeros(1, 8000, dtype=torch.uint8))
    assert torch.equal(shipped.enhance_batch(wav.numpy()), reference)
    half = shipped.enhance_batch(wav, torch.tensor([1.0, 0.5]))
    assert torch.equal(shipped.enhance_batch(wav, [1.0, 0.5]), half)
    assert torch.equal(shipped.enhance_batch(wav, np.array([1.0, 0.5])), half)
    with pytest.raises(ValueError, match=r"lengths must have shape \[2\]"):
        shipped.enhance_batch(wav, [1.0])
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
        shipped.enhance_batch(wav, [1.0, float("nan")])
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        shipped.enhance_batch(wav[0])


# --- 9. nothing is skipped silently -----------------------------------------------------------------


def test_folders_follow_links_and_report_what_they_leave_out(tmp_path, real_speech, capsys):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write_audio(src / "sub" / "a.wav", speech(real_speech, 0, 4000))
    write_audio(elsewhere / "linked.flac", speech(real_speech, 1, 4400))
    (src / "link").symlink_to(elsewhere, target_is_directory=True)
    (src / "sub" / "loop").symlink_to(src, target_is_directory=True)
    (src / "broken.wav").symlink_to(tmp_path / "gone.wav")
    sf.write(src / "voice.opus", speech(real_speech, 2, 4800).numpy(), 16000, format="OGG", subtype="OPUS")
    sf.write(tmp_path / "full.wav", speech(real_speech, 3, 16000).numpy(), 16000, subtype="PCM_16")
    (src / "truncated.wav").write_bytes((tmp_path / "full.wav").read_bytes()[: 44 + 2 * 8000])
    (src / "notes.txt").write_text("not audio")
    (src / "music.m4a").write_bytes(b"\0" * 64)
    (tmp_path / "empty_folder").mkdir()
    out = tmp_path / "out"
    (out / "in" / "sub").mkdir(parents=True)
    stale = out / "in" / "sub" / ".a.wav.k2j3h4g5.part"
    stale.write_bytes(b"half a file")
    status = enhance_main([str(src), str(tmp_path / "empty_folder"), "-o", str(out)])
    captured = capsys.readouterr()
    errors = error_lines(captured.err)
    assert status == 1
    assert audio_info(out / "in" / "sub" / "a.wav")[1] == 4000
    assert audio_info(out / "in" / "link" / "linked.wav")[1] == 4400
    assert audio_info(out / "in" / "voice.wav")[1] == sf.info(src / "voice.opus").frames
    assert audio_info(out / "in" / "truncated.wav")[1] == 8000
    assert any("broken.wav" in e and "broken symbolic link" in e for e in errors)
    assert any("music.m4a" in e and "ffmpeg" in e for e in errors)
    assert any("empty_folder" in e and "no audio files" in e for e in errors)
    assert len(errors) == 3, errors
    assert (
        "warning:" in captured.err
        and "truncated: its header promises 1.00 s, the file holds 0.50 s" in captured.err
    )
    assert "folder already read" in captured.err and "1 .txt" in captured.err
    assert "removed 1 partial file(s)" in captured.err and not stale.exists()
    assert "4 enhanced, 0 skipped" in captured.out and "3 failed, 1 warning(s)" in captured.out


# --- 10. long files are read in blocks ------------------------------------------------------------


@pytest.mark.parametrize("rate,channels", [(48000, 2), (44100, 1), (8000, 1), (16000, 2)])
def test_block_reading_equals_reading_the_whole_file(rate, channels, tmp_path, monkeypatch):
    import speechbrain_sslse.audio as audio
    import speechbrain_sslse.audio.reading as reading

    monkeypatch.setattr(reading, "READ_BLOCK_SECONDS", 0.31)  # many blocks on a short file
    x = 0.1 * np.random.default_rng(rate).standard_normal((int(2.7 * rate) + 13, channels)).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, rate, subtype="FLOAT")
    whole = audio.resample(torch.from_numpy(x.T.copy()), rate, 16000)
    assert float((audio.read_audio(tmp_path / "x.wav", mono=False) - whole).abs().max()) < 1e-6
    assert float((audio.read_audio(tmp_path / "x.wav") - whole.mean(0)).abs().max()) < 1e-6


# --- 11. the corpus generator keeps what it did not write ----------------------------------------


SMALL_CORPUS = dict(
    num_speakers=2,
    sentences_per_speaker=1,
    noise_seconds=0.5,
    noisex_seconds=0.5,
    demand_seconds=0.5,
    demand_environments=1,
    dns_rirs=0,
    mit_rirs=0,
)


def test_regenerating_the_corpus_keeps_user_files(tmp_path):
    from speechbrain_sslse.corpus.generate import CorpusError, generate_corpus

    out = generate_corpus(tmp_path / "corpus", size="tiny", seed=0, progress=False, **SMALL_CORPUS)
    mine = out / "DNS" / "clean" / "my_recording.wav"
    mine.write_bytes(b"precious")
    before = snapshot(out)
    with pytest.raises(CorpusError, match=r"DNS/clean/my_recording\.wav was not written by sslse-corpus"):
        generate_corpus(out, size="tiny", seed=1, progress=False, **SMALL_CORPUS)
    assert snapshot(out) == before
    mine.unlink()
    generate_corpus(out, size="tiny", seed=1, progress=False, **SMALL_CORPUS)  # nothing of the user's: fine
    assert not mine.exists()


def test_corpus_cli_refuses_bad_seeds_and_unwritable_outputs(tmp_path, capsys):
    from speechbrain_sslse.corpus.cli import main

    for seed in ("-1", str(2**32)):
        with pytest.raises(SystemExit) as info:
            main(["--out", str(tmp_path / "c"), "--seed", seed, "--size", "tiny"])
        assert (
            info.value.code == 2 and "--seed must be an integer in [0, 4294967295]" in capsys.readouterr().err
        )
    (tmp_path / "a_file").write_text("x")
    for out in (tmp_path / "a_file", tmp_path / "a_file" / "below"):
        assert main(["--out", str(out), "--size", "tiny", "--quiet"]) == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and f"--out {out}" in err
    assert not (tmp_path / "c").exists()


def test_corpus_cli_on_a_read_only_folder_is_one_line(unshare, tmp_path):
    mount = tmp_path / "ro"
    mount.mkdir()
    code = "import sys; from speechbrain_sslse.corpus.cli import main; sys.exit(main(sys.argv[1:]))"
    script = 'mount -t tmpfs -o ro,size=1m tmpfs "$1" && shift && exec "$@"'
    result = subprocess.run(
        [unshare, "-Urm", "sh", "-c", script, "sh", str(mount), sys.executable, "-c", code]
        + ["--out", str(mount / "corpus"), "--size", "tiny", "--quiet"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"sslse-corpus: error: --out {mount / 'corpus'}: cannot write there: Read-only file system "
        f"({mount / 'corpus'}); choose a folder you can write to"
    ]


def test_readme_says_what_a_model_folder_and_an_ssl_checkpoint_can_execute():
    text = " ".join((ROOT / "README.md").read_text().split())
    section = text[text.index("## Checkpoints and trust") : text.index("## Results")]
    for phrase in (
        "restricted loader",
        "--trust-model-code",
        "trust_model_code=True",
        "ssl.ckpt",
        "vocoder.ckpt",
    ):
        assert phrase in section, phrase
    for phrase in ("`speechbrain.`", "`speechbrain_sslse.`", "`torch.`", "deny-list", "foreign_class"):
        assert phrase in section, phrase


# --- issue 16, point 4: sslse-enhance --peer ------------------------------------------------------


def test_peer_option_enhances_with_each_peer_with_the_same_io(tree, tmp_path, capsys):
    from speechbrain_sslse.peers import PEERS

    assert set(PEERS) >= {"rnnoise", "spectral_gating", "nsnet2", "gtcrn", "deepfilternet3"}
    wav = read_audio(tree / "b.flac")
    for name in sorted(PEERS):
        out = tmp_path / name
        assert enhance_main([str(tree / "b.flac"), "-o", str(out), "--peer", name]) == 0, name
        assert "1 enhanced" in capsys.readouterr().out
        assert audio_info(out / "b.wav") == (16000, wav.shape[0], 1)
        expected = PEERS[name](wav, num_threads=1).clamp(-1, 1)
        assert float((read_audio(out / "b.wav") - expected).abs().max()) < 1e-3, name  # 16-bit file
    for bad in (["--model", str(default_model_dir())], ["--eager"], ["--peer", "wiener"]):
        with pytest.raises(SystemExit) as info:
            enhance_main([str(tree / "b.flac"), "-o", str(tmp_path / "x"), "--peer", "rnnoise", *bad])
        assert info.value.code == 2
    err = capsys.readouterr().err
    assert "not allowed with argument" in err and "invalid choice: 'wiener'" in err
