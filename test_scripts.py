"""Smoke tests and unit checks for the GAN scripts: python -m pytest -q test_scripts.py

Training runs go through each script's main([...]) in-process, on synthetic images, with tiny
models and a one-batch limit. The real-MNIST test reads ../shared/data and is skipped without it.
"""
import csv
import math
import os
import signal
import subprocess
import sys
import time
import urllib.error

import pytest
import torch

import dcgan

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_ROOT = os.path.join(HERE, "..", "shared", "data")
TINY = ["--dataset", "fake", "--ngf", "8", "--ndf", "8", "--batch-size", "16"]
RUN_FILES = ["samples_epoch_001.png", "progress.gif", "losses.png", "log.csv", "checkpoint.pt"]


def read_log(folder):
    with open(os.path.join(folder, "log.csv")) as f:
        return list(csv.DictReader(f))


def exits_with_error(main, argv, capsys):
    """Run main(argv), expect exit status 2; return the error output."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "error:" in err and "Traceback" not in err
    return err


# ----------------------------------------------------------------------------- dcgan.py
def test_dcgan_one_batch_writes_every_output(tmp_path, capsys):
    out = str(tmp_path / "run")
    dcgan.main(TINY + ["--max-steps", "1", "--out", out])
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"Run folder: {out}"
    for name in RUN_FILES:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    rows = read_log(out)
    assert len(rows) == 1
    assert all(math.isfinite(float(rows[0][k])) for k in ("loss_D", "loss_G", "D_x", "D_G_z"))
    assert 0 <= float(rows[0]["D_x"]) <= 1 and 0 <= float(rows[0]["D_G_z"]) <= 1

    checkpoint = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert checkpoint["script"] == "dcgan" and checkpoint["nc"] == 3
    a = checkpoint["args"]
    G = dcgan.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"])
    G.load_state_dict(checkpoint["G"])
    images = G.eval()(torch.randn(5, a["nz"], 1, 1))
    assert images.shape == (5, 3, 32, 32)
    assert images.min() >= -1 and images.max() <= 1


@pytest.mark.parametrize("image_size", [32, 64])
@pytest.mark.parametrize("nc", [1, 3])
def test_dcgan_shapes(image_size, nc):
    G = dcgan.Generator(nz=20, ngf=8, nc=nc, image_size=image_size)
    D = dcgan.Discriminator(ndf=8, nc=nc, image_size=image_size)
    x = G(torch.randn(4, 20, 1, 1))
    assert x.shape == (4, nc, image_size, image_size)
    assert D(x).shape == (4,)


def test_dcgan_custom_init_statistics():
    torch.manual_seed(0)
    G, D = dcgan.Generator(ngf=64), dcgan.Discriminator(ndf=64)
    G.apply(dcgan.weights_init)
    D.apply(dcgan.weights_init)
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and m.weight.numel() > 10_000:
            assert abs(m.weight.mean()) < 2e-3 and abs(m.weight.std() - 0.02) < 2e-3
        if isinstance(m, torch.nn.BatchNorm2d):
            assert abs(m.weight.mean() - 1) < 0.01 and 0.01 < m.weight.std() < 0.03
            assert (m.bias == 0).all()
    # PyTorch's own initialisation is not this one (the --weight-init default experiment)
    first = dcgan.Generator(ngf=64).net[0].weight
    assert abs(first.std() - 0.02) > 5e-3


def test_dcgan_losses_match_hand_computed_values():
    logits = torch.tensor([0.0, 2.0, -1.0])
    D = [1 / (1 + math.exp(-l)) for l in logits.tolist()]  # D(G(z)) = sigmoid(logit)
    non_saturating = -sum(math.log(d) for d in D) / 3  # -E[log D(G(z))]
    saturating = sum(math.log(1 - d) for d in D) / 3  # E[log(1 - D(G(z)))]
    assert dcgan.generator_loss(logits, "non-saturating").item() == pytest.approx(non_saturating, rel=1e-6)
    assert dcgan.generator_loss(logits, "saturating").item() == pytest.approx(saturating, rel=1e-6)
    real = torch.tensor([3.0, -0.5])
    d_real = [1 / (1 + math.exp(-l)) for l in real.tolist()]
    loss_D = -sum(math.log(d) for d in d_real) / 2 - sum(math.log(1 - d) for d in D) / 3
    assert dcgan.discriminator_loss(real, logits).item() == pytest.approx(loss_D, rel=1e-6)
    # stable where sigmoid saturates in float32: D(G(z)) = sigmoid(-200) rounds to 0, log(0) = -inf
    assert dcgan.generator_loss(torch.tensor([-200.0]), "non-saturating").item() == pytest.approx(200.0)


def test_dcgan_d_steps_and_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    dcgan.main(TINY + ["--epochs", "1", "--d-steps", "2", "--out", out])  # 1024 / 16 / 2 = 32 G steps
    checkpoint = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert checkpoint["epoch"] == 1 and len(checkpoint["history"]) == 32
    d_updates = checkpoint["opt_D"]["state"][0]["step"].item()
    g_updates = checkpoint["opt_G"]["state"][0]["step"].item()
    assert (d_updates, g_updates) == (64, 32)

    dcgan.main(["--resume", os.path.join(out, "checkpoint.pt"), "--epochs", "2"])
    checkpoint = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert checkpoint["epoch"] == 2 and checkpoint["opt_G"]["state"][0]["step"].item() == 64
    assert [int(r["step"]) for r in read_log(out)] == list(range(1, 65))
    assert os.path.exists(os.path.join(out, "samples_epoch_002.png"))
    # the resumed run kept its settings; changing one is refused
    exits_with_error(dcgan.main, ["--resume", os.path.join(out, "checkpoint.pt"), "--epochs", "3", "--ngf", "16"], capsys)


@pytest.mark.parametrize("flags, message", [
    (["--lr-d", "0"], "--lr-d must be > 0"),
    (["--lr-g", "-0.001"], "--lr-g must be > 0"),
    (["--nz", "0"], "--nz must be >= 1"),
    (["--batch-size", "1"], "--batch-size must be >= 2"),
    (["--image-size", "48"], "invalid choice"),
    (["--dataset", "folder", "--data-root", "/no/such/folder"], "is not a folder"),
    (["--resume", "/no/such/checkpoint.pt"], "no such file"),
])
def test_dcgan_bad_input_exits_2(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    err = exits_with_error(dcgan.main, TINY + flags + ["--out", str(out)], capsys)
    assert message in err
    assert not out.exists()  # nothing was started


def test_dcgan_bad_checkpoints_and_existing_run(tmp_path, capsys):
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    assert "cannot be read as a checkpoint" in exits_with_error(dcgan.main, ["--resume", str(not_a_checkpoint)], capsys)
    other = tmp_path / "other.pt"
    torch.save({"script": "cgan", "args": {}}, other)
    assert "by cgan.py" in exits_with_error(dcgan.main, ["--resume", str(other)], capsys)
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("keep me")
    assert "not empty" in exits_with_error(dcgan.main, TINY + ["--out", str(run)], capsys)
    assert (run / "log.csv").read_text() == "keep me"


def test_dcgan_absent_dataset_offline(tmp_path, capsys, monkeypatch):
    def no_network(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")
    monkeypatch.setattr(dcgan.torchvision.datasets, "MNIST", no_network)
    err = exits_with_error(dcgan.main, ["--data-root", str(tmp_path), "--out", str(tmp_path / "run")], capsys)
    assert "could not be downloaded" in err and "--data-root" in err
    assert not (tmp_path / "run").exists()


def test_dcgan_nan_stops_the_run(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(dcgan, "load_data", lambda args, device: torch.full((64, 3, 32, 32), float("nan")))
    with pytest.raises(SystemExit) as e:
        dcgan.main(TINY + ["--out", str(tmp_path / "run")])
    assert "NaN" in str(e.value.code) and "no checkpoint had been written" in str(e.value.code)
    assert os.path.exists(tmp_path / "run" / "log.csv")
    assert not os.path.exists(tmp_path / "run" / "checkpoint.pt")


def test_dcgan_notebook_ignores_kernel_arguments(monkeypatch):
    monkeypatch.setattr(dcgan, "IN_NOTEBOOK", True)
    monkeypatch.setattr(sys, "argv", ["colab_kernel_launcher.py", "-f", "/root/kernel-1.json"])
    args, checkpoint = dcgan.parse_args()
    assert args.nz == 100 and args.dataset == "mnist" and checkpoint is None


def test_dcgan_command_line_error_and_ctrl_c(tmp_path):
    script = os.path.join(HERE, "dcgan.py")
    bad = subprocess.run([sys.executable, script, "--batch-size", "1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr

    out = tmp_path / "run"
    run = subprocess.Popen([sys.executable, script, *TINY, "--epochs", "1000", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert run.stdout.readline().startswith("dcgan:")  # training has begun
    time.sleep(2)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0 and "interrupted" in stdout and "Traceback" not in stderr
    for name in RUN_FILES:
        assert (out / name).exists(), name
    assert torch.load(out / "checkpoint.pt", weights_only=True)["epoch"] >= 0


@pytest.mark.skipif(not os.path.isdir(os.path.join(MNIST_ROOT, "MNIST")), reason="no MNIST in ../shared/data")
def test_dcgan_real_mnist(tmp_path):
    args, _ = dcgan.parse_args(["--data-root", MNIST_ROOT, "--out", str(tmp_path / "unused")])
    data = dcgan.load_data(args, torch.device("cpu"))
    assert data.shape == (60_000, 1, 32, 32) and data.dtype == torch.float32
    assert data.min() == -1 and data.max() == 1
    out = tmp_path / "run"
    dcgan.main(["--data-root", MNIST_ROOT, "--max-steps", "30", "--batch-size", "64", "--out", str(out)])
    rows = read_log(out)
    assert len(rows) == 30 and all(math.isfinite(float(r["loss_G"])) for r in rows)
