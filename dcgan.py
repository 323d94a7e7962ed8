"""DCGAN: a deep convolutional GAN that learns to draw MNIST digits, in one file.

A generator G turns noise z ~ N(0, I) into an image; a discriminator D gives the probability that an
image is real. They play the two-player minimax game of Goodfellow et al. (2014):

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

D minimises  L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]  =  BCE(D(x), 1) + BCE(D(G(z)), 0).
G minimises (--loss) the saturating loss of V itself, L_G = E_z[log(1 - D(G(z)))], whose gradient
vanishes while D confidently rejects the fakes (early in training: run it to see), or the
non-saturating one used in practice, L_G = -E_z[log D(G(z))] = BCE(D(G(z)), 1): the same fixed
point, but strong gradients exactly when D(G(z)) is near 0.

What to watch (the progress line, and losses.png in the run folder, one panel each):
- D(x), D(G(z)): D's mean probability of "real" for the real batch and for the fakes, from before
  D's update (Loss_G is from after it). At the equilibrium both are 0.5; a healthy run keeps D a
  little ahead (around 0.7 and 0.3); D(x) near 1, D(G(z)) near 0 for hundreds of steps: D wins.
  They tell the balance of the game, not the quality: look at the grids.
- grad_G, grad_D: the L2 norm of a network's weight gradients, how hard its loss pushes it (compare
  it with its own past: Adam rescales steps). The saturating loss's grad_G is a fraction of the
  default's: it vanishes.
- spread across z, at each epoch's end: each pixel's standard deviation across the grid's 64
  samples, averaged. Real digits read about 0.34; near 0, G draws one image whatever z: mode
  collapse.

Recipe: DCGAN (Radford, Metz & Chintala 2015): transposed convolutions with batch norm and ReLU in
G, strided ones with batch norm and LeakyReLU(0.2) in D, no pooling, Adam with beta1 = 0.5, weights
from N(0, 0.02). Departures (the course practical's): 32x32 images (MNIST resized), so a block fewer
than the paper's 64x64; ngf = ndf = 32, not 128; lr_g 5e-4, not 2e-4; z ~ N(0, I), not uniform;
and ours: at 64x64, G's last layer keeps PyTorch's init (init_weights). The paper's:
--image-size 64 --ngf 128 --ndf 128 --lr-g 2e-4 --weight-init normal.

    python dcgan.py                                   # MNIST at 32x32, 5 epochs
    python dcgan.py --ndf 256 --epochs 30             # a far stronger D (a GPU's work)
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

SCRIPT = "dcgan"
DATASETS = {"mnist": 1, "fashion-mnist": 1, "cifar10": 3, "folder": 3, "fake": 3}  # name: channels
LOG_EVERY = 50  # generator steps between progress lines (and between host-device syncs)
# In Jupyter or Colab (a cell, or %run): a live IPython shell, and the pictures go under the cell
IN_NOTEBOOK = "IPython" in sys.modules and sys.modules["IPython"].get_ipython() is not None


# -------------------------------------------------------------------------------------- networks
class Generator(nn.Sequential):
    """z -> image in [-1, 1], at the defaults 100x1x1 -> 128x4x4 -> 64x8x8 -> 32x16x16 -> 1x32x32:
    a 4x4 map, then stride-2 blocks that double the size and halve the channels (batch norm, ReLU),
    then the image (Tanh)."""

    def __init__(self, nz=100, ngf=32, nc=1, image_size=32):
        blocks = 2 if image_size == 32 else 3  # stride-2 blocks between 4x4 and the last layer
        ch = ngf * 2 ** blocks  # widest first: ngf*4 at 32x32, ngf*8 at 64x64
        # 1x1 -> 4x4
        layers = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False),
                  nn.BatchNorm2d(ch),
                  nn.ReLU(True)]
        for _ in range(blocks):  # 4 -> 8 -> 16 (-> 32)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch // 2),
                       nn.ReLU(True)]
            ch //= 2
        # -> 32x32 (64x64)
        super().__init__(*layers, nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh())


class Discriminator(nn.Sequential):
    """image -> one logit, D(x) = sigmoid(logit): 1x32x32 -> 32x16x16 -> 64x8x8 -> 128x4x4 -> 1,
    G in reverse, with batch norm (none on the input, as in the paper) and LeakyReLU(0.2).
    No sigmoid: the loss takes logits."""

    def __init__(self, ndf=32, nc=1, image_size=32):
        blocks = 2 if image_size == 32 else 3
        ch = ndf
        layers = [nn.Conv2d(nc, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # S -> S/2
        for _ in range(blocks):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False),
                       nn.BatchNorm2d(ch * 2),
                       nn.LeakyReLU(0.2, True)]
            ch *= 2
        # 4x4 -> B x 1 x 1 x 1, flattened to B logits: one per image
        super().__init__(*layers, nn.Conv2d(ch, 1, 4, 1, 0, bias=False), nn.Flatten(0))


def init_weights(G, D, scheme, image_size):
    """--weight-init normal: DCGAN's, conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02) and
    shifts 0; custom: the same but for G's last layer at 64x64; default: PyTorch's own, set when the
    layers were built."""
    if scheme == "default":
        return
    for m in [*G.modules(), *D.modules()]:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    if image_size == 64 and scheme == "custom":
        # No batch norm rescales G's last layer: at N(0, 0.02) G starts flat grey, and a 64x64 D
        # often wins at once. G[-2]: the last ConvTranspose2d (G[-1] is the Tanh).
        G[-2].reset_parameters()


# ---------------------------------------------------------------------------------------- losses
# D gives a logit l, D(x) = sigmoid(l). On logits, BCE(l, y) = -[y log sigmoid(l) + (1 - y)
# log(1 - sigmoid(l))] is computed stably.
def discriminator_loss(logit_real, logit_fake):
    """L_D = -E[log D(x)] - E[log(1 - D(G(z)))]: BCE with label 1 for real, 0 for fake."""
    return (F.binary_cross_entropy_with_logits(logit_real, torch.ones_like(logit_real))
            + F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake)))


def generator_loss(logit_fake, loss):
    """The generator's loss on D's logits for its fakes (see --loss)."""
    if loss == "non-saturating":  # -E[log D(G(z))]
        return F.binary_cross_entropy_with_logits(logit_fake, torch.ones_like(logit_fake))
    # E[log(1 - D(G(z)))]
    return -F.binary_cross_entropy_with_logits(logit_fake, torch.zeros_like(logit_fake))


def grad_norm(net):  # the L2 norm of all of net's parameter gradients, taken as one vector
    return torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]).norm()


# -------------------------------------------------------------------------------------- training
def main(argv=None):
    args, saved = parse_args(argv)  # the flags, checked; saved: the checkpoint to resume, or None
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True  # on a GPU: fixed shapes, so cuDNN picks fast kernels
    data = load_data(args, device)  # the images in [-1, 1]: a tensor on the device, or a Dataset
    # generator updates per pass over the data
    steps_per_epoch = len(data) // args.batch_size // args.d_steps
    if steps_per_epoch == 0:
        fail(f"{len(data):,} images in {args.data_root} make no --d-steps batches of "
             "--batch-size; add images or lower either flag")
    nc = DATASETS[args.dataset]
    G = Generator(args.nz, args.ngf, nc, args.image_size).to(device)
    D = Discriminator(args.ndf, nc, args.image_size).to(device)
    init_weights(G, D, args.weight_init, args.image_size)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(64, args.nz, 1, 1, device=device)  # the same 64 z for every grid
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
            for reals in batches(data, args, epoch, made, device):  # d_steps real batches per step
                # (1) Update D: d_steps times, each on a new real batch, minimise L_D
                for real in reals:
                    fake = G(torch.randn(args.batch_size, args.nz, 1, 1, device=device))
                    logit_real = D(real)  # D(x) in the docstring is sigmoid(logit_real)
                    logit_fake = D(fake.detach())  # detach: L_D's gradient stops at D, not into G
                    loss_D = discriminator_loss(logit_real, logit_fake)
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    grad_D = grad_norm(D)  # how hard L_D pushes D (the last D step's is logged)
                    opt_D.step()

                # (2) Update G once, on the last fakes of (1), as the updated D judges them:
                # minimise L_G. Its gradient flows back through D into G, but G's step does not
                # update D: D's own weight gradients would be thrown away, so skip them (saves
                # time)
                D.requires_grad_(False)
                loss_G = generator_loss(D(fake), args.loss)
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                # how hard L_G pushes G (Adam rescales it: compare it with its own past)
                grad_G = grad_norm(G)
                opt_G.step()
                D.requires_grad_(True)

                step += 1
                D_x = torch.sigmoid(logit_real).mean()  # from before D's update
                D_G_z = torch.sigmoid(logit_fake).mean()
                # kept on the device; a progress line every LOG_EVERY steps
                log.add(step, loss_D, loss_G, D_x, D_G_z, grad_G, grad_D)
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
                                description="Train a DCGAN (see its docstring)",
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--dataset", default="mnist", choices=DATASETS,
        help="training images (fake: random ones, for tests)")
    add("--data-root", default="~/.cache/gan-data",
        help="where the dataset is, or goes; folder: subfolders of images")
    add("--image-size", type=int, default=32, choices=[32, 64],
        help="64 adds a block to each network")
    add("--nz", type=positive, default=100, help="size of the noise vector z")
    add("--ngf", type=positive, default=32,
        help="generator width: channels before its last layer")
    add("--ndf", type=positive, default=32,
        help="discriminator width: channels of its first layer")
    add("--weight-init", default="custom", choices=["custom", "normal", "default"],
        help="see init_weights")
    add("--loss", default="non-saturating", choices=["non-saturating", "saturating"],
        help="G's loss (docstring)")
    add("--epochs", type=positive, default=5,
        help="passes over the training set, counting those already made")
    add("--batch-size", type=at_least(2), default=128, help="images per batch")
    add("--lr-d", type=at_least(0.0), default=2e-4,
        help="discriminator learning rate (0: D stays as initialised)")
    add("--lr-g", type=at_least(0.0), default=5e-4,
        help="generator learning rate (0: G stays as initialised)")
    add("--beta1", type=fraction, default=0.5, help="Adam beta1")
    add("--beta2", type=fraction, default=0.999, help="Adam beta2")
    add("--d-steps", type=positive, default=1,
        help="D updates per G update, each on a new batch")
    add("--seed", type=int, default=0, help="random seed")
    add("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"],
        help="auto: cuda, else mps, else cpu")
    add("--workers", type=at_least(0), default=min(8, os.cpu_count() or 1),
        help="processes decoding a folder's images")
    add("--max-steps", type=positive, default=None,
        help="stop once the run has made this many generator updates")
    add("--out", default=None, help="run folder; none: runs/dcgan-<date-time>")
    add("--resume", default=None, metavar="CHECKPOINT",
        help="go on with the run saved in this checkpoint.pt, with its settings but for the flags "
             "given now (not those of the networks, optimisers, batches or folder)")
    args = p.parse_args(argv)
    saved = read_checkpoint(args.resume) if args.resume else None
    if saved:
        # the run's own settings, but for the flags given now; not those that shaped what it saved
        args = p.parse_args(argv, namespace=argparse.Namespace(**saved["args"]))
        for k in ("dataset image_size nz ngf ndf batch_size d_steps seed lr_d lr_g beta1 beta2 "
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
    """The images in [-1, 1]: a folder's Dataset, or a small set (downloaded if absent) as one
    tensor on the device."""
    root = os.path.expanduser(args.data_root)
    size = args.image_size
    if args.dataset == "folder":  # torchvision's ImageFolder: the images in subfolders of root
        transform = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                               T.Normalize([0.5] * 3, [0.5] * 3)])  # [0, 1] -> [-1, 1]
        try:
            return torchvision.datasets.ImageFolder(root, transform)
        except (FileNotFoundError, RuntimeError) as e:  # no such folder, no subfolder, no image
            fail(f"--data-root {args.data_root}: {e}; put your images in a subfolder of it")
    if args.dataset == "fake":  # random images, for tests: runs anywhere, learns nothing
        return (torch.rand(1024, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2
                - 1).to(device)
    dataset = {"mnist": torchvision.datasets.MNIST,
               "fashion-mnist": torchvision.datasets.FashionMNIST,
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
    if x.shape[-1] != size:  # 28 or 32 -> 32 or 64: DCGAN's strides want a power of two
        x = F.interpolate(x, size=(size, size), mode="bilinear")  # only upsampling: no antialiasing
    return x.to(device)


def batches(data, args, epoch, made, device):
    """One epoch's real batches, d_steps of them per generator step, in an order drawn from the
    epoch's own seed, less those of the `made` steps trained on before a resume. Images short of a
    whole step are dropped."""
    steps = len(data) // args.batch_size // args.d_steps
    generator = torch.Generator().manual_seed(1000 * args.seed + epoch)
    order = torch.randperm(len(data), generator=generator)[:steps * args.d_steps * args.batch_size]
    order = order.view(steps, args.d_steps, args.batch_size)[made:]
    if isinstance(data, torch.Tensor):
        for step_order in order.to(data.device):
            yield [data[idx] for idx in step_order]
        return
    pinned = device.type == "cuda"  # page-locked memory: the copy to the GPU is only queued
    loader = torch.utils.data.DataLoader(data, batch_sampler=order.flatten(0, 1).tolist(),
                                         pin_memory=pinned, num_workers=args.workers,
                                         worker_init_fn=ignore_ctrl_c, generator=generator)
    loader = iter(loader)  # worker processes decode the files while the networks train
    for _ in order:  # [0]: the image, not its folder's index
        yield [next(loader)[0].to(device, non_blocking=pinned) for _ in range(args.d_steps)]


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
        rate = ((step - self.clock_step) * self.args.d_steps * self.args.batch_size
                / (time.perf_counter() - self.clock))
        loss_d, loss_g, d_x, d_g_z, grad_g, grad_d, _ = self.history[-1]
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        print(f"[{epoch + 1}/{self.args.epochs}][{i + 1:4d}/{self.steps_per_epoch}] "
              f"Loss_D {loss_d:.3f} Loss_G {loss_g:.3f} D(x) {d_x:.3f} D(G(z)) {d_g_z:.3f} "
              f"grad_G {grad_g:.3g} grad_D {grad_d:.3g} | {rate:,.0f} img/s", flush=True)

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
    rows = torch.tensor([row[:6] for row in history[first:]])
    D_x, D_G_z, grad_G = rows[:, 2], rows[:, 3], rows[:, 4]
    start = torch.tensor([row[4] for row in history[:10]]).median()  # grad_G's first steps
    warm = torch.arange(first + 1, first + len(rows) + 1) > 100  # D leads at every run's start
    won = ((D_x > 0.9) & (D_G_z < 0.1) & warm).float().mean()
    fooled = (D_G_z > 0.9).float().mean()
    # the saturating loss's trap: its gradient and the loss itself flat while D rejects the fakes
    vanished = ((grad_G < start / 4) & (D_G_z < 0.2) & (rows[:, 1].abs() < 0.2)).float().mean()
    spread = history[-1][-1]
    hints = {  # each hint: shown or not
        f"D won {won:.0%} of the epoch's steps (D(x) > 0.9, D(G(z)) < 0.1): G is losing the game":
            won > 0.2,
        f"D(G(z)) > 0.9 in {fooled:.0%} of the epoch's steps: D is fooled, or does not learn":
            fooled > 0.5,
        f"grad_G under a quarter of its start ({start:.2g}) and Loss_G near 0 while D rejected the "
        f"fakes, in {vanished:.0%} of the epoch's steps: G's gradient vanishes": vanished > 0.05,
        f"grad_G {grad_G.median():.0f} (the epoch's median), above 100: G's steps explode":
            grad_G.median() > 100,
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


LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "grad_G", "grad_D", "spread"]


def save_log_and_plots(history, out, steps_per_epoch):
    """log.csv (a row per generator step; the spread only where a grid was drawn), losses.png and
    progress.gif."""
    rows = [[i // steps_per_epoch + 1, i + 1] + ["" if v is None else f"{v:.5g}" for v in row]
            for i, row in enumerate(history)]
    with open(os.path.join(out, "log.csv"), "w", newline="") as f:
        csv.writer(f).writerows([LOG_COLUMNS] + rows)
    column = dict(zip(LOG_COLUMNS[2:], zip(*history)))
    steps = range(1, len(history) + 1)
    fig = Figure(figsize=(10, 11), layout="constrained")
    axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1, 1, 0.6])
    ax_loss, ax_prob, ax_grad, ax_spread = axes
    curves = [(ax_loss, "loss_D", "tab:blue", "Loss_D"),
              (ax_loss, "loss_G", "tab:orange", "Loss_G"),
              (ax_prob, "D_x", "tab:green", "D(x)"),
              (ax_prob, "D_G_z", "tab:red", "D(G(z))"),
              (ax_grad, "grad_D", "tab:blue", r"grad_D = $\|\nabla_{\theta_D} L_D\|$"),
              (ax_grad, "grad_G", "tab:orange", r"grad_G = $\|\nabla_{\theta_G} L_G\|$")]
    for ax, name, color, label in curves:  # each drawn raw (faint) and as a moving average
        trend = list(itertools.accumulate(column[name], lambda a, v: 0.95 * a + (1 - 0.95) * v))
        ax.plot(steps, column[name], color=color, alpha=0.25, linewidth=0.6)
        ax.plot(steps, trend, color=color, label=label)
    grids = [(step, value) for step, value in zip(steps, column["spread"]) if value is not None]
    ax_spread.plot(*zip(*grids), "o-", color="tab:purple",
                   label="spread across z of the sample grid")
    for ax in axes:
        ax.legend(loc="upper right")
        ax.vlines(range(steps_per_epoch, len(history), steps_per_epoch), 0, 1,
                  transform=ax.get_xaxis_transform(), color="grey", alpha=0.3,
                  linewidth=0.8)  # epoch boundaries
    ax_loss.set_ylabel("loss")
    ax_prob.axhline(0.5, color="grey", linestyle=":", linewidth=1)  # D's output at the equilibrium
    ax_prob.set(ylim=(0, 1), ylabel="D's probability of 'real'")
    ax_grad.set(yscale="log" if any(v > 0 for v in column["grad_G"]) else "linear",
                ylabel="gradient norm")
    ax_spread.set(ylim=(0, 1), ylabel="spread",
                  xlabel=f"generator step ({steps_per_epoch} per epoch)")
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)
    frames = [Image.open(os.path.join(out, f)) for f in sorted(os.listdir(out))
              if f.startswith("samples_epoch_")]
    # each grid for 0.6 s, the last for 2 s
    frames[0].save(os.path.join(out, "progress.gif"), save_all=True, append_images=frames[1:],
                   duration=[600] * (len(frames) - 1) + [2000], loop=0)


if __name__ == "__main__":
    main()
