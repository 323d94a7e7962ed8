"""DCGAN: a deep convolutional GAN that learns to draw MNIST digits, in one file.

A generator G turns noise z ~ N(0, I) into an image; a discriminator D gives the probability
that an image is real. They play the two-player minimax game of Goodfellow et al. (2014):

    min_G max_D V(D, G) = E_x[log D(x)] + E_z[log(1 - D(G(z)))]

Discriminator loss (V maximised over D, written as a loss to minimise):

    L_D = -E_x[log D(x)] - E_z[log(1 - D(G(z)))]  =  BCE(D(x), 1) + BCE(D(G(z)), 0)

Generator losses (--loss):

    saturating, the "true" one from V:   minimise  L_G = E_z[log(1 - D(G(z)))]
        Its gradient vanishes when D confidently rejects the fakes, which is early in training.
    non-saturating, used in practice:    minimise  L_G = -E_z[log D(G(z))]  =  BCE(D(G(z)), 1)
        Same fixed point, but strong gradients exactly when D(G(z)) is near 0.

Architecture and training recipe: DCGAN (Radford, Metz & Chintala 2015, "Unsupervised
Representation Learning with Deep Convolutional Generative Adversarial Networks"): transposed
convolutions with batch norm and ReLU in G, strided convolutions with batch norm and LeakyReLU(0.2)
in D, no pooling and no fully connected layers, Adam with beta1 = 0.5, weights from N(0, 0.02).
Departures from the paper, all of them the course practical's defaults: 32x32 images (MNIST's
28x28, resized) and so one block fewer than the paper's 64x64 networks; narrower networks (ngf = 32,
where the paper's generator, 1024 channels at 4x4, has 128 before its last layer); and a learning
rate of 5e-4 for G, where the paper uses 2e-4 for both. --image-size 64 --ngf 128 --lr-g 2e-4
gives the paper's generator and learning rates.

    python dcgan.py                                   # MNIST at 32x32, 5 epochs
    python dcgan.py --ndf 256 --epochs 30 --loss saturating --data-root ../shared/data
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

SCRIPT = "dcgan"
DATASETS = {"mnist": 1, "fashion-mnist": 1, "cifar10": 3, "folder": 3, "fake": 3}  # name: channels
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
                                description="Train a DCGAN (see the docstring at the top of dcgan.py).")
    p.add_argument("--dataset", default="mnist", choices=DATASETS, help="training images (default: mnist)")
    p.add_argument("--data-root", default=os.path.join("~", ".cache", "gan-data"),
                   help="folder holding the dataset, downloaded there if absent; for --dataset folder, "
                        "a folder of images searched recursively (default: ~/.cache/gan-data)")
    p.add_argument("--image-size", type=int, default=32, choices=[32, 64],
                   help="images are resized to this; 64 adds one block to each network (default: 32)")
    p.add_argument("--nz", type=int, default=100, help="size of the noise vector z (default: 100)")
    p.add_argument("--ngf", type=int, default=32, help="generator width: channels before its last layer (default: 32)")
    p.add_argument("--ndf", type=int, default=32, help="discriminator width: channels of its first layer (default: 32)")
    p.add_argument("--weight-init", default="custom", choices=["custom", "default"],
                   help="custom: DCGAN's N(0, 0.02); default: PyTorch's own (default: custom)")
    p.add_argument("--loss", default="non-saturating", choices=["non-saturating", "saturating"],
                   help="generator loss: -log D(G(z)), or the minimax log(1 - D(G(z))) (default: non-saturating)")
    p.add_argument("--epochs", type=int, default=None,
                   help="passes over the training set (default: 5; with --resume, the run's own)")
    p.add_argument("--batch-size", type=int, default=128, help="images per batch (default: 128)")
    p.add_argument("--lr-d", type=float, default=2e-4, help="discriminator learning rate (default: 2e-4)")
    p.add_argument("--lr-g", type=float, default=5e-4, help="generator learning rate (default: 5e-4)")
    p.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default: 0.5)")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default: 0.999)")
    p.add_argument("--d-steps", type=int, default=1,
                   help="discriminator updates per generator update, each on a new batch (default: 1)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"],
                   help="auto: cuda if there is a GPU, else mps, else cpu (default: auto)")
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1),
                   help="image-decoding processes for --dataset folder (default: up to 4)")
    p.add_argument("--max-steps", type=int, default=None, help="stop once the run has made this many generator updates")
    p.add_argument("--out", default=None, help="run folder (default: runs/dcgan-<date-time>)")
    p.add_argument("--resume", default=None, metavar="CHECKPOINT",
                   help="continue the run saved in this checkpoint.pt, up to --epochs, in its folder")
    args = p.parse_args(argv)

    for name in ("lr_d", "lr_g"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            fail(f"--{name.replace('_', '-')} must be > 0, got {getattr(args, name)}")
    for name in ("nz", "ngf", "ndf", "epochs", "d_steps"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            fail(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.batch_size < 2:
        fail(f"--batch-size must be >= 2 (batch norm needs two images), got {args.batch_size}")
    if not (0 <= args.beta1 < 1 and 0 <= args.beta2 < 1):
        fail(f"--beta1 and --beta2 must lie in [0, 1), got {args.beta1} and {args.beta2}")
    if args.max_steps is not None and args.max_steps < 1:
        fail(f"--max-steps must be >= 1, got {args.max_steps}")
    if args.workers < 0:
        fail(f"--workers must be >= 0, got {args.workers}")
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
    """Every image file under a folder (searched recursively), as an RGB tensor in [-1, 1]."""

    EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")

    def __init__(self, root, size):
        self.paths = sorted(os.path.join(folder, name) for folder, _, names in os.walk(root)
                            for name in names if name.lower().endswith(self.EXTENSIONS))
        self.transform = T.Compose([T.Resize(size), T.CenterCrop(size), T.ToTensor(),
                                    T.Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as image:
            return self.transform(image.convert("RGB"))


def load_data(args, device):
    """The training images in [-1, 1], channels first.

    Small datasets come back as one tensor on the device: decoded, resized and scaled once, so an
    epoch only indexes it (no per-image work, no copies to the GPU). A folder of image files comes
    back as a DataLoader whose workers decode the files in parallel with training.
    """
    root = os.path.expanduser(args.data_root)
    size = args.image_size
    if args.dataset == "folder":
        images = ImageFiles(root, size)
        if len(images) < args.batch_size:
            fail(f"{root} holds {len(images)} images, fewer than one batch of {args.batch_size}; "
                 f"add images or lower --batch-size")
        return torch.utils.data.DataLoader(images, args.batch_size, shuffle=True, drop_last=True,
                                           num_workers=args.workers, pin_memory=device.type == "cuda",
                                           persistent_workers=args.workers > 0)
    if args.dataset == "fake":  # random images, for tests: runs anywhere, learns nothing
        generator = torch.Generator().manual_seed(0)
        return (torch.rand(1024, 3, size, size, generator=generator) * 2 - 1).to(device)

    sets = {"mnist": torchvision.datasets.MNIST, "fashion-mnist": torchvision.datasets.FashionMNIST,
            "cifar10": torchvision.datasets.CIFAR10}
    try:
        dataset = sets[args.dataset](root, train=True, download=True)  # downloads only if absent
    except (OSError, RuntimeError) as e:  # no internet (URLError is an OSError), or a broken file
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        fail(f"{args.dataset} is not in {root} and could not be downloaded ({reason}); "
             f"connect to the internet, or point --data-root at a folder that holds it")
    x = torch.as_tensor(dataset.data)  # uint8: N x H x W (MNIST) or N x H x W x C (CIFAR-10)
    x = x.unsqueeze(1) if x.dim() == 3 else x.permute(0, 3, 1, 2)
    x = x.float().div_(127.5).sub_(1)  # [0, 255] -> [-1, 1], the range of G's Tanh (in place: less memory)
    if x.shape[-1] != size:  # 28 or 32 -> 32 or 64: DCGAN's strides want a power of two
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
    """z (nz x 1 x 1) -> image (nc x S x S) in [-1, 1].

    Transposed convolutions double the size: 1 -> 4 -> 8 -> 16 -> 32 (-> 64), halving the channels
    each time down to ngf, with batch norm and ReLU between them and Tanh at the output.
    """

    def __init__(self, nz=100, ngf=32, nc=1, image_size=32):
        super().__init__()
        blocks = 2 if image_size == 32 else 3  # stride-2 blocks between 4x4 and the last layer
        ch = ngf * 2 ** blocks  # widest first: ngf*4 at 32x32, ngf*8 at 64x64
        layers = [nn.ConvTranspose2d(nz, ch, 4, 1, 0, bias=False), nn.BatchNorm2d(ch), nn.ReLU(True)]  # 1 -> 4
        for _ in range(blocks):  # 4 -> 8 -> 16 (-> 32)
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU(True)]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, nc, 4, 2, 1, bias=False), nn.Tanh()]  # -> 32 (64)
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class Discriminator(nn.Module):
    """image (nc x S x S) -> one logit per image; D(x) = sigmoid(logit) is P(x is real).

    The generator in reverse: stride-2 convolutions halve the size, 32 -> 16 -> 8 -> 4 (64 adds a
    block), doubling the channels from ndf; LeakyReLU(0.2), batch norm on all but the first layer
    (the paper: not on D's input), and a 4x4 convolution to a single logit. No sigmoid here: the
    loss takes logits, where log(sigmoid) is computed without overflow.
    """

    def __init__(self, ndf=32, nc=1, image_size=32):
        super().__init__()
        blocks = 2 if image_size == 32 else 3
        ch = ndf
        layers = [nn.Conv2d(nc, ch, 4, 2, 1, bias=False), nn.LeakyReLU(0.2, True)]  # S -> S/2
        for _ in range(blocks):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2, True)]
            ch *= 2
        layers += [nn.Conv2d(ch, 1, 4, 1, 0, bias=False)]  # 4x4 -> 1x1
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x).view(-1)


def weights_init(m):
    """DCGAN's initialisation: conv weights ~ N(0, 0.02); batch-norm scales ~ N(1, 0.02), shifts 0."""
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


# ----------------------------------------------------------------------------- losses
# D outputs a logit l, and D(x) = sigmoid(l). Binary cross-entropy on logits,
# BCE(l, y) = -[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))], computes both logs without overflow.
def discriminator_loss(out_real, out_fake):
    """L_D = -E[log D(x)] - E[log(1 - D(G(z)))]: BCE with label 1 for real, 0 for fake."""
    return (F.binary_cross_entropy_with_logits(out_real, torch.ones_like(out_real))
            + F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake)))


def generator_loss(out_fake, kind):
    """The generator's loss on D's logits for its fakes (see --loss)."""
    if kind == "non-saturating":
        return F.binary_cross_entropy_with_logits(out_fake, torch.ones_like(out_fake))  # -E[log D(G(z))]
    return -F.binary_cross_entropy_with_logits(out_fake, torch.zeros_like(out_fake))  # E[log(1 - D(G(z)))]


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
    steps_per_epoch = n_batches // args.d_steps  # generator updates per pass over the data
    if steps_per_epoch == 0:
        fail(f"the data make {n_batches} batches of {args.batch_size}, fewer than --d-steps {args.d_steps}; "
             f"lower --batch-size or --d-steps")

    G = Generator(args.nz, args.ngf, nc, args.image_size).to(device)
    D = Discriminator(args.ndf, nc, args.image_size).to(device)
    if args.weight_init == "custom":
        G.apply(weights_init)
        D.apply(weights_init)
    opt_G = torch.optim.Adam(G.parameters(), lr=args.lr_g, betas=(args.beta1, args.beta2))
    opt_D = torch.optim.Adam(D.parameters(), lr=args.lr_d, betas=(args.beta1, args.beta2))
    fixed_noise = torch.randn(64, args.nz, 1, 1, device=device)  # the same 64 z for every saved grid
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
                # (1) Update D: k steps (--d-steps) of minimising L_D, each on a new real batch
                for _ in range(args.d_steps):
                    real = next(data_iter)
                    fake = G(torch.randn(args.batch_size, args.nz, 1, 1, device=device))
                    out_real = D(real)
                    out_fake = D(fake.detach())  # detach: this step must not change G
                    loss_D = discriminator_loss(out_real, out_fake)
                    opt_D.zero_grad(set_to_none=True)
                    loss_D.backward()
                    opt_D.step()

                # (2) Update G once, on the last fake batch, as judged by the updated D
                loss_G = generator_loss(D(fake), args.loss)
                opt_G.zero_grad(set_to_none=True)
                loss_G.backward()
                opt_G.step()

                step += 1
                pending.append(((epoch + 1, step), torch.stack(
                    [loss_D, loss_G, torch.sigmoid(out_real).mean(), torch.sigmoid(out_fake).mean()]).detach()))
                if step % LOG_EVERY == 0 or i == steps_per_epoch - 1 or step >= total_steps:
                    stats = fetch(pending, history)
                    if not torch.isfinite(stats).all():
                        stop_diverged(args.out, history, steps_per_epoch)
                    now = time.perf_counter()
                    rate = (step - step_last) * args.d_steps * args.batch_size / (now - t_last)
                    left = (now - t_start) / (step - step_start) * (total_steps - step)
                    loss_d, loss_g, d_x, d_g_z = stats[-1].tolist()
                    print(f"[{epoch + 1}/{args.epochs}][{i + 1:4d}/{steps_per_epoch}] Loss_D {loss_d:.3f} "
                          f"Loss_G {loss_g:.3f} D(x) {d_x:.3f} D(G(z)) {d_g_z:.3f} | {rate:,.0f} img/s, "
                          f"{left // 60:.0f}m{left % 60:02.0f}s left", flush=True)
                    t_last, step_last = now, step
                if step >= total_steps:
                    break
            seconds = time.perf_counter() - t_epoch
            print(f"epoch {epoch + 1}: {i + 1 - first} steps in {seconds:.1f} s, "
                  f"{(i + 1 - first) * args.d_steps * args.batch_size / seconds:,.0f} img/s", flush=True)
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
LOG_COLUMNS = ["epoch", "step", "loss_D", "loss_G", "D_x", "D_G_z"]


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
    fig = Figure(figsize=(10, 7), layout="constrained")
    ax_loss, ax_prob = fig.subplots(2, 1, sharex=True)
    for column, color in (("loss_D", "tab:blue"), ("loss_G", "tab:orange")):
        values = [row[LOG_COLUMNS.index(column)] for row in history]
        ax_loss.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
        ax_loss.plot(steps, smooth(values), color=color, label=column.replace("loss", "Loss"))
    ax_loss.set_ylabel("loss")
    ax_loss.legend(loc="upper right")
    for column, color, label in (("D_x", "tab:green", "D(x)"), ("D_G_z", "tab:red", "D(G(z))")):
        values = [row[LOG_COLUMNS.index(column)] for row in history]
        ax_prob.plot(steps, values, color=color, alpha=0.25, linewidth=0.6)
        ax_prob.plot(steps, smooth(values), color=color, label=label)
    ax_prob.axhline(0.5, color="grey", linestyle=":", linewidth=1)  # D's output at the game's equilibrium
    ax_prob.set_ylim(0, 1)
    ax_prob.set_ylabel("D's probability of 'real'")
    ax_prob.set_xlabel(f"generator step ({steps_per_epoch} per epoch)")
    ax_prob.legend(loc="upper right")
    for ax in (ax_loss, ax_prob):
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
