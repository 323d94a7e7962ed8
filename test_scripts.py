"""Tests for the GAN scripts: python -m pytest -q test_scripts.py

Training runs go through each script's main([...]) in-process, on synthetic images (--dataset fake, or a tensor
or a folder of PNGs made here), with tiny networks, a few steps and --device cpu. The real-MNIST tests read
../shared/data and are skipped without it.
"""
import contextlib
import csv
import io
import math
import os
import re
import shutil
import signal
import sys

import pytest
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor
from torchvision.utils import make_grid

import cgan
import dcgan
import interpolate
import wgan_gp

torch.set_num_threads(1)  # tiny networks gain nothing from a second thread, and lose much on a busy machine
HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_ROOT = os.path.join(HERE, "..", "shared", "data")
SCRIPTS = {"dcgan": dcgan, "cgan": cgan, "wgan_gp": wgan_gp}
TRAINERS = list(SCRIPTS.values())
CPU = ["--device", "cpu"]
TINY = ["--dataset", "fake", "--ngf", "8", "--ndf", "8", "--batch-size", "16"] + CPU  # 1,024 random images
SMALL = {dcgan: [], cgan: [], wgan_gp: ["--image-size", "32", "--n-critic", "2"]}  # wgan_gp: fake is 128x128 there
COLUMNS = {"dcgan": ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "grad_G", "grad_D", "spread"],
           "wgan_gp": ["epoch", "step", "loss_D", "loss_G", "gp", "wasserstein", "grad_G", "grad_D", "grad_x_hat",
                       "spread"]}
COLUMNS["cgan"] = COLUMNS["dcgan"]


def read_log(folder):  # log.csv: [header, row, row, ...]
    with open(os.path.join(folder, "log.csv")) as f:
        return list(csv.reader(f))


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def exits_2(main, argv, capsys):
    """main(argv) refuses its input as the scripts must: exit status 2, one line on stderr. -> that line."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def generator(checkpoint):
    """G rebuilt from a checkpoint as the README tells a user to, in eval mode."""
    a, n_classes = checkpoint["args"], [checkpoint["n_classes"]] if checkpoint["script"] == "cgan" else []
    G = SCRIPTS[checkpoint["script"]].Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"], *n_classes)
    G.load_state_dict(checkpoint["G"])
    return G.eval()


def assert_same(a, b, where):
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


def image_folder(root, classes, per_class):
    """Tiny PNGs of odd sizes, a subfolder per class; class k of n is a flat grey of level k / (n - 1)."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (10 + i, 8), (255 * k // (len(classes) - 1),) * 3).save(root / name / f"{i}.png")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs of each training script on the 1,024 fake images in batches of 256: {script: (folder, stdout)}."""
    made = {}
    for module in TRAINERS:
        out = str(tmp_path_factory.mktemp("runs") / module.SCRIPT)
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            module.main(TINY + SMALL[module] + ["--batch-size", "256", "--epochs", "2", "--out", out])
        made[module.SCRIPT] = out, stdout.getvalue()
    return made


# ----------------------------------------------------------------------------- the GAN's maths
@pytest.mark.parametrize("module", [dcgan, cgan])
def test_losses_match_hand_computed_values(module):
    sigmoid = lambda l: 1 / (1 + math.exp(-l))  # D's probability of "real" from its logit
    fake, real = [0.0, 2.0, -1.0], [3.0, -0.5]
    non_saturating = -sum(math.log(sigmoid(l)) for l in fake) / 3  # -E[log D(G(z))]
    saturating = sum(math.log(1 - sigmoid(l)) for l in fake) / 3  # E[log(1 - D(G(z)))]
    loss_D = -sum(math.log(sigmoid(l)) for l in real) / 2 - sum(math.log(1 - sigmoid(l)) for l in fake) / 3
    assert module.generator_loss(torch.tensor(fake), "non-saturating").item() == pytest.approx(non_saturating, rel=1e-6)
    assert module.generator_loss(torch.tensor(fake), "saturating").item() == pytest.approx(saturating, rel=1e-6)
    assert module.discriminator_loss(torch.tensor(real), torch.tensor(fake)).item() == pytest.approx(loss_D, rel=1e-6)
    # a logit of -200: sigmoid(-200) is 0 in float32 and log(0) = -inf; on logits the losses stay exact
    assert module.generator_loss(torch.tensor([-200.0]), "non-saturating").item() == pytest.approx(200.0)
    assert module.generator_loss(torch.tensor([-200.0]), "saturating").item() == pytest.approx(0.0, abs=1e-6)
    assert module.discriminator_loss(torch.tensor([-200.0]), torch.tensor([200.0])).item() == pytest.approx(400.0)


def test_gradient_penalty_of_a_quadratic_critic():
    """D(x) = 0.5 * sum(w * x^2), so grad D(x) = w * x: unlike a linear critic's, the gradient depends on where it
    is taken (which x_hat, which eps for each sample), and the penalty's gradient reaches w only through the
    gradient itself (create_graph=True)."""
    torch.manual_seed(0)
    n, lambda_gp, k = 6, 10.0, 123
    w = torch.randn(2, 4, 4).requires_grad_(True)  # one weight per pixel of an image
    real, fake = torch.randn(n, 2, 4, 4), torch.randn(n, 2, 4, 4) + 2
    torch.manual_seed(k)
    eps = torch.rand(n, 1, 1, 1)  # as gradient_penalty draws it: one eps per sample
    grad = w * (eps * real + (1 - eps) * fake)  # grad D(x_hat), by hand
    by_hand = lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.manual_seed(k)
    penalty, slope = wgan_gp.gradient_penalty(lambda x: 0.5 * (w * x ** 2).flatten(1).sum(1), real, fake, lambda_gp)
    assert penalty.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert slope.item() == pytest.approx(grad.flatten(1).norm(dim=1).mean().item(), rel=1e-5)
    assert penalty.requires_grad, "the penalty cannot be minimised: its gradient graph is missing (create_graph)"
    penalty.backward()
    expected, = torch.autograd.grad(by_hand, w)
    assert w.grad.abs().max() > 0 and torch.allclose(w.grad, expected, rtol=1e-5, atol=1e-7)


def test_critic_scores_each_sample_alone():
    """No batch norm in the critic: a sample's score, and so the penalty's gradient, ignores the rest of the batch."""
    torch.manual_seed(0)
    critic, x = wgan_gp.Critic(8, 3, 32), torch.randn(10, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(critic(x), torch.cat([critic(x[:3]), critic(x[3:])]), atol=1e-5)


def test_dcgan_learns_a_fixed_pattern(tmp_path, monkeypatch):
    """Every training image is the same picture, two bright squares on black: in 200 steps G's samples (the fixed
    noise, G.eval()) come several times closer to it than the untrained G's; with --lr-g 0 they stay as far."""
    pattern = torch.full((1, 32, 32), -1.0)
    pattern[:, 4:14, 4:14] = pattern[:, 18:28, 14:30] = 1.0
    monkeypatch.setattr(dcgan, "load_data", lambda args, device: pattern.expand(8192, 1, 32, 32))  # one epoch
    untrained = {}

    def init_and_keep(G, D, *args):  # the untrained G, as main initialised it
        init_weights(G, D, *args)
        untrained.update({k: v.clone() for k, v in G.state_dict().items()})
    init_weights = dcgan.init_weights
    monkeypatch.setattr(dcgan, "init_weights", init_and_keep)
    out = tmp_path / "run"  # --dataset mnist for its 1 channel; rates above the defaults: learnt in 200 steps
    dcgan.main(["--dataset", "mnist", "--ngf", "8", "--ndf", "8", "--batch-size", "16", "--lr-g", "4e-3",
                "--lr-d", "2e-3", "--max-steps", "200", "--out", str(out)] + CPU)
    checkpoint = load(out / "checkpoint.pt")
    G = generator(checkpoint)
    with torch.no_grad():
        trained = (G(checkpoint["fixed_noise"]) - pattern).pow(2).mean().item()
        G.load_state_dict(untrained)
        before = (G(checkpoint["fixed_noise"]) - pattern).pow(2).mean().item()
    assert trained < before / 4, (trained, before)


@pytest.mark.parametrize("frozen", ["G", "D"])
def test_lr_0_freezes_that_network(frozen, tmp_path, monkeypatch):
    initial = {}

    def init_and_keep(G, D, *args):  # the weights as main initialised them
        init_weights(G, D, *args)
        initial.update({name: {k: p.detach().clone() for k, p in net.named_parameters()} for name, net in
                        (("G", G), ("D", D))})
    init_weights = dcgan.init_weights
    monkeypatch.setattr(dcgan, "init_weights", init_and_keep)
    dcgan.main(TINY + [f"--lr-{frozen.lower()}", "0", "--max-steps", "3", "--out", str(tmp_path / "run")])
    checkpoint = load(tmp_path / "run" / "checkpoint.pt")
    for net in ("G", "D"):  # the weights (batch norm's running statistics move in any case)
        unchanged = all(torch.equal(p, checkpoint[net][k]) for k, p in initial[net].items())
        assert unchanged == (net == frozen), net


# ----------------------------------------------------------------------------- what a run writes
@pytest.mark.parametrize("module", TRAINERS)
def test_a_run_writes_its_grids_plots_log_and_checkpoint(module, runs):
    out, stdout = runs[module.SCRIPT]
    assert stdout.strip().splitlines()[-1] == f"Run folder: {out}"
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "progress.gif", "losses.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    with Image.open(os.path.join(out, "progress.gif")) as gif:
        assert gif.n_frames == 2  # one frame per epoch's grid
    header, *rows = read_log(out)
    assert header == COLUMNS[module.SCRIPT]
    per_epoch, spread = len(rows) // 2, header.index("spread")
    assert [(int(r[0]), int(r[1])) for r in rows] == [(s // per_epoch + 1, s + 1) for s in range(2 * per_epoch)]
    assert all(math.isfinite(float(v)) for r in rows for v in r[2:spread])
    assert [bool(r[spread]) for r in rows] == ([False] * (per_epoch - 1) + [True]) * 2  # at each grid
    if "D_x" in header:
        assert all(0 < float(r[i]) < 1 for r in rows for i in (header.index("D_x"), header.index("D_G_z")))

    checkpoint = load(os.path.join(out, "checkpoint.pt"))
    keys = {"script", "args", "nc", "G", "D", "fixed_noise"} | ({"n_classes"} if module is cgan else set())
    assert keys <= checkpoint.keys() and checkpoint["script"] == module.SCRIPT and checkpoint["nc"] == 3
    G, noise = generator(checkpoint), checkpoint["fixed_noise"]
    with torch.no_grad():  # the last grid is G.eval() on the fixed noise (cgan: a row per class, a column per z)
        images = G(*cgan.grid_inputs(noise, checkpoint["n_classes"])) if module is cgan else G(noise)
    with Image.open(os.path.join(out, "samples_epoch_002.png")) as grid:
        pixels = pil_to_tensor(grid).float()
    expected = make_grid(images, nrow=len(noise) if module is cgan else 8, normalize=True, value_range=(-1, 1))
    assert (pixels - expected * 255).abs().max() <= 1
    if module is cgan:  # the spread across z: each pixel's std across a class's z, not across the classes
        images = images.view(checkpoint["n_classes"], len(noise), -1).transpose(0, 1)
    assert float(rows[-1][spread]) == pytest.approx(images.std(dim=0).mean().item(), rel=1e-3)


@pytest.mark.parametrize("module", TRAINERS)
def test_resume_is_exact_with_and_without_ctrl_c(module, tmp_path, monkeypatch):
    """6 steps straight (4 per epoch) equal 2 steps, then --resume to 6 that Ctrl-C stops in step 3, then --resume
    to 6: the same weights, optimiser states and log, bit for bit."""
    flags = TINY + SMALL[module] + ["--batch-size", "128"] + (["--d-steps", "2"] if module is not wgan_gp else [])
    module.main(flags + ["--max-steps", "6", "--out", str(tmp_path / "whole")])
    module.main(flags + ["--max-steps", "2", "--out", str(tmp_path / "parts")])
    checkpoint = str(tmp_path / "parts" / "checkpoint.pt")

    def grad_norm_then_ctrl_c(net):  # G's gradient norm: between D's updates and G's
        if isinstance(net, module.Generator):
            os.kill(os.getpid(), signal.SIGINT)
        return grad_norm(net)
    grad_norm = module.grad_norm
    monkeypatch.setattr(module, "grad_norm", grad_norm_then_ctrl_c)
    try:
        module.main(["--resume", checkpoint, "--max-steps", "6"] + CPU)
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C was not caught: the run stopped without saving")
    monkeypatch.undo()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C works as usual again
    stopped = load(checkpoint)  # step 3 was made whole: D's 2 updates (--d-steps, --n-critic), and G's
    assert stopped["step"] == 3 and len(read_log(tmp_path / "parts")) == 1 + 3
    assert stopped["opt_G"]["state"][0]["step"] == 3 and stopped["opt_D"]["state"][0]["step"] == 3 * 2
    assert (tmp_path / "parts" / "losses.png").stat().st_size > 0
    module.main(["--resume", checkpoint, "--max-steps", "6"] + CPU)  # across the epoch boundary at step 4

    whole, parts = load(tmp_path / "whole" / "checkpoint.pt"), load(checkpoint)
    assert whole["step"] == parts["step"] == 6
    for name in ("G", "D", "opt_G", "opt_D", "fixed_noise"):
        assert_same(whole[name], parts[name], name)
    a, b = read_log(tmp_path / "whole"), read_log(tmp_path / "parts")
    spread = a[0].index("spread")  # a stopped run drew a grid, and logged its spread, where it stopped
    assert [r[:spread] for r in a] == [r[:spread] for r in b] and a[-1] == b[-1]


def test_dcgan_trains_on_a_folder_of_subfolders(tmp_path):
    image_folder(tmp_path / "data", ["a", "b"], 8)  # 16 images: 4 batches of 4
    flags = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--ngf", "8", "--ndf", "8",
             "--batch-size", "4", "--epochs", "1"] + CPU
    for workers in ("0", "2"):
        dcgan.main(flags + ["--workers", workers, "--out", str(tmp_path / workers)])
    by_main, by_workers = load(tmp_path / "0" / "checkpoint.pt"), load(tmp_path / "2" / "checkpoint.pt")
    assert by_main["step"] == 4 and by_main["nc"] == 3
    assert_same(by_main["G"], by_workers["G"], "G")  # worker processes decode the same batches, in the same order


def test_wgan_gp_trains_on_a_flat_folder(tmp_path):
    (tmp_path / "data").mkdir()
    for i in range(8):
        Image.new("RGB", (40 + i, 36), (30 * i, 100, 200)).save(tmp_path / "data" / f"{i}.jpg")
    wgan_gp.main(["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--image-size", "32", "--ngf", "8",
                  "--ndf", "8", "--batch-size", "4", "--n-critic", "1", "--workers", "0", "--epochs", "1",
                  "--out", str(tmp_path / "run")] + CPU)
    assert len(read_log(tmp_path / "run")) == 1 + 2


def test_cgan_labels_reach_g_and_d_alike(tmp_path, monkeypatch):
    """In a training step G draws the fakes for the real batch's labels, and D judges the real images and the
    fakes with those same labels; each class's images are their own grey, so an image tells its label."""
    image_folder(tmp_path / "data", ["a", "b", "c"], 8)
    calls = []

    def spy(name, forward):
        def recorded(self, *inputs):
            out = forward(self, *inputs)
            calls.append((name, [x.detach().clone() for x in inputs], out.detach().clone()))
            return out
        return recorded
    monkeypatch.setattr(cgan.Generator, "forward", spy("G", cgan.Generator.forward))
    monkeypatch.setattr(cgan.Discriminator, "forward", spy("D", cgan.Discriminator.forward))
    out = tmp_path / "run"
    cgan.main(["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--workers", "0", "--ngf", "8",
               "--ndf", "8", "--batch-size", "12", "--max-steps", "1", "--out", str(out)] + CPU)
    monkeypatch.undo()
    # G draws the fakes; D judges real, fake (its step), fake (G's step); then G draws the grid
    assert [name for name, *_ in calls] == ["G", "D", "D", "D", "G"]
    (_, (z, y), fake), (_, (real, y_real), _), (_, (fake_D, y_fake_D), _), (_, (fake_G, y_fake_G), _) = calls[:4]
    labels = ((real.mean(dim=(1, 2, 3)) + 1) * (3 - 1) / 2).round().long()  # grey k / 2, in [-1, 1]: class k
    assert labels.unique().numel() > 1 and torch.equal(y, F.one_hot(labels, 3).float())
    for y_D in (y_real, y_fake_D, y_fake_G):
        assert torch.equal(y_D, y)
    assert torch.equal(fake_D, fake) and torch.equal(fake_G, fake)  # D's step, then G's, judge the fakes G drew

    checkpoint = load(out / "checkpoint.pt")
    assert checkpoint["n_classes"] == 3
    a, G = checkpoint["args"], generator(checkpoint)
    D = cgan.Discriminator(a["ndf"], checkpoint["nc"], a["image_size"], checkpoint["n_classes"]).eval()
    D.load_state_dict(checkpoint["D"])
    other = y.roll(1, dims=1)  # every image given another class
    with torch.no_grad():  # and both networks answer to the label
        assert (G(z, y) - G(z, other)).abs().max() > 1e-4 and (D(real, y) - D(real, other)).abs().max() > 1e-4


# ----------------------------------------------------------------------------- interpolate.py and the README
@pytest.mark.parametrize("script", SCRIPTS)
def test_interpolation_grid(script, runs, tmp_path):
    out = tmp_path / "walk.png"
    interpolate.main([runs[script][0], "--pairs", "3", "--steps", "5", "--mode", "slerp", "--gif",
                      "--out", str(out)] + CPU)
    with Image.open(out) as grid:
        assert grid.size == (5 * 34 + 2, 3 * 34 + 2)  # a column per step, a row per pair: 32 pixels + 2 of padding
    assert (tmp_path / "walk.gif").stat().st_size > 0
    checkpoint = os.path.join(runs[script][0], "checkpoint.pt")
    G, z_shape, n_classes = interpolate.load_generator(checkpoint, torch.device("cpu"))
    z1, z2 = torch.randn(3, *z_shape), torch.randn(3, *z_shape)
    y1, y2 = (F.one_hot(torch.tensor(k), n_classes).float() if n_classes else None for k in ([0, 1, 2], [7, 7, 7]))
    with torch.no_grad():
        ends = [G(z, *([y] if n_classes else [])) for z, y in ((z1, y1), (z2, y1), (z1, y2))]
    for mode in ("linear", "slerp"):  # the ends of each path are G(z1) and G(z2)
        images = interpolate.interpolate(G, z1, z2, 5, mode, y1, y1)
        assert images.shape == (3, 5, 3, 32, 32)
        assert torch.allclose(images[:, 0], ends[0], atol=1e-5) and torch.allclose(images[:, -1], ends[1], atol=1e-5)
    if n_classes:  # --labels: z stays, the class morphs from y1 to y2
        images = interpolate.interpolate(G, z1, z1, 4, "linear", y1, y2)
        assert torch.allclose(images[:, 0], ends[0], atol=1e-5) and torch.allclose(images[:, -1], ends[2], atol=1e-5)


def test_slerp_keeps_the_norm_between_the_ends():
    torch.manual_seed(0)
    z1, z2 = torch.randn(100), 1.3 * torch.randn(100)
    norms = interpolate.slerp(z1, z2, torch.linspace(0, 1, 21)).flatten(1).norm(dim=1)
    low, high = sorted([z1.norm().item(), z2.norm().item()])
    assert torch.allclose(norms[[0, -1]], torch.stack([z1.norm(), z2.norm()]), rtol=1e-5)
    assert (norms >= low * (1 - 1e-5)).all() and (norms <= high * (1 + 1e-5)).all()
    # the straight line's midpoint is far shorter than either end: off the shell where N(0, I) lives
    assert interpolate.lerp(z1, z2, torch.tensor([0.5])).norm() < 0.8 * low


def test_interpolate_mistakes_exit_2(runs, tmp_path, capsys):
    missing = str(tmp_path / "missing.pt")
    assert missing in exits_2(interpolate.main, [missing] + CPU, capsys)
    checkpoint = load(os.path.join(runs["dcgan"][0], "checkpoint.pt"))
    checkpoint["args"]["ngf"] = 16  # a Generator twice as wide as its weights
    torch.save(checkpoint, tmp_path / "wider.pt")
    assert "Generator" in exits_2(interpolate.main, [str(tmp_path / "wider.pt")] + CPU, capsys)
    err = exits_2(interpolate.main, [runs["dcgan"][0], "--label", "3", "--out", str(tmp_path / "x.png")] + CPU, capsys)
    assert "--label" in err and not (tmp_path / "x.png").exists()


def test_readme_snippet_draws_from_a_trained_generator(runs, tmp_path, monkeypatch):
    with open(os.path.join(HERE, "README.md")) as f:
        blocks = re.findall(r"```python\n(.*?)```", f.read(), re.S)
    snippet, = [b for b in blocks if 'G.load_state_dict(checkpoint["G"])' in b]
    path, = re.findall(r'"(runs/[^"]*checkpoint.pt)"', snippet)
    monkeypatch.chdir(tmp_path)
    exec(snippet.replace(path, os.path.join(runs["dcgan"][0], "checkpoint.pt")), {})
    with Image.open(tmp_path / "sixteen.png") as grid:
        assert grid.size == (4 * 34 + 2, 4 * 34 + 2)


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


# ----------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("module", TRAINERS)
def test_notebook_ignores_the_kernels_argv_but_not_run_flags(module, monkeypatch):
    monkeypatch.setattr(module, "IN_NOTEBOOK", True)  # as if imported with ipykernel in sys.modules
    defaults = {**vars(module.parse_args([])[0]), "out": None}
    for kernel in (["ipykernel_launcher.py", "-f", "/root/.local/share/jupyter/runtime/kernel-1.json"],  # Jupyter
                   ["ipykernel_launcher.py", "--f=/run/user/jupyter/kernel-v2-1.json"]):  # VS Code
        monkeypatch.setattr(sys, "argv", kernel)
        assert {**vars(module.parse_args()[0]), "out": None} == defaults
    monkeypatch.setattr(sys, "argv", [f"{module.SCRIPT}.py", "--nz", "7", "--dataset", "fake"])  # %run script.py ...
    args, _ = module.parse_args()
    assert args.nz == 7 and args.dataset == "fake"


def test_interpolate_in_a_notebook(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(interpolate, "IN_NOTEBOOK", True)
    monkeypatch.chdir(tmp_path)
    os.makedirs(os.path.join("runs", "dcgan-1"))
    shutil.copy(os.path.join(runs["dcgan"][0], "checkpoint.pt"), os.path.join("runs", "dcgan-1"))
    monkeypatch.setattr(sys, "argv", ["ipykernel_launcher.py", "-f", "/root/kernel-1.json"])  # a cell: the newest run
    assert interpolate.parse_args().checkpoint == os.path.join("runs", "dcgan-1", "checkpoint.pt")
    monkeypatch.setattr(sys, "argv", ["interpolate.py", runs["cgan"][0], "--mode", "slerp"])  # %run interpolate.py ...
    args = interpolate.parse_args()
    assert args.checkpoint == os.path.join(runs["cgan"][0], "checkpoint.pt") and args.mode == "slerp"


# ----------------------------------------------------------------------------- bad input: one line, exit status 2
@pytest.mark.parametrize("module, flags", [
    (dcgan, ["--epochs", "0"]), (dcgan, ["--lr-d", "-1"]), (dcgan, ["--batch-size", "1"]), (dcgan, ["--beta1", "1"]),
    (cgan, ["--lr-g", "nan"]), (cgan, ["--d-steps", "0"]), (wgan_gp, ["--lambda-gp", "-1"]),
    (wgan_gp, ["--n-critic", "0"])])
def test_a_bad_flag_value_exits_2(module, flags, tmp_path, capsys):
    assert flags[0] in exits_2(module.main, TINY + SMALL[module] + flags + ["--out", str(tmp_path / "run")], capsys)
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.parametrize("module", TRAINERS)
def test_resume_and_out_refuse_what_cannot_go_on(module, runs, tmp_path, capsys):
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    other = os.path.join(runs["cgan" if module is dcgan else "dcgan"][0], "checkpoint.pt")  # another script's
    for path in (str(tmp_path / "missing.pt"), str(text), other):
        assert path in exits_2(module.main, ["--resume", path] + CPU, capsys)
    own = os.path.join(runs[module.SCRIPT][0], "checkpoint.pt")  # 2 epochs made
    saved = open(own, "rb").read()
    earlier = torch.load(own, weights_only=True)  # as an earlier version of the script saved G: under "net."
    earlier["G"] = {"net." + name: value for name, value in earlier["G"].items()}
    torch.save(earlier, tmp_path / "earlier.pt")
    assert "earlier.pt" in exits_2(module.main, ["--resume", str(tmp_path / "earlier.pt")] + CPU, capsys)
    assert "--nz" in exits_2(module.main, ["--resume", own, "--nz", "7"] + CPU, capsys)  # it shapes the networks
    assert "--epochs" in exits_2(module.main, ["--resume", own, "--epochs", "2"] + CPU, capsys)  # counts those made
    assert "--out" in exits_2(module.main, ["--resume", own, "--out", str(tmp_path / "copy")] + CPU, capsys)
    assert open(own, "rb").read() == saved  # nothing was trained or written
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("keep me")
    assert "--out" in exits_2(module.main, TINY + SMALL[module] + ["--out", str(run)], capsys)
    assert (run / "log.csv").read_text() == "keep me"


@pytest.mark.parametrize("module", TRAINERS)
def test_data_that_is_not_there_exits_2(module, tmp_path, capsys, monkeypatch):
    class MNIST:  # as torchvision's fails without internet: each address it tried, then the last one's error
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-datasets.s3."
                               "amazonaws.com/mnist/, got:\n<urlopen error [Errno -2] Name or service not known>")
    monkeypatch.setattr(torchvision.datasets, "MNIST", MNIST)
    run = ["--out", str(tmp_path / "run")] + CPU
    err = exits_2(module.main, ["--dataset", "folder", "--data-root", str(tmp_path / "no_such_folder")] + run, capsys)
    assert "no_such_folder" in err
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)  # --data-root given as the MNIST folder, not the one holding it
    err = exits_2(module.main, ["--dataset", "mnist", "--data-root", str(tmp_path / "MNIST")] + run, capsys)
    assert "MNIST folder itself" in err
    err = exits_2(module.main, ["--dataset", "mnist", "--data-root", str(tmp_path / "data")] + run, capsys)
    assert "Name or service not known" in err and "--data-root" in err  # the reason, and what to do
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("module, name", [(dcgan, "discriminator_loss"), (cgan, "discriminator_loss"),
                                          (wgan_gp, "gradient_penalty")])
def test_nan_stops_the_run_and_keeps_the_last_checkpoint(module, name, runs, tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    shutil.copytree(runs[module.SCRIPT][0], out)
    saved = (out / "checkpoint.pt").read_bytes()
    made = load(out / "checkpoint.pt")["step"]
    loss = getattr(module, name)
    nan = (lambda *args: tuple(v * math.nan for v in loss(*args))) if name == "gradient_penalty" else \
        (lambda *args: loss(*args) * math.nan)  # training diverged
    monkeypatch.setattr(module, name, nan)
    argv = ["--resume", str(out / "checkpoint.pt"), "--epochs", "3", "--max-steps", str(made + 1)] + CPU
    assert "NaN" in exits_2(module.main, argv, capsys)
    assert (out / "checkpoint.pt").read_bytes() == saved


# ----------------------------------------------------------------------------- real MNIST, where it is
@pytest.mark.skipif(not os.path.isdir(os.path.join(MNIST_ROOT, "MNIST")), reason="no MNIST in ../shared/data")
@pytest.mark.parametrize("module", TRAINERS)
def test_real_mnist(module, tmp_path):
    out = tmp_path / "run"
    module.main(["--dataset", "mnist", "--data-root", MNIST_ROOT, "--ngf", "8", "--ndf", "8", "--batch-size", "16",
                 "--max-steps", "2", "--out", str(out)] + (["--n-critic", "1"] if module is wgan_gp else []) + CPU)
    checkpoint = load(out / "checkpoint.pt")
    assert checkpoint["nc"] == 1 and checkpoint["step"] == 2 and checkpoint.get("n_classes", 10) == 10
    assert all(math.isfinite(float(v)) for v in read_log(out)[-1][2:-1])
