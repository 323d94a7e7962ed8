"""WGAN-GP: a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty, in one file.

Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein GANs".

The critic D gives a score, not a probability. The generator G minimises the Wasserstein-1 distance
between the data and its samples, which the Kantorovich-Rubinstein duality writes as

    W(P_data, P_G) = max over 1-Lipschitz f of  E_x[f(x)] - E_z[f(G(z))]

so the game is  min_G max_{D 1-Lipschitz} E_x[D(x)] - E_z[D(G(z))].  Why 1-Lipschitz: without a
bound on its slope the critic could make the difference as large as it likes; with it, the maximum
is the distance itself, which stays finite and smooth even when the two distributions do not overlap,
so G gets useful gradients where a standard GAN's discriminator saturates.

A differentiable f is 1-Lipschitz iff ||grad f|| <= 1 everywhere. WGAN-GP asks for it softly, with a
penalty on points x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample, between real and fake
samples (the optimal critic has gradient norm 1 along such lines):

    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]
    L_G = -E[D(G(z))]

Algorithm 1 of the paper, as the loop below runs it:
    for each generator update:
        repeat n_critic times: real batch x, noise z, eps ~ U[0, 1];
                               one Adam step of D on L_D
        fresh noise z; one Adam step of G on L_G

Defaults as in the paper: lambda = 10, n_critic = 5, Adam lr = 1e-4, beta1 = 0, beta2 = 0.9,
batch 64, z in R^128, here on CelebA at 128x128. No batch norm in the critic (see Critic).
Its estimate E[D(x)] - E[D(G(z))] of the Wasserstein distance is logged and plotted: unlike a
standard GAN's losses, it falls as the samples improve.

    python wgan_gp.py --dataset folder --data-root ~/data/img_align_celeba   # CelebA, 128x128
    python wgan_gp.py --dataset mnist --image-size 32 --ngf 32 --ndf 32 --epochs 5
"""
import argparse
import csv
import glob
import math
import os
import sys
import time
from datetime import datetime

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
import torchvision.transforms as T
from matplotlib.figure import Figure
from PIL import Image
from torchvision.utils import save_image

SCRIPT = "wgan_gp"
DATASETS = {"celeba": 3, "folder": 3, "mnist": 1, "cifar10": 3, "fake": 3}  # name: channels
LOG_EVERY = 50  # generator steps between progress lines (and between host-device syncs)
IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter/Colab: sys.argv holds the kernel's own flags


def fail(message):
    """Bad input: one line that says what is wrong and what to do, exit status 2, no traceback."""
    print(f"{SCRIPT}.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ----------------------------------------------------------------------------- arguments
def parse_args(argv=None):
    """The run's settings, checked before anything is trained or written.

    Returns (args, checkpoint); checkpoint is the dict read from --resume, or None.
    """
    if argv is None and IN_NOTEBOOK:
        argv = []  # in a notebook, call main(["--epochs", "1"]) to pass flags
    p = argparse.ArgumentParser(prog=f"{SCRIPT}.py", usage=argparse.SUPPRESS,  # errors stay one line
                                description="Train a WGAN-GP (see the docstring at the top of wgan_gp.py).")
    p.add_argument("--dataset", default="celeba", choices=DATASETS, help="training images (default: celeba)")
    p.add_argument("--data-root", default=os.path.join("~", ".cache", "gan-data"),
                   help="folder holding the dataset, downloaded there if absent; for --dataset folder, "
                        "a folder of images searched recursively (default: ~/.cache/gan-data)")
    p.add_argument("--image-size", type=int, default=128, choices=[32, 64, 128],
                   help="images are resized to this; each halving removes a block from each network (default: 128)")
    p.add_argument("--nz", type=int, default=128, help="size of the noise vector z (default: 128)")
    p.add_argument("--ngf", type=int, default=64, help="generator width: channels of its last block (default: 64)")
    p.add_argument("--ndf", type=int, default=64, help="critic width: channels of its first layer (default: 64)")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training set (default: 5; with --resume, the run's own)")
    p.add_argument("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    p.add_argument("--lr-d", type=float, default=1e-4, help="critic learning rate (default: 1e-4)")
    p.add_argument("--lr-g", type=float, default=1e-4, help="generator learning rate (default: 1e-4)")
    p.add_argument("--beta1", type=float, default=0.0, help="Adam beta1 (default: 0)")
    p.add_argument("--beta2", type=float, default=0.9, help="Adam beta2 (default: 0.9)")
    p.add_argument("--lambda-gp", type=float, default=10.0, help="weight lambda of the gradient penalty (default: 10)")
    p.add_argument("--n-critic", type=int, default=5,
                   help="critic updates per generator update, each on a new batch (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"],
                   help="auto: cuda if there is a GPU, else mps, else cpu (default: auto)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="image-decoding processes for --dataset folder (default: up to 4)")
    p.add_argument("--max-steps", type=int, default=None, help="stop once the run has made this many generator updates")
    p.add_argument("--out", default=None, help="run folder (default: runs/wgan_gp-<date-time>)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue the run saved in this checkpoint.pt, up to --epochs, in its folder")
    args = p.parse_args(argv)

    for name in ("lr_d", "lr_g"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            fail(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if not (math.isfinite(args.lambda_gp) and args.lambda_gp >= 0):
        fail(f"--lambda-gp must be >= 0, got {args.lambda_gp}")
    for name in ("nz", "ngf", "ndf", "epochs", "n_critic"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.batch_size < 2:
        fail(f"--batch-size must be >= 2 (the generator's batch norm needs two images), got {args.batch_size}")
    if not (0 <= args.beta1 < 1 and 0 <= args.beta2 < 1):
        fail(f"--beta1 and --beta2 must lie in [0, 1), got {args.beta1} and {args.beta2}")
    if args.max_steps is not None and args.max_steps < 1:
        fail(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.workers < 0:
        fail(f"--workers must be >= 0, got {args.workers}")
    if args.dataset in ("mnist", "cifar10") and args.image_size > 64:
        fail(f"--dataset {args.dataset} holds {28 if args.dataset == 'mnist' else 32}-pixel images; "
             f"use --image-size 32 (or 64)")
    if args.dataset == "folder" and not os.path.isdir(os.path.expanduser(args.data_root)):
        fail(f"--data-root {args.data_root} is not a folder; give the folder that holds your images")
    if args.device == "auto":
        args.device = ("cuda" if torch.cuda.is_available() else
                       "mps" if torch.backends.mps.is_available() else "cpu")
    elif args.device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: PyTorch sees no CUDA GPU here; use --device auto or cpu")
    elif args.device == "mps" and not torch.backends.mps.is_available():
        fail("--device mps: PyTorch sees no Apple GPU here; use --device auto or cpu")

    checkpoint = None
    if args.resume:
        checkpoint = read_checkpoint(args.resume)
        # A resumed run keeps the settings it was trained with; where the data are and what runs it may change.
        for name, value in checkpoint["args"].items():
            if name in ("epochs", "max_steps", "out", "resume"):  # decided below, for this session
                continue
            if getattr(args, name) == p.get_default(name):  # not given: the run's own
                setattr(args, name, value)
            elif getattr(args, name) != value and name not in ("data_root", "device", "workers"):
                fail(f"--{name.replace('_', '-')} {getattr(args, name)} differs from the checkpoint's {value}; "
                     f"a resumed run keeps its settings (start a new run to change them)")
        if args.out is not None:
            fail("--out cannot be used with --resume: a resumed run continues in its checkpoint's folder")
        if args.epochs is None:  # go on to the number of epochs the run was started with
            args.epochs = checkpoint["args"]["epochs"]
        if args.epochs <= checkpoint["epoch"]:
            fail(f"the checkpoint has already trained {checkpoint['epoch']} epochs; ask for more with --epochs")
        if args.max_steps is not None and args.max_steps <= checkpoint["step"]:
            fail(f"the checkpoint has already made {checkpoint['step']} steps; ask for more with --max-steps")
        args.out = os.path.dirname(os.path.abspath(args.resume))
    else:
        args.epochs = args.epochs or 5
        args.out = args.out or os.path.join("runs", f"{SCRIPT}-{datetime.now():%Y%m%d-%H%M%S}")
        if os.path.exists(args.out) and not (os.path.isdir(args.out) and not os.listdir(args.out)):
            fail(f"--out {args.out} already exists and is not empty; choose a new folder "
                 f"(or continue that run with --resume {os.path.join(args.out, 'checkpoint.pt')})")
    return args, checkpoint


def read_checkpoint(path):
    if not os.path.isfile(path):
        fail(f"--resume {path}: no such file; give the checkpoint.pt inside a run folder")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # whatever the reason, the file cannot be read as a checkpoint
        fail(f"--resume {path} cannot be read as a checkpoint ({type(e).__name__}); give a checkpoint.pt written by {SCRIPT}.py")
    script = checkpoint.get("script") if isinstance(checkpoint, dict) else None
    if script != SCRIPT:
        fail(f"--resume {path} was not written by {SCRIPT}.py" + (f" but by {script}.py; resume it with that script" if script else ""))
    return checkpoint


# ----------------------------------------------------------------------------- data
class ImageFiles(torch.utils.data.Dataset):
    """Every image file under a folder (searched recursively, no class subfolders needed), as RGB."""

    EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

    def __init__(self, root, transform):
        self.paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                            for name in names if name.lower().endswith(self.EXTENSIONS))
        self.transform = transform

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def load_data(args, device):
    """The training images in [-1, 1], channels first.

    MNIST and CIFAR-10 come back as one tensor on the device: decoded, resized and scaled once, so
    an epoch only indexes it. CelebA and folders, too big for memory at 128x128, come back as a
    DataLoader whose workers decode and resize the files in parallel with training, into pinned
    memory when the GPU is used (so the copy to the GPU can overlap the computation).
    """
    root = os.path.expanduser(args.data_root)
    size = args.image_size
    if args.dataset in ("celeba", "folder"):
        # CelebA's aligned faces are 178x218: the centre 178x178 square, then resized
        transform = T.Compose([T.CenterCrop(178), T.Resize(size)] if args.dataset == "celeba" else
                              [T.Resize(size), T.CenterCrop(size)])
        transform = T.Compose([transform, T.ToTensor(), T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])
        if args.dataset == "celeba":  # all 202,599 aligned faces: a GAN needs no train/test split
            folder = os.path.join(root, "celeba", "img_align_celeba")
            if not os.path.isdir(folder):
                try:
                    torchvision.datasets.CelebA(root, split="all", download=True)
                except Exception as e:  # no internet, no gdown, or the host's daily quota spent: all say the same
                    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                    fail(f"CelebA is not in {folder} and could not be downloaded ({reason}); download "
                         f"img_align_celeba.zip by hand from the CelebA page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html), "
                         f"unzip it and run with --dataset folder --data-root <the img_align_celeba folder>")
            root = folder
        images = ImageFiles(root, transform)
        if len(images) < args.batch_size:
            fail(f"{root} holds {len(images)} images, fewer than one batch of {args.batch_size}; "
                 f"add images or lower --batch-size")
        return torch.utils.data.DataLoader(images, args.batch_size, shuffle=True, drop_last=True,
                                           num_workers=args.workers, pin_memory=device.type == "cuda",
                                           persistent_workers=args.workers > 0)
    if args.dataset == "fake":  # random images, for tests: runs anywhere, learns nothing
        generator = torch.Generator().manual_seed(0)
        return (torch.rand(1024, 3, size, size, generator=generator) * 2 - 1).to(device)

    sets = {"mnist": torchvision.datasets.MNIST, "cifar10": torchvision.datasets.CIFAR10}
    try:
        dataset = sets[args.dataset](root, train=True, download=True)  # downloads only if absent
    except (OSError, RuntimeError) as e:  # no internet (URLError is an OSError), or a broken file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fail(f"{args.dataset} is not in {root} and could not be downloaded ({reason}); "
             f"connect to the internet, or point --data-root at a folder that holds it")
    x = torch.as_tensor(dataset.data)  # uint8: N x H x W (MNIST) or N x H x W x C (CIFAR-10)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1)  # [0, 255] -> [-1, 1], the range of G's Tanh (in place: less memory)
    if x.shape[-1] != size:  # 28 or 32 -> 32, 64 or 128: the networks' strides want a power of two
        x = F.interpolate(x, size=(size, size), mode="bilinear")  # only ever upsampling: no antialias needed
    return x.to(device)


def batches(data, batch_size, device):
    """One epoch of shuffled batches; the last incomplete batch is dropped."""
    if isinstance(data, torch.Tensor):
        order = torch.randperm(len(data), device=data.device)
        for i in range(len(data) // batch_size):
            yield data[order[i * batch_size:(i + 1) * batch_size]]
    else:
        for x in data:
            yield x.to(device, non_blocking=True)


# ----------------------------------------------------------------------------- models
class Generator(nn.Module):
    """z (nz) -> image (nc x S x S) in [-1, 1].

    A linear layer makes a 4x4 map; blocks of (upsample x2, 3x3 convolution, batch norm, ReLU) grow
    it to S x S (3 blocks at 32x32, 5 at 128x128), and a 3x3 convolution with Tanh gives the image.
    Nearest upsampling then a convolution, rather than a transposed convolution, avoids the
    checkerboard pattern that overlapping strides leave (Odena et al. 2016). The generator keeps
    batch norm: the penalty concerns the critic only.
    """

    def __init__(self, nz=128, ngf=64, nc=3, image_size=128):
        super().__init__()
        blocks = int(math.log2(image_size // 4))  # x2 upsamplings from 4x4: 3 at 32, 4 at 64, 5 at 128
        w = [ngf * min(8, 2 ** (blocks - i)) for i in range(blocks + 1)]  # ngf*8 at 4x4, halving to ngf
        self.stem = nn.Sequential(nn.Linear(nz, w[0] * 4 * 4, bias=False), nn.Unflatten(1, (w[0], 4, 4)),
                                  nn.BatchNorm2d(w[0]), nn.ReLU(True))
        self.blocks = nn.Sequential(*[nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(w_in, w_out, 3, 1, 1, bias=False), nn.BatchNorm2d(w_out), nn.ReLU(True))
            for w_in, w_out in zip(w, w[1:])])
        self.to_image = nn.Sequential(nn.Conv2d(w[-1], nc, 3, 1, 1), nn.Tanh())

    def forward(self, z):
        return self.to_image(self.blocks(self.stem(z)))


class Critic(nn.Module):
    """image (nc x S x S) -> one real-valued score per image; no sigmoid: D is not a probability.

    Stride-2 4x4 convolutions halve the size down to 4x4, doubling the channels from ndf (capped at
    ndf*8), with LeakyReLU(0.2); a linear layer gives the score. No batch norm: it makes each
    sample's score depend on the rest of the batch, while the penalty constrains the gradient of
    D at each sample on its own. Layer normalisation (GroupNorm with one group: mean and variance
    over each sample's C x H x W) keeps activations in range without mixing samples, as the paper
    recommends; the first layer, on the image, is left unnormalised as in DCGAN.
    """

    def __init__(self, ndf=64, nc=3, image_size=128):
        super().__init__()
        blocks = int(math.log2(image_size // 4))  # stride-2 layers down to 4x4: 3 at 32, 5 at 128
        w = [ndf * min(8, 2 ** i) for i in range(blocks)]  # ndf at S/2, doubling up to ndf*8
        layers = [nn.Conv2d(nc, w[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]  # S -> S/2
        for w_in, w_out in zip(w, w[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1), nn.GroupNorm(1, w_out), nn.LeakyReLU(0.2, True)]
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(w[-1] * 4 * 4, 1))

    def forward(self, x):
        return self.net(x).view(-1)


# ----------------------------------------------------------------------------- the gradient penalty
def gradient_penalty(D, real, fake, lambda_gp):
    """lambda * E[(||grad D(x_hat)||_2 - 1)^2], x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample.

    One batched backward pass gives every sample's gradient: the score of sample i depends on
    x_hat_i alone (no batch norm), so the gradient of sum_i D(x_hat_i) with respect to x_hat_i is
    grad D(x_hat_i). create_graph=True keeps that gradient differentiable, so that the penalty can
    itself be minimised (a second backward pass through D).
    """
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    return lambda_gp * ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean()


# ----------------------------------------------------------------------------- training
def main(argv=None):
    args, checkpoint = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed + (checkpoint["step"] if checkpoint else 0))  # a resumed run draws new noise
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    data = load_data(args, device)
    nc = DATASETS[args.dataset]
    n_images = len(data) if isinstance(data, torch.Tensor) else len(data.dataset)
    n_batches = n_images // args.batch_size
    steps_per_epoch = n_batches // args.n_critic  # generator updates per pass over the data
    if steps_per_epoch == 0:
        fail(f"the data make {n_batches} batches of {args.batch_size}, fewer than --n-critic {args.n_critic}; "
             f"lower --batch-size or --n-critic")

    G = Generator(args.nz, args.ngf, nc, args.image_size).to(device)
    D = Critic(args.ndf, nc, args.image_size).to(device)  # PyTorch's default initialisation: the paper sets none
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(64, args.nz, device=device)  # the same 64 z for every saved grid
    step, history = 0, []  # generator updates so far; one row of statistics for each, see LOG_COLUMNS
    if checkpoint:
        if checkpoint["n_images"] != n_images:
            fail(f"the checkpoint was trained on {checkpoint['n_images']:,} images, --data-root now holds {n_images:,}; "
                 f"resume with the same data")
        G.load_state_dict(checkpoint["G"])
        D.load_state_dict(checkpoint["D"])
        opt_G.load_state_dict(checkpoint["opt_G"])
        opt_D.load_state_dict(checkpoint["opt_D"])
        fixed_noise = checkpoint["fixed_noise"].to(device)
        step, history = checkpoint["step"], checkpoint["history"]
    os.makedirs(args.out, exist_ok=True)
    print(f"{SCRIPT}: {n_images:,} "
          f"{args.dataset} images of {nc}x{args.image_size}x{args.image_size} on {device}, "
          f"G {sum(p.numel() for p in G.parameters()):,} and D {sum(p.numel() for p in D.parameters()):,} "
          f"parameters, {steps_per_epoch} steps per epoch, writing to {args.out}", flush=True)

    def save_run(epoch):
        """Everything a run leaves: this epoch's sample grid, the checkpoint, the log and plots."""
        save_samples(G, fixed_noise, os.path.join(args.out, f"samples_epoch_{epoch + 1:03d}.png"))
        save_checkpoint(os.path.join(args.out, "checkpoint.pt"), {
            "script": SCRIPT, "args": vars(args), "nc": nc, "n_images": n_images, "step": step, "epoch": step // steps_per_epoch,
            "G": G.state_dict(), "D": D.state_dict(), "opt_G": opt_G.state_dict(), "opt_D": opt_D.state_dict(),
            "fixed_noise": fixed_noise.cpu(), "history": history})
        save_log_and_plots(history, args.out, steps_per_epoch)

    pending = []  # ((epoch, step), statistics still on the device): fetched every LOG_EVERY steps
    total_steps = min(args.epochs * steps_per_epoch, args.max_steps or float("inf"))
    t_start = t_last = time.perf_counter()
    step_start = step_last = step
    epoch = step // steps_per_epoch
    try:
        for epoch in range(step // steps_per_epoch, args.epochs):
            data_iter = batches(data, args.batch_size, device)
            t_epoch = time.perf_counter()
            first = step - epoch * steps_per_epoch  # 0, but where a resumed run had stopped mid-epoch
            for i in range(first, steps_per_epoch):
                # (1) Update the critic n_critic times, each on a new real batch:
                #     L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]
                for _ in range(args.n_critic):
                    real = next(data_iter)
                    with torch.no_grad():  # the critic's step needs no gradient through G
                        fake = G(torch.randn(args.batch_size, args.nz, device=device))
                    score_real, score_fake = D(real).mean(), D(fake).mean()
                    gp = gradient_penalty(D, real, fake, args.lambda_gp)
                    loss_D = score_fake - score_real + gp
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    opt_D.step()

                # (2) Update G once, on fresh noise: L_G = -E[D(G(z))]
                loss_G = -D(G(torch.randn(args.batch_size, args.nz, device=device))).mean()
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()  # also fills D's gradients, which the critic's next zero_grad clears
                opt_G.step()

                step += 1
                # E[D(x)] - E[D(G(z))] before the last critic update: the Wasserstein estimate
                pending.append(((epoch + 1, step), torch.stack(
                    [loss_D, loss_G, gp, score_real - score_fake]).detach()))
                if step % LOG_EVERY == 0 or i == steps_per_epoch - 1 or step >= total_steps:
                    stats = fetch(pending, history)
                    if not torch.isfinite(stats).all():
                        stop_diverged(args.out, history, steps_per_epoch)
                    now = time.perf_counter()
                    rate = (step - step_last) * args.n_critic * args.batch_size / (now - t_last)
                    left = (now - t_start) / (step - step_start) * (total_steps - step)
                    loss_d, loss_g, gp_value, w_estimate = stats[-1].tolist()
                    print(f"[{epoch + 1}/{args.epochs}][{i + 1:4d}/{steps_per_epoch}] Loss_D {loss_d:.3f} "
                          f"Loss_G {loss_g:.3f} GP {gp_value:.3f} W {w_estimate:.3f} | {rate:,.0f} img/s, "
                          f"{left // 60:.0f}m{left % 60:02.0f}s left", flush=True)
                    t_last, step_last = now, step
                if step >= total_steps:
                    break
            seconds = time.perf_counter() - t_epoch
            print(f"epoch {epoch + 1}: {i + 1 - first} steps in {seconds:.1f} s, "
                  f"{(i + 1 - first) * args.n_critic * args.batch_size / seconds:,.0f} img/s", flush=True)
            save_run(epoch)
            if step >= total_steps:
                break
    except KeyboardInterrupt:  # Ctrl-C: keep what was learnt so far
        print(f"\ninterrupted in epoch {epoch + 1}: saving the checkpoint and plots", flush=True)
        if pending and not torch.isfinite(fetch(pending, history)).all():
            stop_diverged(args.out, history, steps_per_epoch)
        save_run(epoch)
    if IN_NOTEBOOK:  # show the last grid and the curves under the cell
        from IPython.display import Image as Picture, display
        for picture in sorted(glob.glob(os.path.join(args.out, "samples_epoch_*.png")))[-1:] + \
                glob.glob(os.path.join(args.out, "losses.png")):
            display(Picture(filename=picture))
    print(f"Run folder: {args.out}")


# ----------------------------------------------------------------------------- outputs
LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "gp", "wasserstein"]


def fetch(pending, history):
    """Copy the pending statistics to the host in one go and append them to the history.

    On a GPU each .item() would wait for the GPU to finish; doing it once every LOG_EVERY steps
    lets the GPU run ahead of Python the rest of the time.
    """
    stats = torch.stack([values for _, values in pending]).cpu()
    history += [list(ids) + row for (ids, _), row in zip(pending, stats.tolist())]
    pending.clear()
    return stats


def stop_diverged(out, history, steps_per_epoch):
    save_log_and_plots(history, out, steps_per_epoch)
    kept = ("the last good checkpoint is kept" if os.path.exists(os.path.join(out, "checkpoint.pt"))
            else "no checkpoint had been written yet")
    sys.exit(f"{SCRIPT}.py: error: the losses became NaN or infinite by step {history[-1][1]}: training diverged "
             f"({kept} in {out}); try lower learning rates")


@torch.no_grad()
def save_samples(G, noise, path):
    G.eval()  # batch norm uses its running statistics: a sample does not depend on its batch
    images = G(noise)
    G.train()
    save_image(images, path, nrow=8, normalize=True, value_range=(-1, 1))


def save_checkpoint(path, state):
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: an interruption never leaves half a checkpoint


def smooth(values, weight=0.95):
    """Exponential moving average, to see the trend through the step-to-step noise."""
    out, avg = [], values[0]
    for v in values:
        avg = weight * avg + (1 - weight) * v
        out.append(avg)
    return out


def save_log_and_plots(history, out, steps_per_epoch):
    """log.csv (one row per generator update), losses.png, and progress.gif from the saved grids."""
    with open(os.path.join(out, "log.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(LOG_COLUMNS)
        writer.writerows([row[:2] + [f"{v:.5g}" for v in row[2:]] for row in history])
    if not history:
        return
    steps = [row[1] for row in history]
    fig = Figure(figsize=(10, 9), layout="constrained")
    ax_loss, ax_w, ax_gp = fig.subplots(3, 1, sharex=True)
    panels = ((ax_loss, "loss_D", "tab:blue", "Loss_D (critic)"), (ax_loss, "loss_G", "tab:orange", "Loss_G"),
              (ax_w, "wasserstein", "tab:purple", "E[D(x)] - E[D(G(z))]"), (ax_gp, "gp", "tab:grey", "gradient penalty"))
    for ax, column, color, label in panels:
        values = [row[LOG_COLUMNS.index(column)] for row in history]
        ax.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
        ax.plot(steps, smooth(values), color=color, label=label)
        ax.legend(loc="upper right")
    ax_loss.set_ylabel("loss")
    ax_w.set_ylabel("Wasserstein estimate")  # falls as G's samples approach the data
    ax_gp.set_ylabel("penalty (with lambda)")
    ax_gp.set_xlabel(f"generator step ({steps_per_epoch} per epoch)")
    for ax in (ax_loss, ax_w, ax_gp):
        for e in range(steps_per_epoch, steps[-1], steps_per_epoch):
            ax.axvline(e, color="grey", alpha=0.3, linewidth=0.8)  # epoch boundaries
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)

    frames = [Image.open(p) for p in sorted(glob.glob(os.path.join(out, "samples_epoch_*.png")))]
    if frames:
        durations = [600] * (len(frames) - 1) + [2000]  # hold the last epoch
        frames[0].save(os.path.join(out, "progress.gif"), save_all=True, append_images=frames[1:],
                       duration=durations, loop=0)


if __name__ == "__main__":
    main()
