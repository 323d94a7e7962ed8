"""Conditional GAN: a DCGAN told which digit to draw, in one file.

The generator gets a class label y besides the noise z, and the discriminator judges image and
label together (Mirza & Osindero 2014, "Conditional Generative Adversarial Nets"). The minimax
game of the GAN becomes, with every term conditioned on y:

    min_G max_D V(D, G) = E_{x,y}[log D(x, y)] + E_{z,y}[log(1 - D(G(z, y), y))]

Losses, binary cross-entropy on D's logits as in dcgan.py:
    L_D = -E[log D(x, y)] - E[log(1 - D(G(z, y), y))]
    L_G = -E[log D(G(z, y), y)]        (non-saturating; --loss saturating: E[log(1 - D(G(z, y), y))])

How y enters the networks: as a one-hot vector of n_classes entries.
    G: [z, onehot(y)] concatenated, a (nz + n_classes) x 1 x 1 input to the first layer.
    D: onehot(y) spread into n_classes constant feature maps and stacked on the image's channels.
D must see y: a fake "7" drawn for the label "3" can only be caught by a judge who knows the label.
With --d-label off, D sees the image alone and nothing makes G honour y.

Since G must now also use y, z is free to carry what y does not say: the style (slant, stroke
width). The sample grid shows it: one row per class, one column per z shared by the whole column.

What to watch (the progress line, and losses.png in the run folder, one panel each):
- D(x,y), D(G(z,y),y): D's mean probability of "real" for the real batch and for the fakes, before
  D's update. At the equilibrium both are 0.5; in a healthy run D stays a little ahead (about 0.7
  and 0.3). The losses tell the balance of the game, not the quality: look at the grids.
- grad_G, grad_D: how hard each loss pushes its network, the L2 norm of all its weights' gradients
  (Adam rescales each step, so read a norm against its own past, not against 0). D(G(z,y),y) near 0
  does not stop G: the non-saturating loss pulls each fake's logit with weight 1 - D(G(z,y),y), in
  full there. With --loss saturating the weight is D(G(z,y),y), and G's gradient shrinks exactly
  then (dcgan.py's docstring gives numbers).
- spread across z, printed at each epoch's end: how much the grid's samples of one class differ
  (each pixel's standard deviation across the 10 z of a row, averaged over pixels and rows). The
  variety between classes does not count: a G that draws one "7" for every z reads near 0 even
  if its ten classes differ. Ten real MNIST digits of one class read about 0.26; the default run
  reads 0.22 after 1 epoch, 0.24 after 5.

Recipe: DCGAN (Radford, Metz & Chintala 2015), as in dcgan.py. Departures (the course practical's
defaults): 32x32 images (MNIST's 28x28, resized), so one block fewer than the paper's 64x64
networks; narrower networks (ngf = ndf = 32, where the paper's G ends on 128 channels and its D
starts on 128); lr 5e-4 for G where the paper has 2e-4; z ~ N(0, I), where the paper draws z
uniformly from [-1, 1]. One of our own: at 64x64, G's last layer keeps PyTorch's default
initialisation. At N(0, 0.02) G starts on flat grey images, and D, a block deeper at 64x64, often
wins in the first hundred steps (init_weights, beside the networks, gives the numbers).
The paper's settings: --image-size 64 --ngf 128 --ndf 128 --lr-g 2e-4 --weight-init normal.

    python cgan.py                                    # MNIST at 32x32, 5 epochs
    python cgan.py --d-label off                      # D does not see the label
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

SCRIPT = "cgan"
DATASETS = {"mnist": 1, "fashion-mnist": 1, "cifar10": 3, "folder": 3, "fake": 3}  # name: channels
GRID_COLUMNS = 10  # noise vectors in the sample grid, one per column
LOG_EVERY = 50  # generator steps between progress lines (and between host-device syncs)
IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter/Colab, a cell or %run: pictures go under the cell
# The flags a resumed run may be given. "kept": the run's own value unless given; "default": this session's
# (the machine, where to stop), the flag's default unless given
RESUME_MAY_CHANGE = {"--epochs": "kept", "--max-steps": "default", "--data-root": "kept", "--device": "default",
                     "--workers": "default"}


# ----------------------------------------------------------------------------- flags
def parse_args(argv=None):
    """The run's settings: (args, checkpoint), the checkpoint being the dict read from --resume, or None."""
    if argv is None:  # in a notebook: main(["--epochs", "1"]), or %run cgan.py --epochs 1
        argv = [] if kernel_arguments() else sys.argv[1:]
    p = argparse.ArgumentParser(prog=f"{SCRIPT}.py", usage=argparse.SUPPRESS, allow_abbrev=False,  # errors: one line
                                description="Train a conditional DCGAN (see the docstring at the top of cgan.py).")
    add = p.add_argument
    add("--dataset", default="mnist", choices=DATASETS, help="labelled images; fake: random ones (default: mnist)")
    add("--data-root", default="~/.cache/gan-data", help="where the dataset is, or goes; folder: a subfolder per class "
        "(default: ~/.cache/gan-data)")
    add("--image-size", type=int, default=32, choices=[32, 64], help="64 adds a block to each network (default: 32)")
    add("--nz", type=int, default=100, help="size of the noise vector z (default: 100)")
    add("--ngf", type=int, default=32, help="generator width: channels before its last layer (default: 32)")
    add("--ndf", type=int, default=32, help="discriminator width: channels of its first layer (default: 32)")
    add("--d-label", default="on", choices=["on", "off"], help="on: D judges (image, label); off: the image alone "
        "(default: on)")
    add("--weight-init", default="custom", choices=["custom", "normal", "default"], help="custom: N(0, 0.02), but "
        "PyTorch's in G's last layer at 64x64 (see the docstring); normal: N(0, 0.02) everywhere; default: PyTorch's "
        "(default: custom)")
    add("--loss", default="non-saturating", choices=["non-saturating", "saturating"], help="G's loss, see the "
        "docstring (default: non-saturating)")
    add("--epochs", type=int, default=None, help="passes over the training set (default: 5; with --resume, the run's)")
    add("--batch-size", type=int, default=128, help="images per batch (default: 128)")
    add("--lr-d", type=float, default=2e-4, help="discriminator learning rate (default: 2e-4)")
    add("--lr-g", type=float, default=5e-4, help="generator learning rate (default: 5e-4)")
    add("--beta1", type=float, default=0.5, help="Adam beta1 (default: 0.5)")
    add("--beta2", type=float, default=0.999, help="Adam beta2 (default: 0.999)")
    add("--d-steps", type=int, default=1, help="D updates per G update, each on a new batch (default: 1)")
    add("--seed", type=int, default=0, help="random seed (default: 0)")
    add("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"], help="auto: cuda, else mps, else cpu (default: auto)")
    add("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes decoding a folder's images (default: the cores, at most 8)")
    add("--max-steps", type=int, default=None, help="stop once the run has made this many generator updates")
    add("--out", default=None, help="run folder (default: runs/cgan-<date-time>)")
    add("--resume", default=None, metavar="CHECKPOINT", help="continue the run saved in this checkpoint.pt, with its "
        f"settings; only {', '.join(RESUME_MAY_CHANGE)} may be given with it (those not given: the run's own "
        f"--epochs and --data-root, the defaults of the others)")
    return check_args(p.parse_args(argv), given=[a.split("=")[0] for a in argv if a.startswith("--")])


# ----------------------------------------------------------------------------- data
def load_data(args, device):
    """The labelled training set: (data, class names). For a folder, data is torchvision's ImageFolder
    (one subfolder per class); for a small set, a pair of tensors on the device, images in [-1, 1]
    (channels first) and integer labels, decoded, resized and scaled once, so that an epoch only indexes them."""
    if args.dataset == "folder":
        images = image_folder(os.path.expanduser(args.data_root), args)
        return images, images.classes
    if args.dataset == "fake":  # random images with random labels, for tests: runs anywhere, learns nothing
        generator = torch.Generator().manual_seed(0)
        x = torch.rand(1024, 3, args.image_size, args.image_size, generator=generator) * 2 - 1
        y = torch.randint(0, 10, (1024,), generator=generator)
        return (x.to(device), y.to(device)), [str(k) for k in range(10)]
    dataset = download(args)
    x = torch.as_tensor(dataset.data)  # uint8: N x H x W (MNIST) or N x H x W x C (CIFAR-10)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1)  # [0, 255] -> [-1, 1], the range of G's Tanh (in place: less memory)
    if x.shape[-1] != args.image_size:  # 28 or 32 -> 32 or 64: DCGAN's strides want a power of two
        x = F.interpolate(x, size=(args.image_size, args.image_size), mode="bilinear")  # only upsampling: no antialiasing needed
    return (x.to(device), torch.as_tensor(dataset.targets).to(device)), dataset.classes


def batches(data, args, epoch, skip, device):
    """The (images, labels) batches of one epoch, in an order drawn from the epoch's own seed. skip is 0
    for a new epoch; a run resumed mid-epoch skips the batches it already used, and goes on where it
    stopped (the order is drawn again, the same). The last incomplete batch is dropped."""
    generator = torch.Generator().manual_seed(1000 * args.seed + epoch)
    n_images = len(data[1]) if isinstance(data, tuple) else len(data)
    order = torch.randperm(n_images, generator=generator)
    order = order[:n_images // args.batch_size * args.batch_size].view(-1, args.batch_size)[skip:]
    if isinstance(data, tuple):
        x, y = data
        for idx in order.to(x.device):
            yield x[idx], y[idx]
    else:  # worker processes decode the files while the networks train
        pinned = device.type == "cuda"  # page-locked: the copy to the GPU is only queued, Python goes on queueing the step
        for x, y in torch.utils.data.DataLoader(data, batch_sampler=order.tolist(), num_workers=args.workers,
                                                pin_memory=pinned, worker_init_fn=ignore_ctrl_c, generator=generator):
            yield x.to(device, non_blocking=pinned), y.to(device, non_blocking=pinned)  # only from pinned memory


# ----------------------------------------------------------------------------- networks
class Generator(nn.Module):
    """(z, y) -> image in [-1, 1]; y: one-hot class vectors (B x n_classes).
    At the defaults: [z, y] 110x1x1 -> 128x4x4 -> 64x8x8 -> 32x16x16 -> 1x32x32.

    dcgan.py's generator with n_classes more input channels. A blend of two one-hot vectors is a
    valid input too: an in-between condition (interpolate.py's label morph uses it).
    The first transposed convolution turns z into a 4x4 map; each stride-2 block after it doubles the
    size and halves the channels down to ngf, with batch norm and ReLU; the last layer maps ngf
    channels to the image, with Tanh. --image-size 64 adds one block (256x4x4 first).
    """

    def __init__(self, nz=100, ngf=32, nc=1, image_size=32, n_classes=10):
        super().__init__()
        blocks = 2 if image_size == 32 else 3  # stride-2 blocks between 4x4 and the last layer
        ch = ngf * 2 ** blocks  # widest first: ngf*4 at 32x32, ngf*8 at 64x64
        layers = [nn.ConvTranspose2d(nz + n_classes, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]
        for _ in range(blocks):  # 4 -> 8 -> 16 (-> 32)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]  # -> 32 (64)
        self.net = nn.Sequential(*layers)

    def forward(self, z, y):
        return self.net(torch.cat([z, y[:, :, None, None]], dim=1))  # [z, onehot(y)] as input channels


class Discriminator(nn.Module):
    """(image, y) -> one logit per image; D(x, y) = sigmoid(logit) is P(x is a real image of class y).
    At the defaults: (1 + 10)x32x32 -> 32x16x16 -> 64x8x8 -> 128x4x4 -> 1.

    y enters as n_classes constant feature maps stacked on the image (n_classes = 0: D sees the
    image alone, --d-label off). Stacking y on the input lets the very first filters compare each
    stroke with the class asked for; it costs little at 32x32, and reads plainly.
    The generator in reverse: stride-2 convolutions halve the size and double the channels from ndf,
    each followed by batch norm (from the second on: the paper puts none on D's input) and then
    LeakyReLU(0.2); then a 4x4 convolution to a single logit. No sigmoid here: the loss takes logits (see the losses).
    """

    def __init__(self, ndf=32, nc=1, image_size=32, n_classes=10):
        super().__init__()
        blocks = 2 if image_size == 32 else 3
        ch = ndf
        layers = [nn.Conv2d(nc + n_classes, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # S -> S/2
        for _ in range(blocks):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]  # 4x4 -> 1x1
        self.net = nn.Sequential(*layers)

        self.n_classes = n_classes

    def forward(self, x, y):
        if self.n_classes:  # one-hot y as constant maps: B x n_classes x S x S
            x = torch.cat([x, y[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])], dim=1)
        return self.net(x).view(-1)


def weights_init(m):
    """DCGAN's initialisation: conv weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02), shifts 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def init_weights(G, D, kind, image_size):
    """--weight-init: custom (DCGAN's, with one exception at 64x64), normal (DCGAN's everywhere), or default."""
    if kind == "default":
        return  # PyTorch's own initialisation, set when the layers were built
    G.apply(weights_init)
    D.apply(weights_init)
    if image_size == 64 and kind == "custom":
        # G's last layer is the only one that no batch norm rescales. At N(0, 0.02) it makes G start on
        # flat grey images (pre-tanh std 0.15, no pixel near -1, where most of MNIST is). At 64x64 D, a
        # block deeper, soon tells them from the smooth upsampled digits and can win before G learns
        # contrast. PyTorch's default init of that one layer (weights std 0.14) starts G at pre-tanh std ~1 (0.9-1.2).
        G.net[-2].reset_parameters()  # net[-2]: the last ConvTranspose2d (net[-1] is the Tanh)


# ----------------------------------------------------------------------------- losses
# D outputs a logit l, and D(x, y) = sigmoid(l). Binary cross-entropy on logits,
# BCE(l, y) = -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))], computes both logs without overflow.
def discriminator_loss(out_real, out_fake):
    """L_D = -E[log D(x, y)] - E[log(1 - D(G(z, y), y))]: BCE with label 1 for real, 0 for fake."""
    return (F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))


def generator_loss(out_fake, kind):
    """The generator's loss on D's logits for its fakes (see --loss)."""
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(out_fake, torch.ones_like(out_fake))  # -E[log D(G(z, y), y)]
    return -F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))  # E[log(1 - D(G(z, y), y))]


# ----------------------------------------------------------------------------- what a run measures
def grad_norm(net):
    """The L2 norm of all of net's parameter gradients from the last backward, taken as one vector."""
    return torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]).norm()


def spread_across_z(images):
    """images: classes x samples x channels x height x width. Each pixel's standard deviation across the
    samples of one class, averaged over pixels and classes: about 0 when G draws one image per class
    whatever z (mode collapse inside a class); the variety between classes does not count."""
    return images.std(dim=1).mean()


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
    data, classes = load_data(args, device)
    nc, n_classes = DATASETS[args.dataset], len(classes)
    n_images = len(data[1]) if isinstance(data, tuple) else len(data)
    steps_per_epoch = n_images // args.batch_size // args.d_steps  # generator updates per pass over the data
    if steps_per_epoch == 0:
        fail(f"the data make {n_images // args.batch_size} batches of {args.batch_size}, fewer than --d-steps "
             f"{args.d_steps}; lower --batch-size or --d-steps")

    G = Generator(args.nz, args.ngf, nc, args.image_size, n_classes).to(device)
    D = Discriminator(args.ndf, nc, args.image_size, n_classes if args.d_label == "on" else 0).to(device)
    init_weights(G, D, args.weight_init, args.image_size)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(GRID_COLUMNS, args.nz, 1, 1, device=device)  # the same z for every saved grid

    # The run's folder, log and checkpoint (see the bookkeeping below). A resumed run gets back its
    # weights, optimiser states, fixed_noise, random state and step: it goes on exactly where it stopped.
    run = Run(args, checkpoint, n_images, classes, steps_per_epoch, G, D, opt_G, opt_D, fixed_noise)
    step = run.step  # generator updates so far
    with run:  # from here on, Ctrl-C finishes the step under way, then the run saves and stops
        # A new run starts at step 0: epoch 0, skipping no batch. A resumed one starts at its saved step:
        # in the epoch and at the batch where it stopped, so that it never sees a batch twice.
        for epoch in range(step // steps_per_epoch, args.epochs):
            real_batches = batches(data, args, epoch, (step % steps_per_epoch) * args.d_steps, device)
            for _ in range(step % steps_per_epoch, steps_per_epoch):
                # (1) Update D: k steps (--d-steps) of minimising L_D, each on a new real batch
                for k in range(args.d_steps):
                    real, labels = next(real_batches)
                    # The fakes are asked for the real batch's labels: they follow the data's class frequencies.
                    y = F.one_hot(labels, n_classes).float()  # B x n_classes; G and D are given the same y
                    # G's step (2) scores again the fakes of the last k, so only they need their graph through G
                    with torch.set_grad_enabled(k == args.d_steps - 1):
                        fake = G(torch.randn(args.batch_size, args.nz, 1, 1, device=device), y)
                    out_real = D(real, y)  # logits: D(x, y) in the docstring is sigmoid(out_real)
                    out_fake = D(fake.detach(), y)  # detach: L_D's gradient stops at D, and fake's graph stays for (2)
                    loss_D = discriminator_loss(out_real, out_fake)
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    grad_D = grad_norm(D)  # how hard L_D pushes D (the last k's value is logged)
                    opt_D.step()

                # (2) Update G once, on `fake` and `y` from the last k of (1), as judged by the updated D. The
                # gradient flows back through D into G; D's own weight gradients are not needed: skip them.
                D.requires_grad_(False)
                loss_G = generator_loss(D(fake, y), args.loss)
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                grad_G = grad_norm(G)  # how hard L_G pushes G (Adam rescales it: compare it with its own past)
                opt_G.step()
                D.requires_grad_(True)

                step += 1
                run.log(step, loss_D, loss_G, torch.sigmoid(out_real).mean(), torch.sigmoid(out_fake).mean(), grad_G, grad_D)
                if run.should_stop(step):  # --max-steps reached, or Ctrl-C
                    break
            run.save(epoch, step)  # the epoch's grid (a row per class, drawn with G.eval()), its spread, checkpoint, log
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
    for name in ("lr_d", "lr_g"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            fail(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    for name, low in (("nz", 1), ("ngf", 1), ("ndf", 1), ("epochs", 1), ("d_steps", 1), ("max_steps", 1), ("workers", 0)):
        if getattr(args, name) is not None and getattr(args, name) < low:
            fail(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if args.batch_size < 2:
        fail(f"--batch-size must be >= 2 (batch norm needs two images), got {args.batch_size}")
    if not (0 <= args.beta1 < 1 and 0 <= args.beta2 < 1):
        fail(f"--beta1 and --beta2 must lie in [0, 1), got {args.beta1} and {args.beta2}")
    if args.dataset == "folder" and not os.path.isdir(os.path.expanduser(args.data_root)):
        fail(f"--data-root {args.data_root} is not a folder; give the folder that holds one subfolder per class")
    if args.dataset == "folder" and args.workers and IN_NOTEBOOK and multiprocessing.get_start_method() != "fork":
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
    in VS Code), rather than this script's flags (%run cgan.py --epochs 1 puts those in sys.argv)."""
    return IN_NOTEBOOK and any(a == "-f" or a.startswith("--f=") for a in sys.argv[1:])


CHECKPOINT_KEYS = ["script", "args", "nc", "n_images", "n_classes", "classes", "step", "epoch", "G", "D", "opt_G",
                   "opt_D", "fixed_noise", "history"]  # and "rng", the random state, in checkpoints that resume exactly


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
    """MNIST, Fashion-MNIST or CIFAR-10 as torchvision's dataset (.data, .targets, .classes), from --data-root
    (downloaded there if absent)."""
    root = os.path.expanduser(args.data_root)
    sets = {"mnist": (torchvision.datasets.MNIST, "MNIST"), "fashion-mnist": (torchvision.datasets.FashionMNIST,
            "FashionMNIST"), "cifar10": (torchvision.datasets.CIFAR10, "cifar-10-batches-py")}  # and its folder in root
    dataset, folder = sets[args.dataset]
    if os.path.basename(os.path.normpath(root)) == folder and not os.path.isdir(os.path.join(root, folder)):
        fail(f"--data-root {args.data_root} is the {folder} folder itself; give the folder that holds it, "
             f"--data-root {os.path.dirname(os.path.normpath(args.data_root)) or '.'}")
    new = [f for f in (os.path.join(root, folder, "raw"), os.path.join(root, folder), root) if not os.path.isdir(f)]
    try:
        return dataset(root, train=True, download=True)
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


def image_folder(root, args):
    """torchvision's ImageFolder: each subfolder of root is a class (sorted by name), its images RGB in [-1, 1]."""
    size = args.image_size
    transform = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    try:
        images = torchvision.datasets.ImageFolder(root, transform)
    except (FileNotFoundError, RuntimeError) as e:  # no class subfolders, or no images in them
        fail(f"{root} is not a labelled image folder ({e}); put each class's images in a subfolder of its own")
    if len(images.classes) < 2:
        fail(f"{root} holds a single class ({images.classes[0]}); a conditional GAN needs two or more subfolders")
    if len(images) < args.batch_size:
        fail(f"{root} holds {len(images)} images, fewer than one batch of {args.batch_size}; "
             f"add images or lower --batch-size")
    return images


def ignore_ctrl_c(worker_id):
    """In DataLoader workers: Ctrl-C is for the training process, which first finishes its step."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "grad_G", "grad_D", "spread"]  # spread: at each grid


class Run:
    """A run's record: resuming, the progress line and log, Ctrl-C between steps, what it saves."""

    def __init__(self, args, checkpoint, n_images, classes, steps_per_epoch, G, D, opt_G, opt_D, fixed_noise):
        self.args, self.n_images, self.classes, self.steps_per_epoch = args, n_images, classes, steps_per_epoch
        self.fixed_noise = fixed_noise
        self.state = {"G": G, "D": D, "opt_G": opt_G, "opt_D": opt_D}  # each has a state_dict
        self.step, self.history, self.pending, self.pictures, self.interrupted = 0, [], [], {}, False
        if checkpoint:
            self.resume(checkpoint)
        self.total_steps = min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
        self.timer = self.last_line = self.last_save = (time.perf_counter(), self.step)
        args.out = args.out or new_run_folder()  # only now: a run that fails before training leaves no folder
        os.makedirs(args.out, exist_ok=True)  # --out, checked new or empty; or the resumed run's
        print(f"{SCRIPT}: {n_images:,} {args.dataset} images of {DATASETS[args.dataset]}x{args.image_size}x"
              f"{args.image_size} in {len(classes)} classes on {args.device}, G {sum(p.numel() for p in G.parameters()):,} "
              f"and D {sum(p.numel() for p in D.parameters()):,} parameters, {steps_per_epoch} steps per epoch, "
              f"writing to {args.out}", flush=True)

    def resume(self, checkpoint):
        if checkpoint["n_images"] != self.n_images:
            fail(f"the checkpoint was trained on {checkpoint['n_images']:,} images, --data-root now holds "
                 f"{self.n_images:,}; resume with the same data")
        old, new = checkpoint["classes"], self.classes
        if old != new:  # label k must keep meaning the same class: no silent remapping
            k = next(k for k in range(max(len(old), len(new))) if old[k:k + 1] != new[k:k + 1])
            was, now = (repr(names[k]) if k < len(names) else "absent" for names in (old, new))
            fail(f"class {k} is {was} in the checkpoint but {now} in --data-root ({len(old)} and {len(new)} classes): "
                 f"its label would change meaning; resume with the same class folders")
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
        rate = (step - step_last) * self.args.d_steps * self.args.batch_size / (now - t_last)
        left = (now - t_start) / (step - step_start) * (self.total_steps - step)
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        loss_d, loss_g, d_x, d_g_z, grad_g, grad_d, _ = self.history[-1][2:]
        print(f"[{epoch + 1}/{self.args.epochs}][{i + 1:4d}/{self.steps_per_epoch}] Loss_D {loss_d:.3f} "
              f"Loss_G {loss_g:.3f} D(x,y) {d_x:.3f} D(G(z,y),y) {d_g_z:.3f} grad_G {grad_g:.3g} grad_D {grad_d:.3g} | "
              f"{rate:,.0f} img/s, "
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
        self.history[-1][-1] = save_samples(self.state["G"], self.fixed_noise, len(self.classes), grid)  # the spread column
        print(f"epoch {epoch + 1}: {steps} steps in {seconds:.1f} s, "
              f"{steps * self.args.d_steps * self.args.batch_size / seconds:,.0f} img/s, "
              f"spread across z {self.history[-1][-1]:.3f}", flush=True)
        device = self.fixed_noise.device.type  # the random state of the CPU, and of the GPU if there is one
        rng = {"cpu": torch.get_rng_state(), **({device: getattr(torch, device).get_rng_state()} if device != "cpu" else {})}
        save_checkpoint(os.path.join(self.args.out, "checkpoint.pt"), {
            "script": SCRIPT, "args": vars(self.args), "nc": DATASETS[self.args.dataset], "n_images": self.n_images,
            "n_classes": len(self.classes), "classes": self.classes, "step": step, "epoch": step // self.steps_per_epoch,
            "fixed_noise": self.fixed_noise.cpu(), "history": self.history, "rng": rng,
            **{name: thing.state_dict() for name, thing in self.state.items()}})
        save_log_and_plots(self.history, self.args.out, self.steps_per_epoch)
        if IN_NOTEBOOK:  # under the cell: the newest grid and the loss plot, each replaced in place
            from IPython.display import Image as Picture, display
            for kind, path in (("grid", grid), ("losses", os.path.join(self.args.out, "losses.png"))):
                if kind in self.pictures:
                    self.pictures[kind].update(Picture(filename=path))
                else:
                    self.pictures[kind] = display(Picture(filename=path), display_id=True)
        self.last_save = (time.perf_counter(), step)


def grid_inputs(noise, n_classes):
    """Inputs for the sample grid: row k draws class k, column j uses noise[j] in every row."""
    z = noise.repeat(n_classes, 1, 1, 1)  # rows of [z_0 ... z_{C-1}]
    labels = torch.arange(n_classes, device=noise.device).repeat_interleave(len(noise))
    return z, F.one_hot(labels, n_classes).float()


@torch.no_grad()
def save_samples(G, noise, n_classes, path):
    """Draw the grid, a row per class and a column per z in noise; return its spread across z."""
    G.eval()  # batch norm uses its running statistics: a sample does not depend on its batch
    images = G(*grid_inputs(noise, n_classes))
    G.train()
    save_image(images, path, nrow=len(noise), normalize=True, value_range=(-1, 1))
    return spread_across_z(images.view(n_classes, len(noise), *images.shape[1:])).item()


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
    fig = Figure(figsize=(10, 11), layout="constrained")
    ax_loss, ax_prob, ax_grad, ax_spread = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1, 1, 0.6])
    for ax, name, color, label in ((ax_loss, "loss_D", "tab:blue", "Loss_D"), (ax_loss, "loss_G", "tab:orange", "Loss_G"),
                                   (ax_prob, "D_x", "tab:green", "D(x, y)"), (ax_prob, "D_G_z", "tab:red", "D(G(z, y), y)"),
                                   (ax_grad, "grad_D", "tab:blue", r"grad_D = $\|\nabla_{\theta_D} L_D\|$"),
                                   (ax_grad, "grad_G", "tab:orange", r"grad_G = $\|\nabla_{\theta_G} L_G\|$")):
        ax.plot(steps, column[name], color=color, alpha=0.25, linewidth=0.6)
        ax.plot(steps, smooth(column[name]), color=color, label=label)
    grids = [(step, value) for step, value in zip(steps, column["spread"]) if not math.isnan(value)]
    if grids:
        ax_spread.plot(*zip(*grids), "o-", color="tab:purple", label="spread across z within a class, in the sample grid")
    for ax in (ax_loss, ax_prob, ax_grad, ax_spread):
        if ax.get_legend_handles_labels()[0]:  # the spread panel stays empty until the first grid
            ax.legend(loc="upper right")
        ax.vlines(range(steps_per_epoch, steps[-1], steps_per_epoch), 0, 1, transform=ax.get_xaxis_transform(),
                  color="grey", alpha=0.3, linewidth=0.8)  # epoch boundaries
    ax_loss.set_ylabel("loss")
    ax_prob.axhline(0.5, color="grey", linestyle=":", linewidth=1)  # D's output at the game's equilibrium
    ax_prob.set(ylim=(0, 1), ylabel="D's probability of 'real'")
    ax_grad.set(yscale="log" if any(v > 0 for v in column["grad_G"]) else "linear",  # (none > 0: diverged at once)
                ylabel="gradient norm")  # far below its own past for G: its loss has stopped pushing it
    ax_spread.set(ylim=(0, 1), ylabel="spread", xlabel=f"generator step ({steps_per_epoch} per epoch)")  # a std of [-1, 1]: <= 1
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)
    frames = [Image.open(p) for p in sorted(glob.glob(os.path.join(out, "samples_epoch_*.png")))]
    if frames:  # each grid for 0.6 s, the last one for 2 s
        frames[0].save(os.path.join(out, "progress.gif"), save_all=True, append_images=frames[1:],
                       duration=[600] * (len(frames) - 1) + [2000], loop=0)


if __name__ == "__main__":
    main()
