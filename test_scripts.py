"""Tests for the GAN scripts: python -m pytest -q test_scripts.py

Training runs go through each script's main([...]) in-process, on synthetic images (--dataset fake,
or files in each dataset's own format made here), with tiny networks, a few steps and --device cpu.
Where a test checks a number a run shows, it computes that number itself, from the same networks
and batch. The real-MNIST tests read ../shared/data and are skipped without it; the CUDA tests run
only where PyTorch sees a GPU.
"""
import copy
import contextlib
import csv
import io
import math
import os
import pickle
import re
import shutil
import signal
import struct
import sys

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from PIL import Image
from torchvision.transforms.functional import pil_to_tensor
from torchvision.utils import make_grid

import cgan
import dcgan
import interpolate
import wgan_gp

# tiny networks gain nothing from a second thread, and lose on a busy machine
torch.set_num_threads(1)
HERE = os.path.dirname(os.path.abspath(__file__))
MNIST_ROOT = os.path.join(HERE, "..", "shared", "data")
SCRIPTS = {"dcgan": dcgan, "cgan": cgan, "wgan_gp": wgan_gp}  # parametrised by name: readable ids
CPU = ["--device", "cpu"]
TINY = ["--dataset", "fake", "--ngf", "8", "--ndf", "8", "--batch-size", "16"] + CPU  # 1,024 images
# wgan_gp: its fake images are 128x128 by default, and 5 critic steps are more than a test needs
SMALL = {"dcgan": [], "cgan": [], "wgan_gp": ["--image-size", "32", "--n-critic", "2"]}
COLUMNS = {
    "dcgan": ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "grad_G", "grad_D", "spread"],
    "cgan": ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "grad_G", "grad_D", "spread"],
    "wgan_gp": ["epoch", "step", "loss_D", "loss_G", "gp", "wasserstein", "grad_G", "grad_D",
                "grad_x_hat", "spread"],
}
# the progress line's label for each logged quantity
PRINTED = {
    "dcgan": {"loss_D": "Loss_D", "loss_G": "Loss_G", "D_x": "D(x)", "D_G_z": "D(G(z))",
              "grad_G": "grad_G", "grad_D": "grad_D"},
    "cgan": {"loss_D": "Loss_D", "loss_G": "Loss_G", "D_x": "D(x,y)", "D_G_z": "D(G(z,y),y)",
             "grad_G": "grad_G", "grad_D": "grad_D"},
    "wgan_gp": {"loss_D": "Loss_D", "loss_G": "Loss_G", "gp": "GP", "wasserstein": "W",
                "grad_x_hat": "|grad D(x_hat)|", "grad_G": "grad_G", "grad_D": "grad_D"},
}
# what --resume refuses to change, as --help and the README list them, with another valid value
REFUSED = {"--dataset": "mnist", "--image-size": "64", "--nz": "7", "--ngf": "16", "--ndf": "16",
           "--batch-size": "32", "--d-steps": "3", "--seed": "1", "--lr-d": "0.1", "--lr-g": "0.1",
           "--beta1": "0.2", "--beta2": "0.5", "--out": "elsewhere", "--d-label": "off",
           "--n-critic": "3"}
REFUSED_BY = {"dcgan": [f for f in REFUSED if f not in ("--d-label", "--n-critic")],
              "cgan": [f for f in REFUSED if f != "--n-critic"],
              "wgan_gp": [f for f in REFUSED if f not in ("--d-label", "--d-steps")]}


def read_log(folder):  # log.csv: [header, row, row, ...]
    with open(os.path.join(folder, "log.csv")) as f:
        return list(csv.reader(f))


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def exits_2(main, argv, capsys):
    """main(argv) refuses its input: exit status 2, one line on stderr, no traceback -> it."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err, err
    return err


def generator(checkpoint):
    """G rebuilt from a checkpoint as the README tells a user to, in eval mode."""
    a = checkpoint["args"]
    n_classes = [checkpoint["n_classes"]] if checkpoint["script"] == "cgan" else []
    module = SCRIPTS[checkpoint["script"]]
    G = module.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"], *n_classes)
    G.load_state_dict(checkpoint["G"])
    return G.eval()


def assert_same(a, b, where):
    """Equal bit for bit: each tensor of a (nested) state dict by torch.equal, the rest by ==."""
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


def image_folder(root, classes, per_class, suffix=".png"):
    """Tiny images of odd sizes, a subfolder per class; class k of n a flat grey of k / (n - 1)."""
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        grey = 255 * k // (len(classes) - 1)
        for i in range(per_class):
            Image.new("RGB", (10 + i, 8), (grey,) * 3).save(root / name / f"{i}{suffix}")


def args_for(module, argv):
    """The flags as the script's main sees them, parsed and checked."""
    return module.parse_args(argv)[0]


def loaded(module, argv):
    """The data a script's loop would train on: (a tensor or Dataset of images, labels or None)."""
    data = module.load_data(args_for(module, argv), torch.device("cpu"))
    if module is cgan:
        data = data[0]
    if isinstance(data, torch.Tensor):
        return data, None
    if isinstance(data, torch.utils.data.TensorDataset):
        return data.tensors
    items = [data[i] for i in range(len(data))]
    if isinstance(items[0], (tuple, list)):  # ImageFolder: (image, class index)
        return torch.stack([x for x, _ in items]), torch.tensor([k for _, k in items])
    return torch.stack(items), None


def trains(main, argv):
    """main(argv) trains: a refusal there is the bug the assertion names."""
    try:
        main(argv)
    except SystemExit as e:
        pytest.fail(f"refused with exit status {e.code}: {' '.join(map(str, argv))}")


class Call:
    """One forward call of a network: a copy of it as it was called, its inputs, its output."""

    def __init__(self, name, net, inputs, output):
        self.name, self.net, self.inputs, self.output = name, net, inputs, output


@pytest.fixture
def spy(monkeypatch):
    """spy(cls, name) records every forward call of cls's networks in spy.calls, in order."""
    calls = []

    def install(cls, name):
        forward = cls.forward

        def recorded(self, *inputs):
            before = copy.deepcopy(self)  # its weights at the call, before any update that follows
            output = forward(self, *inputs)
            calls.append(Call(name, before, [x.detach().clone() for x in inputs],
                              output.detach().clone()))
            return output
        monkeypatch.setattr(cls, "forward", recorded)
    install.calls = calls
    return install


def first(calls, name):
    """The first recorded call of network `name`: its copy holds the weights main initialised."""
    return next(c for c in calls if c.name == name)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two epochs of each script, 1,024 fake images in batches of 256 -> {script: (out, stdout)}."""
    made = {}
    for script, module in SCRIPTS.items():
        out = str(tmp_path_factory.mktemp("runs") / script)
        flags = TINY + SMALL[script] + ["--batch-size", "256", "--epochs", "2", "--out", out]
        with contextlib.redirect_stdout(io.StringIO()) as stdout:
            module.main(flags)
        made[script] = out, stdout.getvalue()
    return made


# --------------------------------------------------------------------------------- the GAN's maths
@pytest.mark.parametrize("script", ["dcgan", "cgan"])
def test_losses_match_hand_computed_values(script):
    module = SCRIPTS[script]
    sigmoid = lambda l: 1 / (1 + math.exp(-l))  # D's probability of "real" from its logit
    fake, real = [0.0, 2.0, -1.0], [3.0, -0.5]
    non_saturating = -sum(math.log(sigmoid(l)) for l in fake) / 3  # -E[log D(G(z))]
    saturating = sum(math.log(1 - sigmoid(l)) for l in fake) / 3  # E[log(1 - D(G(z)))]
    loss_D = (-sum(math.log(sigmoid(l)) for l in real) / 2
              - sum(math.log(1 - sigmoid(l)) for l in fake) / 3)
    fake, real = torch.tensor(fake), torch.tensor(real)
    assert module.generator_loss(fake, "non-saturating").item() == pytest.approx(non_saturating)
    assert module.generator_loss(fake, "saturating").item() == pytest.approx(saturating)
    assert module.discriminator_loss(real, fake).item() == pytest.approx(loss_D)
    # a logit of -200: sigmoid(-200) is 0 in float32 and log(0) = -inf; on logits they stay exact
    far = torch.tensor([-200.0])
    assert module.generator_loss(far, "non-saturating").item() == pytest.approx(200.0)
    assert module.generator_loss(far, "saturating").item() == pytest.approx(0.0, abs=1e-6)
    assert module.discriminator_loss(far, -far).item() == pytest.approx(400.0)


@pytest.mark.parametrize("script", SCRIPTS)
def test_grad_norm_is_the_norm_of_all_gradients_as_one_vector(script):
    net = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2, bias=False))
    grads = [torch.full_like(p, float(i + 1)) for i, p in enumerate(net.parameters())]
    for p, g in zip(net.parameters(), grads):
        p.grad = g
    by_hand = math.sqrt(sum((g ** 2).sum().item() for g in grads))  # sqrt(12 + 16 + 72)
    assert SCRIPTS[script].grad_norm(net).item() == pytest.approx(by_hand)


def test_gradient_penalty_of_a_quadratic_critic():
    """D(x) = 0.5 * sum(w * x^2), so grad D(x) = w * x: unlike a linear critic's, the gradient
    depends on where it is taken (which x_hat, which eps for each sample), and the penalty's
    gradient reaches w only through the gradient itself (create_graph=True)."""
    torch.manual_seed(0)
    n, lambda_gp, seed = 6, 10.0, 123
    w = torch.randn(2, 4, 4).requires_grad_(True)  # one weight per pixel of an image
    real = torch.randn(n, 2, 4, 4)
    fake = torch.randn(n, 2, 4, 4) + 2
    torch.manual_seed(seed)
    eps = torch.rand(n, 1, 1, 1)  # as gradient_penalty draws it: one eps per sample
    grad = w * (eps * real + (1 - eps) * fake)  # grad D(x_hat), by hand
    by_hand = lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()
    torch.manual_seed(seed)
    critic = lambda x: 0.5 * (w * x ** 2).flatten(1).sum(1)
    penalty, slope = wgan_gp.gradient_penalty(critic, real, fake, lambda_gp)
    assert penalty.item() == pytest.approx(by_hand.item(), rel=1e-5)
    assert slope.item() == pytest.approx(grad.flatten(1).norm(dim=1).mean().item(), rel=1e-5)
    assert penalty.requires_grad, "the penalty cannot be minimised: no graph (create_graph)"
    penalty.backward()
    expected, = torch.autograd.grad(by_hand, w)
    assert w.grad.abs().max() > 0 and torch.allclose(w.grad, expected, rtol=1e-5, atol=1e-7)


def test_critic_scores_each_sample_alone():
    """No batch norm in the critic: a sample's score, so the penalty's, ignores the batch."""
    torch.manual_seed(0)
    critic = wgan_gp.Critic(8, 3, 32)
    x = torch.randn(10, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(critic(x), torch.cat([critic(x[:3]), critic(x[3:])]), atol=1e-5)


def norm_of_all(grads):  # the L2 norm of all the gradients taken together
    return torch.cat([g.flatten() for g in grads]).norm()


def assert_weights(net, expected, lr, what):
    """net's weights are those expected, up to float rounding. An element whose gradient is near 0
    may move by up to the learning rate after a rounding difference (Adam divides by |gradient|):
    1 in 1,000 of them may differ by more."""
    for name, p in net.named_parameters():
        close = (p - expected[name]).abs() <= lr / 100 + 1e-6
        assert close.float().mean().item() >= 0.999, f"{what} {name}: not the test's"


def adam_step(net, grads, lr, betas):
    """net's weights after its optimiser's first Adam step on these gradients (Adam is fresh)."""
    net = copy.deepcopy(net)
    optimiser = torch.optim.Adam(net.parameters(), lr=lr, betas=betas)
    for p, g in zip(net.parameters(), grads):
        p.grad = g
    optimiser.step()
    return net


class Replay:
    """Step 1 of a run computed again here, from the networks and batches the run used (as spied),
    with the losses written from their formulas. Adam's state carries over the critic's steps."""

    def __init__(self, calls, lr_d, lr_g, betas):
        self.G_calls = [c for c in calls if c.name == "G"]
        self.D_calls = [c for c in calls if c.name == "D"]
        self.D = copy.deepcopy(self.D_calls[0].net).requires_grad_(True)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=lr_d, betas=betas)
        self.lr_d = lr_d
        self.lr_g = lr_g
        self.betas = betas

    def d_update(self, loss):
        params = list(self.D.parameters())
        grads = torch.autograd.grad(loss, params)
        for p, g in zip(params, grads):
            p.grad = g
        self.opt_D.step()
        return norm_of_all(grads)

    def g_update(self, G, loss):
        grads = torch.autograd.grad(loss, list(G.parameters()))  # D's weights take no part
        return norm_of_all(grads), adam_step(G, grads, self.lr_g, self.betas)

    def judged_by_replayed_D(self, call, what):
        assert_weights(self.D, dict(call.net.named_parameters()), self.lr_d, f"{what}: D's")

    def bce_step(self, d_steps, loss):
        """dcgan, cgan: d_steps of L_D = -E[log D(x)] - E[log(1 - D(G(z)))], then G's loss."""
        assert len(self.D_calls) == 2 * d_steps + 1, "(real, fake) per D step, then G's step"
        for k in range(d_steps):
            real, fake = self.D_calls[2 * k:2 * k + 2]
            self.judged_by_replayed_D(real, f"D step {k + 1}")
            if k:
                previous = self.D_calls[2 * k - 2].inputs[0]
                assert not torch.equal(real.inputs[0], previous), "each D step on a new real batch"
            assert torch.equal(fake.inputs[0], self.G_calls[k].output), "D judges the fakes G drew"
            out_real = self.D(*real.inputs)
            out_fake = self.D(*fake.inputs)
            loss_D = -F.logsigmoid(out_real).mean() - F.logsigmoid(-out_fake).mean()
            D_x = torch.sigmoid(out_real).mean()  # before D's update
            D_G_z = torch.sigmoid(out_fake).mean()
            grad_D = self.d_update(loss_D)
        judged = self.D_calls[-1]
        self.judged_by_replayed_D(judged, "G's step")
        made = self.G_calls[d_steps - 1]  # G's step scores the last D step's fakes again
        G = copy.deepcopy(made.net).requires_grad_(True)
        fake = G(*made.inputs)
        assert torch.equal(judged.inputs[0], made.output), "G's step judges the last D step's fakes"
        out = self.D(fake, *judged.inputs[1:])
        if loss == "non-saturating":
            loss_G = -F.logsigmoid(out).mean()  # -E[log D(G(z))]
        else:
            loss_G = F.logsigmoid(-out).mean()  # E[log(1 - D(G(z)))]
        grad_G, G = self.g_update(G, loss_G)
        values = {"loss_D": loss_D, "loss_G": loss_G, "D_x": D_x, "D_G_z": D_G_z,
                  "grad_G": grad_G, "grad_D": grad_D}
        # the progress line shows 3 decimals: a swap must show
        assert abs(D_x - D_G_z) > 2e-3, "the test cannot tell D(x) from D(G(z)) at these weights"
        return {k: v.item() for k, v in values.items()}, G

    def wgan_step(self, n_critic, lambda_gp):
        """wgan_gp: n_critic steps of L_D = E[D(G(z))] - E[D(x)] + penalty, then -E[D(G(z))]."""
        assert len(self.D_calls) == 3 * n_critic + 1, "(real, fake, x_hat) per D step, then G's"
        for k in range(n_critic):
            real, fake, between = self.D_calls[3 * k:3 * k + 3]
            self.judged_by_replayed_D(real, f"critic step {k + 1}")
            if k:
                previous = self.D_calls[3 * k - 3].inputs[0]
                assert not torch.equal(real.inputs[0], previous), "each D step on a new real batch"
            assert torch.equal(fake.inputs[0], self.G_calls[k].output), "D judges the fakes G drew"
            x, x_fake, x_hat = real.inputs[0], fake.inputs[0], between.inputs[0]
            d = (x - x_fake).flatten(1)
            # x_hat's place on the line from fake to real, per sample
            eps = ((x_hat - x_fake).flatten(1) * d).sum(1) / d.pow(2).sum(1)
            on_line = eps[:, None, None, None] * x + (1 - eps[:, None, None, None]) * x_fake
            assert torch.allclose(x_hat, on_line, atol=1e-5), "x_hat is not between real and fake"
            assert ((eps >= 0) & (eps <= 1)).all() and eps.std() > 0, "eps ~ U[0, 1] per sample"
            score_real = self.D(x).mean()
            score_fake = self.D(x_fake).mean()
            x_hat = x_hat.clone().requires_grad_(True)
            slope = torch.autograd.grad(self.D(x_hat).sum(), x_hat, create_graph=True)[0]
            slope = slope.flatten(1).norm(dim=1)  # ||grad D(x_hat_i)||, one per sample
            gp = lambda_gp * ((slope - 1) ** 2).mean()
            loss_D = score_fake - score_real + gp
            W = score_real - score_fake  # from before the critic's update
            grad_D = self.d_update(loss_D)
        judged = self.D_calls[-1]
        self.judged_by_replayed_D(judged, "G's step")
        made = self.G_calls[n_critic]  # G's step draws fresh fakes
        G = copy.deepcopy(made.net).requires_grad_(True)
        fake = G(*made.inputs)
        assert torch.equal(judged.inputs[0], made.output), "G's step judges its own fresh fakes"
        loss_G = -self.D(fake).mean()
        grad_G, G = self.g_update(G, loss_G)
        values = {"loss_D": loss_D, "loss_G": loss_G, "gp": gp, "wasserstein": W,
                  "grad_G": grad_G, "grad_D": grad_D, "grad_x_hat": slope.mean()}
        return {k: v.item() for k, v in values.items()}, G


def shown(script, out, stdout):
    """Step 1's values as the run shows them: {quantity: [log.csv, checkpoint, progress line]}."""
    header, row = read_log(out)[:2]
    history = load(os.path.join(out, "checkpoint.pt"))["history"][0]
    line, = [line for line in stdout.splitlines() if line.startswith("[1/")]
    values = {}
    for name, label in PRINTED[script].items():
        printed = re.search(re.escape(label) + r" (-?[0-9.]+(?:e[-+]?[0-9]+)?)( |$)", line)
        assert printed, f"the progress line shows no {label}: {line}"
        values[name] = [float(row[header.index(name)]), history[header.index(name) - 2],
                        float(printed.group(1))]
    return values


STEP_CASES = [("dcgan", []), ("dcgan", ["--loss", "saturating"]), ("dcgan", ["--d-steps", "2"]),
              ("cgan", []), ("cgan", ["--d-label", "off"]), ("wgan_gp", ["--n-critic", "2"]),
              ("wgan_gp", ["--n-critic", "3", "--lambda-gp", "3"]),
              ("wgan_gp", ["--n-critic", "1", "--lambda-gp", "0"])]


@pytest.mark.parametrize("script, flags", STEP_CASES,
                         ids=[" ".join([s] + f) for s, f in STEP_CASES])
def test_each_value_a_run_shows_is_its_own_quantity(script, flags, spy, tmp_path):
    """Losses, D's outputs, gradient norms, W, the penalty and the slope in log.csv, the
    checkpoint's history and the progress line equal the test's own computation of step 1, and the
    weights after it one Adam step on the test's own gradients: each flag reaches the maths."""
    module = SCRIPTS[script]
    spy(module.Generator, "G")
    spy(wgan_gp.Critic if module is wgan_gp else module.Discriminator, "D")
    lr_d, lr_g, betas = 3e-3, 7e-3, (0.3, 0.95)  # not the defaults: each must reach its optimiser
    out = str(tmp_path / "run")
    argv = TINY + SMALL[script] + flags + ["--lr-d", str(lr_d), "--lr-g", str(lr_g),
                                           "--beta1", str(betas[0]), "--beta2", str(betas[1]),
                                           "--max-steps", "1", "--out", out]
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        module.main(argv)
    replay = Replay(spy.calls, lr_d, lr_g, betas)
    given = dict(zip(flags[::2], flags[1::2]))
    if module is wgan_gp:
        lambda_gp = float(given.get("--lambda-gp", 10))
        expected, G = replay.wgan_step(int(given["--n-critic"]), lambda_gp)
    else:
        d_steps = int(given.get("--d-steps", 1))
        expected, G = replay.bce_step(d_steps, given.get("--loss", "non-saturating"))
    for name, (logged, history, printed) in shown(script, out, stdout.getvalue()).items():
        value = expected[name]
        assert logged == pytest.approx(value, rel=1e-4, abs=1e-6), f"log.csv's {name}"
        assert history == pytest.approx(value, rel=1e-4, abs=1e-6), f"the history's {name}"
        assert printed == pytest.approx(value, rel=5e-3, abs=6e-4), f"the progress line's {name}"
    checkpoint = load(os.path.join(out, "checkpoint.pt"))
    assert_weights(G, checkpoint["G"], lr_g, "G's")
    assert_weights(replay.D, checkpoint["D"], lr_d, "D's")
    if given.get("--d-label") == "off":  # D judges the image alone
        D, (x, y) = replay.D, replay.D_calls[0].inputs
        with torch.no_grad():
            assert torch.equal(D(x, y), D(x, y.roll(1, dims=1)))


# --------------------------------------------------------------------------------- training learns
def two_squares():
    pattern = torch.full((1, 32, 32), -1.0)
    pattern[:, 4:14, 4:14] = 1.0
    pattern[:, 18:28, 14:30] = 1.0
    return pattern


def distances(G, checkpoint, patterns, n_classes=0):
    """Mean squared distance of G's samples (the fixed noise, G.eval()) to each pattern in turn;
    for a cGAN, class k's samples to pattern k."""
    noise = checkpoint["fixed_noise"]
    G.eval()
    with torch.no_grad():
        if not n_classes:
            return [(G(noise) - p).pow(2).mean().item() for p in patterns]
        y = [F.one_hot(torch.full((len(noise),), k), n_classes).float() for k in range(n_classes)]
        return [(G(noise, y[k]) - p).pow(2).mean().item() for k, p in enumerate(patterns)]


def test_dcgan_learns_a_fixed_pattern(spy, tmp_path, monkeypatch):
    """Every training image is one picture, two bright squares on black: in 200 steps G's samples
    come several times closer to it than the untrained G's (a test that fails with --lr-g 0, or
    with a loss's sign flipped)."""
    pattern = two_squares()
    monkeypatch.setattr(dcgan, "load_data", lambda *args: pattern.expand(8192, 1, 32, 32))
    spy(dcgan.Generator, "G")
    out = tmp_path / "run"  # --dataset mnist for its 1 channel; rates above the defaults: quicker
    dcgan.main(["--dataset", "mnist", "--ngf", "8", "--ndf", "8", "--batch-size", "16",
                "--lr-g", "4e-3", "--lr-d", "2e-3", "--max-steps", "200", "--out", str(out)] + CPU)
    checkpoint = load(out / "checkpoint.pt")
    trained, = distances(generator(checkpoint), checkpoint, [pattern])
    untrained, = distances(first(spy.calls, "G").net, checkpoint, [pattern])
    assert trained < untrained / 4, (trained, untrained)


def test_cgan_learns_each_class_its_own_pattern(spy, tmp_path, monkeypatch):
    """Class 0's images are one picture, class 1's another: in 200 steps the samples drawn for each
    class come several times closer to that class's picture, and stay far from the other's."""
    square = two_squares()
    pictures = torch.stack([square, square.flip(-1).flip(-2)])
    labels = torch.arange(8192) % 2
    data = torch.utils.data.TensorDataset(pictures[labels], labels)
    monkeypatch.setattr(cgan, "load_data", lambda *args: (data, ["a", "b"]))
    spy(cgan.Generator, "G")
    out = tmp_path / "run"
    cgan.main(["--dataset", "mnist", "--ngf", "8", "--ndf", "8", "--batch-size", "16",
               "--lr-g", "4e-3", "--lr-d", "2e-3", "--max-steps", "200", "--out", str(out)] + CPU)
    checkpoint = load(out / "checkpoint.pt")
    G = generator(checkpoint)
    trained = distances(G, checkpoint, pictures, 2)
    swapped = distances(G, checkpoint, pictures.flip(0), 2)
    untrained = distances(first(spy.calls, "G").net, checkpoint, pictures, 2)
    for k in range(2):
        assert trained[k] < untrained[k] / 4, (k, trained, untrained)
        assert trained[k] < swapped[k] / 4, (k, trained, swapped)


def test_wgan_gp_learns_a_fixed_pattern(spy, tmp_path, monkeypatch):
    """As dcgan's test: one picture, and in 150 steps (1 critic step each) G draws it."""
    pattern = two_squares()
    monkeypatch.setattr(wgan_gp, "load_data", lambda *args: pattern.expand(8192, 1, 32, 32))
    spy(wgan_gp.Generator, "G")
    out = tmp_path / "run"
    wgan_gp.main(["--dataset", "mnist", "--image-size", "32", "--ngf", "8", "--ndf", "8",
                  "--batch-size", "16", "--n-critic", "1", "--lr-g", "1e-3", "--lr-d", "1e-3",
                  "--max-steps", "150", "--out", str(out)] + CPU)
    checkpoint = load(out / "checkpoint.pt")
    trained, = distances(generator(checkpoint), checkpoint, [pattern])
    untrained, = distances(first(spy.calls, "G").net, checkpoint, [pattern])
    assert trained < untrained / 4, (trained, untrained)


@pytest.mark.parametrize("frozen", ["G", "D"])
def test_lr_0_freezes_that_network(frozen, spy, tmp_path):
    spy(dcgan.Generator, "G")
    spy(dcgan.Discriminator, "D")
    out = tmp_path / "run"
    dcgan.main(TINY + [f"--lr-{frozen.lower()}", "0", "--max-steps", "3", "--out", str(out)])
    checkpoint = load(out / "checkpoint.pt")
    for net in ("G", "D"):  # the weights (batch norm's running statistics move in any case)
        initial = first(spy.calls, net).net.named_parameters()
        unchanged = all(torch.equal(p, checkpoint[net][name]) for name, p in initial)
        assert unchanged == (net == frozen), net


# --------------------------------------------------------------------------------------- hints
def history(script, steps, **signals):
    """A history of `steps` healthy rows, as the README's default runs read; `signals` replaces a
    column's value (from row `start` on, default 0), e.g. D_G_z=0.95 or grad_G=(0.5, 150)."""
    healthy = {"loss_D": 1.0, "loss_G": 1.2, "D_x": 0.7, "D_G_z": 0.3, "grad_G": 7.0,
               "grad_D": 40.0, "gp": 0.05, "wasserstein": 1.0, "grad_x_hat": 1.0}
    names = COLUMNS[script][2:-1]
    rows = []
    for step in range(steps):
        row = []
        for name in names:
            value, start = signals.get(name, (healthy[name], 0))
            row.append(value if step >= start else healthy[name])
        rows.append(row + [None])
    rows[-1][-1] = signals.get("spread", 0.3)
    return rows


def hints_of(script, rows, first, tmp_path, capsys, apart=0.3):
    capsys.readouterr()
    extra = [apart] if script == "cgan" else []
    SCRIPTS[script].say_hints(rows, first, str(tmp_path), *extra)
    printed = capsys.readouterr().out.splitlines()
    assert all(line.startswith("hint: ") for line in printed)
    written = (tmp_path / "hints.txt").read_text().splitlines()
    assert not printed or written[-len(printed):] == printed
    return "\n".join(printed)


HINT_CASES = [  # (script, signals, words the hint must say)
    ("dcgan", {"D_x": (0.95, 0), "D_G_z": (0.05, 0)}, "D won"),
    ("cgan", {"D_x": (0.95, 0), "D_G_z": (0.05, 0)}, "D won"),
    ("dcgan", {"D_G_z": (0.95, 0)}, "fooled"),
    ("dcgan", {"grad_G": (1.0, 300), "D_G_z": (0.15, 300), "loss_G": (-0.1, 300)}, "vanishes"),
    ("cgan", {"grad_G": (1.0, 300), "D_G_z": (0.15, 300), "loss_G": (-0.1, 300)}, "vanishes"),
    ("dcgan", {"grad_G": (150.0, 0)}, "explode"),
    ("dcgan", {"spread": 0.05}, "mode collapse"),
    ("cgan", {"spread": 0.05}, "mode collapse"),
    ("wgan_gp", {"spread": 0.05}, "mode collapse"),
    ("wgan_gp", {"grad_x_hat": (6.0, 0)}, "slope"),
    ("wgan_gp", {"grad_x_hat": (0.1, 0)}, "slope"),
]


@pytest.mark.parametrize("script, signals, words", HINT_CASES,
                         ids=[f"{s} {w}" for s, _, w in HINT_CASES])
def test_a_hint_names_what_its_signal_shows(script, signals, words, tmp_path, capsys):
    rows = history(script, 600, **signals)  # epoch 2 of 300-step epochs
    said = hints_of(script, rows, 300, tmp_path, capsys)
    assert words in said and said.count("hint: ") == 1, said
    assert 'see "What to watch"' in said


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_healthy_epoch_gives_no_hint(script, tmp_path, capsys):
    for first in (0, 300):  # the first epoch too: D leads in every run's first steps
        rows = history(script, first + 300)
        if first == 0:
            for row in rows[:60]:
                row[2:4] = [0.95, 0.05]
        assert hints_of(script, rows, first, tmp_path, capsys) == ""


def test_cgan_hint_when_the_rows_are_alike(tmp_path, capsys):
    said = hints_of("cgan", history("cgan", 600), 300, tmp_path, capsys, apart=0.02)
    assert "ignores the label" in said and said.count("hint: ") == 1


def test_wgan_gp_hint_when_w_rises_through_an_epoch(tmp_path, capsys):
    rows = history("wgan_gp", 600)
    for i, row in enumerate(rows[300:]):
        row[3] = 1.0 + i / 100  # W from 1 to 4 in the epoch
    said = hints_of("wgan_gp", rows, 300, tmp_path, capsys)
    assert "W rose" in said and said.count("hint: ") == 1
    rows[299][-1] = 0.3  # a grid's spread at the first epoch's end
    assert hints_of("wgan_gp", rows[:300], 0, tmp_path, capsys) == ""  # the first epoch: it may


def test_hints_txt_keeps_earlier_hints(tmp_path, capsys):
    rows = history("dcgan", 600, spread=0.05)
    hints_of("dcgan", rows, 0, tmp_path, capsys)
    hints_of("dcgan", rows, 300, tmp_path, capsys)  # as a resumed run does
    assert len((tmp_path / "hints.txt").read_text().splitlines()) == 2


# ------------------------------------------------------------------------------------ the networks
def sizes_through(net, inputs, layer_types):
    """The output shape of each layer of these types, in the order a forward pass meets them."""
    shapes = []
    hooks = [m.register_forward_hook(lambda m, i, o: shapes.append(tuple(o.shape[1:])))
             for m in net.modules() if isinstance(m, layer_types)]
    with torch.no_grad():
        out = net(*inputs)
    for hook in hooks:
        hook.remove()
    return shapes, out


NET_CASES = [("dcgan", 32), ("dcgan", 64), ("cgan", 32), ("cgan", 64), ("wgan_gp", 32),
             ("wgan_gp", 64), ("wgan_gp", 128)]


@pytest.mark.parametrize("script, size", NET_CASES, ids=[f"{s}-{n}" for s, n in NET_CASES])
def test_networks_double_and_halve_to_one_score_per_image(script, size):
    """G grows a 4x4 map by doubling to the image; D halves the image to 4x4, then one score per
    image (a 5x5 map of scores, a patch discriminator, would be a block short)."""
    module = SCRIPTS[script]
    nz, ngf, ndf, nc, batch = 12, 4, 4, 3, 5
    convs = (nn.Conv2d, nn.ConvTranspose2d)
    extra = [7] if module is cgan else []  # n_classes
    G = module.Generator(nz, ngf, nc, size, *extra)
    D = (wgan_gp.Critic if module is wgan_gp else module.Discriminator)(ndf, nc, size, *extra)
    z = torch.randn(batch, nz) if module is wgan_gp else torch.randn(batch, nz, 1, 1)
    y = [F.one_hot(torch.arange(batch) % 7, 7).float()] if extra else []
    g_shapes, images = sizes_through(G, [z] + y, convs)
    d_shapes, scores = sizes_through(D, [images] + y, convs)
    assert images.shape == (batch, nc, size, size) and images.abs().max() <= 1  # Tanh
    assert scores.shape == (batch,), "one score per image"
    g_sides = [s[-1] for s in g_shapes]
    d_sides = [s[-1] for s in d_shapes]
    doubling = [4 * 2 ** i for i in range(int(math.log2(size // 4)) + 1)]  # 4, 8, ..., size
    if module is wgan_gp:  # a linear layer makes the 4x4 map; each block convolves after upsampling
        assert g_sides == doubling[1:] + [size] and d_sides == doubling[::-1][1:]
    else:
        assert g_sides == doubling and d_sides == doubling[::-1][1:] + [1]
    assert g_shapes[-1][0] == nc and d_shapes[0][0] == ndf


INITS = [("dcgan", "custom", 32), ("dcgan", "custom", 64), ("dcgan", "normal", 64),
         ("dcgan", "default", 32), ("cgan", "custom", 64), ("cgan", "normal", 32),
         ("cgan", "default", 64)]


class Stop(Exception):
    pass


@pytest.mark.parametrize("script, init, size", INITS, ids=[f"{s}-{i}-{n}" for s, i, n in INITS])
def test_weight_init_as_documented(script, init, size, spy, tmp_path, monkeypatch):
    """normal: DCGAN's N(0, 0.02) convolutions, batch-norm scales N(1, 0.02) and shifts 0; custom:
    the same, but G's last layer keeps PyTorch's init at 64x64; default: PyTorch's own everywhere
    (uniform convolutions within 1/sqrt(fan_in), scales 1)."""
    module = SCRIPTS[script]
    spy(module.Generator, "G")
    spy(module.Discriminator, "D")
    judge = module.Discriminator.forward

    def judge_then_stop(self, *inputs):  # the networks as main initialised them: no step needed
        judge(self, *inputs)
        raise Stop
    monkeypatch.setattr(module.Discriminator, "forward", judge_then_stop)
    with pytest.raises(Stop):
        module.main(TINY + ["--ngf", "16", "--ndf", "16", "--weight-init", init,
                            "--image-size", str(size), "--out", str(tmp_path / "run")])
    G = first(spy.calls, "G").net
    D = first(spy.calls, "D").net
    last = [m for m in G.modules() if isinstance(m, nn.ConvTranspose2d)][-1]
    for net in (G, D):
        for m in net.modules():
            pytorch_own = init == "default" or (m is last and init == "custom" and size == 64)
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                w = m.weight.detach()
                fan_in = w.shape[1] * w.shape[2] * w.shape[3]
                bound = 1 / math.sqrt(fan_in)  # PyTorch's: kaiming_uniform_ with a = sqrt(5)
                std = bound / math.sqrt(3) if pytorch_own else 0.02
                assert abs(w.std().item() / std - 1) < 0.2 and abs(w.mean().item()) < std / 4, m
                if pytorch_own:
                    assert w.abs().max() <= bound, m
            elif isinstance(m, nn.BatchNorm2d):
                scale, shift = m.weight.detach(), m.bias.detach()
                assert torch.equal(shift, torch.zeros_like(shift)), m
                if init == "default":
                    assert torch.equal(scale, torch.ones_like(scale)), m
                else:
                    assert abs(scale.mean().item() - 1) < 0.02 and 0.01 < scale.std() < 0.03, m


# ------------------------------------------------------------------------ the data each path gives
# Three images whose pixels are 0, 51 and 255: in [-1, 1] they read -1, -0.6 and 1.
LEVELS = torch.tensor([0, 51, 255], dtype=torch.uint8)
SCALED = torch.tensor([-1.0, -0.6, 1.0])


def write_idx(raw, kind, images, labels):
    """MNIST's and Fashion-MNIST's idx files: big-endian magic number and sizes, then the bytes."""
    with open(raw / f"{kind}-images-idx3-ubyte", "wb") as f:
        f.write(struct.pack(">4i", 2051, *images.shape) + images.numpy().tobytes())
    with open(raw / f"{kind}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">2i", 2049, len(labels)) + labels.numpy().tobytes())


IDX_CASES = [("dcgan", "mnist"), ("dcgan", "fashion-mnist"), ("cgan", "fashion-mnist"),
             ("wgan_gp", "mnist")]


@pytest.mark.parametrize("script, dataset", IDX_CASES, ids=[f"{s}-{d}" for s, d in IDX_CASES])
def test_idx_files_load_in_minus_1_to_1(script, dataset, tmp_path):
    raw = tmp_path / ("MNIST" if dataset == "mnist" else "FashionMNIST") / "raw"
    raw.mkdir(parents=True)
    images = LEVELS[:, None, None].expand(3, 28, 28).contiguous()
    labels = torch.tensor([4, 0, 9], dtype=torch.uint8)
    for kind in ("train", "t10k"):
        write_idx(raw, kind, images, labels)
    size = ["--image-size", "32"] if script == "wgan_gp" else []
    argv = ["--dataset", dataset, "--data-root", str(tmp_path)] + size + CPU
    x, y = loaded(SCRIPTS[script], argv)
    assert x.shape == (3, 1, 32, 32)  # 28 pixels resized to 32, one channel
    assert torch.allclose(x, SCALED[:, None, None, None].expand_as(x), atol=1e-6)
    if y is not None:
        assert y.tolist() == labels.tolist()


def write_cifar10(folder, n_per_file):
    """CIFAR-10's pickled batches: rows of 3,072 bytes (the red plane, then green, then blue)."""
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for i, name in enumerate(names):
        colour = torch.stack([LEVELS.roll(i)] * n_per_file)  # red, green, blue levels
        data = colour[:, :, None].expand(-1, 3, 1024).reshape(n_per_file, 3072).numpy()
        with open(folder / name, "wb") as f:
            pickle.dump({"data": data, "labels": [i] * n_per_file}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class{k}" for k in range(10)]}, f)


@pytest.mark.parametrize("script", SCRIPTS)
def test_cifar10_batches_load_in_minus_1_to_1_channels_in_order(script, tmp_path, monkeypatch):
    write_cifar10(tmp_path / "cifar-10-batches-py", 2)
    # our files are not the real ones: torchvision's checksums are skipped, in this test only
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity",
                        lambda path, md5=None: os.path.isfile(path))
    size = ["--image-size", "32"] if script == "wgan_gp" else []
    argv = ["--dataset", "cifar10", "--data-root", str(tmp_path)] + size + CPU
    x, y = loaded(SCRIPTS[script], argv)
    assert x.shape == (10, 3, 32, 32)  # the five training batches of 2, not the test batch
    for i in range(5):
        expected = SCALED.roll(i)[:, None, None].expand(3, 32, 32)
        assert torch.allclose(x[2 * i], expected, atol=1e-6), f"data_batch_{i + 1}'s colour"
    if y is not None:
        assert y.tolist() == [i for i in range(5) for _ in range(2)]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_folder_loads_in_minus_1_to_1_upper_case_names_too(script, tmp_path):
    """Black and white images named .PNG, .png, .JPG and .jpeg, in two subfolders (classes)."""
    for k, name in enumerate(["black", "white"]):
        (tmp_path / name).mkdir()
        for i, suffix in enumerate([".PNG", ".png", ".JPG", ".jpeg"]):
            image = Image.new("RGB", (20 + 3 * i, 16), (255 * k,) * 3)
            image.save(tmp_path / name / f"{i}{suffix}")
    size = ["--image-size", "32"] if script == "wgan_gp" else []
    argv = ["--dataset", "folder", "--data-root", str(tmp_path), "--workers", "0",
            "--batch-size", "4"] + size + CPU
    x, y = loaded(SCRIPTS[script], argv)
    assert x.shape == (8, 3, 32, 32), "every image, whatever the case of its name"
    assert x[:4].max() <= -0.95 and x[4:].min() >= 0.95  # sorted: black first
    if y is not None:
        assert y.tolist() == [0] * 4 + [1] * 4


def test_dcgan_trains_on_a_folder_of_subfolders(tmp_path):
    image_folder(tmp_path / "data", ["a", "b"], 8)  # 16 images: 4 batches of 4
    flags = ["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--ngf", "8",
             "--ndf", "8", "--batch-size", "4", "--epochs", "1"] + CPU
    for workers in ("0", "2"):
        dcgan.main(flags + ["--workers", workers, "--out", str(tmp_path / workers)])
    by_main = load(tmp_path / "0" / "checkpoint.pt")
    by_workers = load(tmp_path / "2" / "checkpoint.pt")
    assert by_main["step"] == 4 and by_main["nc"] == 3
    # worker processes decode the same batches, in the same order
    assert_same(by_main["G"], by_workers["G"], "G")


def test_wgan_gp_trains_on_a_flat_folder(tmp_path):
    (tmp_path / "data").mkdir()
    for i in range(8):
        Image.new("RGB", (40 + i, 36), (30 * i, 100, 200)).save(tmp_path / "data" / f"{i}.jpg")
    wgan_gp.main(["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--image-size",
                  "32", "--ngf", "8", "--ndf", "8", "--batch-size", "4", "--n-critic", "1",
                  "--workers", "0", "--epochs", "1", "--out", str(tmp_path / "run")] + CPU)
    assert len(read_log(tmp_path / "run")) == 1 + 2


def test_cgan_labels_reach_g_and_d_alike(spy, tmp_path):
    """In a training step G draws the fakes for the real batch's labels, and D judges the real
    images and the fakes with those same labels; each class's images are their own grey, so an
    image tells its label."""
    image_folder(tmp_path / "data", ["a", "b", "c"], 8)
    spy(cgan.Generator, "G")
    spy(cgan.Discriminator, "D")
    out = tmp_path / "run"
    cgan.main(["--dataset", "folder", "--data-root", str(tmp_path / "data"), "--workers", "0",
               "--ngf", "8", "--ndf", "8", "--batch-size", "12", "--max-steps", "1",
               "--out", str(out)] + CPU)
    # G draws the fakes; D judges real, fake (its step), fake (G's step); then G draws the grid
    assert [call.name for call in spy.calls] == ["G", "D", "D", "D", "G"]
    drawn, judged_real, judged_fake, judged_by_G = spy.calls[:4]
    (z, y), fake = drawn.inputs, drawn.output
    real = judged_real.inputs[0]
    labels = ((real.mean(dim=(1, 2, 3)) + 1) * (3 - 1) / 2).round().long()  # grey k / 2: class k
    assert labels.unique().numel() > 1 and torch.equal(y, F.one_hot(labels, 3).float())
    for call in (judged_real, judged_fake, judged_by_G):
        assert torch.equal(call.inputs[1], y)
    # D's step, then G's, judge the fakes G drew
    assert torch.equal(judged_fake.inputs[0], fake) and torch.equal(judged_by_G.inputs[0], fake)
    checkpoint = load(out / "checkpoint.pt")
    assert checkpoint["n_classes"] == 3
    a, G = checkpoint["args"], generator(checkpoint)
    D = cgan.Discriminator(a["ndf"], checkpoint["nc"], a["image_size"], checkpoint["n_classes"])
    D.load_state_dict(checkpoint["D"])
    D.eval()
    other = y.roll(1, dims=1)  # every image given another class
    with torch.no_grad():  # and both networks answer to the label
        assert (G(z, y) - G(z, other)).abs().max() > 1e-4
        assert (D(real, y) - D(real, other)).abs().max() > 1e-4


def test_celeba_faces_lose_their_top_and_bottom_then_shrink(tmp_path):
    """CelebA's aligned faces are 178x218: the centre 178x178 square is kept (20 rows off the top
    and the bottom), then resized. Here those 20-row bands are white and the square black."""
    folder = tmp_path / "celeba" / "img_align_celeba"
    folder.mkdir(parents=True)
    for i in range(3):
        face = Image.new("RGB", (178, 218), (0, 0, 0))
        for top in (0, 198):
            face.paste((255, 255, 255), (0, top, 178, top + 20))
        face.save(folder / f"{i:06d}.jpg", quality=100)
    x, _ = loaded(wgan_gp, ["--dataset", "celeba", "--data-root", str(tmp_path),
                            "--image-size", "32", "--batch-size", "2", "--workers", "0"] + CPU)
    assert x.shape == (3, 3, 32, 32)
    assert x.max() < -0.8, "the white bands were not cropped off"


# ------------------------------------------------------------------------------- what a run writes
def grid_cells(path, rows, columns):
    """The images of a saved grid (2 pixels of padding), as rows x columns x C x H x W in [0, 1]."""
    with Image.open(path) as grid:
        pixels = pil_to_tensor(grid.convert("RGB")).float() / 255
    side = (pixels.shape[-1] - 2) // columns - 2
    return torch.stack([torch.stack([pixels[:, 2 + r * (side + 2):2 + r * (side + 2) + side,
                                            2 + c * (side + 2):2 + c * (side + 2) + side]
                                     for c in range(columns)]) for r in range(rows)])


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_run_writes_its_grids_plots_log_and_checkpoint(script, runs):
    out, stdout = runs[script]
    assert stdout.strip().splitlines()[-1] == f"Run folder: {out}"
    for name in ("samples_epoch_001.png", "samples_epoch_002.png", "progress.gif", "losses.png"):
        assert os.path.getsize(os.path.join(out, name)) > 0, name
    header, *rows = read_log(out)
    assert header == COLUMNS[script]
    per_epoch = len(rows) // 2
    spread = header.index("spread")
    steps = [(int(r[0]), int(r[1])) for r in rows]
    assert steps == [(s // per_epoch + 1, s + 1) for s in range(2 * per_epoch)]
    assert all(math.isfinite(float(v)) for r in rows for v in r[2:spread])
    assert [bool(r[spread]) for r in rows] == ([False] * (per_epoch - 1) + [True]) * 2  # at grids
    if "D_x" in header:
        assert all(0 < float(r[header.index(name)]) < 1 for r in rows for name in ("D_x", "D_G_z"))
    checkpoint = load(os.path.join(out, "checkpoint.pt"))
    assert checkpoint["script"] == script and checkpoint["nc"] == 3
    assert checkpoint["step"] == len(rows) == len(checkpoint["history"])
    assert [list(map(float, r[2:spread])) == pytest.approx(h[:spread - 2], rel=1e-4)
            for r, h in zip(rows, checkpoint["history"])] == [True] * len(rows)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_last_grid_is_g_on_the_fixed_noise_and_its_spread(script, runs):
    """dcgan, wgan_gp: 8 x 8 samples of G.eval() on the fixed noise. cgan: row k draws class k,
    column j uses the same z in every row. The spread: each pixel's std across z, averaged (cgan:
    across a row's z, then over the rows)."""
    out, _ = runs[script]
    checkpoint = load(os.path.join(out, "checkpoint.pt"))
    G, noise = generator(checkpoint), checkpoint["fixed_noise"]
    with torch.no_grad():
        if script == "cgan":
            n = checkpoint["n_classes"]
            rows = []
            for k in range(n):  # one image at a time: no helper of the script's
                y = F.one_hot(torch.tensor([k]), n).float()
                rows.append(torch.cat([G(noise[j:j + 1], y) for j in range(len(noise))]))
            images = torch.stack(rows)
        else:
            images = G(noise).view(8, 8, *G(noise).shape[1:])
    cells = grid_cells(os.path.join(out, "samples_epoch_002.png"), *images.shape[:2])
    assert (cells - (images + 1) / 2).abs().max() <= 1.5 / 255  # [-1, 1] shown as [0, 1]
    if script == "cgan":
        spread = images.std(dim=1).mean().item()
    else:
        spread = images.flatten(0, 1).std(dim=0).mean().item()
    header, *rows = read_log(out)
    assert float(rows[-1][header.index("spread")]) == pytest.approx(spread, rel=1e-3)


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_gif_shows_the_grids_in_epoch_order(script, runs, tmp_path):
    """Epoch 1's grid made black and epoch 2's white, a third epoch's GIF shows black, white, then
    epoch 3's grid."""
    out = tmp_path / "run"
    shutil.copytree(runs[script][0], out)
    side = Image.open(out / "samples_epoch_001.png").size
    Image.new("RGB", side, (0, 0, 0)).save(out / "samples_epoch_001.png")
    Image.new("RGB", side, (255, 255, 255)).save(out / "samples_epoch_002.png")
    with contextlib.redirect_stdout(io.StringIO()):
        argv = ["--resume", str(out / "checkpoint.pt"), "--epochs", "3"] + CPU
        trains(SCRIPTS[script].main, argv)
    with Image.open(out / "samples_epoch_003.png") as grid:
        third = pil_to_tensor(grid.convert("RGB")).float()
    expected = [torch.zeros_like(third), torch.full_like(third, 255), third]
    with Image.open(out / "progress.gif") as gif:
        assert gif.n_frames == 3
        for i in range(3):
            gif.seek(i)
            frame = pil_to_tensor(gif.convert("RGB")).float()
            assert (frame - expected[i]).abs().mean() < 8, f"frame {i + 1}: not epoch {i + 1}'s"


# ---------------------------------------------------------------------------------------- resuming
@pytest.mark.parametrize("script", SCRIPTS)
def test_resume_is_exact_with_and_without_ctrl_c(script, tmp_path, monkeypatch):
    """6 steps straight (4 per epoch) equal 2 steps, then --resume to 6 that Ctrl-C stops in step 3,
    then --resume to 6: the same weights, optimiser states and log, bit for bit."""
    module = SCRIPTS[script]
    steps = ["--d-steps", "2"] if script != "wgan_gp" else []
    flags = TINY + SMALL[script] + ["--batch-size", "128"] + steps
    module.main(flags + ["--max-steps", "6", "--out", str(tmp_path / "whole")])
    module.main(flags + ["--max-steps", "2", "--out", str(tmp_path / "parts")])
    checkpoint = str(tmp_path / "parts" / "checkpoint.pt")
    grad_norm = module.grad_norm

    def grad_norm_then_ctrl_c(net):  # G's gradient norm: between D's updates and G's
        if isinstance(net, module.Generator):
            os.kill(os.getpid(), signal.SIGINT)
        return grad_norm(net)
    with monkeypatch.context() as patched:
        patched.setattr(module, "grad_norm", grad_norm_then_ctrl_c)
        try:
            module.main(["--resume", checkpoint, "--max-steps", "6"] + CPU)
        except KeyboardInterrupt:
            pytest.fail("Ctrl-C was not caught: the run stopped without saving")
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # Ctrl-C as usual again
    stopped = load(checkpoint)  # step 3 was made whole: D's 2 updates (--d-steps, --n-critic), G's
    assert stopped["step"] == 3 and len(read_log(tmp_path / "parts")) == 1 + 3
    assert stopped["opt_G"]["state"][0]["step"] == 3
    assert stopped["opt_D"]["state"][0]["step"] == 3 * 2
    assert (tmp_path / "parts" / "losses.png").stat().st_size > 0
    module.main(["--resume", checkpoint, "--max-steps", "6"] + CPU)  # across epochs' boundary

    whole, parts = load(tmp_path / "whole" / "checkpoint.pt"), load(checkpoint)
    assert whole["step"] == parts["step"] == 6
    for name in ("G", "D", "opt_G", "opt_D", "fixed_noise"):
        assert_same(whole[name], parts[name], name)
    a, b = read_log(tmp_path / "whole"), read_log(tmp_path / "parts")
    spread = a[0].index("spread")  # a stopped run drew a grid, and logged its spread, there
    assert [r[:spread] for r in a] == [r[:spread] for r in b] and a[-1] == b[-1]


REFUSALS = [(script, flag) for script in SCRIPTS for flag in REFUSED_BY[script]]


@pytest.mark.parametrize("script, flag", REFUSALS, ids=[f"{s} {f}" for s, f in REFUSALS])
def test_resume_refuses_a_flag_that_shapes_the_saved_state(script, flag, runs, capsys):
    own = os.path.join(runs[script][0], "checkpoint.pt")
    saved = open(own, "rb").read()
    err = exits_2(SCRIPTS[script].main, ["--resume", own, flag, REFUSED[flag]] + CPU, capsys)
    assert flag in err
    assert open(own, "rb").read() == saved  # nothing was trained or written


def test_help_and_readme_list_the_flags_resume_refuses():
    with open(os.path.join(HERE, "README.md")) as f:
        resuming = f.read().split("### Resuming")[1].split("##")[0]
    named = set(re.findall(r"`(--[a-z0-9-]+)`", resuming))
    assert named == set(REFUSED) | {"--epochs", "--max-steps"}
    for module in SCRIPTS.values():
        with contextlib.redirect_stdout(io.StringIO()) as help_text, pytest.raises(SystemExit):
            module.parse_args(["--help"])
        said = " ".join(help_text.getvalue().split())
        assert "not those of the networks, optimisers, batches or folder" in said


NOT_CHECKPOINTS = [(script, case) for script in SCRIPTS
                   for case in ("missing", "text", "another script's", "an earlier version's")]


@pytest.mark.parametrize("script, case", NOT_CHECKPOINTS,
                         ids=[f"{s} {c}" for s, c in NOT_CHECKPOINTS])
def test_resume_refuses_what_is_not_its_checkpoint(script, case, runs, tmp_path, capsys):
    path = tmp_path / "checkpoint.pt"
    if case == "text":
        path.write_text("not a checkpoint")
    elif case == "another script's":
        other = runs["cgan" if script == "dcgan" else "dcgan"][0]
        shutil.copy(os.path.join(other, "checkpoint.pt"), path)
    elif case == "an earlier version's":  # as an earlier version saved G: under "net."
        earlier = load(os.path.join(runs[script][0], "checkpoint.pt"))
        earlier["G"] = {"net." + name: value for name, value in earlier["G"].items()}
        torch.save(earlier, path)
    assert str(path) in exits_2(SCRIPTS[script].main, ["--resume", str(path)] + CPU, capsys)
    assert sorted(os.listdir(tmp_path)) == ([] if case == "missing" else ["checkpoint.pt"])


@pytest.mark.parametrize("script", SCRIPTS)
def test_resume_refuses_epochs_already_made(script, runs, capsys):
    own = os.path.join(runs[script][0], "checkpoint.pt")  # 2 epochs made
    for more in ([], ["--epochs", "2"]):
        assert "--epochs" in exits_2(SCRIPTS[script].main, ["--resume", own] + more + CPU, capsys)


@pytest.mark.parametrize("script", SCRIPTS)
def test_out_refuses_a_folder_that_holds_files(script, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.csv").write_text("keep me")
    argv = TINY + SMALL[script] + ["--out", str(run)]
    assert "--out" in exits_2(SCRIPTS[script].main, argv, capsys)
    assert (run / "log.csv").read_text() == "keep me"


def four_per_epoch(script):  # 1,024 images in batches of 128, two per step
    steps = ["--d-steps", "2"] if script != "wgan_gp" else []
    return TINY + SMALL[script] + ["--batch-size", "128"] + steps


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_run_stopped_by_max_steps_needs_a_larger_one(script, tmp_path, capsys):
    """The README: a run's own --max-steps stays in force, so one it stopped needs a larger one."""
    module = SCRIPTS[script]
    module.main(four_per_epoch(script) + ["--max-steps", "2", "--out", str(tmp_path / "run")])
    checkpoint = str(tmp_path / "run" / "checkpoint.pt")
    for more in ([], ["--epochs", "3"]):
        assert "--max-steps" in exits_2(module.main, ["--resume", checkpoint] + more + CPU, capsys)
    trains(module.main, ["--resume", checkpoint, "--max-steps", "3"] + CPU)
    assert load(checkpoint)["step"] == 3 and len(read_log(tmp_path / "run")) == 1 + 3


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_run_stopped_in_its_last_epoch_goes_on_to_its_end(script, tmp_path):
    module = SCRIPTS[script]
    flags = four_per_epoch(script) + ["--epochs", "2", "--max-steps", "6"]
    module.main(flags + ["--out", str(tmp_path / "run")])  # stopped in epoch 2 of 2
    checkpoint = str(tmp_path / "run" / "checkpoint.pt")
    trains(module.main, ["--resume", checkpoint, "--max-steps", "100"] + CPU)
    assert load(checkpoint)["step"] == 8 and len(read_log(tmp_path / "run")) == 1 + 8
    assert sorted(f for f in os.listdir(tmp_path / "run") if f.startswith("samples")) == [
        "samples_epoch_001.png", "samples_epoch_002.png"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_copied_run_folder_resumes_into_itself(script, runs, tmp_path):
    copied = tmp_path / "copy"
    shutil.copytree(runs[script][0], copied)
    before = {f: os.path.getmtime(os.path.join(runs[script][0], f)) for f in os.listdir(copied)}
    with contextlib.redirect_stdout(io.StringIO()) as stdout:
        argv = ["--resume", str(copied / "checkpoint.pt"), "--epochs", "3"] + CPU
        trains(SCRIPTS[script].main, argv)
    assert stdout.getvalue().strip().splitlines()[-1] == f"Run folder: {copied}"
    assert (copied / "samples_epoch_003.png").exists()
    assert load(copied / "checkpoint.pt")["epoch"] == 3
    after = {f: os.path.getmtime(os.path.join(runs[script][0], f)) for f in os.listdir(copied)
             if f in before}
    assert after == before and not os.path.exists(os.path.join(runs[script][0],
                                                               "samples_epoch_003.png"))


def numbered_images(script, n=256):
    """Image i a flat grey that tells i: -1 + 2 i / (n - 1); cgan: with a label, i % 10."""
    images = torch.linspace(-1, 1, n)[:, None, None, None].expand(n, 3, 32, 32)
    if script != "cgan":
        return lambda *args: images
    data = torch.utils.data.TensorDataset(images, torch.arange(n) % 10)
    return lambda *args: (data, [str(k) for k in range(10)])


def real_batches(calls, n=256):
    """The image numbers of each real batch D judged, in order (fakes are not flat greys)."""
    batches = []
    for call in calls:
        x = call.inputs[0]
        if call.name == "D" and (x.flatten(1).std(dim=1) == 0).all():
            batches.append(((x[:, 0, 0, 0] + 1) * (n - 1) / 2).round().long().tolist())
    return batches


@pytest.mark.parametrize("script", SCRIPTS)
def test_each_epoch_draws_its_own_batch_order_from_the_seed(script, spy, tmp_path, monkeypatch):
    module = SCRIPTS[script]
    monkeypatch.setattr(module, "load_data", numbered_images(script))
    spy(wgan_gp.Critic if module is wgan_gp else module.Discriminator, "D")
    orders = {}
    for name, seed, epochs in (("a", "0", "2"), ("b", "0", "2"), ("c", "1", "1")):
        spy.calls.clear()
        module.main(TINY + ["--batch-size", "64", "--image-size", "32", "--epochs", epochs,
                            "--seed", seed, "--out", str(tmp_path / name)]
                    + (["--n-critic", "1"] if script == "wgan_gp" else []))
        batches = real_batches(spy.calls)
        per_epoch = len(batches) // int(epochs)
        orders[name] = [sum(batches[i:i + per_epoch], [])
                        for i in range(0, len(batches), per_epoch)]
    epoch_1, epoch_2 = orders["a"]
    assert len(epoch_1) == len(set(epoch_1)) == 256, "each image once an epoch"
    assert sorted(epoch_1) != epoch_1, "not shuffled"
    assert epoch_1 != epoch_2, "the same order in every epoch"
    assert orders["a"] == orders["b"], "the same seed drew another order"
    assert orders["a"][0] != orders["c"][0], "another seed drew the same order"


# ---------------------------------------------------------------------------------- interpolate.py
@pytest.mark.parametrize("script", SCRIPTS)
def test_interpolation_grid(script, runs, tmp_path):
    out = tmp_path / "walk.png"
    interpolate.main([runs[script][0], "--pairs", "3", "--steps", "5", "--mode", "slerp", "--gif",
                      "--out", str(out)] + CPU)
    with Image.open(out) as grid:  # a column per step, a row per pair: 32 pixels + 2 of padding
        assert grid.size == (5 * 34 + 2, 3 * 34 + 2)
    assert (tmp_path / "walk.gif").stat().st_size > 0
    checkpoint = os.path.join(runs[script][0], "checkpoint.pt")
    G, z_shape, n_classes = interpolate.load_generator(checkpoint, torch.device("cpu"))
    z1, z2 = torch.randn(3, *z_shape), torch.randn(3, *z_shape)
    y1 = F.one_hot(torch.tensor([0, 1, 2]), n_classes).float() if n_classes else None
    y2 = F.one_hot(torch.tensor([7, 7, 7]), n_classes).float() if n_classes else None
    with torch.no_grad():
        ends = [G(z, *([y] if n_classes else [])) for z, y in ((z1, y1), (z2, y1), (z1, y2))]
    for mode in ("linear", "slerp"):  # the ends of each path are G(z1) and G(z2)
        images = interpolate.interpolate(G, z1, z2, 5, mode, y1, y1)
        assert images.shape == (3, 5, 3, 32, 32)
        assert torch.allclose(images[:, 0], ends[0], atol=1e-5)
        assert torch.allclose(images[:, -1], ends[1], atol=1e-5)
    if n_classes:  # --labels: z stays, the class morphs from y1 to y2
        images = interpolate.interpolate(G, z1, z1, 4, "linear", y1, y2)
        assert torch.allclose(images[:, 0], ends[0], atol=1e-5)
        assert torch.allclose(images[:, -1], ends[2], atol=1e-5)


def test_slerp_keeps_the_norm_between_the_ends():
    torch.manual_seed(0)
    z1, z2 = torch.randn(100), 1.3 * torch.randn(100)
    norms = interpolate.slerp(z1, z2, torch.linspace(0, 1, 21)).flatten(1).norm(dim=1)
    low, high = sorted([z1.norm().item(), z2.norm().item()])
    assert torch.allclose(norms[[0, -1]], torch.stack([z1.norm(), z2.norm()]), rtol=1e-5)
    assert (norms >= low * (1 - 1e-5)).all() and (norms <= high * (1 + 1e-5)).all()
    # the straight line's midpoint is far shorter than either end: off the shell where N(0, I) lives
    assert interpolate.lerp(z1, z2, torch.tensor([0.5])).norm() < 0.8 * low


def cgan_draws(spy, argv):
    """interpolate.main(argv) on a cGAN run, with G's inputs recorded: -> [(z, y), ...] per call."""
    spy(cgan.Generator, "G")
    with contextlib.redirect_stdout(io.StringIO()):
        interpolate.main(argv + CPU)
    return [call.inputs for call in spy.calls]


def test_interpolate_label_keeps_the_class(runs, spy, tmp_path):
    (z, y), = cgan_draws(spy, [runs["cgan"][0], "--label", "3", "--pairs", "4", "--steps", "5",
                               "--out", str(tmp_path / "x.png")])
    assert torch.equal(y, F.one_hot(torch.full((20,), 3), 10).float())
    rows = z.view(4, 5, -1)
    assert (rows[:, 0] != rows[:, -1]).any(dim=1).all(), "z moves along each row"


def test_interpolate_labels_keep_each_rows_z(runs, spy, tmp_path):
    (z, y), = cgan_draws(spy, [runs["cgan"][0], "--labels", "2", "8", "--pairs", "3",
                               "--steps", "5", "--out", str(tmp_path / "x.png")])
    rows = z.view(3, 5, -1)
    assert torch.equal(rows, rows[:, :1].expand_as(rows)), "z stays along each row"
    assert not torch.equal(rows[0], rows[1]), "each row its own z"
    t = torch.linspace(0, 1, 5)[:, None]
    blend = (1 - t) * F.one_hot(torch.tensor(2), 10) + t * F.one_hot(torch.tensor(8), 10)
    assert torch.allclose(y.view(3, 5, 10), blend.expand(3, 5, 10), atol=1e-6)


def test_interpolate_seed_draws_the_pairs(runs, tmp_path):
    pictures = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        out = tmp_path / f"{name}.png"
        interpolate.main([runs["dcgan"][0], "--seed", seed, "--out", str(out)] + CPU)
        pictures[name] = out.read_bytes()
    assert pictures["a"] == pictures["b"] and pictures["a"] != pictures["c"]


def test_interpolate_samples_of_one_class(runs, spy, tmp_path, capsys):
    folder = tmp_path / "threes"
    calls = cgan_draws(spy, [runs["cgan"][0], "--samples", "7", "--label", "3",
                             "--out", str(folder)])
    assert sorted(os.listdir(folder)) == [f"{i:05d}.png" for i in range(7)]
    assert torch.equal(torch.cat([y for _, y in calls]), F.one_hot(torch.full((7,), 3), 10).float())
    with Image.open(folder / "00000.png") as image:
        assert image.size == (32, 32)
    saved = (folder / "00000.png").read_bytes()
    err = exits_2(interpolate.main, [runs["cgan"][0], "--samples", "7", "--out", str(folder)] + CPU,
                  capsys)
    assert "--out" in err and (folder / "00000.png").read_bytes() == saved


def test_interpolate_default_names_in_the_newest_run(runs, tmp_path, monkeypatch):
    """No checkpoint given: the newest run in runs/; the outputs go into its folder, named as the
    README names them."""
    monkeypatch.chdir(tmp_path)
    for name, age in (("cgan-new", 0), ("cgan-old", 100)):
        os.makedirs(os.path.join("runs", name))
        shutil.copy(os.path.join(runs["cgan"][0], "checkpoint.pt"), os.path.join("runs", name))
        when = os.path.getmtime(os.path.join("runs", name, "checkpoint.pt")) - age
        os.utime(os.path.join("runs", name, "checkpoint.pt"), (when, when))
    for argv in ([], ["--mode", "slerp", "--gif"], ["--labels", "1", "7"], ["--samples", "3"]):
        interpolate.main(argv + ["--steps", "3", "--pairs", "2"] + CPU)
    new = tmp_path / "runs" / "cgan-new"
    made = sorted(os.listdir(new))
    assert made == ["checkpoint.pt", "interpolation_1_to_7.png", "interpolation_linear.png",
                    "interpolation_slerp.gif", "interpolation_slerp.png", "samples"]
    assert len(os.listdir(new / "samples")) == 3
    assert os.listdir(tmp_path / "runs" / "cgan-old") == ["checkpoint.pt"]


def test_interpolate_mistakes_exit_2(runs, tmp_path, capsys):
    missing = str(tmp_path / "missing.pt")
    assert missing in exits_2(interpolate.main, [missing] + CPU, capsys)
    checkpoint = load(os.path.join(runs["dcgan"][0], "checkpoint.pt"))
    checkpoint["args"]["ngf"] = 16  # a Generator twice as wide as its weights
    torch.save(checkpoint, tmp_path / "wider.pt")
    assert "Generator" in exits_2(interpolate.main, [str(tmp_path / "wider.pt")] + CPU, capsys)
    argv = [runs["dcgan"][0], "--label", "3", "--out", str(tmp_path / "x.png")] + CPU
    assert "--label" in exits_2(interpolate.main, argv, capsys)
    assert not (tmp_path / "x.png").exists()


# -------------------------------------------------------------------------------------- the README
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
    """Each [`name` ...](script.py#Lnn) or (#Lnn-Lmm) link: those lines hold each `name`."""
    with open(os.path.join(HERE, "README.md")) as f:
        links = re.findall(r"\[([^\]]*)\]\(([\w.]+\.py)#L(\d+)(?:-L(\d+))?\)", f.read())
    assert len(links) >= 5
    for text, script, first_line, last_line in links:
        with open(os.path.join(HERE, script)) as f:
            lines = "".join(f.readlines()[int(first_line) - 1:int(last_line or first_line)])
        names = re.findall(r"`([^`]+)`", text)
        assert names, f"the link [{text}] names nothing in backticks"
        for name in names:
            assert name in lines, f"{script}#L{first_line}-{last_line} does not hold {name}"


# --------------------------------------------------------------------------------------- notebooks
@pytest.mark.parametrize("script", SCRIPTS)
def test_notebook_ignores_the_kernels_argv_but_not_run_flags(script, monkeypatch):
    module = SCRIPTS[script]
    monkeypatch.setattr(module, "IN_NOTEBOOK", True)  # as if imported with ipykernel loaded
    defaults = {**vars(args_for(module, [])), "out": None}
    for kernel in (["ipykernel_launcher.py", "-f", "/root/.local/share/jupyter/runtime/k-1.json"],
                   ["ipykernel_launcher.py", "--f=/run/user/jupyter/kernel-v2-1.json"]):  # VS Code
        monkeypatch.setattr(sys, "argv", kernel)
        assert {**vars(args_for(module, None)), "out": None} == defaults
    monkeypatch.setattr(sys, "argv", [f"{script}.py", "--nz", "7", "--dataset", "fake"])  # %run
    args = args_for(module, None)
    assert args.nz == 7 and args.dataset == "fake"


def test_interpolate_in_a_notebook(runs, tmp_path, monkeypatch):
    monkeypatch.setattr(interpolate, "IN_NOTEBOOK", True)
    monkeypatch.chdir(tmp_path)
    os.makedirs(os.path.join("runs", "dcgan-1"))
    shutil.copy(os.path.join(runs["dcgan"][0], "checkpoint.pt"), os.path.join("runs", "dcgan-1"))
    kernel = ["ipykernel_launcher.py", "-f", "/root/kernel-1.json"]  # a cell
    monkeypatch.setattr(sys, "argv", kernel)
    assert interpolate.parse_args().checkpoint == os.path.join("runs", "dcgan-1", "checkpoint.pt")
    monkeypatch.setattr(sys, "argv", ["interpolate.py", runs["cgan"][0], "--mode", "slerp"])  # %run
    args = interpolate.parse_args()
    assert args.checkpoint == os.path.join(runs["cgan"][0], "checkpoint.pt")
    assert args.mode == "slerp"


# --------------------------------------------------------------------- bad input: one line, exit 2
BAD_FLAGS = [("dcgan", "--epochs", "0"), ("dcgan", "--lr-d", "-1"), ("dcgan", "--batch-size", "1"),
             ("dcgan", "--beta1", "1"), ("cgan", "--lr-g", "nan"), ("cgan", "--d-steps", "0"),
             ("wgan_gp", "--lambda-gp", "-1"), ("wgan_gp", "--n-critic", "0")]


@pytest.mark.parametrize("script, flag, value", BAD_FLAGS, ids=[" ".join(c) for c in BAD_FLAGS])
def test_a_bad_flag_value_exits_2(script, flag, value, tmp_path, capsys):
    argv = TINY + SMALL[script] + [flag, value, "--out", str(tmp_path / "run")]
    assert flag in exits_2(SCRIPTS[script].main, argv, capsys)
    assert not (tmp_path / "run").exists()  # nothing was started


@pytest.mark.parametrize("script", SCRIPTS)
def test_data_that_is_not_there_exits_2(script, tmp_path, capsys, monkeypatch):
    class MNIST:  # as torchvision's fails without internet: each address it tried, then the error
        def __init__(self, *args, **kwargs):
            raise RuntimeError("Error downloading train-images-idx3-ubyte.gz:\nTried https://ossci-"
                               "datasets.s3.amazonaws.com/mnist/, got:\n<urlopen error [Errno -2] "
                               "Name or service not known>")
    monkeypatch.setattr(torchvision.datasets, "MNIST", MNIST)
    main = SCRIPTS[script].main
    run = ["--out", str(tmp_path / "run")] + CPU
    absent = ["--dataset", "folder", "--data-root", str(tmp_path / "no_such_folder")]
    assert "no_such_folder" in exits_2(main, absent + run, capsys)
    (tmp_path / "MNIST" / "raw").mkdir(parents=True)  # --data-root: the MNIST folder itself
    itself = ["--dataset", "mnist", "--data-root", str(tmp_path / "MNIST")]
    assert "MNIST folder itself" in exits_2(main, itself + run, capsys)
    err = exits_2(main, ["--dataset", "mnist", "--data-root", str(tmp_path / "data")] + run, capsys)
    assert "Name or service not known" in err and "--data-root" in err  # the reason, what to do
    assert not (tmp_path / "run").exists()


NAN_CASES = [("dcgan", "discriminator_loss"), ("cgan", "discriminator_loss"),
             ("wgan_gp", "gradient_penalty")]


@pytest.mark.parametrize("script, name", NAN_CASES, ids=[s for s, _ in NAN_CASES])
def test_nan_stops_the_run_and_keeps_the_last_checkpoint(script, name, runs, tmp_path, capsys,
                                                         monkeypatch):
    module = SCRIPTS[script]
    out = tmp_path / "run"
    shutil.copytree(runs[script][0], out)
    saved = (out / "checkpoint.pt").read_bytes()
    made = load(out / "checkpoint.pt")["step"]
    loss = getattr(module, name)
    if name == "gradient_penalty":  # training diverged
        monkeypatch.setattr(module, name, lambda *args: tuple(v * math.nan for v in loss(*args)))
    else:
        monkeypatch.setattr(module, name, lambda *args: loss(*args) * math.nan)
    argv = ["--resume", str(out / "checkpoint.pt"), "--epochs", "3", "--max-steps", str(made + 1)]
    assert "NaN" in exits_2(module.main, argv + CPU, capsys)
    assert (out / "checkpoint.pt").read_bytes() == saved


# ------------------------------------------------------------------------- real MNIST, where it is
@pytest.mark.skipif(not os.path.isdir(os.path.join(MNIST_ROOT, "MNIST")),
                    reason="no MNIST in ../shared/data")
@pytest.mark.parametrize("script", SCRIPTS)
def test_real_mnist(script, tmp_path):
    out = tmp_path / "run"
    critic = ["--n-critic", "1"] if script == "wgan_gp" else []
    SCRIPTS[script].main(["--dataset", "mnist", "--data-root", MNIST_ROOT, "--ngf", "8",
                          "--ndf", "8", "--batch-size", "16", "--max-steps", "2",
                          "--out", str(out)] + critic + CPU)
    checkpoint = load(out / "checkpoint.pt")
    assert checkpoint["nc"] == 1 and checkpoint["step"] == 2
    assert checkpoint.get("n_classes", 10) == 10
    assert all(math.isfinite(float(v)) for v in read_log(out)[-1][2:-1])


# --------------------------------------------------------------------- the GPU, where there is one
@pytest.mark.parametrize("script", SCRIPTS)
def test_device_auto_picks_the_gpu_pytorch_reports(script, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a machine with a GPU
    assert args_for(SCRIPTS[script], TINY[:-2] + ["--device", "auto"]).device == "cuda"


def test_interpolate_device_auto_picks_the_gpu_pytorch_reports(runs, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert interpolate.parse_args([runs["dcgan"][0], "--device", "auto"]).device == "cuda"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="PyTorch sees no GPU here")
@pytest.mark.parametrize("script", SCRIPTS)
def test_cuda_trains_and_resumes(script, tmp_path):
    module = SCRIPTS[script]
    gpu = [f if f != "cpu" else "cuda" for f in TINY] + SMALL[script]
    module.main(gpu + ["--max-steps", "2", "--out", str(tmp_path / "run")])
    checkpoint = str(tmp_path / "run" / "checkpoint.pt")
    module.main(["--resume", checkpoint, "--max-steps", "3", "--device", "cuda"])
    saved = load(checkpoint)
    assert saved["step"] == 3 and "cuda" in saved["rng"]
    assert all(math.isfinite(float(v)) for r in read_log(tmp_path / "run")[1:] for v in r[2:-1])
    interpolate.main([str(tmp_path / "run"), "--device", "cuda", "--out", str(tmp_path / "i.png")])
