"""WGAN-GP: a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty, in one file
(Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein GANs").

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

What to watch (the progress line, and losses.png in the run folder, one panel each):
- W, the critic's estimate E[D(x)] - E[D(G(z))] of the Wasserstein distance: unlike a standard
  GAN's losses, it falls as the samples improve. The critic's scores are not probabilities: there
  is no 0.5 to aim for, and only the gap between real and fake means something.
- |grad D(x_hat)|, the critic's mean slope on the penalty's points: the penalty holds it near 1,
  the 1-Lipschitz bound (1.11 to 1.14 in epochs 2 to 5 of the MNIST command below). With
  --lambda-gp 0 nothing holds it: run both and compare their grad_x_hat. GP, the penalty (lambda
  included), stays small while the slope stays near 1 (about 0.4 there).
- grad_G, grad_D: how hard each loss pushes its network, the L2 norm of all its weights' gradients.
- spread across z, printed at each epoch's end: how much the 64 samples of the grid differ, the
  mean over pixels of each pixel's standard deviation across them; near 0 when G draws one image
  whatever z (mode collapse). 64 real MNIST digits read about 0.34, the MNIST command below 0.33
  to 0.35 at each of its 5 epochs' ends.
W or GP exploding: the training is unstable (try lower learning rates).

Defaults as in the paper: lambda = 10, n_critic = 5, Adam lr = 1e-4, beta1 = 0, beta2 = 0.9,
batch 64, z in R^128, here on CelebA at 128x128. No batch norm in the critic (see Critic).

    python wgan_gp.py --dataset folder --data-root ~/data/img_align_celeba   # CelebA, 128x128
    python wgan_gp.py --dataset mnist --ngf 32 --ndf 32                  # MNIST, 32x32
"""
import argparse
import csv
import glob
import math
import multiprocessing
import os
import signal
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
IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter/Colab, a cell or %run: pictures go under the cell
# The flags a resumed run may be given. "kept": the run's own value unless given; "default": this session's
# (the machine, where to stop), the flag's default unless given
RESUME_MAY_CHANGE = {"--epochs": "kept", "--max-steps": "default", "--data-root": "kept", "--device": "default",
                     "--workers": "default"}


# ----------------------------------------------------------------------------- flags
def parse_args(argv=None):
    """The run's settings: (args, checkpoint), the checkpoint being the dict read from --resume, or None."""
    if argv is None:  # in a notebook: main(["--epochs", "1"]), or %run wgan_gp.py --epochs 1
        argv = [] if kernel_arguments() else sys.argv[1:]
    p = argparse.ArgumentParser(prog=f"{SCRIPT}.py", usage=argparse.SUPPRESS, allow_abbrev=False,  # errors: one line
                                description="Train a WGAN-GP (see the docstring at the top of wgan_gp.py).")
    add = p.add_argument
    add("--dataset", default="celeba", choices=DATASETS, help="training images (default: celeba)")
    add("--data-root", default="~/.cache/gan-data", help="where the dataset is, or goes; for folder: your images "
        "(default: ~/.cache/gan-data)")
    add("--image-size", type=int, default=None, choices=[32, 64, 128], help="each halving removes a block "
        "(default: 32 for mnist and cifar10, 128 for celeba, folder and fake)")
    add("--nz", type=int, default=128, help="size of the noise vector z (default: 128)")
    add("--ngf", type=int, default=64, help="generator width: channels of its last block (default: 64)")
    add("--ndf", type=int, default=64, help="critic width: channels of its first layer (default: 64)")
    add("--epochs", type=int, default=None, help="passes over the training set (default: 5; with --resume, the run's)")
    add("--batch-size", type=int, default=64, help="images per batch (default: 64)")
    add("--lr-d", type=float, default=1e-4, help="critic learning rate (default: 1e-4)")
    add("--lr-g", type=float, default=1e-4, help="generator learning rate (default: 1e-4)")
    add("--beta1", type=float, default=0.0, help="Adam beta1 (default: 0)")
    add("--beta2", type=float, default=0.9, help="Adam beta2 (default: 0.9)")
    add("--lambda-gp", type=float, default=10.0, help="weight lambda of the gradient penalty (default: 10)")
    add("--n-critic", type=int, default=5, help="critic updates per generator update, each on a new batch (default: 5)")
    add("--seed", type=int, default=0, help="random seed (default: 0)")
    add("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"], help="auto: cuda, else mps, else cpu (default: auto)")
    add("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes decoding image files (default: the cores, at most 8)")
    add("--max-steps", type=int, default=None, help="stop once the run has made this many generator updates")
    add("--out", default=None, help="run folder (default: runs/wgan_gp-<date-time>)")
    add("--resume", default=None, metavar="CHECKPOINT", help="continue the run saved in this checkpoint.pt, with its "
        f"settings; only {', '.join(RESUME_MAY_CHANGE)} may be given with it (those not given: the run's own "
        f"--epochs and --data-root, the defaults of the others)")
    return check_args(p.parse_args(argv), given=[a.split("=")[0] for a in argv if a.startswith("--")])


# ----------------------------------------------------------------------------- data
def load_data(args, device):
    """The training images in [-1, 1], channels first. CelebA and folders, too big for memory at
    128x128: a Dataset of the files, decoded by worker processes while the networks train. A small
    set: one tensor on the device, decoded, resized and scaled once, so that an epoch only indexes it."""
    if args.dataset in ("celeba", "folder"):
        root = celeba_folder(args) if args.dataset == "celeba" else os.path.expanduser(args.data_root)
        images = ImageFiles(root, args.image_size, celeba=args.dataset == "celeba")
        if len(images) < args.batch_size:
            fail(f"{root} holds {len(images)} images, fewer than one batch of {args.batch_size}; "
                 f"add images or lower --batch-size")
        return images
    if args.dataset == "fake":  # random images, for tests: runs anywhere, learns nothing
        x = torch.rand(1024, 3, args.image_size, args.image_size, generator=torch.Generator().manual_seed(0))
        return (x * 2 - 1).to(device)
    x = download(args)  # uint8: N x H x W (MNIST) or N x H x W x C (CIFAR-10)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1)  # [0, 255] -> [-1, 1], the range of G's Tanh (in place: less memory)
    if x.shape[-1] != args.image_size:  # 28 or 32 -> 32 or 64: the networks' strides want a power of two
        x = F.interpolate(x, size=(args.image_size, args.image_size), mode="bilinear")  # only upsampling: no antialiasing needed
    return x.to(device)


def batches(data, args, epoch, skip, device):
    """The real batches of one epoch, in an order drawn from the epoch's own seed. skip is 0 for a new
    epoch; a run resumed mid-epoch skips the batches it already used, and goes on where it stopped
    (the order is drawn again, the same). The last incomplete batch is dropped."""
    generator = torch.Generator().manual_seed(1000 * args.seed + epoch)
    order = torch.randperm(len(data), generator=generator)
    order = order[:len(data) // args.batch_size * args.batch_size].view(-1, args.batch_size)[skip:]
    if isinstance(data, torch.Tensor):
        for idx in order.to(data.device):
            yield data[idx]
    else:  # worker processes decode the files while the networks train
        pinned = device.type == "cuda"  # page-locked: the copy to the GPU is only queued, Python goes on queueing the step
        for x in torch.utils.data.DataLoader(data, batch_sampler=order.tolist(), num_workers=args.workers,
                                             pin_memory=pinned, worker_init_fn=ignore_ctrl_c, generator=generator):
            yield x.to(device, non_blocking=pinned)  # non_blocking only from pinned memory: safe on every device


# ----------------------------------------------------------------------------- networks
class Generator(nn.Module):
    """z (nz) -> image (nc x S x S) in [-1, 1]. At --dataset mnist --ngf 32 (S = 32):
    128 -> 256x4x4 -> 128x8x8 -> 64x16x16 -> 32x32x32 -> 1x32x32. At the defaults (S = 128):
    128 -> 512x4x4 -> 512x8x8 -> 512x16x16 -> 256x32x32 -> 128x64x64 -> 64x128x128 -> 3x128x128.

    A linear layer makes a 4x4 map; blocks of (upsample x2, 3x3 convolution, batch norm, ReLU) grow
    it to S x S (3 blocks at 32x32, 5 at 128x128), and a 3x3 convolution with Tanh gives the image.
    Nearest upsampling then a convolution, rather than a transposed convolution, avoids the
    checkerboard pattern that overlapping strides leave (Odena et al. 2016). The generator keeps
    batch norm: the penalty concerns the critic only.
    """

    def __init__(self, nz=128, ngf=64, nc=3, image_size=128):
        super().__init__()
        blocks = int(math.log2(image_size // 4))  # x2 upsamplings from 4x4: 3 at 32, 4 at 64, 5 at 128
        w = [ngf * min(8, 2 ** (blocks - i)) for i in range(blocks + 1)]  # from S x S back to 4x4: ngf, doubling, at most ngf*8
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
    """lambda * E[(||grad D(x_hat)||_2 - 1)^2], x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample;
    and E[||grad D(x_hat)||_2], the critic's mean slope on those points, which the penalty pulls to 1.

    One batched backward pass gives every sample's gradient: the score of sample i depends on
    x_hat_i alone (no batch norm), so the gradient of sum_i D(x_hat_i) with respect to x_hat_i is
    grad D(x_hat_i). create_graph=True keeps that gradient differentiable, so that the penalty can
    itself be minimised (a second backward pass through D).
    """
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    slope = grad.flatten(1).norm(dim=1)  # ||grad D(x_hat_i)||_2, one per sample
    return lambda_gp * ((slope - 1) ** 2).mean(), slope.detach().mean()


# ----------------------------------------------------------------------------- what a run measures
def grad_norm(net):
    """The L2 norm of all of net's parameter gradients from the last backward, taken as one vector."""
    return torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]).norm()


def spread_across_z(images):
    """Each pixel's standard deviation across the samples, averaged over the pixels: about 0 when G draws
    the same image for every z (mode collapse), about as high as for real images when it draws variety."""
    return images.std(dim=0).mean()


# ----------------------------------------------------------------------------- training
def main(argv=None):
    args, checkpoint = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
    elif device.type == "cpu":  # PyTorch's own count, which the checkpoint records; setting it also
        # stops MKL from choosing fewer threads on its own, so every step sums in the same order
        torch.set_num_threads(args.threads)
    data = load_data(args, device)
    nc = DATASETS[args.dataset]
    steps_per_epoch = len(data) // args.batch_size // args.n_critic  # generator updates per pass over the data
    if steps_per_epoch == 0:
        fail(f"the data make {len(data) // args.batch_size} batches of {args.batch_size}, fewer than --n-critic "
             f"{args.n_critic}; lower --batch-size or --n-critic")

    G = Generator(args.nz, args.ngf, nc, args.image_size).to(device)
    D = Critic(args.ndf, nc, args.image_size).to(device)  # PyTorch's default init (the paper's code: a He-style uniform)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(64, args.nz, device=device)  # the same 64 z for every saved grid

    # The run's folder, log and checkpoint (see the bookkeeping below). A resumed run gets back its
    # weights, optimiser states, fixed_noise, random state and step: it goes on exactly where it stopped.
    run = Run(args, checkpoint, len(data), steps_per_epoch, G, D, opt_G, opt_D, fixed_noise)
    step = run.step  # generator updates so far
    with run:  # from here on, Ctrl-C finishes the step under way, then the run saves and stops
        # A new run starts at step 0: epoch 0, skipping no batch. A resumed one starts at its saved step:
        # in the epoch and at the batch where it stopped, so that it never sees a batch twice.
        for epoch in range(step // steps_per_epoch, args.epochs):
            real_batches = batches(data, args, epoch, (step % steps_per_epoch) * args.n_critic, device)
            for _ in range(step % steps_per_epoch, steps_per_epoch):
                # (1) Update the critic n_critic times, each on a new real batch:
                #     L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]
                for _ in range(args.n_critic):
                    real = next(real_batches)
                    with torch.no_grad():  # the critic's step needs no gradient through G
                        fake = G(torch.randn(args.batch_size, args.nz, device=device))
                    # One call on torch.cat([real, fake]) would give the same scores (no batch norm mixes the
                    # samples), but measured 6-15 % slower on a CPU than these two
                    score_real, score_fake = D(real).mean(), D(fake).mean()
                    gp, grad_x_hat = gradient_penalty(D, real, fake, args.lambda_gp)
                    loss_D = score_fake - score_real + gp
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    grad_D = grad_norm(D)  # how hard L_D pushes the critic (the last update's value is logged)
                    opt_D.step()

                # (2) Update G once, on fresh noise: L_G = -E[D(G(z))]
                D.requires_grad_(False)  # the gradient still flows through D into G; D's own would be thrown away
                loss_G = -D(G(torch.randn(args.batch_size, args.nz, device=device))).mean()
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                grad_G = grad_norm(G)  # how hard L_G pushes G
                opt_G.step()
                D.requires_grad_(True)

                step += 1
                # E[D(x)] - E[D(G(z))] before the last critic update: the Wasserstein estimate
                run.log(step, loss_D, loss_G, gp, score_real - score_fake, grad_G, grad_D, grad_x_hat)
                if run.should_stop(step):  # --max-steps reached, or Ctrl-C
                    break
            run.save(epoch, step)  # this epoch's sample grid (drawn with G.eval()) and its spread, checkpoint, log, plots
            if run.should_stop(step):
                break
    print(f"Run folder: {args.out}")


# ============================================================================= bookkeeping
# A first read can stop here. What follows makes the script robust and leaves a record: checking
# flag values, resuming, checkpoints, the log and its host-device batching, plots, notebook display.

def fail(message):
    """Bad input: one line that says what is wrong and what to do, exit status 2, no traceback."""
    print(f"{SCRIPT}.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def check_args(args, given):
    """Check the flag values and apply the resume rule; `given` lists the flags on the command line."""
    checkpoint = None
    if args.resume:  # the rule: every setting comes from the checkpoint, but those in RESUME_MAY_CHANGE
        refused = [flag for flag in given if flag not in RESUME_MAY_CHANGE and flag != "--resume"]
        if refused:
            fail(f"{refused[0]} cannot be given with --resume: a resumed run keeps the settings it was started "
                 f"with (only {', '.join(RESUME_MAY_CHANGE)} may change); start a new run to change them")
        checkpoint = read_checkpoint(args.resume)
        for name, value in checkpoint["args"].items():
            flag = f"--{name.replace('_', '-')}"
            if flag not in given and RESUME_MAY_CHANGE.get(flag) != "default":
                setattr(args, name, value)
        args.out = os.path.dirname(os.path.abspath(args.resume))
        epochs, steps = checkpoint["epoch"], checkpoint["step"]
        if args.epochs <= epochs:
            fail(f"the checkpoint has already trained {epochs} epoch{'s' * (epochs != 1)}, and --epochs counts them "
                 f"all, not those to add; give --epochs {epochs + 1} or more")
        if args.max_steps is not None and args.max_steps <= steps:
            fail(f"the checkpoint has already made {steps} steps, and --max-steps counts them all, not those to "
                 f"add; give --max-steps {steps + 1} or more")
    else:
        args.epochs = 5 if args.epochs is None else args.epochs
        # args.out stays None for the default folder: Run makes runs/<script>-<date-time> when training starts
        if args.out is not None and os.path.exists(args.out) and not (os.path.isdir(args.out) and not os.listdir(args.out)):
            fail(f"--out {args.out} already exists and is not empty; choose a new folder "
                 f"(or continue that run with --resume {os.path.join(args.out, 'checkpoint.pt')})")
    if args.image_size is None:  # MNIST's 28 and CIFAR-10's 32 pixels: 32; CelebA and folders: the paper's 128
        args.image_size = 32 if args.dataset in ("mnist", "cifar10") else 128
    for name in ("lr_d", "lr_g"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            fail(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    if not (math.isfinite(args.lambda_gp) and args.lambda_gp >= 0):
        fail(f"--lambda-gp must be >= 0, got {args.lambda_gp}")
    for name, low in (("nz", 1), ("ngf", 1), ("ndf", 1), ("epochs", 1), ("n_critic", 1), ("max_steps", 1), ("workers", 0)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            fail(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if args.batch_size < 2:
        fail(f"--batch-size must be >= 2 (the generator's batch norm needs two images), got {args.batch_size}")
    if not (0 <= args.beta1 < 1 and 0 <= args.beta2 < 1):
        fail(f"--beta1 and --beta2 must lie in [0, 1), got {args.beta1} and {args.beta2}")
    if args.dataset in ("mnist", "cifar10") and args.image_size > 64:
        fail(f"--dataset {args.dataset} holds {28 if args.dataset == 'mnist' else 32}-pixel images; "
             f"use --image-size 32 (or 64)")
    if args.dataset == "folder" and not os.path.isdir(os.path.expanduser(args.data_root)):
        fail(f"--data-root {args.data_root} is not a folder; give the folder that holds your images")
    if args.dataset in ("celeba", "folder") and args.workers and IN_NOTEBOOK and multiprocessing.get_start_method() != "fork":
        print(f"{SCRIPT}: --workers 0, since workers started by {multiprocessing.get_start_method()} "
              f"cannot import what a notebook cell defines")
        args.workers = 0
    gpus = {"cuda": ("CUDA", torch.cuda.is_available()), "mps": ("Apple", torch.backends.mps.is_available())}
    if args.device == "auto":
        args.device = next((name for name, (_, found) in gpus.items() if found), "cpu")
    elif args.device in gpus and not gpus[args.device][1]:
        fail(f"--device {args.device}: PyTorch sees no {gpus[args.device][0]} GPU here; use --device auto or cpu")
    args.threads = torch.get_num_threads()  # saved with the args: on a CPU, exact resume needs the same count
    return args, checkpoint


def kernel_arguments():
    """Whether sys.argv holds a notebook kernel's own arguments, its connection file (-f <file>, or --f=<file>
    in VS Code), rather than this script's flags (%run wgan_gp.py --epochs 1 puts those in sys.argv)."""
    return IN_NOTEBOOK and any(a == "-f" or a.startswith("--f=") for a in sys.argv[1:])


CHECKPOINT_KEYS = ["script", "args", "nc", "n_images", "step", "epoch", "G", "D", "opt_G", "opt_D",
                   "fixed_noise", "history"]  # and "rng", the random state, in checkpoints that resume exactly


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
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        fail(f"--resume {path} lacks {', '.join(missing)}: it is not a whole checkpoint of {SCRIPT}.py; start a new run")
    return checkpoint


def new_run_folder():
    """runs/<script>-<date-time>, made in one step: os.mkdir fails where the folder exists, so runs started in
    the same second (a loop that launches several) get a folder each, the later ones <name>-2, -3, ..."""
    os.makedirs("runs", exist_ok=True)
    name = os.path.join("runs", f"{SCRIPT}-{datetime.now():%Y%m%d-%H%M%S}")
    folder, k = name, 1
    while True:
        try:
            os.mkdir(folder)
            return folder
        except FileExistsError:  # another run's
            k += 1
            folder = f"{name}-{k}"


def download(args):
    """MNIST or CIFAR-10 as a uint8 tensor, from --data-root (downloaded there if absent)."""
    root = os.path.expanduser(args.data_root)
    sets = {"mnist": (torchvision.datasets.MNIST, "MNIST"),
            "cifar10": (torchvision.datasets.CIFAR10, "cifar-10-batches-py")}  # and its folder in root
    dataset, folder = sets[args.dataset]
    if os.path.basename(os.path.normpath(root)) == folder and not os.path.isdir(os.path.join(root, folder)):
        fail(f"--data-root {args.data_root} is the {folder} folder itself; give the folder that holds it, "
             f"--data-root {os.path.dirname(os.path.normpath(args.data_root)) or '.'}")
    new = [f for f in (os.path.join(root, folder, "raw"), os.path.join(root, folder), root) if not os.path.isdir(f)]
    try:
        return torch.as_tensor(dataset(root, train=True, download=True).data)
    except (OSError, RuntimeError) as e:  # no internet (URLError is an OSError), or a broken file
        remove_empty_folders(new)  # torchvision makes <root>/MNIST/raw before it downloads
        # torchvision lists each address it tried, each followed by its error: the reason is on the last line
        reason = (str(e).strip().splitlines() or [type(e).__name__])[-1].removeprefix("<urlopen error ").removesuffix(">")
        fail(f"{args.dataset} is not in {root} and could not be downloaded ({reason}); "
             f"connect to the internet, or point --data-root at a folder that holds it")


def remove_empty_folders(folders):
    """Remove each of these folders that exists and is empty, the deepest first: a failed download leaves none behind."""
    for folder in folders:
        if os.path.isdir(folder) and not os.listdir(folder):
            os.rmdir(folder)


def celeba_folder(args):
    """<data-root>/celeba/img_align_celeba: all 202,599 aligned faces (a GAN needs no train/test split),
    downloaded there by torchvision if absent."""
    root = os.path.expanduser(args.data_root)
    folder = os.path.join(root, "celeba", "img_align_celeba")
    if not os.path.isdir(folder):
        new = [f for f in (os.path.join(root, "celeba"), root) if not os.path.isdir(f)]
        try:
            torchvision.datasets.CelebA(root, split="all", download=True)
        except Exception as e:  # no internet, no gdown, or the host's daily quota spent: all say the same
            remove_empty_folders(new)
            reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            fail(f"CelebA is not in {folder} and could not be downloaded ({reason}); download "
                 f"img_align_celeba.zip by hand from the CelebA page (mmlab.ie.cuhk.edu.hk/projects/CelebA.html), "
                 f"unzip it and run with --dataset folder --data-root <the img_align_celeba folder>")
    return folder


class ImageFiles(torch.utils.data.Dataset):
    """Every image file under a folder (searched recursively, no class subfolders needed), as an RGB tensor
    in [-1, 1]: resized, then its centre square; for CelebA's 178x218 faces, the centre 178x178, then resized."""

    def __init__(self, root, size, celeba=False):
        self.paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root) for name in names
                            if name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")))
        crop = [T.CenterCrop(178), T.Resize(size)] if celeba else [T.Resize(size), T.CenterCrop(size)]
        self.transform = T.Compose(crop + [T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def ignore_ctrl_c(worker_id):
    """In DataLoader workers: Ctrl-C is for the training process, which first finishes its step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "gp", "wasserstein", "grad_G", "grad_D", "grad_x_hat",
               "spread"]  # spread: at each grid


class Run:
    """A run's record: resuming, the progress line and log, Ctrl-C between steps, what it saves."""

    def __init__(self, args, checkpoint, n_images, steps_per_epoch, G, D, opt_G, opt_D, fixed_noise):
        self.args, self.n_images, self.steps_per_epoch, self.fixed_noise = args, n_images, steps_per_epoch, fixed_noise
        self.state = {"G": G, "D": D, "opt_G": opt_G, "opt_D": opt_D}  # each has a state_dict
        self.step, self.history, self.pending, self.pictures, self.interrupted = 0, [], [], {}, False
        if checkpoint:
            self.resume(checkpoint)
        self.total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
        self.timer = self.last_line = self.last_save = (time.perf_counter(), self.step)
        args.out = args.out or new_run_folder()  # only now: a run that fails before training leaves no folder
        os.makedirs(args.out, exist_ok=True)  # --out, checked new or empty; or the resumed run's
        print(f"{SCRIPT}: {n_images:,} {args.dataset} images of {DATASETS[args.dataset]}x{args.image_size}x"
              f"{args.image_size} on {args.device}, G {sum(p.numel() for p in G.parameters()):,} and D "
              f"{sum(p.numel() for p in D.parameters()):,} parameters, {steps_per_epoch} steps per epoch, "
              f"writing to {args.out}", flush=True)

    def resume(self, checkpoint):
        if checkpoint["n_images"] != self.n_images:
            fail(f"the checkpoint was trained on {checkpoint['n_images']:,} images, --data-root now holds "
                 f"{self.n_images:,}; resume with the same data")
        for name, thing in self.state.items():
            thing.load_state_dict(checkpoint[name])
        self.fixed_noise.copy_(checkpoint["fixed_noise"])
        self.step = checkpoint["step"]
        self.history = [row + [None] * (len(LOG_COLUMNS) - len(row)) for row in checkpoint["history"]]  # older: fewer columns
        saved = checkpoint["args"]
        if "rng" not in checkpoint:  # written before resuming was exact
            print(f"{SCRIPT}: this checkpoint holds no random state: the resumed run draws new noise")
            torch.manual_seed(self.args.seed + self.step)
        elif saved.get("device", self.args.device) != self.args.device:  # a GPU's random state serves that GPU only
            print(f"{SCRIPT}: the checkpoint was written on {saved['device']}, this run is on {self.args.device}: "
                  f"the noise differs from here on (resume with --device {saved['device']} to go on exactly)")
        elif self.args.device == "cpu" and saved.get("threads", self.args.threads) != self.args.threads:
            print(f"{SCRIPT}: the checkpoint was written with {saved['threads']} CPU threads, this run has "
                  f"{self.args.threads}: sums add in another order, so the run drifts by rounding from the one "
                  f"that never stopped (run with OMP_NUM_THREADS={saved['threads']} to go on exactly)")
        for kind, state in checkpoint.get("rng", {}).items():  # the noise goes on as if never stopped
            if kind == "cpu":
                torch.set_rng_state(state)
            elif kind == self.fixed_noise.device.type:  # cuda or mps
                getattr(torch, kind).set_rng_state(state)

    def __enter__(self):  # Ctrl-C, the first time, only asks the loop to stop after the step under way
        self.old_handler = signal.signal(signal.SIGINT, self.on_ctrl_c)

    def __exit__(self, *exception):
        signal.signal(signal.SIGINT, self.old_handler)

    def on_ctrl_c(self, signum, frame):
        print("\ninterrupted: saving the checkpoint and plots after this step (Ctrl-C again: stop now)", flush=True)
        self.interrupted = True
        signal.signal(signal.SIGINT, self.old_handler)

    def should_stop(self, step):
        return step >= self.total_steps or self.interrupted

    def log(self, step, *stats):
        """Keep this step's statistics on the device; print a progress line every LOG_EVERY steps.

        On a GPU, reading a number back (.item(), .tolist()) waits for the GPU to finish: doing it
        once every LOG_EVERY steps, for all of them at once, lets the GPU run ahead of Python.
        """
        self.pending.append((step, torch.stack(stats).detach()))
        if step % LOG_EVERY and step % self.steps_per_epoch and not self.should_stop(step):
            return
        self.fetch()
        (t_start, step_start), (t_last, step_last), now = self.timer, self.last_line, time.perf_counter()
        rate = (step - step_last) * self.args.n_critic * self.args.batch_size / (now - t_last)
        left = (now - t_start) / (step - step_start) * (self.total_steps - step)
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        loss_d, loss_g, gp, w_estimate, grad_g, grad_d, grad_x_hat, _ = self.history[-1][2:]
        print(f"[{epoch + 1}/{self.args.epochs}][{i + 1:4d}/{self.steps_per_epoch}] Loss_D {loss_d:.3f} "
              f"Loss_G {loss_g:.3f} GP {gp:.3f} W {w_estimate:.3f} |grad D(x_hat)| {grad_x_hat:.3f} "
              f"grad_G {grad_g:.3g} grad_D {grad_d:.3g} | {rate:,.0f} img/s, "
              f"{left // 60:.0f}m{left % 60:02.0f}s left", flush=True)
        self.last_line = (now, step)

    def fetch(self):
        """Copy the pending statistics to the host in one go; stop the run if they are not finite."""
        stats = torch.stack([values for _, values in self.pending]).cpu() if self.pending else torch.zeros(0)
        self.history += [[(s - 1) // self.steps_per_epoch + 1, s] + row + [None] for (s, _), row in zip(self.pending, stats.tolist())]
        self.pending.clear()
        if not torch.isfinite(stats).all():
            save_log_and_plots(self.history, self.args.out, self.steps_per_epoch)
            kept = "the last good checkpoint is kept" if os.path.exists(os.path.join(self.args.out, "checkpoint.pt")) \
                else "no checkpoint had been written yet"
            sys.exit(f"{SCRIPT}.py: error: the losses became NaN or infinite by step {self.history[-1][1]}: "
                     f"training diverged ({kept} in {self.args.out}); try lower learning rates")

    def save(self, epoch, step):
        """Everything a run leaves: this epoch's sample grid and its spread, the checkpoint, the log and plots."""
        self.fetch()
        seconds, steps = time.perf_counter() - self.last_save[0], step - self.last_save[1]
        grid = os.path.join(self.args.out, f"samples_epoch_{epoch + 1:03d}.png")
        self.history[-1][-1] = save_samples(self.state["G"], self.fixed_noise, grid)  # the spread column
        print(f"epoch {epoch + 1}: {steps} steps in {seconds:.1f} s, "
              f"{steps * self.args.n_critic * self.args.batch_size / seconds:,.0f} img/s, "
              f"spread across z {self.history[-1][-1]:.3f}", flush=True)
        device = self.fixed_noise.device.type  # the random state of the CPU, and of the GPU if there is one
        rng = {"cpu": torch.get_rng_state(), **({device: getattr(torch, device).get_rng_state()} if device != "cpu" else {})}
        save_checkpoint(os.path.join(self.args.out, "checkpoint.pt"), {
            "script": SCRIPT, "args": vars(self.args), "nc": DATASETS[self.args.dataset], "n_images": self.n_images,
            "step": step, "epoch": step // self.steps_per_epoch, "fixed_noise": self.fixed_noise.cpu(),
            "history": self.history, "rng": rng, **{name: thing.state_dict() for name, thing in self.state.items()}})
        save_log_and_plots(self.history, self.args.out, self.steps_per_epoch)
        if IN_NOTEBOOK:  # under the cell: the newest grid and the loss plot, each replaced in place
            from IPython.display import Image as Picture, display
            for kind, path in (("grid", grid), ("losses", os.path.join(self.args.out, "losses.png"))):
                if kind in self.pictures:
                    self.pictures[kind].update(Picture(filename=path))
                else:
                    self.pictures[kind] = display(Picture(filename=path), display_id=True)
        self.last_save = (time.perf_counter(), step)


@torch.no_grad()
def save_samples(G, noise, path):
    """Draw the grid of one image per z in noise; return its spread across z."""
    G.eval()  # batch norm uses its running statistics: a sample does not depend on its batch
    images = G(noise)
    G.train()
    save_image(images, path, nrow=8, normalize=True, value_range=(-1, 1))
    return spread_across_z(images).item()


def save_checkpoint(path, state):
    torch.save(state, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: an interruption never leaves half a checkpoint


def smooth(values, weight=0.95):
    """Exponential moving average, to see the trend through the step-to-step noise."""
    out, avg = [], math.nan
    for v in values:
        avg = v if math.isnan(avg) else weight * avg + (1 - weight) * v  # (re)starts at a value that exists
        out.append(avg)
    return out


def save_log_and_plots(history, out, steps_per_epoch):
    """log.csv (one row per generator update), losses.png, and progress.gif from the saved grids."""
    with open(os.path.join(out, "log.csv"), "w", newline="") as f:  # a value not measured is left empty
        csv.writer(f).writerows([LOG_COLUMNS] + [row[:2] + ["" if v is None else f"{v:.5g}" for v in row[2:]]
                                                 for row in history])
    if not history:
        return
    column = {name: [math.nan if row[i] is None else row[i] for row in history] for i, name in enumerate(LOG_COLUMNS)}
    steps = column["step"]
    fig = Figure(figsize=(10, 14), layout="constrained")
    ax_loss, ax_w, ax_gp, ax_slope, ax_grad, ax_spread = fig.subplots(6, 1, sharex=True,
                                                                      height_ratios=[1, 1, 0.7, 0.7, 1, 0.6])
    for ax, name, color, label in ((ax_loss, "loss_D", "tab:blue", "Loss_D (critic)"),
                                   (ax_loss, "loss_G", "tab:orange", "Loss_G"),
                                   (ax_w, "wasserstein", "tab:purple", "E[D(x)] - E[D(G(z))]"),
                                   (ax_gp, "gp", "tab:grey", "gradient penalty"),
                                   (ax_slope, "grad_x_hat", "tab:brown", r"$E\,\|\nabla_{\hat x} D(\hat x)\|$"),
                                   (ax_grad, "grad_D", "tab:blue", r"grad_D = $\|\nabla_{\theta_D} L_D\|$"),
                                   (ax_grad, "grad_G", "tab:orange", r"grad_G = $\|\nabla_{\theta_G} L_G\|$")):
        ax.plot(steps, column[name], color=color, alpha=0.25, linewidth=0.6)
        ax.plot(steps, smooth(column[name]), color=color, label=label)
    grids = [(step, value) for step, value in zip(steps, column["spread"]) if not math.isnan(value)]
    if grids:
        ax_spread.plot(*zip(*grids), "o-", color="tab:purple", label="spread across z of the sample grid")
    for ax in (ax_loss, ax_w, ax_gp, ax_slope, ax_grad, ax_spread):
        if ax.get_legend_handles_labels()[0]:  # the spread panel stays empty until the first grid
            ax.legend(loc="upper right")
        ax.vlines(range(steps_per_epoch, steps[-1], steps_per_epoch), 0, 1, transform=ax.get_xaxis_transform(),
                  color="grey", alpha=0.3, linewidth=0.8)  # epoch boundaries
    ax_loss.set_ylabel("loss")
    ax_w.set_ylabel("Wasserstein estimate")  # falls as G's samples approach the data
    ax_gp.set_ylabel("penalty (with lambda)")
    ax_slope.axhline(1, color="grey", linestyle=":", linewidth=1)  # the slope of a 1-Lipschitz critic's optimum
    log = "log" if any(v > 0 for v in column["grad_G"]) else "linear"  # (no value > 0: the run diverged at once)
    ax_slope.set(yscale=log, ylabel="critic's slope")
    ax_grad.set(yscale=log, ylabel="gradient norm")
    ax_spread.set(ylim=(0, 1), ylabel="spread", xlabel=f"generator step ({steps_per_epoch} per epoch)")  # a std of [-1, 1]: <= 1
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)
    frames = [Image.open(p) for p in sorted(glob.glob(os.path.join(out, "samples_epoch_*.png")))]
    if frames:  # each grid for 0.6 s, the last one for 2 s
        frames[0].save(os.path.join(out, "progress.gif"), save_all=True, append_images=frames[1:],
                       duration=[600] * (len(frames) - 1) + [2000], loop=0)


if __name__ == "__main__":
    main()
