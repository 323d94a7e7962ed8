"""WGAN-GP: a Wasserstein GAN whose critic is kept 1-Lipschitz by a gradient penalty, in one file
(Gulrajani, Ahmed, Arjovsky, Dumoulin & Courville 2017, "Improved Training of Wasserstein GANs").

The critic D gives a score, not a probability. The generator G minimises the Wasserstein-1 distance
between the data and its samples, which the Kantorovich-Rubinstein duality writes as

    W(P_data, P_G) = max over 1-Lipschitz f of  E_x[f(x)] - E_z[f(G(z))]

so the game is  min_G max_{D 1-Lipschitz} E_x[D(x)] - E_z[D(G(z))].  Why 1-Lipschitz: without a
bound on its slope the critic could make the difference as large as it likes; with it, the maximum
is the distance itself, finite and smooth even where the two distributions do not overlap, so G
gets useful gradients where a standard GAN's discriminator saturates. A differentiable f is
1-Lipschitz iff ||grad f|| <= 1 everywhere; WGAN-GP asks for it softly, with a penalty at points
x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1] per sample, between real and fake samples (the
optimal critic has gradient norm 1 along such lines):

    L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]
    L_G = -E[D(G(z))]

Algorithm 1 of the paper, as the loop below runs it:
    for each generator update:
        repeat n_critic times: real batch x, noise z, eps ~ U[0, 1]; one Adam step of D on L_D
        fresh noise z; one Adam step of G on L_G

What to watch (the progress line, and losses.png in the run folder, one panel each):
- W, the critic's estimate E[D(x)] - E[D(G(z))] of the distance: it rises while the critic learns
  to tell the untrained G's samples from the data, then falls as they improve, as a standard GAN's
  losses never do. The scores are no probabilities: there is no 0.5 to aim for, only the gap counts.
- |grad D(x_hat)|, the critic's mean slope on the penalty's points: the penalty holds it near 1.
  With --lambda-gp 0 nothing does: it climbs far above 1, and W with it, which then measures how
  steep the critic has grown, not how far the samples are from the data. GP, the penalty, stays
  small next to W.
- grad_G, grad_D: the L2 norm of a network's weight gradients, how hard its loss pushes it (close
  to each other while neither player wins).
- spread across z, at each epoch's end: each pixel's standard deviation across the grid's 64
  samples, averaged. Real MNIST digits read about 0.34; near 0, G draws one image whatever z: mode
  collapse.
W or GP exploding means unstable training: try lower learning rates.

Our defaults are the paper's: lambda = 10, n_critic = 5, Adam with lr 1e-4, beta1 = 0, beta2 = 0.9,
batch 64, z in R^128, no batch norm in the critic. Ours: CelebA at 128x128, G's upsampling,
PyTorch's default init.

    python wgan_gp.py --dataset mnist --ngf 32 --ndf 32       # MNIST at 32x32, 5 epochs
    python wgan_gp.py --dataset folder --data-root ~/data/img_align_celeba
                                                              # CelebA at 128x128 (a GPU's work)
"""
import argparse
import csv
import itertools
import math
import os
import signal
import sys
import time

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
# In Jupyter or Colab (a cell, or %run): a live IPython shell, and the pictures go under the cell
IN_NOTEBOOK = "IPython" in sys.modules and sys.modules["IPython"].get_ipython() is not None


# -------------------------------------------------------------------------------------- networks
class Generator(nn.Sequential):
    """z -> image in [-1, 1]. At the defaults: 128 -> 512x4x4 -> 512x8x8 -> 512x16x16 -> 256x32x32
    -> 128x64x64 -> 64x128x128 -> 3x128x128; on MNIST with --ngf 32: 128 -> 256x4x4 -> 128x8x8 ->
    64x16x16 -> 32x32x32 -> 1x32x32. A linear layer makes a 4x4 map, blocks of (upsample x2, 3x3
    convolution, batch norm, ReLU) grow it, a 3x3 convolution with Tanh gives the image. Nearest
    upsampling then a convolution, not a transposed one, avoids the checkerboard of overlapping
    strides (Odena et al. 2016). Batch norm stays: the penalty concerns the critic."""

    def __init__(self, nz=128, ngf=64, nc=3, image_size=128):
        blocks = int(math.log2(image_size // 4))  # x2 upsamplings from 4x4: 3 at 32, 5 at 128
        # widths from 4x4 to S x S, at most ngf*8
        w = [ngf * min(8, 2 ** (blocks - i)) for i in range(blocks + 1)]
        layers = [nn.Linear(nz, w[0] * 4 * 4, bias=False),
                  nn.Unflatten(1, (w[0], 4, 4)),
                  nn.BatchNorm2d(w[0]),
                  nn.ReLU(True)]
        for w_in, w_out in zip(w, w[1:]):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(w_in, w_out, 3, 1, 1, bias=False),
                       nn.BatchNorm2d(w_out),
                       nn.ReLU(True)]
        super().__init__(*layers, nn.Conv2d(w[-1], nc, 3, 1, 1), nn.Tanh())


class Critic(nn.Sequential):
    """image -> one score per image (no sigmoid: not a probability). Stride-2 4x4 convolutions with
    LeakyReLU(0.2) halve the size down to 4x4, doubling the channels from ndf up to ndf*8; a linear
    layer gives the score. No batch norm: it would make a sample's score depend on its batch, while
    the penalty constrains D's gradient at each sample alone. Layer norm instead, as the paper
    advises (GroupNorm with one group), but not on the image."""

    def __init__(self, ndf=64, nc=3, image_size=128):
        blocks = int(math.log2(image_size // 4))  # stride-2 layers down to 4x4: 3 at 32, 5 at 128
        w = [ndf * min(8, 2 ** i) for i in range(blocks)]  # ndf at S/2, doubling up to ndf*8
        layers = [nn.Conv2d(nc, w[0], 4, 2, 1), nn.LeakyReLU(0.2, True)]  # S -> S/2
        for w_in, w_out in zip(w, w[1:]):
            layers += [nn.Conv2d(w_in, w_out, 4, 2, 1),
                       nn.GroupNorm(1, w_out),
                       nn.LeakyReLU(0.2, True)]
        # ndf*8 x 4 x 4 -> B x 1, flattened to B scores: one per image
        super().__init__(*layers, nn.Flatten(), nn.Linear(w[-1] * 4 * 4, 1), nn.Flatten(0))


# ---------------------------------------------------------------------------- the gradient penalty
def gradient_penalty(D, real, fake, lambda_gp):
    """lambda * E[(||grad D(x_hat)||_2 - 1)^2], x_hat = eps * x + (1 - eps) * G(z), eps ~ U[0, 1]
    per sample; and E[||grad D(x_hat)||_2], the critic's mean slope on those points. One backward
    pass gives every sample's gradient: sample i's score depends on x_hat_i alone (no batch norm),
    so d sum_j D(x_hat_j) / d x_hat_i = grad D(x_hat_i). create_graph=True keeps that gradient
    differentiable, so that the penalty can itself be minimised."""
    eps = torch.rand(real.size(0), 1, 1, 1, device=real.device)
    x_hat = (eps * real + (1 - eps) * fake).requires_grad_(True)
    grad, = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    slope = grad.flatten(1).norm(dim=1)  # ||grad D(x_hat_i)||_2, one per sample
    return lambda_gp * ((slope - 1) ** 2).mean(), slope.detach().mean()


def grad_norm(net):  # the L2 norm of all of net's parameter gradients, taken as one vector
    return torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]).norm()


# -------------------------------------------------------------------------------------- training
def main(argv=None):
    args, saved = parse_args(argv)  # the flags, checked; saved: the checkpoint to resume, or None
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True  # on a GPU: fixed shapes, so cuDNN picks fast kernels
    # the images in [-1, 1]: a tensor on the device (MNIST, CIFAR-10), or a Dataset of files
    data = load_data(args, device)
    # generator updates per pass over the data
    steps_per_epoch = len(data) // args.batch_size // args.n_critic
    if steps_per_epoch == 0:
        fail(f"{len(data):,} images in {args.data_root} make no --n-critic batches of "
             "--batch-size; add images or lower either flag")
    nc = DATASETS[args.dataset]
    G = Generator(args.nz, args.ngf, nc, args.image_size).to(device)  # PyTorch's default init
    D = Critic(args.ndf, nc, args.image_size).to(device)  # (the paper's code: He's, for both)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(64, args.nz, device=device)  # the same 64 z for every grid
    state = {"G": G, "D": D, "opt_G": opt_G, "opt_D": opt_D}
    step = 0  # generator updates made
    history = []  # a row of statistics per generator update
    if saved:  # resume: the run's networks, optimisers, noise, history and random state, as saved
        for name in state:
            state[name].load_state_dict(saved[name])
        fixed_noise.copy_(saved["fixed_noise"])
        step = saved["step"]
        history = saved["history"]
        for name, rng in saved["rng"].items():  # the CPU's, a GPU's: the noise goes on unchanged
            (torch if name == "cpu" else getattr(torch, name)).set_rng_state(rng)
    last_step = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    log = Log(args, steps_per_epoch, history)  # progress lines (machinery, below)
    os.makedirs(args.out, exist_ok=True)  # the run folder

    with CtrlC() as ctrl_c:  # Ctrl-C: the step under way finishes, then the run saves and stops
        for epoch in range(step // steps_per_epoch, args.epochs):
            made = step - epoch * steps_per_epoch  # this epoch's steps made before a resume (or 0)
            for reals in batches(data, args, epoch, made, device):  # n_critic real batches per step
                # (1) Update the critic n_critic times, each on a new real batch:
                #     L_D = E[D(G(z))] - E[D(x)] + lambda * E[(||grad D(x_hat)||_2 - 1)^2]
                for real in reals:
                    with torch.no_grad():  # the critic's step needs no gradient through G
                        fake = G(torch.randn(args.batch_size, args.nz, device=device))
                    score_real = D(real).mean()
                    score_fake = D(fake).mean()
                    gp, slope = gradient_penalty(D, real, fake, args.lambda_gp)
                    loss_D = score_fake - score_real + gp
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    grad_D = grad_norm(D)  # how hard L_D pushes D (the last step's is logged)
                    opt_D.step()

                # (2) Update G once, on fresh noise: L_G = -E[D(G(z))]. Its gradient flows back
                # through D into G, but G's step does not update D: D's own weight gradients would
                # be thrown away, so skip them (saves time).
                D.requires_grad_(False)
                loss_G = -D(G(torch.randn(args.batch_size, args.nz, device=device))).mean()
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                grad_G = grad_norm(G)  # how hard L_G pushes G
                opt_G.step()
                D.requires_grad_(True)

                step += 1
                # kept on the device; a progress line every LOG_EVERY steps.
                # W = E[D(x)] - E[D(G(z))], the Wasserstein estimate, from before the last D update
                log.add(step, loss_D, loss_G, gp, score_real - score_fake, grad_G, grad_D, slope)
                if step == last_step or ctrl_c.pressed:  # --max-steps reached, or Ctrl-C
                    break

            log.fetch(step)  # the statistics not yet on the host
            grid = os.path.join(args.out, f"samples_epoch_{epoch + 1:03d}.png")
            samples = draw_grid(G, fixed_noise, grid)  # G.eval() on the fixed noise, saved
            spread = samples.std(dim=0).mean().item()  # each pixel's std across z, averaged
            # the spread into the history; the epoch's line; its clock restarts
            log.end_epoch(epoch, step, spread)
            # plain words on what the epoch's signals say, if anything is wrong (and in hints.txt)
            say_hints(log.history, epoch * steps_per_epoch, args.out)
            save_checkpoint(args, step, steps_per_epoch, fixed_noise, log.history, state)
            save_log_and_plots(log.history, args.out, steps_per_epoch)  # log.csv, losses.png, GIF
            if IN_NOTEBOOK:
                log.show(grid, os.path.join(args.out, "losses.png"))  # under the cell, in place
            if step == last_step or ctrl_c.pressed:
                break
    print(f"Run folder: {args.out}")


# ===================================================================================== machinery
# A first read can stop here. What follows parses and checks the flags, loads the data, keeps the
# run's log, checkpoint and plots.
def at_least(low):  # an argparse type: a number >= low, an int or a float as low is (not NaN)
    def parse(text):
        value = type(low)(text)
        if not value >= low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {text}")
        return value
    return parse


positive = at_least(1)


def fraction(text):  # an argparse type: a float in [0, 1)
    value = float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 0 and < 1, got {text}")
    return value


def parse_args(argv=None):
    """The flags, checked -> (args, the checkpoint to resume or None)."""
    if argv is None:  # a notebook kernel's own arguments (-f <connection file>) are not ours
        argv = ([] if IN_NOTEBOOK and any(a == "-f" or a.startswith("--f=") for a in sys.argv[1:])
                else sys.argv[1:])
    p = argparse.ArgumentParser(prog=f"{SCRIPT}.py", usage=argparse.SUPPRESS, allow_abbrev=False,
                                description="Train a WGAN-GP (see its docstring)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--dataset", default="celeba", choices=DATASETS,
        help="training images (fake: random ones, for tests)")
    add("--data-root", default="~/.cache/gan-data",
        help="where the dataset is, or goes; folder: a tree of images")
    add("--image-size", type=int, default=None, choices=[32, 64, 128],
        help="none: 32 for mnist and cifar10, else 128")
    add("--nz", type=positive, default=128, help="size of the noise vector z")
    add("--ngf", type=positive, default=64, help="generator width: channels of its last block")
    add("--ndf", type=positive, default=64, help="critic width: channels of its first layer")
    add("--epochs", type=positive, default=5,
        help="passes over the training set, counting those already made")
    add("--batch-size", type=at_least(2), default=64, help="images per batch")
    add("--lr-d", type=at_least(0.0), default=1e-4,
        help="critic learning rate (0: D stays as initialised)")
    add("--lr-g", type=at_least(0.0), default=1e-4,
        help="generator learning rate (0: G stays as initialised)")
    add("--beta1", type=fraction, default=0.0, help="Adam beta1")
    add("--beta2", type=fraction, default=0.9, help="Adam beta2")
    add("--lambda-gp", type=at_least(0.0), default=10.0,
        help="weight lambda of the gradient penalty")
    add("--n-critic", type=positive, default=5,
        help="critic updates per generator update, each on a new batch")
    add("--seed", type=int, default=0, help="random seed")
    add("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"],
        help="auto: cuda, else mps, else cpu")
    add("--workers", type=at_least(0), default=min(8, os.cpu_count() or 1),
        help="processes decoding image files")
    add("--max-steps", type=positive, default=None,
        help="stop once the run has made this many generator updates")
    add("--out", default=None, help="run folder; none: runs/wgan_gp-<date-time>")
    add("--resume", default=None, metavar="CHECKPOINT",
        help="go on with the run saved in this checkpoint.pt, with its settings but for the flags "
             "given now (not those of the networks, optimisers, batches or folder)")
    args = p.parse_args(argv)
    saved = read_checkpoint(args.resume) if args.resume else None
    if saved:
        # the run's own settings, but for the flags given now; not those that shaped what it saved
        args = p.parse_args(argv, namespace=argparse.Namespace(**saved["args"]))
        for k in ("dataset image_size nz ngf ndf batch_size n_critic seed lr_d lr_g beta1 beta2 "
                  "out").split():
            if getattr(args, k) != saved["args"][k]:
                fail(f"--{k.replace('_', '-')} cannot change on --resume: start a new run for that")
        args.out = os.path.dirname(os.path.abspath(args.resume))
        if args.epochs <= saved["epoch"]:
            fail(f"--epochs must be > {saved['epoch']}, the epochs the run has made")
        if args.max_steps is not None and args.max_steps <= saved["step"]:
            fail(f"--max-steps must be > {saved['step']}, the steps the run has made")
    elif args.out and os.path.exists(args.out) and (not os.path.isdir(args.out)
                                                     or os.listdir(args.out)):
        fail(f"--out {args.out} already exists and is not empty; "
             "choose a new folder, or --resume its checkpoint.pt")
    args.out = args.out or os.path.join("runs", time.strftime(f"{SCRIPT}-%Y%m%d-%H%M%S"))
    args.image_size = args.image_size or (32 if args.dataset in ("mnist", "cifar10") else 128)
    if args.dataset in ("mnist", "cifar10") and args.image_size > 64:  # 28 and 32 pixels
        fail(f"--dataset {args.dataset} holds images of 32 pixels or fewer; "
             "use --image-size 32 (or 64)")
    found = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(),
             "cpu": True}
    if args.device == "auto":
        args.device = next(name for name in found if found[name])
    if not found[args.device]:
        fail(f"--device {args.device}: PyTorch sees no such GPU here; use --device auto or cpu")
    return args, saved


def read_checkpoint(path):  # a checkpoint of this script, of this version of it
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        if saved["script"] != SCRIPT:
            fail(f"--resume {path} was written by {saved['script']}.py; resume it with that script")
        a = saved["args"]  # an earlier version's checkpoint: its G does not load
        Generator(a["nz"], a["ngf"], saved["nc"], a["image_size"]).load_state_dict(saved["G"])
    except Exception as e:  # missing, unreadable, not a checkpoint, or an earlier version's
        fail(f"--resume {path} cannot be read as a {SCRIPT}.py checkpoint "
             f"({type(e).__name__}); give one")
    return saved


def load_data(args, device):
    """The images in [-1, 1], channels first: CelebA's or a folder's files as a Dataset (too big
    for memory at 128x128), or a small set as one tensor on the device (MNIST, CIFAR-10: downloaded
    to --data-root if absent)."""
    root = os.path.expanduser(args.data_root)
    size = args.image_size
    if args.dataset in ("celeba", "folder"):
        root = celeba_folder(root) if args.dataset == "celeba" else root
        return ImageFiles(root, size, celeba=args.dataset == "celeba")
    if args.dataset == "fake":  # random images, for tests: runs anywhere, learns nothing
        return (torch.rand(1024, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2
                - 1).to(device)
    dataset = {"mnist": torchvision.datasets.MNIST,
               "cifar10": torchvision.datasets.CIFAR10}[args.dataset]
    folder = getattr(dataset, "base_folder", dataset.__name__)  # in root: MNIST, cifar-10-...
    if os.path.basename(os.path.normpath(root)) == folder and not os.path.isdir(
            os.path.join(root, folder)):
        fail(f"--data-root {args.data_root} is the {folder} folder itself; "
             "give the folder that holds it")
    try:  # uint8: N x H x W (x C for CIFAR-10)
        x = torch.as_tensor(dataset(root, train=True, download=True).data)
    except (OSError, RuntimeError) as e:  # no internet (URLError is an OSError), or a broken file
        reason = str(e).strip().splitlines()[-1]  # torchvision names each address it tried
        fail(f"{args.dataset} is not in {root} and could not be downloaded ({reason}); "
             f"connect to the internet, or point --data-root at a folder that holds it")
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1)  # [0, 255] -> [-1, 1], the range of G's Tanh (in place)
    if x.shape[-1] != size:  # 28 or 32 -> 32 or 64: the networks' strides want a power of two
        x = F.interpolate(x, size=(size, size), mode="bilinear")  # only upsampling: no antialiasing
    return x.to(device)


def celeba_folder(root):
    """<data-root>/celeba/img_align_celeba: the 202,599 aligned faces, downloaded there by
    torchvision if absent."""
    folder = os.path.join(root, "celeba", "img_align_celeba")
    if not os.path.isdir(folder):
        try:
            torchvision.datasets.CelebA(root, split="all", download=True)
        except Exception as e:  # no internet, no gdown, or the host's daily quota spent: all alike
            reason = (str(e).strip() or type(e).__name__).splitlines()[0]
            fail(f"CelebA is not in {folder} and could not be downloaded ({reason}); unzip "
                 f"img_align_celeba.zip from mmlab.ie.cuhk.edu.hk/projects/CelebA.html into "
                 f"{os.path.dirname(folder)}, or use --dataset folder")
    return folder


class ImageFiles(torch.utils.data.Dataset):
    """Every image file under root (searched recursively, flat folders too) as RGB in [-1, 1]:
    resized, then its centre square; CelebA's 178x218 faces: their centre 178x178, then resized."""

    def __init__(self, root, size, celeba=False):
        self.paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                            for name in names
                            if name.lower().endswith((".png", ".jpg", ".jpeg", ".bmp", ".gif",
                                                      ".webp")))
        crop = ([T.CenterCrop(178), T.Resize(size)] if celeba
                else [T.Resize(size), T.CenterCrop(size)])
        self.transform = T.Compose(crop + [T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def batches(data, args, epoch, made, device):
    """One epoch's real batches, n_critic of them per generator step, in an order drawn from the
    epoch's own seed, less those of the `made` steps trained on before a resume. Images short of a
    whole step are dropped."""
    steps = len(data) // args.batch_size // args.n_critic
    generator = torch.Generator().manual_seed(1000 * args.seed + epoch)
    order = torch.randperm(len(data), generator=generator)[:steps * args.n_critic * args.batch_size]
    order = order.view(steps, args.n_critic, args.batch_size)[made:]
    if isinstance(data, torch.Tensor):
        for step_order in order.to(data.device):
            yield [data[idx] for idx in step_order]
        return
    pinned = device.type == "cuda"  # page-locked memory: the copy to the GPU is only queued
    loader = torch.utils.data.DataLoader(data, batch_sampler=order.flatten(0, 1).tolist(),
                                         pin_memory=pinned, num_workers=args.workers,
                                         worker_init_fn=ignore_ctrl_c, generator=generator)
    loader = iter(loader)  # worker processes decode the files while the networks train
    for _ in order:
        yield [next(loader).to(device, non_blocking=pinned) for _ in range(args.n_critic)]


def fail(message):  # bad input: one line that says what is wrong and what to do, exit status 2
    print(f"{SCRIPT}.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def ignore_ctrl_c(worker_id):  # in DataLoader workers: Ctrl-C is for the training process
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class CtrlC:  # Ctrl-C, or a notebook's stop button, sets .pressed: the loop stops after the step
    pressed = False

    def __enter__(self):
        press = lambda signum, frame: setattr(self, "pressed", True)
        self.old_handler = signal.signal(signal.SIGINT, press)
        return self

    def __exit__(self, *exception):
        signal.signal(signal.SIGINT, self.old_handler)


class Log:  # the run's statistics: kept on the device, fetched every LOG_EVERY steps, printed
    def __init__(self, args, steps_per_epoch, history):
        self.args = args
        self.steps_per_epoch = steps_per_epoch
        self.history = history  # one row per generator step: the statistics, then the spread
        self.pending = []  # this epoch's rows still on the device
        self.clock = time.perf_counter()  # when the epoch (or the resume) began, and its step
        self.clock_step = len(history)
        self.pictures = {}  # the notebook's displays, updated in place

    def add(self, step, *stats):
        self.pending.append(torch.stack(stats).detach())
        if step % LOG_EVERY == 0:
            self.fetch(step)

    def fetch(self, step):
        """The pending statistics to the host in one go (a GPU waits once), and a progress line."""
        if not self.pending:  # this very step's progress line fetched them
            return
        stats = torch.stack(self.pending)
        self.pending = []
        exit_if_diverged(stats, step)
        self.history += [row + [None] for row in stats.tolist()]  # None: the spread, at grids
        # images per second since the epoch began, or the resume
        rate = ((step - self.clock_step) * self.args.n_critic * self.args.batch_size
                / (time.perf_counter() - self.clock))
        loss_d, loss_g, gp, w, grad_g, grad_d, slope, _ = self.history[-1]
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        print(f"[{epoch + 1}/{self.args.epochs}][{i + 1:4d}/{self.steps_per_epoch}] "
              f"Loss_D {loss_d:.3f} Loss_G {loss_g:.3f} GP {gp:.3f} W {w:.3f} "
              f"|grad D(x_hat)| {slope:.3f} grad_G {grad_g:.3g} grad_D {grad_d:.3g} | "
              f"{rate:,.0f} img/s", flush=True)

    def end_epoch(self, epoch, step, spread):
        self.history[-1][-1] = spread
        print(f"epoch {epoch + 1}: {step - self.clock_step} steps in "
              f"{time.perf_counter() - self.clock:.1f} s, "
              f"spread across z {spread:.3f}", flush=True)
        self.clock = time.perf_counter()
        self.clock_step = step

    def show(self, *pictures):  # in a notebook: each picture under the cell, replaced in place
        from IPython.display import Image as Picture, display
        for i, path in enumerate(pictures):
            self.pictures[i] = self.pictures.get(i) or display(display_id=True)
            self.pictures[i].update(Picture(filename=path))


def exit_if_diverged(stats, step):
    if not stats.isfinite().all():
        fail(f"the losses became NaN or infinite by step {step}: training diverged; "
             "try lower learning rates")


def say_hints(history, first, out):
    """What the signals of this epoch (history[first:]) say, in plain words, where a student should
    know: printed and appended to hints.txt. The thresholds are measured on the README's runs."""
    rows = torch.tensor([row[:7] for row in history[first:]])
    W, slope = rows[:, 3], rows[:, 6]
    tenth = max(len(rows) // 10, 1)  # W at the epoch's start and end: its first and last tenth
    W_start, W_end = W[:tenth].mean(), W[-tenth:].mean()
    spread = history[-1][-1]
    hints = {  # each hint: shown or not
        f"|grad D(x_hat)| {slope.median():.3g} (the epoch's median), far from 1: the penalty does "
        "not hold the critic's slope, and W measures that slope, not a distance":
            not 0.5 < slope.median() < 2,
        f"W rose from {W_start:.3g} to {W_end:.3g} through the epoch: the critic outgrows G":
            first > 0 and W_end > 1.5 * W_start,
        f"spread across z {spread:.3f}, far below real digits' 0.34: mode collapse": spread < 0.1}
    with open(os.path.join(out, "hints.txt"), "a") as f:
        for hint in [hint for hint, shown in hints.items() if shown]:
            for stream in (sys.stdout, f):
                print(f'hint: {hint}; see "What to watch" in the README', file=stream, flush=True)


@torch.no_grad()
def draw_grid(G, noise, path):  # G's samples for the noise, saved as a grid of 8 per row
    images = G.eval()(noise)  # eval: batch norm uses its running statistics, not the batch's
    G.train()
    save_image(images, path, nrow=8, normalize=True, value_range=(-1, 1))
    return images


def save_checkpoint(args, step, steps_per_epoch, fixed_noise, history, state):
    """What --resume and interpolate.py need, written whole or not at all."""
    path = os.path.join(args.out, "checkpoint.pt")
    rng = {name: (torch if name == "cpu" else getattr(torch, name)).get_rng_state()
           for name in {"cpu", fixed_noise.device.type}}  # the CPU's, and the GPU's in use
    torch.save({"script": SCRIPT, "args": vars(args), "nc": DATASETS[args.dataset], "step": step,
                "epoch": step // steps_per_epoch, "fixed_noise": fixed_noise.cpu(), "rng": rng,
                "history": history,
                **{name: net.state_dict() for name, net in state.items()}}, path + ".tmp")
    os.replace(path + ".tmp", path)  # atomic: an interruption never leaves half a checkpoint


LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "gp", "wasserstein", "grad_G", "grad_D",
               "grad_x_hat", "spread"]


def save_log_and_plots(history, out, steps_per_epoch):
    """log.csv (a row per generator step; the spread only where a grid was drawn), losses.png and
    progress.gif."""
    rows = [[i // steps_per_epoch + 1, i + 1] + ["" if v is None else f"{v:.5g}" for v in row]
            for i, row in enumerate(history)]
    with open(os.path.join(out, "log.csv"), "w", newline="") as f:
        csv.writer(f).writerows([LOG_COLUMNS] + rows)
    column = dict(zip(LOG_COLUMNS[2:], zip(*history)))
    steps = range(1, len(history) + 1)
    fig = Figure(figsize=(10, 14), layout="constrained")
    axes = fig.subplots(6, 1, sharex=True, height_ratios=[1, 1, 0.7, 0.7, 1, 0.6])
    ax_loss, ax_w, ax_gp, ax_slope, ax_grad, ax_spread = axes
    curves = [(ax_loss, "loss_D", "tab:blue", "Loss_D (critic)"),
              (ax_loss, "loss_G", "tab:orange", "Loss_G"),
              (ax_w, "wasserstein", "tab:purple", "E[D(x)] - E[D(G(z))]"),
              (ax_gp, "gp", "tab:grey", "gradient penalty"),
              (ax_slope, "grad_x_hat", "tab:brown", r"$E\,\|\nabla_{\hat x} D(\hat x)\|$"),
              (ax_grad, "grad_D", "tab:blue", r"grad_D = $\|\nabla_{\theta_D} L_D\|$"),
              (ax_grad, "grad_G", "tab:orange", r"grad_G = $\|\nabla_{\theta_G} L_G\|$")]
    for ax, name, color, label in curves:  # each drawn raw (faint) and as a moving average
        trend = list(itertools.accumulate(column[name], lambda a, v: 0.95 * a + 0.05 * v))
        ax.plot(steps, column[name], color=color, alpha=0.25, linewidth=0.6)
        ax.plot(steps, trend, color=color, label=label)
    grids = [(step, value) for step, value in zip(steps, column["spread"]) if value is not None]
    ax_spread.plot(*zip(*grids), "o-", color="tab:purple",
                   label="spread across z of the sample grid")
    ylabels = ["loss", "Wasserstein estimate", "penalty (with lambda)", "critic's slope",
               "gradient norm", "spread"]
    for ax, ylabel in zip(axes, ylabels):
        # log scale for the norms
        ax.set(ylabel=ylabel, yscale="log" if ax in (ax_slope, ax_grad) else "linear")
        ax.legend(loc="upper right")
        ax.vlines(range(steps_per_epoch, len(history), steps_per_epoch), 0, 1,
                  transform=ax.get_xaxis_transform(), color="grey", alpha=0.3,
                  linewidth=0.8)  # epoch boundaries
    # the slope of a 1-Lipschitz critic's optimum
    ax_slope.axhline(1, color="grey", linestyle=":", linewidth=1)
    ax_spread.set(ylim=(0, 1), xlabel=f"generator step ({steps_per_epoch} per epoch)")
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)
    frames = [Image.open(os.path.join(out, f)) for f in sorted(os.listdir(out))
              if f.startswith("samples_epoch_")]
    # each grid for 0.6 s, the last for 2 s
    frames[0].save(os.path.join(out, "progress.gif"), save_all=True, append_images=frames[1:],
                   duration=[600] * (len(frames) - 1) + [2000], loop=0)


if __name__ == "__main__":
    main()
