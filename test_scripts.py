"""Smoke tests and unit checks for the GAN scripts: python -m pytest -q test_scripts.py

Training runs go through each script's main([...]) in-process, on synthetic images, with tiny
models and a one-batch limit. The real-MNIST test reads ../shared/data and is skipped without it.
"""
import csv
import math
import os
import re
import signal
import subprocess
import sys
import time
import types
import urllib.error

import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

import cgan
import dcgan
import interpolate
import wgan_gp

HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_ROOT = os.path.join(HERE, "..", "shared", "data")
CPU = ["--device", "cpu"]  # not auto: on a GPU machine the CPU tests stay on the CPU, where resuming is bit-exact
TINY = ["--dataset", "fake", "--ngf", "8", "--ndf", "8", "--batch-size", "16"] + CPU
WGAN_TINY = TINY + ["--image-size", "32"]
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


def assert_same(a, b, where="checkpoint"):
    """Equal, bit for bit: every tensor of a (nested) state dict with torch.equal, the rest with ==."""
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def assert_same_run(whole, parts, steps):
    """The same training, bit for bit. The history's spread column differs in one way: a run stopped
    mid-epoch drew a grid there, and its spread was logged at that step."""
    assert whole["step"] == parts["step"] == steps
    assert [row[:-1] for row in whole["history"]] == [row[:-1] for row in parts["history"]]
    assert whole["history"][-1][-1] == parts["history"][-1][-1]
    for name in ("G", "D", "opt_G", "opt_D"):
        assert_same(whole[name], parts[name], name)


def test_readme_line_links_point_at_what_they_name():
    """Each [`name` ...](script.py#Lnn) or (script.py#Lnn-Lmm) link: those lines hold every `name` its text cites."""
    with open(os.path.join(HERE, "README.md")) as f:
        links = re.findall(r"\[([^\]]*)\]\(([\w.]+\.py)#L(\d+)(?:-L(\d+))?\)", f.read())
    assert len(links) >= 5
    for text, script, first, last in links:
        with open(os.path.join(HERE, script)) as f:
            lines = "".join(f.readlines()[int(first) - 1:int(last or first)])
        names = re.findall(r"`([^`]+)`", text)
        assert names, f"the link [{text}] names nothing in backticks"
        for name in names:
            assert name in lines, f"{script}#L{first}{'-L' + last if last else ''} does not hold {name}"


# ----------------------------------------------------------------------------- dcgan.py
def test_dcgan_one_batch_writes_every_output(tmp_path, capsys):
    out = str(tmp_path / "run")
    dcgan.main(TINY + ["--max-steps", "1", "--out", out])
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"Run folder: {out}"
    for name in RUN_FILES:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    rows = read_log(out)
    assert len(rows) == 1
    loss_D, D_x, D_G_z = (float(rows[0][k]) for k in ("loss_D", "D_x", "D_G_z"))
    assert math.isfinite(float(rows[0]["loss_G"]))
    # D(x), D(G(z)) are mean probabilities, and agree with loss_D: by Jensen, mean(-log d) >= -log(mean d)
    assert 0 < D_x < 1 and 0 < D_G_z < 1 and loss_D >= -math.log(D_x) - math.log(1 - D_G_z) - 1e-4

    checkpoint = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert checkpoint["script"] == "dcgan" and checkpoint["nc"] == 3
    a = checkpoint["args"]
    G = dcgan.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"])
    G.load_state_dict(checkpoint["G"])
    assert G.eval()(torch.randn(5, a["nz"], 1, 1)).shape == (5, 3, 32, 32)
    # the grid is G(fixed_noise) in eval mode, mapped from [-1, 1] to [0, 255]
    with torch.no_grad():
        expected = torchvision.utils.make_grid(G(checkpoint["fixed_noise"]), nrow=8, normalize=True, value_range=(-1, 1))
    with Image.open(os.path.join(out, "samples_epoch_001.png")) as grid:
        pixels = torchvision.transforms.functional.pil_to_tensor(grid).float()
    assert (pixels - expected * 255).abs().max() <= 1


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


@pytest.mark.parametrize("size, init, pytorch_last", [("32", "custom", False), ("64", "custom", True),
                                                       ("64", "normal", False)])
def test_dcgan_g_last_layer_init_at_each_size(size, init, pytorch_last, tmp_path):
    """At 64x64 the custom init leaves G's last layer at PyTorch's default, uniform with bound
    1/sqrt(nc * 4 * 4), so that G starts with contrast; every other layer keeps N(0, 0.02)."""
    out = tmp_path / "run"
    dcgan.main(TINY + ["--batch-size", "4", "--image-size", size, "--weight-init", init, "--max-steps", "1",
                       "--out", str(out)])
    weights = torch.load(out / "checkpoint.pt", weights_only=True)["G"]
    convs = [w for name, w in weights.items() if name.endswith("weight") and w.dim() == 4]
    nc = convs[-1].shape[1]
    expected = 1 / math.sqrt(3 * nc * 4 * 4) if pytorch_last else 0.02  # a uniform's std: bound / sqrt(3)
    assert convs[-1].std().item() == pytest.approx(expected, rel=0.12)
    assert convs[0].std().item() == pytest.approx(0.02, rel=0.05)


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


# ----- the signals a run records: gradient norms, the critic's slope, the spread across z
SIZE = {dcgan: [], cgan: [], wgan_gp: ["--image-size", "32"]}


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_grad_norm_is_the_norm_of_every_gradient_together(module):
    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    net(torch.randn(5, 3)).pow(2).sum().backward()
    by_hand = math.sqrt(sum((p.grad ** 2).sum().item() for p in net.parameters()))
    assert module.grad_norm(net).item() == pytest.approx(by_hand, rel=1e-6)


def test_spread_across_z():
    a, b = torch.zeros(1, 4, 4), torch.ones(1, 4, 4)
    for module in (dcgan, wgan_gp):
        assert module.spread_across_z(torch.stack([a, a, a])).item() == 0  # one image for every z
        assert module.spread_across_z(torch.stack([a, b])).item() == pytest.approx(1 / math.sqrt(2))  # std of {0, 1}
    # cgan: within each class's row only. Each class draws one image for every z: the spread is 0,
    # however much the classes differ; in a row of {a, b}, each pixel's std is 1/sqrt(2).
    assert cgan.spread_across_z(torch.stack([torch.stack([a, a]), torch.stack([b, b])])).item() == 0
    assert cgan.spread_across_z(torch.stack([torch.stack([a, b]), torch.stack([b, b])])).item() == \
        pytest.approx(1 / math.sqrt(2) / 2)


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_log_has_the_gradient_norms_and_the_spread(module, tmp_path, capsys):
    out = tmp_path / "run"
    # 1024 fake images / 16 = 64 batches: 2 epochs of 32 steps (wgan_gp: of 6 steps, 5 critic steps each)
    module.main(TINY + SIZE[module] + ["--epochs", "2", "--out", str(out)] +
                (["--d-steps", "2"] if module is not wgan_gp else []))
    rows = read_log(out)
    columns = ["grad_G", "grad_D"] + (["grad_x_hat"] if module is wgan_gp else [])
    assert all(0 < float(row[c]) < math.inf for row in rows for c in columns)
    per_epoch = len(rows) // 2
    spreads = {int(row["step"]): float(row["spread"]) for row in rows if row["spread"]}
    assert list(spreads) == [per_epoch, 2 * per_epoch]  # one per grid: at each epoch's end
    assert all(0 < s < 2 for s in spreads.values())  # a std of values in [-1, 1]
    printed = re.findall(r"^epoch \d: .* spread across z (\d\.\d{3})$", capsys.readouterr().out, re.M)
    assert [float(s) for s in printed] == pytest.approx(list(spreads.values()), abs=6e-4)
    # the grid's spread, by hand, from the checkpoint's G and fixed noise
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    a = checkpoint["args"]
    if module is cgan:
        G = module.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"], checkpoint["n_classes"])
        G.load_state_dict(checkpoint["G"])
        images = G.eval()(*cgan.grid_inputs(checkpoint["fixed_noise"], checkpoint["n_classes"]))
        by_hand = images.view(checkpoint["n_classes"], 10, -1).std(dim=1).mean()
    else:
        G = module.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"])
        G.load_state_dict(checkpoint["G"])
        by_hand = G.eval()(checkpoint["fixed_noise"]).flatten(1).std(dim=0).mean()
    assert spreads[2 * per_epoch] == pytest.approx(by_hand.item(), rel=1e-4)


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_recording_the_signals_does_not_change_training(module, tmp_path, monkeypatch):
    argv = TINY + SIZE[module] + ["--max-steps", "4"]
    module.main(argv + ["--out", str(tmp_path / "recorded")])
    monkeypatch.setattr(module, "grad_norm", lambda net: torch.ones(()))  # reads no gradient
    module.main(argv + ["--out", str(tmp_path / "not_recorded")])
    recorded, not_recorded = (torch.load(tmp_path / name / "checkpoint.pt", weights_only=True)
                              for name in ("recorded", "not_recorded"))
    for name in ("G", "D", "opt_G", "opt_D"):
        assert_same(recorded[name], not_recorded[name], name)
    assert recorded["history"][-1][6] != 1 and not_recorded["history"][-1][6] == 1  # grad_G was and was not read


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_a_checkpoint_from_before_the_signals_resumes(module, tmp_path, capsys):
    """Checkpoints written before grad_G, grad_D (grad_x_hat) and spread were logged hold shorter history
    rows: they resume, their steps' new columns stay empty, and interpolate.py draws from them."""
    out = tmp_path / "run"
    module.main(TINY + SIZE[module] + ["--max-steps", "2", "--out", str(out)])
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    checkpoint["history"] = [row[:6] for row in checkpoint["history"]]  # as the scripts wrote it before
    torch.save(checkpoint, out / "checkpoint.pt")
    module.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "4"] + CPU)
    rows = read_log(out)
    assert [row["grad_G"] for row in rows[:2]] == ["", ""] and all(float(row["grad_G"]) > 0 for row in rows[2:])
    assert [bool(row["spread"]) for row in rows] == [False, False, False, True]
    assert (out / "losses.png").stat().st_size > 0
    interpolate.main([str(out), "--pairs", "2", "--steps", "3", "--out", str(tmp_path / "walk.png")] + CPU)
    assert (tmp_path / "walk.png").stat().st_size > 0


def test_dcgan_d_steps_and_resume(tmp_path, capsys):
    out = str(tmp_path / "run")
    checkpoint_path = os.path.join(out, "checkpoint.pt")
    # 1024 fake images / 16 per batch / 2 D steps = 32 G steps per epoch; stop in the middle of epoch 1
    dcgan.main(TINY + ["--epochs", "1", "--d-steps", "2", "--max-steps", "10", "--out", out])
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert (checkpoint["step"], checkpoint["epoch"], len(checkpoint["history"])) == (10, 0, 10)

    dcgan.main(["--resume", checkpoint_path] + CPU)  # goes on to the run's own --epochs 1, from step 11
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert (checkpoint["step"], checkpoint["epoch"]) == (32, 1)
    assert checkpoint["opt_D"]["state"][0]["step"].item() == 64 and checkpoint["opt_G"]["state"][0]["step"].item() == 32

    dcgan.main(["--resume", checkpoint_path, "--epochs", "2"] + CPU)
    checkpoint = torch.load(checkpoint_path, weights_only=True)
    assert (checkpoint["step"], checkpoint["epoch"]) == (64, 2)
    assert [int(r["step"]) for r in read_log(out)] == list(range(1, 65))
    assert os.path.exists(os.path.join(out, "samples_epoch_002.png"))
    # the resumed run kept its settings; changing one, or asking for what is done, is refused
    assert "--ngf cannot be given with --resume" in exits_with_error(dcgan.main, ["--resume", checkpoint_path, "--epochs", "3", "--ngf", "16"], capsys)
    assert "--out cannot be given with --resume" in exits_with_error(dcgan.main, ["--resume", checkpoint_path, "--out", out], capsys)
    assert "already trained 2 epochs" in exits_with_error(dcgan.main, ["--resume", checkpoint_path], capsys)
    assert "already made 64 steps" in exits_with_error(dcgan.main, ["--resume", checkpoint_path, "--epochs", "3", "--max-steps", "64"], capsys)


@pytest.mark.parametrize("flags, message", [
    (["--lr-d", "0"], "--lr-d must be > 0"),
    (["--lr-g", "-0.001"], "--lr-g must be > 0"),
    (["--lr-g", "inf"], "--lr-g must be > 0"),
    (["--nz", "0"], "--nz must be >= 1"),
    (["--epochs", "0"], "--epochs must be >= 1"),
    (["--batch-size", "1"], "--batch-size must be >= 2"),
    (["--image-size", "48"], "invalid choice"),
    (["--dataset", "folder", "--data-root", "/no/such/folder"], "is not a folder"),
])
def test_dcgan_bad_input_exits_2(flags, message, tmp_path, capsys):
    out = tmp_path / "run"
    err = exits_with_error(dcgan.main, TINY + flags + ["--out", str(out)], capsys)
    assert message in err
    assert not out.exists()  # nothing was started


def test_dcgan_bad_checkpoints_and_existing_run(tmp_path, capsys):
    assert "no such file" in exits_with_error(dcgan.main, ["--resume", str(tmp_path / "missing.pt")], capsys)
    not_a_checkpoint = tmp_path / "notes.pt"
    not_a_checkpoint.write_text("hello")
    assert "cannot be read as a checkpoint" in exits_with_error(dcgan.main, ["--resume", str(not_a_checkpoint)], capsys)
    other = tmp_path / "other.pt"
    torch.save({"script": "cgan", "args": {}}, other)
    assert "by cgan.py" in exits_with_error(dcgan.main, ["--resume", str(other)], capsys)
    torch.save({"script": "dcgan", "args": {}, "step": 3}, other)  # no weights: a broken or foreign file
    assert "lacks nc, n_images, epoch, G, D" in exits_with_error(dcgan.main, ["--resume", str(other)], capsys)
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


def test_dcgan_notebook_ignores_kernel_arguments_but_not_run_flags(monkeypatch):
    monkeypatch.setattr(dcgan, "IN_NOTEBOOK", True)
    for kernel in (["colab_kernel_launcher.py", "-f", "/root/kernel-1.json"],  # Colab, Jupyter
                   ["ipykernel_launcher.py", "--f=/run/user/jupyter/kernel-v2-1.json"]):  # VS Code
        monkeypatch.setattr(sys, "argv", kernel)
        args, checkpoint = dcgan.parse_args()
        assert args.nz == 100 and args.dataset == "mnist" and checkpoint is None
    monkeypatch.setattr(sys, "argv", ["dcgan.py", "--nz", "7", "--dataset", "fake"])  # %run dcgan.py --nz 7 --dataset fake
    args, _ = dcgan.parse_args()
    assert args.nz == 7 and args.dataset == "fake"


def test_dcgan_command_line_error_and_ctrl_c(tmp_path):
    script = os.path.join(HERE, "dcgan.py")
    bad = subprocess.run([sys.executable, script, "--batch-size", "1"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "Traceback" not in bad.stderr

    out = tmp_path / "run"
    # SIG_DFL: a shell that starts a job in the background (as CI may) makes it ignore Ctrl-C
    run = subprocess.Popen([sys.executable, script, *TINY, "--epochs", "1000", "--out", str(out)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert run.stdout.readline().startswith("dcgan:")  # training has begun
    time.sleep(2)
    run.send_signal(signal.SIGINT)
    stdout, stderr = run.communicate(timeout=120)
    assert run.returncode == 0 and "interrupted" in stdout and "Traceback" not in stderr, stdout[-300:] + stderr
    for name in RUN_FILES:
        assert (out / name).exists(), name
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    # stopped between two whole steps: every count agrees
    assert checkpoint["step"] == len(checkpoint["history"]) == len(read_log(out)) > 0
    assert checkpoint["opt_D"]["state"][0]["step"].item() == checkpoint["opt_G"]["state"][0]["step"].item() == checkpoint["step"]


def test_dcgan_resume_is_exact(tmp_path):
    """Stopped at step 3, resumed to 11 (across the epoch boundary at 8), then to the end: the same run, bit for bit."""
    flags = TINY + ["--batch-size", "64", "--d-steps", "2", "--epochs", "2"]  # 16 batches: 8 steps per epoch
    dcgan.main(flags + ["--out", str(tmp_path / "whole")])
    dcgan.main(flags + ["--max-steps", "3", "--out", str(tmp_path / "parts")])
    dcgan.main(["--resume", str(tmp_path / "parts" / "checkpoint.pt"), "--max-steps", "11"] + CPU)
    dcgan.main(["--resume", str(tmp_path / "parts" / "checkpoint.pt")] + CPU)
    whole, parts = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "parts"))
    assert_same_run(whole, parts, 16)


def test_dcgan_ctrl_c_finishes_the_step(tmp_path, capsys, monkeypatch):
    calls = []

    def loss_then_ctrl_c(out_fake, kind):  # G's loss, called after D's update of the same step
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return generator_loss(out_fake, kind)
    generator_loss = dcgan.generator_loss
    monkeypatch.setattr(dcgan, "generator_loss", loss_then_ctrl_c)
    dcgan.main(TINY + ["--out", str(tmp_path / "run")])
    assert "interrupted" in capsys.readouterr().out
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 3 and len(read_log(tmp_path / "run")) == 3
    assert checkpoint["opt_D"]["state"][0]["step"].item() == checkpoint["opt_G"]["state"][0]["step"].item() == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works as usual again


def test_dcgan_resumes_a_checkpoint_without_random_state(tmp_path, capsys):
    out = tmp_path / "run"
    dcgan.main(TINY + ["--max-steps", "2", "--out", str(out)])
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    del checkpoint["rng"]  # as the scripts wrote them before resuming was exact
    torch.save(checkpoint, out / "checkpoint.pt")
    dcgan.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "4"] + CPU)
    assert "no random state" in capsys.readouterr().out and len(read_log(out)) == 4


def test_dcgan_notebook_shows_each_epoch_in_place(tmp_path, monkeypatch):
    shown = []  # one entry per display() call: the pictures it was given, first and after each update

    class Handle:
        def __init__(self, picture):
            self.pictures = [picture]
            shown.append(self.pictures)

        def update(self, picture):
            self.pictures.append(picture)
    ipython = types.ModuleType("IPython")
    ipython.display = types.SimpleNamespace(Image=lambda filename: filename,
                                            display=lambda picture, display_id: Handle(picture))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython.display)
    monkeypatch.setattr(dcgan, "IN_NOTEBOOK", True)
    out = tmp_path / "run"
    dcgan.main(TINY + ["--batch-size", "512", "--epochs", "3", "--out", str(out)])  # 2 steps per epoch
    assert [[os.path.basename(p) for p in pictures] for pictures in shown] == [
        ["samples_epoch_001.png", "samples_epoch_002.png", "samples_epoch_003.png"], ["losses.png"] * 3]


@pytest.mark.skipif(not os.path.isdir(os.path.join(MNIST_ROOT, "MNIST")), reason="no MNIST in ../shared/data")
def test_dcgan_real_mnist(tmp_path):
    args, _ = dcgan.parse_args(["--data-root", MNIST_ROOT, "--out", str(tmp_path / "unused")] + CPU)
    data = dcgan.load_data(args, torch.device("cpu"))
    assert data.shape == (60_000, 1, 32, 32) and data.dtype == torch.float32
    assert data.min() == -1 and data.max() == 1
    out = tmp_path / "run"
    dcgan.main(["--data-root", MNIST_ROOT, "--max-steps", "30", "--batch-size", "64", "--out", str(out)] + CPU)
    rows = read_log(out)
    assert len(rows) == 30 and all(math.isfinite(float(r["loss_G"])) for r in rows)
    # resuming needs no --data-root: the run's own comes from the checkpoint
    dcgan.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "35"] + CPU)
    assert len(read_log(out)) == 35


# ----------------------------------------------------------------------------- cgan.py
def test_cgan_one_batch_and_checkpoint(tmp_path, capsys):
    out = str(tmp_path / "run")
    cgan.main(TINY + ["--max-steps", "1", "--out", out])
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"Run folder: {out}"
    for name in RUN_FILES:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    rows = read_log(out)
    assert len(rows) == 1 and all(math.isfinite(float(rows[0][k])) for k in ("loss_D", "loss_G", "D_x", "D_G_z"))
    checkpoint = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    assert checkpoint["script"] == "cgan" and checkpoint["n_classes"] == 10
    a = checkpoint["args"]
    G = cgan.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"], checkpoint["n_classes"])
    G.load_state_dict(checkpoint["G"])
    # the sample grid: one row per class, one column per noise vector (32 pixels + 2 of padding each)
    with Image.open(os.path.join(out, "samples_epoch_001.png")) as grid:
        assert grid.size == (cgan.GRID_COLUMNS * 34 + 2, 10 * 34 + 2)


def test_cgan_label_changes_the_image_and_grid_shares_z():
    torch.manual_seed(0)
    G = cgan.Generator(nz=16, ngf=8, nc=1, n_classes=10).eval()
    z = torch.randn(1, 16, 1, 1)
    three, seven = (G(z, torch.nn.functional.one_hot(torch.tensor([k]), 10).float()) for k in (3, 7))
    assert three.shape == (1, 1, 32, 32) and (three - seven).abs().max() > 1e-3
    z_grid, y_grid = cgan.grid_inputs(torch.randn(4, 16, 1, 1), 3)
    assert torch.equal(z_grid[0], z_grid[4]) and torch.equal(z_grid[1], z_grid[9])  # a column shares its z
    assert y_grid.argmax(1).tolist() == [0] * 4 + [1] * 4 + [2] * 4  # a row shares its class


def test_cgan_discriminator_sees_the_label_only_when_on():
    x = torch.randn(4, 1, 32, 32)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10).float()
    D_on, D_off = cgan.Discriminator(8, 1, 32, n_classes=10).eval(), cgan.Discriminator(8, 1, 32, n_classes=0).eval()
    assert D_on.net[0].in_channels == 11 and D_off.net[0].in_channels == 1
    assert (D_on(x, y) - D_on(x, y.roll(1, 0))).abs().max() > 0
    assert torch.equal(D_off(x, y), D_off(x, y.roll(1, 0)))


def test_cgan_d_label_off_runs(tmp_path):
    cgan.main(TINY + ["--d-label", "off", "--max-steps", "2", "--out", str(tmp_path / "run")])
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["args"]["d_label"] == "off" and len(checkpoint["history"]) == 2
    # D's first layer takes the image's 3 channels only: no 10 label maps stacked on them
    assert checkpoint["D"]["net.0.weight"].shape[1] == checkpoint["nc"] == 3


def test_cgan_bad_input_exits_2(tmp_path, capsys):
    flat = tmp_path / "flat"  # images but no class subfolders
    flat.mkdir()
    Image.new("RGB", (8, 8)).save(flat / "a.png")
    err = exits_with_error(cgan.main, ["--dataset", "folder", "--data-root", str(flat), "--out", str(tmp_path / "r")], capsys)
    assert "subfolder" in err
    one = tmp_path / "one" / "cats"  # a single class
    one.mkdir(parents=True)
    for k in range(20):
        Image.new("RGB", (8, 8)).save(one / f"{k}.png")
    err = exits_with_error(cgan.main, ["--dataset", "folder", "--data-root", str(one.parent), "--out", str(tmp_path / "r")], capsys)
    assert "single class" in err
    assert "--lr-d must be > 0" in exits_with_error(cgan.main, TINY + ["--lr-d", "0"], capsys)
    torch.save({"script": "dcgan", "args": {}}, tmp_path / "dcgan.pt")
    assert "by dcgan.py" in exits_with_error(cgan.main, ["--resume", str(tmp_path / "dcgan.pt")], capsys)
    assert not (tmp_path / "r").exists()


def test_cgan_folder_of_classes(tmp_path):
    for name, colour in (("red", (255, 0, 0)), ("blue", (0, 0, 255))):
        (tmp_path / "data" / name).mkdir(parents=True)
        for k in range(8):
            Image.new("RGB", (40, 40), colour).save(tmp_path / "data" / name / f"{k}.png")
    out = tmp_path / "run"
    cgan.main(["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--workers", "0",
               "--batch-size", "8", "--ngf", "8", "--ndf", "8", "--epochs", "1", "--out", str(out)] + CPU)
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["classes"] == ["blue", "red"] and checkpoint["nc"] == 3 and len(checkpoint["history"]) == 2


def class_folders(root, names, images=8):
    """A labelled image folder: one subfolder per class, each image a flat colour of its own."""
    for c, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for k in range(images):
            Image.new("RGB", (12, 12), (40 * c, 20 * k, 255 - 40 * c)).save(root / name / f"{k}.png")


def test_cgan_g_and_d_get_the_same_labels(tmp_path, monkeypatch):
    """In a training step, G draws the fakes for y = one_hot(the real batch's labels), and D judges the real
    batch and those fakes with that same y."""
    calls, real_batches = [], []

    def spy(net, forward):
        def recorded(self, x, y):
            out = forward(self, x, y)
            calls.append((net, x.detach().clone(), y.detach().clone(), out.detach().clone()))
            return out
        return recorded

    def recorded_batches(*args):
        for real, labels in batches(*args):
            real_batches.append((real.clone(), labels.clone()))
            yield real, labels
    batches = cgan.batches
    monkeypatch.setattr(cgan, "batches", recorded_batches)
    monkeypatch.setattr(cgan.Generator, "forward", spy("G", cgan.Generator.forward))
    monkeypatch.setattr(cgan.Discriminator, "forward", spy("D", cgan.Discriminator.forward))
    cgan.main(TINY + ["--max-steps", "1", "--out", str(tmp_path / "run")])

    (real, labels), = real_batches
    assert labels.unique().numel() > 1  # different labels in the batch: a mix-up of y would show
    # one step: G draws the fakes; D judges real, fake (its step), fake (G's step); then the grid's G
    assert [net for net, *_ in calls] == ["G", "D", "D", "D", "G"]
    (_, _, y_G, fake), (_, x_real, y_real, _), (_, x_fake, y_fake, _), (_, x_fake_G, y_fake_G, _) = calls[:4]
    assert torch.equal(y_G, F.one_hot(labels, 10).float())
    assert torch.equal(x_real, real) and torch.equal(x_fake, fake) and torch.equal(x_fake_G, fake)
    for y in (y_real, y_fake, y_fake_G):
        assert torch.equal(y, y_G)


def test_cgan_resume_is_exact(tmp_path):
    """Stopped at step 3, resumed to 11 (across the epoch boundary at 8), then to the end: the same run, bit for bit."""
    flags = TINY + ["--batch-size", "64", "--d-steps", "2", "--epochs", "2"]  # 16 batches: 8 steps per epoch
    cgan.main(flags + ["--out", str(tmp_path / "whole")])
    cgan.main(flags + ["--max-steps", "3", "--out", str(tmp_path / "parts")])
    cgan.main(["--resume", str(tmp_path / "parts" / "checkpoint.pt"), "--max-steps", "11"] + CPU)
    cgan.main(["--resume", str(tmp_path / "parts" / "checkpoint.pt")] + CPU)
    whole, parts = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "parts"))
    assert_same_run(whole, parts, 16)


def test_cgan_resume_is_exact_from_a_folder(tmp_path):
    """The same with ImageFolder and worker processes: each epoch's batches come back in the same order."""
    class_folders(tmp_path / "data", ["blue", "red"])  # 16 images, batches of 4: 4 steps per epoch
    flags = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--workers", "2", "--batch-size", "4",
             "--ngf", "8", "--ndf", "8", "--epochs", "2"] + CPU
    cgan.main(flags + ["--out", str(tmp_path / "whole")])
    cgan.main(flags + ["--max-steps", "1", "--out", str(tmp_path / "parts")])
    cgan.main(["--resume", str(tmp_path / "parts" / "checkpoint.pt"), "--max-steps", "6", "--workers", "0"] + CPU)
    cgan.main(["--resume", str(tmp_path / "parts" / "checkpoint.pt")] + CPU)
    whole, parts = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "parts"))
    assert_same_run(whole, parts, 8)
    assert whole["classes"] == ["blue", "red"]


def test_cgan_ctrl_c_finishes_the_step(tmp_path, capsys, monkeypatch):
    calls = []

    def loss_then_ctrl_c(out_fake, kind):  # G's loss, called after D's updates of the same step
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)
        return generator_loss(out_fake, kind)
    generator_loss = cgan.generator_loss
    monkeypatch.setattr(cgan, "generator_loss", loss_then_ctrl_c)
    cgan.main(TINY + ["--d-steps", "2", "--out", str(tmp_path / "run")])
    assert "interrupted" in capsys.readouterr().out
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 3 and len(read_log(tmp_path / "run")) == 3
    assert checkpoint["opt_D"]["state"][0]["step"].item() == 3 * 2
    assert checkpoint["opt_G"]["state"][0]["step"].item() == 3
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works as usual again


def test_cgan_incomplete_checkpoint_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    torch.save({"script": "cgan", "args": {}, "step": 3}, broken)  # no weights: a broken or foreign file
    assert "lacks nc, n_images, n_classes, classes, epoch, G, D" in exits_with_error(cgan.main, ["--resume", str(broken)], capsys)
    cgan.main(TINY + ["--max-steps", "1", "--out", str(tmp_path / "run")])
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    del checkpoint["classes"]
    torch.save(checkpoint, broken)
    assert "lacks classes:" in exits_with_error(cgan.main, ["--resume", str(broken)], capsys)


def test_cgan_renamed_class_folder_is_refused_on_resume(tmp_path, capsys):
    class_folders(tmp_path / "data", ["cats", "dogs"])
    cgan.main(["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--workers", "0", "--batch-size", "8",
               "--ngf", "8", "--ndf", "8", "--epochs", "1", "--out", str(tmp_path / "run")] + CPU)
    os.rename(tmp_path / "data" / "dogs", tmp_path / "data" / "wolves")  # as many images, but label 1 means another class
    checkpoint = str(tmp_path / "run" / "checkpoint.pt")
    err = exits_with_error(cgan.main, ["--resume", checkpoint, "--epochs", "2", "--workers", "0"] + CPU, capsys)
    assert "class 1 is 'dogs' in the checkpoint but 'wolves' in --data-root" in err and "same class folders" in err
    assert len(read_log(tmp_path / "run")) == 2  # nothing was trained or written


def test_cgan_resume_rule(tmp_path, capsys):
    out = tmp_path / "run"
    cgan.main(TINY + ["--max-steps", "2", "--out", str(out)])
    checkpoint = str(out / "checkpoint.pt")
    assert "--d-label cannot be given with --resume" in exits_with_error(cgan.main, ["--resume", checkpoint, "--d-label", "off"], capsys)
    assert "--out cannot be given with --resume" in exits_with_error(cgan.main, ["--resume", checkpoint, "--out", str(out)], capsys)
    with pytest.raises(SystemExit) as e:  # no abbreviations: --max is not --max-steps
        cgan.main(["--resume", checkpoint, "--max", "4"])
    assert e.value.code == 2
    capsys.readouterr()
    cgan.main(["--resume", checkpoint, "--max-steps", "4", "--workers", "0", "--device", "cpu"])
    assert len(read_log(out)) == 4 and torch.load(checkpoint, weights_only=True)["args"]["d_label"] == "on"


def test_cgan_resumes_a_checkpoint_without_random_state(tmp_path, capsys):
    out = tmp_path / "run"
    cgan.main(TINY + ["--max-steps", "2", "--out", str(out)])
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    del checkpoint["rng"]  # as cgan.py wrote them before resuming was exact
    torch.save(checkpoint, out / "checkpoint.pt")
    cgan.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "4"] + CPU)
    assert "no random state" in capsys.readouterr().out and len(read_log(out)) == 4


def test_cgan_notebook_shows_each_epoch_in_place(tmp_path, monkeypatch):
    shown = []  # one entry per display() call: the pictures it was given, first and after each update

    class Handle:
        def __init__(self, picture):
            self.pictures = [picture]
            shown.append(self.pictures)

        def update(self, picture):
            self.pictures.append(picture)
    ipython = types.ModuleType("IPython")
    ipython.display = types.SimpleNamespace(Image=lambda filename: filename,
                                            display=lambda picture, display_id: Handle(picture))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython.display)
    monkeypatch.setattr(cgan, "IN_NOTEBOOK", True)
    out = tmp_path / "run"
    cgan.main(TINY + ["--batch-size", "512", "--epochs", "3", "--out", str(out)])  # 2 steps per epoch
    assert [[os.path.basename(p) for p in pictures] for pictures in shown] == [
        ["samples_epoch_001.png", "samples_epoch_002.png", "samples_epoch_003.png"], ["losses.png"] * 3]


# ----------------------------------------------------------------------------- interpolate.py
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Checkpoints of one-batch runs of each training script: {script name: run folder}."""
    folder = tmp_path_factory.mktemp("runs")
    made = {}
    for module in (dcgan, cgan, wgan_gp):
        made[module.SCRIPT] = str(folder / module.SCRIPT)
        size = ["--image-size", "32"] if module is wgan_gp else []
        module.main(TINY + size + ["--max-steps", "1", "--out", made[module.SCRIPT]])
    return made


@pytest.mark.parametrize("script", ["dcgan", "cgan", "wgan_gp"])
@pytest.mark.parametrize("mode", ["linear", "slerp"])
def test_interpolate_grid_and_end_columns(runs, script, mode, tmp_path):
    out = tmp_path / "grid.png"
    interpolate.main([runs[script], "--pairs", "3", "--steps", "5", "--mode", mode, "--out", str(out), "--gif"] + CPU)
    with Image.open(out) as grid:
        assert grid.size == (5 * 34 + 2, 3 * 34 + 2)  # columns = steps, rows = pairs
    assert (tmp_path / "grid.gif").exists()

    G, z_shape, n_classes = interpolate.load_generator(os.path.join(runs[script], "checkpoint.pt"), torch.device("cpu"))
    z1, z2 = torch.randn(3, *z_shape), torch.randn(3, *z_shape)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), n_classes).float() if n_classes else None
    images = interpolate.interpolate(G, z1, z2, 5, mode, y, y)
    assert images.shape == (3, 5, 3, 32, 32)
    with torch.no_grad():
        ends = [G(z, y) if n_classes else G(z) for z in (z1, z2)]
    assert torch.allclose(images[:, 0], ends[0], atol=1e-5) and torch.allclose(images[:, -1], ends[1], atol=1e-5)


def test_slerp_keeps_the_norm_between_the_ends():
    torch.manual_seed(0)
    z1, z2 = torch.randn(100), 1.3 * torch.randn(100)
    t = torch.linspace(0, 1, 21)
    norms = interpolate.slerp(z1, z2, t).flatten(1).norm(dim=1)
    low, high = sorted([z1.norm().item(), z2.norm().item()])
    assert torch.allclose(norms[[0, -1]], torch.tensor([z1.norm(), z2.norm()]), rtol=1e-5)
    assert (norms >= low * (1 - 1e-5)).all() and (norms <= high * (1 + 1e-5)).all()
    # the linear path's midpoint is much shorter than either end: off the shell where N(0, I) lives
    assert interpolate.lerp(z1, z2, torch.tensor([0.5])).norm() < 0.8 * low


def test_interpolate_label_morph(runs, tmp_path, capsys):
    out = tmp_path / "morph.png"
    interpolate.main([runs["cgan"], "--labels", "1", "7", "--pairs", "2", "--steps", "4", "--out", str(out)] + CPU)
    with Image.open(out) as grid:
        assert grid.size == (4 * 34 + 2, 2 * 34 + 2)
    G, z_shape, n_classes = interpolate.load_generator(os.path.join(runs["cgan"], "checkpoint.pt"), torch.device("cpu"))
    z = torch.randn(2, *z_shape)
    one, seven = (torch.nn.functional.one_hot(torch.tensor([k, k]), n_classes).float() for k in (1, 7))
    images = interpolate.interpolate(G, z, z, 4, "linear", one, seven)
    with torch.no_grad():
        assert torch.allclose(images[:, 0], G(z, one), atol=1e-5) and torch.allclose(images[:, -1], G(z, seven), atol=1e-5)
    err = exits_with_error(interpolate.main, [runs["dcgan"], "--labels", "1", "7", "--out", str(tmp_path / "x.png")], capsys)
    assert "need a cgan.py checkpoint" in err
    assert "does not exist" in exits_with_error(interpolate.main, [runs["cgan"], "--label", "10"], capsys)


def test_interpolate_bad_input_exits_2(tmp_path, capsys):
    assert "no such file" in exits_with_error(interpolate.main, [str(tmp_path / "missing.pt")], capsys)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    assert "cannot be read" in exits_with_error(interpolate.main, [str(tmp_path / "text.pt")], capsys)
    torch.save({"script": "vae", "args": {}}, tmp_path / "vae.pt")
    assert "written by vae.py" in exits_with_error(interpolate.main, [str(tmp_path / "vae.pt")], capsys)
    assert "--steps >= 2" in exits_with_error(interpolate.main, [str(tmp_path / "vae.pt"), "--steps", "1"], capsys)
    assert "ending in .png" in exits_with_error(interpolate.main, [str(tmp_path / "vae.pt"), "--out", "grid.txt"], capsys)


def test_interpolate_samples_one_file_each(runs, tmp_path, capsys):
    out = tmp_path / "samples"
    interpolate.main([runs["dcgan"], "--samples", "7", "--out", str(out)] + CPU)
    assert sorted(os.listdir(out)) == [f"{i:05d}.png" for i in range(7)]
    with Image.open(out / "00006.png") as image:
        assert image.size == (32, 32)
    # a folder that is not empty is refused, and kept as it was
    assert "not empty" in exits_with_error(interpolate.main, [runs["dcgan"], "--samples", "3", "--out", str(out)], capsys)
    assert len(os.listdir(out)) == 7
    assert "--samples must be >= 1" in exits_with_error(interpolate.main, [runs["cgan"], "--samples", "3", "--labels", "1", "2"], capsys)


@pytest.mark.parametrize("label, classes", [(None, [0, 1, 2, 0, 1, 2, 0]), (2, [2] * 7)])
def test_interpolate_samples_classes(label, classes, tmp_path):
    def G(z, y):  # a stand-in generator that paints each image with the grey level of its class
        return (y.argmax(1).float() / 2 * 2 - 1).view(-1, 1, 1, 1).expand(-1, 1, 4, 4)
    interpolate.write_samples(G, (5, 1, 1), 3, 7, label, str(tmp_path), torch.device("cpu"), batch_size=3)
    drawn = []
    for i in range(7):
        with Image.open(tmp_path / f"{i:05d}.png") as image:
            drawn.append(round(image.convert("L").getpixel((0, 0)) / 255 * 2))
    assert drawn == classes


def test_readme_snippet_uses_a_trained_generator(runs, tmp_path, monkeypatch):
    with open(os.path.join(HERE, "README.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    snippet, = [b for b in blocks if 'G.load_state_dict(checkpoint["G"])' in b]
    path, = re.findall(r'"(runs/[^"]*checkpoint.pt)"', snippet)
    monkeypatch.chdir(tmp_path)
    exec(snippet.replace(path, os.path.join(runs["dcgan"], "checkpoint.pt")), {})
    with Image.open(tmp_path / "sixteen.png") as grid:
        assert grid.size == (4 * 34 + 2, 4 * 34 + 2)


# ----------------------------------------------------------------------------- wgan_gp.py
@pytest.mark.parametrize("size", ["32", "128"])
def test_wgan_gp_one_step_writes_every_output(size, tmp_path, capsys):
    out = str(tmp_path / "run")
    wgan_gp.main(TINY + ["--image-size", size, "--n-critic", "2", "--max-steps", "1", "--out", out])
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"Run folder: {out}"
    for name in RUN_FILES:
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    rows = read_log(out)
    assert len(rows) == 1 and all(math.isfinite(float(rows[0][k])) for k in ("loss_D", "loss_G", "gp", "wasserstein"))
    checkpoint = torch.load(os.path.join(out, "checkpoint.pt"), weights_only=True)
    a = checkpoint["args"]
    G = wgan_gp.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"])
    G.load_state_dict(checkpoint["G"])
    assert G.eval()(torch.randn(2, a["nz"])).shape == (2, 3, int(size), int(size))


def test_wgan_gp_critic_has_no_batch_norm():
    for size in (32, 64, 128):
        critic = wgan_gp.Critic(8, 3, size)
        assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in critic.modules())
        assert critic(torch.randn(3, 3, size, size)).shape == (3,)


def test_wgan_gp_penalty_of_a_linear_critic():
    torch.manual_seed(0)
    w = torch.randn(1, 2, 4, 4)
    critic = lambda x: (x * w).flatten(1).sum(1)  # D(x) = w.x: grad D = w everywhere
    real, fake = torch.randn(5, 2, 4, 4), torch.randn(5, 2, 4, 4)
    expected = 10 * (w.norm().item() - 1) ** 2
    penalty, slope = wgan_gp.gradient_penalty(critic, real, fake, 10.0)
    assert penalty.item() == pytest.approx(expected, rel=1e-5) and slope.item() == pytest.approx(w.norm().item(), rel=1e-5)
    unit = w / w.norm()  # a 1-Lipschitz linear critic pays no penalty
    penalty, slope = wgan_gp.gradient_penalty(lambda x: (x * unit).flatten(1).sum(1), real, fake, 10.0)
    assert penalty.item() < 1e-8 and slope.item() == pytest.approx(1, rel=1e-5)


def test_wgan_gp_n_critic_updates_per_generator_update(tmp_path):
    out = tmp_path / "run"
    wgan_gp.main(TINY + ["--image-size", "32", "--n-critic", "5", "--max-steps", "3", "--out", str(out)])
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["opt_D"]["state"][0]["step"].item() == 15
    assert checkpoint["opt_G"]["state"][0]["step"].item() == 3
    assert len(checkpoint["history"]) == 3


def test_wgan_gp_folder_of_images(tmp_path):
    for k in range(12):  # nested folders, no class structure, odd sizes
        folder = tmp_path / "pictures" / f"set{k % 2}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (50 + k, 40), (20 * k, 100, 200)).save(folder / f"{k}.jpg")
    out = tmp_path / "run"
    wgan_gp.main(["--dataset", "folder", "--data-root", str(tmp_path / "pictures"), "--image-size", "32",
                  "--ngf", "8", "--ndf", "8", "--batch-size", "4", "--n-critic", "3", "--workers", "0",
                  "--epochs", "1", "--out", str(out)] + CPU)
    assert len(read_log(out)) == 1 and (out / "samples_epoch_001.png").exists()


def test_wgan_gp_bad_input_exits_2(tmp_path, capsys, monkeypatch):
    assert "--lambda-gp must be >= 0" in exits_with_error(wgan_gp.main, TINY + ["--lambda-gp", "-1"], capsys)
    assert "--lambda-gp must be >= 0" in exits_with_error(wgan_gp.main, TINY + ["--lambda-gp", "nan"], capsys)
    assert "use --image-size 32" in exits_with_error(wgan_gp.main, ["--dataset", "mnist", "--image-size", "128"], capsys)
    assert "--n-critic must be >= 1" in exits_with_error(wgan_gp.main, TINY + ["--n-critic", "0"], capsys)
    assert "--epochs must be >= 1" in exits_with_error(wgan_gp.main, TINY + ["--epochs", "0"], capsys)
    assert "--epochs must be >= 1" in exits_with_error(cgan.main, TINY + ["--epochs", "0"], capsys)
    assert "invalid choice" in exits_with_error(wgan_gp.main, TINY + ["--image-size", "96"], capsys)

    def quota_exceeded(*args, **kwargs):
        raise RuntimeError("The daily quota of the file img_align_celeba.zip is exceeded")
    monkeypatch.setattr(wgan_gp.torchvision.datasets, "CelebA", quota_exceeded)
    err = exits_with_error(wgan_gp.main, ["--data-root", str(tmp_path), "--out", str(tmp_path / "run")], capsys)
    assert "img_align_celeba" in err and "--dataset folder" in err
    assert not (tmp_path / "run").exists()


def test_wgan_gp_celeba_reads_the_aligned_faces_folder(tmp_path, monkeypatch):
    faces = tmp_path / "celeba" / "img_align_celeba"  # torchvision's layout, here without its annotation files
    faces.mkdir(parents=True)
    for k in range(8):
        Image.new("RGB", (178, 218), (10 * k, 80, 160)).save(faces / f"{k:06d}.jpg")
    monkeypatch.setattr(wgan_gp.torchvision.datasets, "CelebA", None)  # no download attempt may happen
    out = tmp_path / "run"
    wgan_gp.main(["--data-root", str(tmp_path), "--image-size", "32", "--ngf", "8", "--ndf", "8",
                  "--batch-size", "4", "--n-critic", "2", "--workers", "0", "--epochs", "1", "--out", str(out)] + CPU)
    assert len(read_log(out)) == 1


def test_wgan_gp_resume_is_exact(tmp_path):
    """Stopped at step 3, resumed to 11 (across the epoch boundary at 8), then to the end: the same run, bit for bit."""
    flags = WGAN_TINY + ["--batch-size", "64", "--n-critic", "2", "--epochs", "2"]  # 16 batches: 8 steps per epoch
    wgan_gp.main(flags + ["--out", str(tmp_path / "whole")])
    wgan_gp.main(flags + ["--max-steps", "3", "--out", str(tmp_path / "parts")])
    checkpoint = str(tmp_path / "parts" / "checkpoint.pt")
    wgan_gp.main(["--resume", checkpoint, "--max-steps", "11"] + CPU)  # from mid-epoch 1 into mid-epoch 2
    assert torch.load(checkpoint, weights_only=True)["step"] == 11
    wgan_gp.main(["--resume", checkpoint] + CPU)  # from mid-epoch 2 to the run's own end
    whole, parts = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "parts"))
    assert_same_run(whole, parts, 16)
    assert whole["opt_D"]["state"][0]["step"].item() == 2 * 16


def test_wgan_gp_resume_is_exact_from_a_folder(tmp_path):
    """The same with image files and worker processes: each epoch's batches come back in the same order."""
    for k in range(24):  # nested folders, no class structure: 6 batches of 4, 3 steps per epoch
        folder = tmp_path / "data" / f"set{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40 + k, 36), (10 * k, 255 - 10 * k, 90)).save(folder / f"{k}.png")
    flags = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--image-size", "32", "--ngf", "8",
             "--ndf", "8", "--batch-size", "4", "--n-critic", "2", "--workers", "2", "--epochs", "2"] + CPU
    wgan_gp.main(flags + ["--out", str(tmp_path / "whole")])
    wgan_gp.main(flags + ["--max-steps", "1", "--out", str(tmp_path / "parts")])
    checkpoint = str(tmp_path / "parts" / "checkpoint.pt")
    wgan_gp.main(["--resume", checkpoint, "--max-steps", "4", "--workers", "0"] + CPU)  # across the boundary at 3
    wgan_gp.main(["--resume", checkpoint] + CPU)
    whole, parts = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "parts"))
    assert_same_run(whole, parts, 6)


def test_wgan_gp_penalty_of_a_quadratic_critic():
    """D(x) = 0.5 * sum(w * x^2), so grad D(x) = w * x: unlike a linear critic's, the gradient depends on
    where it is taken (which x_hat, which eps for each sample), and the penalty's gradient reaches w only
    through the gradient itself (create_graph=True)."""
    torch.manual_seed(0)
    n, lambda_gp, k = 6, 10.0, 123
    w = torch.randn(2, 4, 4).requires_grad_(True)  # one weight per pixel of an image
    real, fake = torch.randn(n, 2, 4, 4), torch.randn(n, 2, 4, 4) + 2

    def critic(x):
        return 0.5 * (w * x ** 2).flatten(1).sum(1)

    torch.manual_seed(k)
    eps = torch.rand(n, 1, 1, 1)  # as gradient_penalty draws it: one eps per sample
    x_hat = eps * real + (1 - eps) * fake
    grad = w * x_hat  # grad D(x_hat), by hand
    by_hand = lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.manual_seed(k)
    penalty, slope = wgan_gp.gradient_penalty(critic, real, fake, lambda_gp)
    assert penalty.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert slope.item() == pytest.approx(grad.flatten(1).norm(dim=1).mean().item(), rel=1e-5)
    assert penalty.requires_grad, "the penalty cannot be minimised: its gradient graph is missing (create_graph)"
    penalty.backward()
    expected, = torch.autograd.grad(by_hand, w)
    assert w.grad is not None and w.grad.abs().max() > 0
    assert torch.allclose(w.grad, expected, rtol=1e-5, atol=1e-7)


def test_wgan_gp_critic_scores_each_sample_alone():
    """No batch norm in the critic: a sample's score does not depend on the batch around it."""
    torch.manual_seed(0)
    for size in (32, 64):
        critic = wgan_gp.Critic(8, 3, size)
        real, fake = torch.rand(5, 3, size, size) * 2 - 1, torch.randn(5, 3, size, size)
        with torch.no_grad():
            assert torch.allclose(critic(torch.cat([real, fake])), torch.cat([critic(real), critic(fake)]), atol=1e-5)


def test_wgan_gp_ctrl_c_finishes_the_step(tmp_path, capsys, monkeypatch):
    calls = []

    def forward_then_ctrl_c(self, z):  # G with gradients on: only in G's step, after the critic's updates
        if torch.is_grad_enabled():
            calls.append(1)
            if len(calls) == 2:
                os.kill(os.getpid(), signal.SIGINT)
        return forward(self, z)
    forward = wgan_gp.Generator.forward
    monkeypatch.setattr(wgan_gp.Generator, "forward", forward_then_ctrl_c)
    wgan_gp.main(WGAN_TINY + ["--n-critic", "2", "--out", str(tmp_path / "run")])
    assert "interrupted" in capsys.readouterr().out and len(calls) == 2
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 2 and len(checkpoint["history"]) == 2 and len(read_log(tmp_path / "run")) == 2
    # step 2 was whole: both critic updates and G's update were made
    assert checkpoint["opt_D"]["state"][0]["step"].item() == 2 * 2
    assert checkpoint["opt_G"]["state"][0]["step"].item() == 2
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works as usual again


def test_wgan_gp_resume_rule(tmp_path, capsys):
    out = tmp_path / "run"
    flags = ["--batch-size", "256", "--n-critic", "1", "--lambda-gp", "5", "--epochs", "1"]  # 4 steps per epoch
    wgan_gp.main(WGAN_TINY + flags + ["--max-steps", "2", "--out", str(out)])
    checkpoint = str(out / "checkpoint.pt")
    assert "--ngf cannot be given with --resume" in exits_with_error(wgan_gp.main, ["--resume", checkpoint, "--ngf", "16"], capsys)
    assert "--out cannot be given with --resume" in exits_with_error(wgan_gp.main, ["--resume", checkpoint, "--out", str(out)], capsys)
    assert "--n-critic cannot be given" in exits_with_error(wgan_gp.main, ["--resume", checkpoint, "--n-critic=5"], capsys)
    assert "already made 2 steps" in exits_with_error(wgan_gp.main, ["--resume", checkpoint, "--max-steps", "2"], capsys)
    with pytest.raises(SystemExit) as e:  # no abbreviations: --max is not --max-steps
        wgan_gp.main(["--resume", checkpoint, "--max", "4"])
    assert e.value.code == 2
    capsys.readouterr()
    wgan_gp.main(["--resume", checkpoint, "--max-steps", "3", "--workers", "0", "--device", "cpu", "--data-root", str(tmp_path)])
    saved = torch.load(checkpoint, weights_only=True)
    assert len(read_log(out)) == 3 and saved["opt_D"]["state"][0]["step"].item() == 3  # still one critic step per step
    assert (saved["args"]["n_critic"], saved["args"]["lambda_gp"], saved["args"]["batch_size"]) == (1, 5.0, 256)
    wgan_gp.main(["--resume", checkpoint] + CPU)  # to the end of the run's own single epoch
    assert "already trained 1 epoch," in exits_with_error(wgan_gp.main, ["--resume", checkpoint], capsys)


def test_wgan_gp_incomplete_checkpoint_exits_2(tmp_path, capsys):
    broken = tmp_path / "broken.pt"
    torch.save({"script": "wgan_gp", "args": {}, "step": 3}, broken)  # no weights: a broken or foreign file
    err = exits_with_error(wgan_gp.main, ["--resume", str(broken)], capsys)
    assert "lacks nc, n_images, epoch, G, D, opt_G, opt_D, fixed_noise, history" in err
    wgan_gp.main(WGAN_TINY + ["--n-critic", "1", "--max-steps", "1", "--out", str(tmp_path / "run")])
    checkpoint = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    del checkpoint["opt_D"]
    torch.save(checkpoint, broken)
    assert "lacks opt_D:" in exits_with_error(wgan_gp.main, ["--resume", str(broken)], capsys)


def test_wgan_gp_resumes_a_checkpoint_without_random_state(tmp_path, capsys):
    out = tmp_path / "run"
    wgan_gp.main(WGAN_TINY + ["--n-critic", "1", "--max-steps", "2", "--out", str(out)])
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    del checkpoint["rng"]  # as wgan_gp.py wrote them before resuming was exact
    torch.save(checkpoint, out / "checkpoint.pt")
    os.makedirs(tmp_path / "copy")
    torch.save(checkpoint, tmp_path / "copy" / "checkpoint.pt")
    capsys.readouterr()
    wgan_gp.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "4"] + CPU)
    assert "holds no random state" in capsys.readouterr().out and len(read_log(out)) == 4
    # the new noise comes from the seed and the step: resuming the same checkpoint again draws the same
    wgan_gp.main(["--resume", str(tmp_path / "copy" / "checkpoint.pt"), "--max-steps", "4"] + CPU)
    a, b = (torch.load(folder / "checkpoint.pt", weights_only=True) for folder in (out, tmp_path / "copy"))
    assert_same_run(a, b, 4)


def test_wgan_gp_notebook_shows_each_epoch_in_place(tmp_path, monkeypatch):
    shown = []  # one entry per display() call: the pictures it was given, first and after each update

    class Handle:
        def __init__(self, picture):
            self.pictures = [picture]
            shown.append(self.pictures)

        def update(self, picture):
            self.pictures.append(picture)
    ipython = types.ModuleType("IPython")
    ipython.display = types.SimpleNamespace(Image=lambda filename: filename,
                                            display=lambda picture, display_id: Handle(picture))
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", ipython.display)
    monkeypatch.setattr(wgan_gp, "IN_NOTEBOOK", True)
    monkeypatch.setattr(wgan_gp, "load_data", lambda args, device: torch.rand(64, 3, 32, 32) * 2 - 1)  # a small set
    out = tmp_path / "run"
    wgan_gp.main(WGAN_TINY + ["--n-critic", "2", "--epochs", "3", "--out", str(out)])  # 4 batches of 16: 2 steps per epoch
    assert [[os.path.basename(p) for p in pictures] for pictures in shown] == [
        ["samples_epoch_001.png", "samples_epoch_002.png", "samples_epoch_003.png"], ["losses.png"] * 3]


# ----- issue 20: runs wherever a student runs it
EXTRA = {dcgan: [], cgan: [], wgan_gp: ["--image-size", "32", "--n-critic", "1"]}  # small and quick in each script
GPU = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else None
needs_gpu = pytest.mark.skipif(GPU is None, reason="no CUDA or Apple GPU here")


def no_name_resolution(*args, **kwargs):
    """socket.getaddrinfo on a machine without internet: every download fails as it does offline."""
    import socket
    raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")


@pytest.mark.parametrize("module", [cgan, wgan_gp])
def test_notebook_ignores_kernel_arguments_but_not_run_flags(module, monkeypatch):
    monkeypatch.setattr(module, "IN_NOTEBOOK", True)
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/root/kernel-1.json"])  # a cell
    args, _ = module.parse_args()
    assert args.nz == (100 if module is cgan else 128)
    monkeypatch.setattr(sys, "argv", [f"{module.SCRIPT}.py", "--nz", "7", "--dataset", "fake"])  # %run
    args, _ = module.parse_args()
    assert args.nz == 7 and args.dataset == "fake"


def test_interpolate_notebook_ignores_kernel_arguments_but_not_run_flags(runs, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(interpolate, "IN_NOTEBOOK", True)
    monkeypatch.chdir(tmp_path)  # no runs/ here
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "--f=/run/user/jupyter/kernel-v2-1.json"])  # a cell
    assert "none in runs/" in exits_with_error(interpolate.parse_args, None, capsys)
    monkeypatch.setattr(sys, "argv", ["interpolate.py", runs["cgan"], "--mode", "slerp"])  # %run interpolate.py ...
    args = interpolate.parse_args()
    assert args.checkpoint == os.path.join(runs["cgan"], "checkpoint.pt") and args.mode == "slerp"


@needs_gpu
@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_gpu_one_step_and_resume_across_devices(module, tmp_path, capsys):
    out = tmp_path / "run"
    module.main(TINY + EXTRA[module] + ["--device", GPU, "--max-steps", "1", "--out", str(out)])
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["args"]["device"] == GPU and GPU in checkpoint["rng"] and len(checkpoint["history"]) == 1
    capsys.readouterr()
    module.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "2"] + CPU)  # written on the GPU
    assert f"written on {GPU}, this run is on cpu" in capsys.readouterr().out
    module.main(["--resume", str(out / "checkpoint.pt"), "--max-steps", "3", "--device", GPU])  # written on the CPU
    assert f"written on cpu, this run is on {GPU}" in capsys.readouterr().out
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["step"] == 3 and all(math.isfinite(row[3]) for row in checkpoint["history"])


@needs_gpu
@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_gpu_interpolate_draws_from_a_gpu_checkpoint(module, tmp_path):
    run = str(tmp_path / "run")
    module.main(TINY + EXTRA[module] + ["--device", GPU, "--max-steps", "1", "--out", run])
    for device in (GPU, "cpu"):
        interpolate.main([run, "--pairs", "2", "--steps", "3", "--device", device, "--out", str(tmp_path / f"{device}.png")])
        with Image.open(tmp_path / f"{device}.png") as grid:
            assert grid.size == (3 * 34 + 2, 2 * 34 + 2)
    interpolate.main([run, "--samples", "3", "--device", GPU, "--out", str(tmp_path / "samples")])
    assert len(os.listdir(tmp_path / "samples")) == 3


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_runs_started_in_the_same_second_get_a_folder_each(module, tmp_path, monkeypatch, capsys):
    class SameSecond(module.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2026, 11, 23, 10, 15, 0)
    monkeypatch.setattr(module, "datetime", SameSecond)
    monkeypatch.chdir(tmp_path)
    name = os.path.join("runs", f"{module.SCRIPT}-20261123-101500")
    os.makedirs(name)  # a run started in this second, that has written nothing yet
    argv = TINY + EXTRA[module] + ["--max-steps", "1"]
    exits_with_error(module.main, argv + ["--batch-size", "2048"], capsys)  # fails before training: no folder
    module.main(argv)
    module.main(argv)
    assert sorted(os.listdir("runs")) == sorted(os.path.basename(name) + k for k in ("", "-2", "-3"))
    assert os.listdir(name) == []  # left to the run that made it
    assert os.path.exists(os.path.join(name + "-2", "checkpoint.pt")) and os.path.exists(os.path.join(name + "-3", "checkpoint.pt"))
    assert capsys.readouterr().out.strip().splitlines()[-1] == f"Run folder: {name}-3"


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_resume_says_when_it_cannot_go_on_exactly(module, tmp_path, capsys, monkeypatch):
    threads = []
    monkeypatch.setattr(torch, "set_num_threads", lambda n, set_num_threads=torch.set_num_threads:
                        threads.append(n) or set_num_threads(n))
    out = tmp_path / "run"
    module.main(TINY + EXTRA[module] + ["--max-steps", "1", "--out", str(out)])
    assert threads == [torch.get_num_threads()]  # on a CPU: a fixed count, MKL's own choice of it off
    path = out / "checkpoint.pt"
    checkpoint = torch.load(path, weights_only=True)
    assert checkpoint["args"]["threads"] == torch.get_num_threads()
    checkpoint["args"]["device"] = "cuda"  # as if written on a GPU: its random state cannot serve the CPU
    torch.save(checkpoint, path)
    capsys.readouterr()
    module.main(["--resume", str(path), "--max-steps", "2"] + CPU)
    assert "written on cuda, this run is on cpu: the noise differs from here on" in capsys.readouterr().out
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["args"]["threads"] += 1  # as if written with one thread more
    torch.save(checkpoint, path)
    module.main(["--resume", str(path), "--max-steps", "3"] + CPU)
    n = torch.get_num_threads()
    assert f"written with {n + 1} CPU threads, this run has {n}: " in capsys.readouterr().out
    module.main(["--resume", str(path), "--max-steps", "4"] + CPU)  # same device, same threads: it goes on exactly
    assert "the checkpoint was written" not in capsys.readouterr().out and len(read_log(out)) == 4


@pytest.mark.parametrize("module", [dcgan, cgan, wgan_gp])
def test_resume_says_epochs_and_max_steps_are_totals(module, tmp_path, capsys):
    out = tmp_path / "run"
    module.main(TINY + EXTRA[module] + ["--batch-size", "512", "--epochs", "1", "--out", str(out)])  # 2 steps
    checkpoint = str(out / "checkpoint.pt")
    err = exits_with_error(module.main, ["--resume", checkpoint, "--epochs", "1"] + CPU, capsys)
    assert "already trained 1 epoch, and --epochs counts them all, not those to add; give --epochs 2 or more" in err
    err = exits_with_error(module.main, ["--resume", checkpoint, "--epochs", "3", "--max-steps", "2"] + CPU, capsys)
    assert "already made 2 steps, and --max-steps counts them all" in err and "give --max-steps 3 or more" in err


@pytest.mark.parametrize("module, dataset", [(dcgan, "mnist"), (dcgan, "fashion-mnist"), (dcgan, "cifar10"),
                                             (cgan, "mnist"), (wgan_gp, "mnist"), (wgan_gp, "cifar10")])
def test_offline_download_gives_its_reason_and_leaves_no_folder(module, dataset, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("socket.getaddrinfo", no_name_resolution)
    (tmp_path / "data").mkdir()
    root = tmp_path / "data" / "gan"  # torchvision makes it, and MNIST/raw in it, before it downloads
    err = exits_with_error(module.main, ["--dataset", dataset, "--data-root", str(root), "--out", str(tmp_path / "run")] + CPU, capsys)
    assert f"{dataset} is not in {root} and could not be downloaded (" in err and "Name or service not known)" in err
    assert os.listdir(tmp_path / "data") == [] and not (tmp_path / "run").exists()


@pytest.mark.parametrize("module, dataset, folder", [(dcgan, "mnist", "MNIST"), (cgan, "fashion-mnist", "FashionMNIST"),
                                                     (wgan_gp, "cifar10", "cifar-10-batches-py")])
def test_data_root_at_the_dataset_folder_itself(module, dataset, folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("socket.getaddrinfo", no_name_resolution)
    (tmp_path / "data" / folder / "raw").mkdir(parents=True)
    err = exits_with_error(module.main, ["--dataset", dataset, "--data-root", str(tmp_path / "data" / folder),
                                         "--out", str(tmp_path / "run")] + CPU, capsys)
    assert f"is the {folder} folder itself; give the folder that holds it, --data-root {tmp_path / 'data'}" in err
    assert os.listdir(tmp_path / "data" / folder) == ["raw"] and os.listdir(tmp_path / "data" / folder / "raw") == []


def test_wgan_gp_failed_celeba_download_leaves_no_folder(tmp_path, capsys, monkeypatch):
    def makes_its_folder_then_fails(root, **kwargs):  # as torchvision's download from Google Drive does offline
        os.makedirs(os.path.join(root, "celeba"))
        raise RuntimeError("Failed to retrieve file url")
    monkeypatch.setattr(wgan_gp.torchvision.datasets, "CelebA", makes_its_folder_then_fails)
    (tmp_path / "data").mkdir()
    err = exits_with_error(wgan_gp.main, ["--data-root", str(tmp_path / "data" / "gan"), "--out", str(tmp_path / "run")] + CPU, capsys)
    assert "CelebA is not in" in err and "(Failed to retrieve file url)" in err
    assert os.listdir(tmp_path / "data") == []


def test_wgan_gp_image_size_follows_the_dataset(runs, tmp_path, monkeypatch):
    for dataset, size in {"mnist": 32, "cifar10": 32, "celeba": 128, "folder": 128, "fake": 128}.items():
        args, _ = wgan_gp.parse_args(["--dataset", dataset, "--data-root", str(tmp_path)] + CPU)
        assert args.image_size == size, dataset
    args, _ = wgan_gp.parse_args(["--resume", os.path.join(runs["wgan_gp"], "checkpoint.pt")] + CPU)
    assert args.image_size == 32  # a resumed run keeps its own: the fake run's 32, not fake's 128
    # the first command a student types trains, at 32x32 (here 64 made-up 28x28 digits stand for MNIST)
    monkeypatch.setattr(wgan_gp, "download", lambda args: torch.randint(0, 256, (64, 28, 28), dtype=torch.uint8))
    out = tmp_path / "run"
    wgan_gp.main(["--dataset", "mnist", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--n-critic", "2",
                  "--max-steps", "1", "--out", str(out)] + CPU)
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["args"]["image_size"] == 32 and checkpoint["nc"] == 1 and len(checkpoint["history"]) == 1


@pytest.mark.parametrize("module, defaults", [
    (dcgan, ["custom", "non-saturating", "~/.cache/gan-data", "auto"]),
    (cgan, ["custom", "non-saturating", "~/.cache/gan-data", "auto", "on"]),
    (wgan_gp, ["~/.cache/gan-data", "auto", "32 for mnist and cifar10, 128 for celeba, folder and fake"]),
    (interpolate, ["auto"])])
def test_help_gives_the_defaults(module, defaults, capsys):
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    assert e.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps the lines
    for default in defaults:
        assert f"(default: {default})" in text


def test_interpolate_refuses_abbreviated_flags(runs, tmp_path, capsys):
    err = exits_with_error(interpolate.main, [runs["dcgan"], "--pair", "2", "--out", str(tmp_path / "x.png")] + CPU, capsys)
    assert "unrecognized arguments: --pair 2" in err and not (tmp_path / "x.png").exists()


def test_interpolate_checkpoint_that_does_not_fit_the_generator_exits_2(runs, tmp_path, capsys, monkeypatch):
    checkpoint = torch.load(os.path.join(runs["dcgan"], "checkpoint.pt"), weights_only=True)
    checkpoint["args"]["ngf"] = 16  # a Generator twice as wide as the weights
    torch.save(checkpoint, tmp_path / "wider.pt")
    err = exits_with_error(interpolate.main, [str(tmp_path / "wider.pt")] + CPU, capsys)
    assert "does not fit dcgan.py's Generator as it is now (size mismatch for" in err
    del checkpoint["args"]["nz"]
    torch.save(checkpoint, tmp_path / "no_nz.pt")
    assert "its args lack nz" in exits_with_error(interpolate.main, [str(tmp_path / "no_nz.pt")] + CPU, capsys)
    generator = dcgan.Generator

    class Edited(torch.nn.Module):  # a student's Generator, one layer longer
        def __init__(self, *args):
            super().__init__()
            self.net, self.extra = generator(*args).net, torch.nn.Conv2d(3, 3, 1)
    monkeypatch.setattr(dcgan, "Generator", Edited)
    err = exits_with_error(interpolate.main, [runs["dcgan"], "--out", str(tmp_path / "x.png")] + CPU, capsys)
    assert "does not fit dcgan.py's Generator" in err and "extra.weight" in err


def test_dcgan_resume_is_exact_from_a_folder(tmp_path):
    """dcgan.py's image-folder path: ImageFiles, worker processes, and a resume across an epoch boundary, bit for bit."""
    for k in range(24):  # nested folders, no class structure: 6 batches of 4, 3 steps of 2 D steps per epoch
        folder = tmp_path / "data" / f"set{k % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40 + k, 36), (10 * k, 255 - 10 * k, 90)).save(folder / f"{k}.png")
    flags = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--ngf", "8", "--ndf", "8",
             "--batch-size", "4", "--d-steps", "2", "--workers", "2", "--epochs", "2"] + CPU
    dcgan.main(flags + ["--out", str(tmp_path / "whole")])
    dcgan.main(flags + ["--max-steps", "1", "--out", str(tmp_path / "parts")])
    checkpoint = str(tmp_path / "parts" / "checkpoint.pt")
    dcgan.main(["--resume", checkpoint, "--max-steps", "4", "--workers", "0"] + CPU)  # across the boundary at 3
    dcgan.main(["--resume", checkpoint] + CPU)
    whole, parts = (torch.load(tmp_path / run / "checkpoint.pt", weights_only=True) for run in ("whole", "parts"))
    assert_same_run(whole, parts, 6)
    assert whole["nc"] == 3 and whole["n_images"] == 24


@pytest.mark.parametrize("module", [dcgan])
def test_nan_after_a_checkpoint_keeps_it(module, tmp_path, monkeypatch):
    out = tmp_path / "run"
    module.main(TINY + EXTRA[module] + ["--batch-size", "512", "--epochs", "1", "--out", str(out)])  # 2 steps
    saved = (out / "checkpoint.pt").read_bytes()
    monkeypatch.setattr(module, "load_data", lambda args, device: torch.full((1024, 3, 32, 32), float("nan")))
    with pytest.raises(SystemExit) as e:
        module.main(["--resume", str(out / "checkpoint.pt"), "--epochs", "2"] + CPU)
    assert "NaN" in str(e.value.code) and "the last good checkpoint is kept" in str(e.value.code)
    assert (out / "checkpoint.pt").read_bytes() == saved
    assert len(read_log(out)) == 4  # the log shows the steps that diverged


def test_dcgan_second_ctrl_c_stops_at_once_without_saving(tmp_path, monkeypatch):
    calls = []

    def loss_then_ctrl_c_twice(out_fake, kind):  # G's loss, in the middle of a step
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # the first: finish this step, then save
            os.kill(os.getpid(), signal.SIGINT)  # the second: stop now
        return generator_loss(out_fake, kind)
    generator_loss = dcgan.generator_loss
    monkeypatch.setattr(dcgan, "generator_loss", loss_then_ctrl_c_twice)
    with pytest.raises(KeyboardInterrupt):
        dcgan.main(TINY + ["--out", str(tmp_path / "run")])
    assert len(calls) == 3 and not (tmp_path / "run" / "checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works as usual again


def test_gitignore_covers_what_the_readme_writes_here():
    """The files and folders the README (and interpolate.py's examples) tell a user to write in the project folder."""
    try:
        inside = subprocess.run(["git", "-C", HERE, "rev-parse", "--is-inside-work-tree"], capture_output=True).returncode == 0
    except FileNotFoundError:
        inside = False
    if not inside:
        pytest.skip("not a git work tree")
    with open(os.path.join(HERE, "README.md")) as f, open(os.path.join(HERE, "interpolate.py")) as g:
        text = f.read() + g.read()
    folders = re.findall(r"--samples \d+ (?:--label \d+ )?--out (\w+)", text)  # samples for FID tools
    assert {"sevens", "fake_digits", "threes"} <= set(folders)
    written = [f"{folder}/00000.png" for folder in folders] + ["runs/dcgan-20261123-153400/checkpoint.pt"]
    for name, path in (('"sixteen.png"', "sixteen.png"), ("real_digits/", "real_digits/00000.png"),
                       ('"shapes/part', "shapes/part0/00000.png"), ("# make_shapes.py", "make_shapes.py")):
        assert name in text, name  # the README still writes it
        written.append(path)
    written.append(".ipynb_checkpoints/untitled-checkpoint.ipynb")  # what Jupyter saves beside a notebook
    for path in written:
        assert subprocess.run(["git", "-C", HERE, "check-ignore", "-q", path]).returncode == 0, f"{path} is not ignored"
