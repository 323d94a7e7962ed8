"""Walk through the latent space of a trained generator.

Take two noise vectors z1 and z2, and draw G at evenly spaced points of the path between them. If G
has learnt a smooth mapping, the images change gradually, from one plausible image to another: a
sign that it generalises rather than memorising a lookup table of training images.

    linear:  z(t) = (1 - t) z1 + t z2,  t = 0 ... 1
             (the practical's alpha * z1 + (1 - alpha) * z2, alpha = 1 - t)
    slerp:   along the great circle from z1's direction to z2's, the length going linearly from
             |z1| to |z2|. Why: in nz = 100 dimensions a N(0, I) sample lies close to the sphere of
             radius sqrt(nz) = 10, and the linear midpoint of two of them has a length of only about
             10 / sqrt(2) = 7: G never saw such short vectors during training. Slerp stays on the
             shell.

For a conditional GAN (cgan.py), the condition can move too:
    --label K      keep the class fixed at K while z moves;
    --labels A B   keep z fixed and blend the one-hot condition from A to B: one style, one digit
                   morphing into another.

--samples N draws N single images from fresh noise instead, one file each (00000.png, ...): a
folder that FID tools and your own code can read. For a cGAN, --label K draws class K only; without
it, the classes take turns.

    python interpolate.py                             # the newest run in runs/, linear paths
    python interpolate.py runs/dcgan-20261123-101500 --mode slerp --gif
    python interpolate.py runs/cgan-20261123-103000/checkpoint.pt --labels 1 7
    python interpolate.py runs/cgan-20261123-103000 --samples 1000 --label 3 --out threes
"""
import argparse
import glob
import importlib
import math
import os
import sys

import torch
import torch.nn.functional as F
from torchvision.transforms.functional import to_pil_image
from torchvision.utils import make_grid, save_image

IN_NOTEBOOK = "ipykernel" in sys.modules  # Jupyter/Colab, a cell or %run: the picture goes under it


# ----------------------------------------------------------------------------- flags
def parse_args(argv=None):
    if argv is None:  # a notebook kernel's own arguments (-f <connection file>) are not ours
        argv = ([] if IN_NOTEBOOK and any(a == "-f" or a.startswith("--f=") for a in sys.argv[1:])
                else sys.argv[1:])
    p = argparse.ArgumentParser(
        prog="interpolate.py", usage=argparse.SUPPRESS, allow_abbrev=False,
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
        description="Walk through a trained generator's latent space, or draw samples (docstring).")
    add = p.add_argument
    add("checkpoint", nargs="?",
        help="a checkpoint.pt, or its run folder; none: the newest in runs/")
    add("--pairs", type=int, default=8, help="paths drawn, one per row")
    add("--steps", type=int, default=11, help="points on each path, one per column, ends included")
    add("--mode", default="linear", choices=["linear", "slerp"], help="path between z1 and z2")
    add("--label", type=int, help="cGAN only: the class drawn (while z moves, or in every sample)")
    add("--labels", type=int, nargs=2, metavar=("A", "B"),
        help="cGAN only: keep z, morph the class from A to B")
    add("--gif", action="store_true",
        help="also write an animation that walks the paths forth and back")
    add("--samples", type=int, metavar="N",
        help="instead: N single images from fresh noise, into --out")
    add("--seed", type=int, default=0, help="random seed: the same seed draws the same paths")
    add("--out",
        help="image file; none: interpolation_<mode>.png or interpolation_<A>_to_<B>.png in the "
             "run folder; with --samples, a new folder (none: samples/ in the run folder)")
    add("--device", default="auto", choices=["auto", "cuda", "mps", "cpu"],
        help="auto: cuda, else mps, else cpu")
    return check_args(p.parse_args(argv))  # (machinery, below)


# -------------------------------------------------------------------------- paths in latent space
def lerp(z1, z2, t):
    """Straight line: (1 - t) z1 + t z2, for each t (T values) -> T x z's shape."""
    t = t.view(-1, *[1] * z1.dim())
    return (1 - t) * z1 + t * z2


def slerp(z1, z2, t):
    """Great-circle path between the directions of z1 and z2, the length interpolated linearly."""
    r1, r2 = z1.norm(), z2.norm()
    u1, u2 = z1 / r1, z2 / r2
    omega = torch.acos((u1 * u2).sum().clamp(-1, 1))  # angle between the two directions
    t = t.view(-1, *[1] * z1.dim())
    if omega < 1e-4:  # (nearly) the same direction: the circle is a line
        direction = lerp(u1, u2, t.flatten())
    else:
        direction = (torch.sin((1 - t) * omega) * u1 + torch.sin(t * omega) * u2) / torch.sin(omega)
    return ((1 - t) * r1 + t * r2) * direction


@torch.no_grad()
def interpolate(G, z1, z2, steps, mode, y1=None, y2=None):
    """G along P paths of `steps` points from (z1, y1) to (z2, y2): z1, z2 are P x z's shape;
    y1, y2 a cGAN's P x n_classes one-hot conditions, blended linearly (else None).
    -> P x steps x C x H x W, column 0 = G(z1)."""
    t = torch.linspace(0, 1, steps, device=z1.device)
    path = lerp if mode == "linear" else slerp
    z = torch.stack([path(a, b, t) for a, b in zip(z1, z2)])  # P x steps x z's shape
    inputs = [z.flatten(0, 1)]
    if y1 is not None:
        inputs.append(torch.stack([lerp(a, b, t) for a, b in zip(y1, y2)]).flatten(0, 1))
    images = G(*inputs)
    return images.view(len(z1), steps, *images.shape[1:])


@torch.no_grad()
def write_samples(G, z_shape, n_classes, n, label, folder, device, batch_size=500):
    """n images from fresh noise, one PNG each (00000.png, ...); a cGAN's of class `label`, or of
    each in turn."""
    os.makedirs(folder, exist_ok=True)
    for start in range(0, n, batch_size):
        k = torch.arange(start, min(start + batch_size, n), device=device)
        inputs = [torch.randn(len(k), *z_shape, device=device)]
        if n_classes:
            classes = k % n_classes if label is None else torch.full_like(k, label)
            inputs.append(F.one_hot(classes, n_classes).float())
        for i, image in zip(k.tolist(), G(*inputs)):
            save_image(image, os.path.join(folder, f"{i:05d}.png"), normalize=True,
                       value_range=(-1, 1))


# ----------------------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    device = torch.device(args.device)
    # G rebuilt from the checkpoint (machinery, below)
    G, z_shape, n_classes = load_generator(args.checkpoint, device)
    if not n_classes and (args.label is not None or args.labels):
        fail("--label and --labels need a cgan.py checkpoint: this generator takes no class")
    for k in ([args.label] if args.label is not None else []) + (args.labels or []):
        if not 0 <= k < n_classes:
            fail(f"class {k} does not exist: this cGAN knows classes 0 to {n_classes - 1}")
    torch.manual_seed(args.seed)
    if args.samples:
        write_samples(G, z_shape, n_classes, args.samples, args.label, args.out, device)
        print(f"Wrote {args.samples} images to {args.out}")
        return

    z1 = torch.randn(args.pairs, *z_shape, device=device)
    z2 = z1 if args.labels else torch.randn(args.pairs, *z_shape, device=device)
    ends = [None, None]  # the condition y at each path's two ends: none in dcgan.py and wgan_gp.py
    if args.labels:  # z fixed along each row (z2 = z1), the condition morphs from A to B
        ends = [F.one_hot(torch.full((args.pairs,), k, device=device), n_classes).float()
                for k in args.labels]
    elif n_classes:  # z moves; the class is --label, or one per row (0, 1, 2, ...) by default
        rows = torch.arange(args.pairs, device=device)
        rows = rows % n_classes if args.label is None else torch.full_like(rows, args.label)
        ends = [F.one_hot(rows, n_classes).float()] * 2
    images = interpolate(G, z1, z2, args.steps, args.mode, *ends)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    save_image(images.flatten(0, 1), args.out, nrow=args.steps, normalize=True, value_range=(-1, 1))
    written = [args.out]
    if args.gif:  # one frame per step: the P images at that point of their paths, forth then back
        side = math.ceil(math.sqrt(args.pairs))  # each frame's grid: near square
        frames = [to_pil_image(make_grid(images[:, s], nrow=side, normalize=True,
                                         value_range=(-1, 1)))
                  for s in list(range(args.steps)) + list(range(args.steps - 2, 0, -1))]
        written.append(os.path.splitext(args.out)[0] + ".gif")
        frames[0].save(written[-1], save_all=True, append_images=frames[1:], duration=120, loop=0)
    if IN_NOTEBOOK:
        from IPython.display import Image, display
        display(Image(filename=args.out))
    print("Wrote " + " and ".join(written))


def fail(message):  # bad input: one line that says what is wrong and what to do, exit status 2
    print(f"interpolate.py: error: {message}", file=sys.stderr)
    sys.exit(2)


# ===================================================================================== machinery
# A first read can stop here: checking the flags, and rebuilding the generator from a checkpoint.
def check_args(args):
    if args.pairs < 1 or args.steps < 2:
        fail(f"--pairs must be >= 1 and --steps >= 2, got {args.pairs} and {args.steps}")
    if args.label is not None and args.labels is not None:
        fail("--label and --labels exclude each other: fix the class, or morph it")
    if args.samples is not None and (args.samples < 1 or args.labels is not None or args.gif):
        fail(f"--samples must be >= 1 and goes without --labels and --gif, got {args.samples}")
    if args.samples is None and args.out and (os.path.splitext(args.out)[1].lower()
                                              not in (".png", ".jpg", ".jpeg")):
        fail(f"--out {args.out}: give an image file name ending in .png or .jpg")
    if args.checkpoint is None:
        runs = glob.glob(os.path.join("runs", "*", "checkpoint.pt"))
        if not runs:
            fail("no checkpoint given, and none in runs/; give a run folder or its checkpoint.pt")
        args.checkpoint = max(runs, key=os.path.getmtime)
    if os.path.isdir(args.checkpoint):
        args.checkpoint = os.path.join(args.checkpoint, "checkpoint.pt")
    if not os.path.isfile(args.checkpoint):
        fail(f"{args.checkpoint}: no such file; give a run folder or the checkpoint.pt inside it")
    run_folder = os.path.dirname(os.path.abspath(args.checkpoint))
    if args.samples:
        args.out = args.out or os.path.join(run_folder, "samples")
        if os.path.exists(args.out) and (not os.path.isdir(args.out) or os.listdir(args.out)):
            fail(f"--out {args.out} already exists and is not empty; choose a new folder for them")
    elif args.out is None:
        name = (f"interpolation_{args.labels[0]}_to_{args.labels[1]}" if args.labels
                else f"interpolation_{args.mode}")
        args.out = os.path.join(run_folder, name + ".png")
    found = {"cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available(),
             "cpu": True}
    if args.device == "auto":
        args.device = next(name for name in found if found[name])
    if not found[args.device]:
        fail(f"--device {args.device}: PyTorch sees no such GPU here; use --device auto or cpu")
    return args


def load_generator(path, device):
    """Rebuild G from a checkpoint of dcgan.py, cgan.py or wgan_gp.py, which names its script and
    holds its arguments: G is that script's Generator (importing it trains nothing).
    -> (G in eval mode, z's shape, n_classes: 0 if none)."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        script = checkpoint["script"]
    except Exception as e:  # unreadable, or not a checkpoint at all
        fail(f"{path} cannot be read as a checkpoint ({type(e).__name__}); give a run's checkpoint")
    if script not in ("dcgan", "cgan", "wgan_gp"):
        fail(f"{path} was written by {script}.py; give one of dcgan.py, cgan.py or wgan_gp.py")
    # in a notebook, the training script may have been pasted into a cell
    notebook = sys.modules["__main__"]
    module = (notebook if getattr(notebook, "SCRIPT", None) == script
              else importlib.import_module(script))
    a, n_classes = checkpoint["args"], checkpoint.get("n_classes", 0)
    try:
        G = module.Generator(a["nz"], a["ngf"], checkpoint["nc"], a["image_size"],
                             *([n_classes] if n_classes else []))
        G.load_state_dict(checkpoint["G"])
    # the Generator was edited since the run: other layers, sizes or arguments
    except (RuntimeError, TypeError) as e:
        detail = str(e).strip().splitlines()[-1].strip()[:200]  # the last mismatch it names
        fail(f"{path} does not fit {script}.py's Generator as it is now ({detail}); "
             "draw with the Generator that trained it, or train a new run")
    # eval: batch norm uses its running statistics: an image does not depend on its batch
    return G.to(device).eval(), tuple(checkpoint["fixed_noise"].shape[1:]), n_classes


if __name__ == "__main__":
    main()
