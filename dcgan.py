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
  little ahead (around 0.7 and 0.3); D(x) near 1, D(G(z)) near 0 for hundreds of steps: D wins. They tell
  the balance of the game, not the quality: look at the grids.
- grad_G, grad_D: the L2 norm of a network's weight gradients, how hard its loss pushes it (compare it with its
  own past: Adam rescales steps). The saturating loss's grad_G is a fraction of the default's: it vanishes.
- spread across z, at each epoch's end: each pixel's standard deviation across the grid's 64
  samples, averaged. Real digits read about 0.34; near 0, G draws one image whatever z: mode collapse.

Recipe: DCGAN (Radford, Metz & Chintala 2015): transposed convolutions with batch norm and ReLU in G,
strided ones with batch norm and LeakyReLU(0.2) in D, no pooling, Adam with beta1 = 0.5, weights from
N(0, 0.02). Departures (the course practical's): 32x32 images (MNIST resized), so a block fewer than the
paper's 64x64; ngf = ndf = 32, not 128; lr_g 5e-4, not 2e-4; z ~ N(0, I), not uniform; and ours: at
64x64, G's last layer keeps PyTorch's init (init_weights). The paper's: --image-size 64 --ngf 128 --ndf 128
--lr-g 2e-4 --weight-init normal.

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
LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z", "grad_G", "grad_D", "spread"]  # spread: at grids
IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter/Colab, a cell or %run: pictures go under the cell


# ----------------------------------------------------------------------------- flags
def parse_args(argv=None):
    if argv is None:  # a notebook kernel's own arguments (-f <connection file>) are not ours; %run's are
        argv = [] if IN_NOTEBOOK and any(a == "-f" or a.startswith("--f=") for a in sys.argv[1:]) else sys.argv[1:]
    p = argparse.ArgumentParser(prog=f"{SCRIPT}.py", usage=argparse.SUPPRESS, allow_abbrev=False, description="Train a "
                                "DCGAN (see its docstring)", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    add = p.add_argument
    add("--dataset", default="mnist", choices=DATASETS, help="training images (fake: random ones, for tests)")
    add("--data-root", default="~/.cache/gan-data", help="where the dataset is, or goes; folder: subfolders of images")
    add("--image-size", type=int, default=32, choices=[32, 64], help="64 adds a block to each network")
    add("--nz", type=int, default=100, help="size of the noise vector z")
    add("--ngf", type=int, default=32, help="generator width: channels before its last layer")
    add("--ndf", type=int, default=32, help="discriminator width: channels of its first layer")
    add("--weight-init", default="custom", choices=["custom", "normal", "default"], help="see init_weights")
    add("--loss", default="non-saturating", choices=["non-saturating", "saturating"], help="G's loss (docstring)")
    add("--epochs", type=int, default=5, help="passes over the training set, counting those already made")
    add("--batch-size", type=int, default=128, help="images per batch")
    add("--lr-d", type=float, default=2e-4, help="discriminator learning rate (0: D stays as initialised)")
    add("--lr-g", type=float, default=5e-4, help="generator learning rate (0: G stays as initialised)")
    add("--beta1", type=float, default=0.5, help="Adam beta1")
    add("--beta2", type=float, default=0.999, help="Adam beta2")
    add("--d-steps", type=int, default=1, help="D updates per G update, each on a new batch")
    add("--seed", type=int, default=0, help="random seed")
    add("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"], help="auto: cuda, else mps, else cpu")
    add("--workers", type=int, default=min(8, os.cpu_count() or 1), help="processes decoding a folder's images")
    add("--max-steps", type=int, default=None, help="stop once the run has made this many generator updates")
    add("--out", default=None, help="run folder; none: runs/dcgan-<date-time>")
    add("--resume", default=None, metavar="CHECKPOINT", help="go on with the run saved in this checkpoint.pt, with "
        "its settings but for the flags given now (not those of the networks, optimisers, batches or folder)")
    return check_args(p, argv)  # (bookkeeping, below)


# ----------------------------------------------------------------------------- data
def load_data(args, device):
    """The images in [-1, 1]: a folder's Dataset, or a small set (downloaded if absent) as one tensor on the device."""
    root, size = os.path.expanduser(args.data_root), args.image_size
    if args.dataset == "folder":  # torchvision's ImageFolder: the images in the subfolders of --data-root
        try:
            return torchvision.datasets.ImageFolder(root, T.Compose(
                [T.Resize(size), T.CenterCrop(size), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)]))
        except (FileNotFoundError, RuntimeError) as e:  # no such folder, no subfolder, or no image in them
            fail(f"--data-root {args.data_root}: {e}; put your images in a subfolder of it")
    if args.dataset == "fake":  # random images, for tests: runs anywhere, learns nothing
        return (torch.rand(1024, 3, size, size, generator=torch.Generator().manual_seed(0)) * 2 - 1).to(device)
    dataset = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST,
               "cifar10": torchvision.datasets.CIFAR10}[args.dataset]
    folder = getattr(dataset, "base_folder", dataset.__name__)  # its folder in --data-root: MNIST, cifar-10-...
    if os.path.basename(os.path.normpath(root)) == folder and not os.path.isdir(os.path.join(root, folder)):
        fail(f"--data-root {args.data_root} is the {folder} folder itself; give the folder that holds it")
    try:
        x = torch.as_tensor(dataset(root, train=True, download=True).data)  # uint8: N x H x W (x C for CIFAR-10)
    except (OSError, RuntimeError) as e:  # no internet (URLError is an OSError), or a broken file
        reason = str(e).strip().splitlines()[-1].removeprefix("<urlopen error ")  # the last address's error
        fail(f"{args.dataset} is not in {root} and could not be downloaded ({reason.removesuffix('>')}); "
             f"connect to the internet, or point --data-root at a folder that holds it")
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1)  # [0, 255] -> [-1, 1], the range of G's Tanh (in place: less memory)
    if x.shape[-1] != size:  # 28 or 32 -> 32 or 64: DCGAN's strides want a power of two
        x = F.interpolate(x, size=(size, size), mode="bilinear")  # only upsampling: no antialiasing needed
    return x.to(device)


def batches(data, args, epoch, skip, device):
    """One epoch's real batches, d_steps of them per generator step, in an order drawn from the epoch's own
    seed, less the first `skip` steps' (trained on already). Images short of a whole step are dropped."""
    steps = len(data) // args.batch_size // args.d_steps
    generator = torch.Generator().manual_seed(1000 * args.seed + epoch)
    order = torch.randperm(len(data), generator=generator)[:steps * args.d_steps * args.batch_size]
    order = order.view(steps, args.d_steps, args.batch_size)[skip:]
    if isinstance(data, torch.Tensor):
        for step_order in order.to(data.device):
            yield [data[idx] for idx in step_order]
        return
    pinned = device.type == "cuda"  # page-locked memory: the copy to the GPU is only queued, Python goes on
    loader = iter(torch.utils.data.DataLoader(data, batch_sampler=order.flatten(0, 1).tolist(), pin_memory=pinned,
                                              num_workers=args.workers, worker_init_fn=ignore_ctrl_c,
                                              generator=generator))
    for _ in order:  # worker processes decode the files while the networks train; [0]: the image, not its folder
        yield [next(loader)[0].to(device, non_blocking=pinned) for _ in range(args.d_steps)]


# ----------------------------------------------------------------------------- networks
class Generator(nn.Sequential):
    """z -> image in [-1, 1], at the defaults 100x1x1 -> 128x4x4 -> 64x8x8 -> 32x16x16 -> 1x32x32: a 4x4 map, then
    stride-2 blocks that double the size and halve the channels (batch norm, ReLU), then the image (Tanh)."""

    def __init__(self, nz=100, ngf=32, nc=1, image_size=32):
        blocks = 2 if image_size == 32 else 3  # stride-2 blocks between 4x4 and the last layer
        ch = ngf * 2 ** blocks  # widest first: ngf*4 at 32x32, ngf*8 at 64x64
        layers = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]  # 1 -> 4
        for _ in range(blocks):  # 4 -> 8 -> 16 (-> 32)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        super().__init__(*layers, nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh())  # -> 32 (64)


class Discriminator(nn.Sequential):
    """image -> one logit, D(x) = sigmoid(logit): 1x32x32 -> 32x16x16 -> 64x8x8 -> 128x4x4 -> 1, G in reverse, with
    batch norm (none on the input, as in the paper) and LeakyReLU(0.2). No sigmoid: the loss takes logits."""

    def __init__(self, ndf=32, nc=1, image_size=32):
        blocks = 2 if image_size == 32 else 3
        ch = ndf
        layers = [nn.Conv2d(nc, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # S -> S/2
        for _ in range(blocks):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        super().__init__(*layers, nn.Conv2d(ch, 1, 4, 1, 0, bias=False), nn.Flatten(0))  # 4x4 -> 1x1 -> B logits


def init_weights(G, D, kind, image_size):
    """--weight-init normal: DCGAN's, conv weights ~ N(0, 0.02), batch-norm scales ~ N(1, 0.02) and shifts 0;
    custom: the same but for G's last layer at 64x64; default: PyTorch's own, set when the layers were built."""
    if kind == "default":
        return
    for m in [*G.modules(), *D.modules()]:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
    if image_size == 64 and kind == "custom":
        # No batch norm rescales G's last layer: at N(0, 0.02) G starts flat grey, and a 64x64 D often wins at once
        G[-2].reset_parameters()  # G[-2]: the last ConvTranspose2d (G[-1] is the Tanh)


# ----------------------------------------------------------------------------- losses
# D gives a logit l, D(x) = sigmoid(l); BCE(l, y) = -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))], on logits: stable
def discriminator_loss(out_real, out_fake):
    """L_D = -E[log D(x)] - E[log(1 - D(G(z)))]: BCE with label 1 for real, 0 for fake."""
    return (F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))


def generator_loss(out_fake, kind):
    """The generator's loss on D's logits for its fakes (see --loss)."""
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(out_fake, torch.ones_like(out_fake))  # -E[log D(G(z))]
    return -F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))  # E[log(1 - D(G(z)))]


def grad_norm(net):  # the L2 norm of all of net's parameter gradients, taken as one vector
    return torch.stack([p.grad.norm() for p in net.parameters() if p.grad is not None]).norm()


# ----------------------------------------------------------------------------- training
def main(argv=None):
    args, checkpoint = parse_args(argv)
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    torch.backends.cudnn.benchmark = True  # on a GPU: fixed shapes, so let cuDNN pick its fastest kernels
    data = load_data(args, device)
    steps_per_epoch = len(data) // args.batch_size // args.d_steps  # generator updates per pass over the data
    if steps_per_epoch == 0:
        fail(f"{len(data):,} images make no --d-steps batches of --batch-size; add images or lower either flag")
    G = Generator(args.nz, args.ngf, DATASETS[args.dataset], args.image_size).to(device)
    D = Discriminator(args.ndf, DATASETS[args.dataset], args.image_size).to(device)
    init_weights(G, D, args.weight_init, args.image_size)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(64, args.nz, 1, 1, device=device)  # the same 64 z for every saved grid
    # The run's record (bookkeeping, below); resumed, it brings back all the run's state: it goes on unchanged.
    record = Record(args, checkpoint, steps_per_epoch, fixed_noise, G=G, D=D, opt_G=opt_G, opt_D=opt_D)
    step, last_step = record.step, min(args.epochs * steps_per_epoch, args.max_steps or math.inf)
    first_epoch, skip = divmod(step, steps_per_epoch)
    with record:  # from here on, Ctrl-C lets the step under way finish, then the run saves and stops
        for epoch in range(first_epoch, args.epochs):
            for reals in batches(data, args, epoch, skip if epoch == first_epoch else 0, device):
                # (1) Update D: k steps (--d-steps) of minimising L_D, each on a new real batch
                for k, real in enumerate(reals):
                    # Only the last k's fakes need their graph through G: G's step (2) scores them again
                    with torch.set_grad_enabled(k == args.d_steps - 1):
                        fake = G(torch.randn(args.batch_size, args.nz, 1, 1, device=device))
                    out_real = D(real)  # logits: D(x) in the docstring is sigmoid(out_real)
                    out_fake = D(fake.detach())  # detach: L_D's gradient stops at D, and fake's graph stays for (2)
                    loss_D = discriminator_loss(out_real, out_fake)
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    grad_D = grad_norm(D)  # how hard L_D pushes D (the last k's value is logged)
                    opt_D.step()

                # (2) Update G once, on `fake` from the last k of (1), as judged by the updated D. The gradient
                # flows back through D into G; D's own weight gradients are not needed: skip them.
                D.requires_grad_(False)
                loss_G = generator_loss(D(fake), args.loss)
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                grad_G = grad_norm(G)  # how hard L_G pushes G (Adam rescales it: compare it with its own past)
                opt_G.step()
                D.requires_grad_(True)
                step += 1
                record.add(step, loss_D, loss_G, torch.sigmoid(out_real).mean(), torch.sigmoid(out_fake).mean(),
                           grad_G, grad_D)  # kept on the device; a progress line every LOG_EVERY steps
                if step == last_step or record.interrupted:  # --max-steps reached, or Ctrl-C
                    break
            record.save(epoch, step)  # the epoch's grid (drawn with G.eval()) and its spread, checkpoint, log, plots
            if step == last_step or record.interrupted:
                break
    print(f"Run folder: {args.out}")


def fail(message):  # bad input: one line that says what is wrong and what to do, exit status 2, no traceback
    print(f"{SCRIPT}.py: error: {message}", file=sys.stderr)
    sys.exit(2)


def ignore_ctrl_c(worker_id):  # in DataLoader workers: Ctrl-C is for the training process
    signal.signal(signal.SIGINT, signal.SIG_IGN)


# ============================================================================= bookkeeping
# A first read can stop here. What follows checks the flags, keeps the run's record, and draws its plots.
def check_args(p, argv):
    args, checkpoint = p.parse_args(argv), {"epoch": 0, "step": 0}  # a new run: nothing made yet
    if args.resume:  # the run's own settings, but for the flags given now; those that shape the saved state are refused
        try:
            checkpoint = torch.load(args.resume, map_location="cpu", weights_only=True)
            args = p.parse_args(argv, namespace=argparse.Namespace(**checkpoint["args"]))
            if checkpoint["script"] != SCRIPT:
                fail(f"--resume {args.resume} was written by {checkpoint['script']}.py; resume it with that script")
            for k in "dataset image_size nz ngf ndf batch_size d_steps seed lr_d lr_g beta1 beta2 out".split():
                if getattr(args, k) != checkpoint["args"][k]:
                    fail(f"--{k.replace('_', '-')} cannot change on --resume: start a new run to change it")
            Generator(args.nz, args.ngf, checkpoint["nc"], args.image_size).load_state_dict(checkpoint["G"])
        except Exception as e:  # missing, unreadable, not a checkpoint, or an earlier version's (its G does not load)
            fail(f"--resume {args.resume} cannot be read as a {SCRIPT}.py checkpoint ({type(e).__name__}); give one")
        args.out = os.path.dirname(os.path.abspath(args.resume))
    elif args.out and os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
        fail(f"--out {args.out} already exists and is not empty; choose a new folder, or --resume its checkpoint.pt")
    args.out = args.out or os.path.join("runs", time.strftime(f"{SCRIPT}-%Y%m%d-%H%M%S"))
    for name, low in (("nz", 1), ("ngf", 1), ("ndf", 1), ("epochs", checkpoint["epoch"] + 1), ("batch_size", 2),
                      ("d_steps", 1), ("max_steps", checkpoint["step"] + 1), ("workers", 0), ("lr_d", 0), ("lr_g", 0),
                      ("beta1", 0), ("beta2", 0)):
        value, high = getattr(args, name), 1 if name.startswith("beta") else math.inf
        if value is not None and not low <= value < high:  # (NaN fails it too)
            fail(f"--{name.replace('_', '-')} must be >= {low}{' and < 1' * (high == 1)}, got {value}")
    found = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(), "cpu": True}
    args.device = next(name for name in found if found[name]) if args.device == "auto" else args.device
    if not found[args.device]:
        fail(f"--device {args.device}: PyTorch sees no such GPU here; use --device auto or cpu")
    return args, checkpoint


class Record:  # the run's folder, progress lines, checkpoints and plots
    def __init__(self, args, checkpoint, steps_per_epoch, fixed_noise, **state):  # state: networks and optimisers
        self.args, self.steps_per_epoch, self.fixed_noise = args, steps_per_epoch, fixed_noise
        self.state, self.step, self.history, self.pending, self.pictures, self.interrupted = state, 0, [], [], {}, False
        if args.resume:
            for name, thing in self.state.items():
                thing.load_state_dict(checkpoint[name])
            fixed_noise.copy_(checkpoint["fixed_noise"])
            self.step, self.history = checkpoint["step"], checkpoint["history"]
            for kind, saved in checkpoint["rng"].items():  # the CPU's and a GPU's: the noise goes on unchanged
                (torch if kind == "cpu" else getattr(torch, kind)).set_rng_state(saved)
        self.since = (time.perf_counter(), self.step)  # the clock and the step at the last save
        os.makedirs(args.out, exist_ok=True)

    def __enter__(self):  # Ctrl-C, or a notebook's stop button, asks the loop to stop after the step under way
        self.old_handler = signal.signal(signal.SIGINT, lambda signum, frame: setattr(self, "interrupted", True))

    def __exit__(self, *exception):
        signal.signal(signal.SIGINT, self.old_handler)

    def add(self, step, *stats):
        self.pending.append(torch.stack(stats).detach())
        if step % LOG_EVERY == 0:
            self.fetch(step)

    def fetch(self, step):  # the pending statistics to the host in one go (a GPU waits once), and a progress line
        self.history += [row + [None] for row in torch.stack(self.pending).tolist()]  # None: the spread, at grids
        if not all(math.isfinite(v) for row in self.history[-len(self.pending):] for v in row[:6]):
            fail(f"the losses became NaN or infinite by step {step}: training diverged; try lower learning rates")
        rate = (step - self.since[1]) * self.args.d_steps * self.args.batch_size / (time.perf_counter() - self.since[0])
        self.pending = []
        loss_d, loss_g, d_x, d_g_z, grad_g, grad_d, _ = self.history[-1]
        epoch, i = divmod(step - 1, self.steps_per_epoch)
        print(f"[{epoch + 1}/{self.args.epochs}][{i + 1:4d}/{self.steps_per_epoch}] Loss_D {loss_d:.3f} "
              f"Loss_G {loss_g:.3f} D(x) {d_x:.3f} D(G(z)) {d_g_z:.3f} grad_G {grad_g:.3g} grad_D {grad_d:.3g} | "
              f"{rate:,.0f} img/s", flush=True)  # img/s: since the epoch began, or the resume

    @torch.no_grad()
    def save(self, epoch, step):
        if self.pending:  # (none: this very step's progress line has fetched them)
            self.fetch(step)
        G, grid = self.state["G"], os.path.join(self.args.out, f"samples_epoch_{epoch + 1:03d}.png")
        images = G.eval()(self.fixed_noise)  # eval: batch norm uses its running statistics, not the batch's
        G.train()
        save_image(images, grid, nrow=8, normalize=True, value_range=(-1, 1))
        self.history[-1][-1] = spread = images.std(dim=0).mean().item()  # each pixel's std across z, averaged
        seconds, steps = time.perf_counter() - self.since[0], step - self.since[1]
        print(f"epoch {epoch + 1}: {steps} steps in {seconds:.1f} s, spread across z {spread:.3f}", flush=True)
        path, kinds = os.path.join(self.args.out, "checkpoint.pt"), {"cpu", self.fixed_noise.device.type}
        rng = {kind: (torch if kind == "cpu" else getattr(torch, kind)).get_rng_state() for kind in kinds}
        torch.save({"script": SCRIPT, "args": vars(self.args), "nc": DATASETS[self.args.dataset], "step": step,
                    "epoch": step // self.steps_per_epoch, "fixed_noise": self.fixed_noise.cpu(), "rng": rng,
                    "history": self.history, **{k: v.state_dict() for k, v in self.state.items()}}, path + ".tmp")
        os.replace(path + ".tmp", path)  # atomic: an interruption never leaves half a checkpoint
        save_log_and_plots(self.history, self.args.out, self.steps_per_epoch)
        if IN_NOTEBOOK:  # under the cell: the newest grid and the loss plot, each replaced in place
            from IPython.display import Image as Picture, display
            for kind, path in (("grid", grid), ("losses", os.path.join(self.args.out, "losses.png"))):
                self.pictures[kind] = self.pictures.get(kind) or display(display_id=True)
                self.pictures[kind].update(Picture(filename=path))
        self.since = (time.perf_counter(), step)


def save_log_and_plots(history, out, steps_per_epoch):  # log.csv (one row per generator update), losses.png, the GIF
    with open(os.path.join(out, "log.csv"), "w", newline="") as f:
        csv.writer(f).writerows([LOG_COLUMNS] + [[i // steps_per_epoch + 1, i + 1] + ["" if v is None else f"{v:.5g}"
                                                 for v in row] for i, row in enumerate(history)])
    column, steps = dict(zip(LOG_COLUMNS[2:], zip(*history))), range(1, len(history) + 1)
    fig = Figure(figsize=(10, 11), layout="constrained")
    ax_loss, ax_prob, ax_grad, ax_spread = axes = fig.subplots(4, 1, sharex=True, height_ratios=[1, 1, 1, 0.6])
    curves = [(ax_loss, "loss_D", "tab:blue", "Loss_D"), (ax_loss, "loss_G", "tab:orange", "Loss_G"),
              (ax_prob, "D_x", "tab:green", "D(x)"), (ax_prob, "D_G_z", "tab:red", "D(G(z))"),
              (ax_grad, "grad_D", "tab:blue", r"grad_D = $\|\nabla_{\theta_D} L_D\|$"),
              (ax_grad, "grad_G", "tab:orange", r"grad_G = $\|\nabla_{\theta_G} L_G\|$")]
    for ax, name, color, label in curves:
        trend = list(itertools.accumulate(column[name], lambda a, v: 0.95 * a + (1 - 0.95) * v))  # moving average
        ax.plot(steps, column[name], color=color, alpha=0.25, linewidth=0.6)
        ax.plot(steps, trend, color=color, label=label)
    grids = [(step, value) for step, value in zip(steps, column["spread"]) if value is not None]
    ax_spread.plot(*zip(*grids), "o-", color="tab:purple", label="spread across z of the sample grid")
    for ax in axes:
        ax.legend(loc="upper right")
        ax.vlines(range(steps_per_epoch, len(history), steps_per_epoch), 0, 1, transform=ax.get_xaxis_transform(),
                  color="grey", alpha=0.3, linewidth=0.8)  # epoch boundaries
    ax_loss.set_ylabel("loss")
    ax_prob.axhline(0.5, color="grey", linestyle=":", linewidth=1)  # D's output at the game's equilibrium
    ax_prob.set(ylim=(0, 1), ylabel="D's probability of 'real'")
    ax_grad.set(yscale="log" if any(v > 0 for v in column["grad_G"]) else "linear", ylabel="gradient norm")
    ax_spread.set(ylim=(0, 1), ylabel="spread", xlabel=f"generator step ({steps_per_epoch} per epoch)")
    fig.savefig(os.path.join(out, "losses.png"), dpi=100)
    frames = [Image.open(os.path.join(out, f)) for f in sorted(os.listdir(out)) if f.startswith("samples_epoch_")]
    frames[0].save(os.path.join(out, "progress.gif"), save_all=True, append_images=frames[1:],
                   duration=[600] * (len(frames) - 1) + [2000], loop=0)  # each grid for 0.6 s, the last for 2 s


if __name__ == "__main__":
    main()
