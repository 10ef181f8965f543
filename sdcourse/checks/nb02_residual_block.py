"""Checkers of notebook 02: GroupNorm by hand, the time broadcast, the residual block."""
from __future__ import annotations

from typing import Callable, Dict

import torch

from .core import CheckResult, _call, _finish, _named, compare, copy_weights, exercise, perturb_


# --- notebook 02: GroupNorm, the time broadcast, the residual block -------------------------------

_GROUPNORM_HINTS = {
    "one group per channel (that is InstanceNorm)": "Split the C channels into num_groups groups of C // num_groups "
                                                    "consecutive channels, and normalise each group as a whole.",
    "a single group for all channels (like LayerNorm)": "Use num_groups groups, not one: x.view(B, G, C // G, H, W).",
    "groups made of every G-th channel": "Groups are consecutive channels: reshape to (B, G, C // G, H, W), not "
                                         "(B, C // G, G, H, W). With the wrong order, channels 0, G, 2G, ... share statistics.",
    "statistics shared across the batch": "GroupNorm never mixes samples: compute the mean and variance per sample "
                                          "and group (dims 2, 3, 4 of the (B, G, C//G, H, W) view), not over dim 0.",
    "unbiased variance (divides by n - 1)": "torch.var divides by n - 1 by default; normalisation uses the plain "
                                            "mean of squares: var(..., unbiased=False) (or correction=0).",
    "eps added outside the square root": "Divide by sqrt(var + eps), not sqrt(var) + eps.",
    "weight and bias not applied": "After normalising, scale and shift each channel: "
                                   "x * weight.view(1, C, 1, 1) + bias.view(1, C, 1, 1).",
}


def _group_norm_manual(x, groups, weight, bias, eps, *, interleaved=False, over_batch=False,
                       unbiased=False, eps_outside=False, affine=True):
    """A group norm with switches for each typical mistake. x: (B, C, H, W) -> (B, C, H, W)."""
    b, c, h, w = x.shape
    if interleaved:  # channel k goes to group k % G: (B, C//G, G, H, W) -> (B, G, C//G, H, W)
        xg = x.view(b, c // groups, groups, h, w).transpose(1, 2)
    else:  # (B, C, H, W) -> (B, G, C//G, H, W)
        xg = x.view(b, groups, c // groups, h, w)
    dims = (0, 2, 3, 4) if over_batch else (2, 3, 4)
    mean = xg.mean(dim=dims, keepdim=True)
    var = xg.var(dim=dims, keepdim=True, unbiased=unbiased)
    xg = (xg - mean) / (var.sqrt() + eps if eps_outside else (var + eps).sqrt())
    if interleaved:  # back to channel order: (B, G, C//G, H, W) -> (B, C//G, G, H, W) -> (B, C, H, W)
        x = xg.transpose(1, 2).reshape(b, c, h, w)
    else:
        x = xg.reshape(b, c, h, w)
    return x * weight.view(1, c, 1, 1) + bias.view(1, c, 1, 1) if affine else x


def group_norm_reference(x, num_groups, weight, bias, eps):
    """The reference answer of the GroupNorm exercise (torch's own group norm)."""
    from torch.nn import functional as F
    return F.group_norm(x, num_groups, weight, bias, eps)


def _add_time_reference(feature, time):
    return feature + time[:, :, None, None]  # (B, C, H, W) + (B, C, 1, 1)


def _reference_residual_block():
    from ..unet import UNET_ResidualBlock
    return UNET_ResidualBlock


def _count_residual_block(in_channels, out_channels, n_time=1280):
    """The reference answer of the parameter-count exercise: count a real block on the meta device."""
    from ..unet import UNET_ResidualBlock
    with torch.device("meta"):
        return sum(p.numel() for p in UNET_ResidualBlock(in_channels, out_channels, n_time=n_time).parameters())


@exercise("group_norm", todo="x (B, C, H, W) normalised in num_groups groups of channels, then weight and bias; "
          "by hand (F.group_norm is blocked)", reference=lambda: group_norm_reference)
def check_groupnorm(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 02): fn(x, num_groups, weight, bias, eps) -> GroupNorm of x.

    x: (B, C, H, W); weight, bias: (C,). Checked on channels with very different means and
    scales (so that wrong groups show), a large eps = 0.1 (so that eps in the wrong place shows)
    and weights away from 1 and biases away from 0 (so that a forgotten affine step shows).
    """
    from torch.nn import functional as F

    g = torch.Generator().manual_seed(2)
    b, c, h, w, groups, eps = 2, 12, 5, 7, 4, 0.1
    scale = torch.linspace(0.5, 3.0, c).view(1, c, 1, 1)
    offset = torch.linspace(-2.0, 2.0, c)[torch.randperm(c, generator=g)].view(1, c, 1, 1)
    x = torch.randn(b, c, h, w, generator=g) * scale + offset  # (B, C, H, W)
    x[1] = 3 * x[1] + 1  # the two samples have different statistics too
    weight = 1 + 0.5 * torch.randn(c, generator=g)
    bias = 0.5 * torch.randn(c, generator=g)
    name = "group_norm"
    got = _call(name, fn, x.clone(), groups, weight.clone(), bias.clone(), eps, forbidden=("group_norm",),
                hint="fn(x, num_groups, weight, bias, eps) should return a tensor shaped like x.")
    xd, wd, bd = x.double(), weight.double(), bias.double()
    expected = F.group_norm(xd, groups, wd, bd, eps)
    mistakes = {
        "one group per channel (that is InstanceNorm)": F.group_norm(xd, c, wd, bd, eps),
        "a single group for all channels (like LayerNorm)": F.group_norm(xd, 1, wd, bd, eps),
        "groups made of every G-th channel": _group_norm_manual(xd, groups, wd, bd, eps, interleaved=True),
        "statistics shared across the batch": _group_norm_manual(xd, groups, wd, bd, eps, over_batch=True),
        "unbiased variance (divides by n - 1)": _group_norm_manual(xd, groups, wd, bd, eps, unbiased=True),
        "eps added outside the square root": _group_norm_manual(xd, groups, wd, bd, eps, eps_outside=True),
        "weight and bias not applied": _group_norm_manual(xd, groups, wd, bd, eps, affine=False),
    }
    return compare(name, got, expected, mistakes, _named(_GROUPNORM_HINTS),
                   general_hint="Reshape (B, C, H, W) -> (B, G, C//G, H, W), normalise over the last three "
                                "dims, reshape back, then apply weight and bias per channel.",
                   raise_on_failure=raise_on_failure)


_BROADCAST_HINTS = {
    "time added without unsqueeze": "PyTorch aligns shapes from the RIGHT: a (B, C) tensor lines up with the "
        "feature's last two axes (H, W), not with (B, C). Here H == B and W == C, so it even ran without an error. "
        "Make the time (B, C, 1, 1) first: time[:, :, None, None] or time.unsqueeze(-1).unsqueeze(-1).",
    "time reshaped to (B, 1, 1, C)": "The channel axis of the feature is axis 1: make the time (B, C, 1, 1), "
                                     "not (B, 1, 1, C).",
    "only the first sample's time used": "Keep the batch axis: each sample gets its own time vector, time[:, :, None, None].",
    "time multiplied instead of added": "The residual block ADDS the time vector to every pixel.",
}


@exercise("add_time", todo="return the feature with each sample's time vector added at every pixel", reference=lambda: _add_time_reference)
def check_time_broadcast(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 02): fn(feature (B, C, H, W), time (B, C)) -> feature + time at every pixel.

    Checked with B = H = 2 and C = W = 3 on purpose: then the two classic broadcast mistakes run
    WITHOUT an error and silently add the wrong numbers, which is what makes them dangerous.
    """
    g = torch.Generator().manual_seed(3)
    feature = torch.randn(2, 3, 2, 3, generator=g)  # (B, C, H, W) with H == B, W == C
    time = torch.randn(2, 3, generator=g)  # (B, C)
    name = "add_time"
    got = _call(name, fn, feature.clone(), time.clone(),
                hint="Shapes: feature (B, C, H, W), time (B, C); make the time (B, C, 1, 1) before adding.")
    expected = feature + time[:, :, None, None]  # (B, C, H, W) + (B, C, 1, 1)
    mistakes = {
        "time added without unsqueeze": feature + time,  # (B, C, H, W) + (H, W): wrong but legal here
        "time reshaped to (B, 1, 1, C)": feature + time[:, None, None, :],
        "only the first sample's time used": feature + time[:1, :, None, None],
        "time multiplied instead of added": feature * time[:, :, None, None],
    }
    return compare(name, got, expected, mistakes, _named(_BROADCAST_HINTS),
                   general_hint="feature + time[:, :, None, None]: (B, C, H, W) + (B, C, 1, 1).",
                   raise_on_failure=raise_on_failure)


_RESIDUAL_HINTS = {
    "residual forgotten": "Return merged + self.residual_layer(residue): the block adds its input back.",
    "residual saved after the first GroupNorm": "Save residue = feature BEFORE anything touches it.",
    "no SiLU on the time embedding": "Apply F.silu to the time embedding before linear_time.",
    "SiLU after linear_time instead of before": "The order is linear_time(F.silu(time)): SiLU first, then the "
                                                "projection to out_channels (as SD's checkpoints were trained).",
    "GroupNorm eps 1e-6 (residual blocks use 1e-5)": "The residual block's GroupNorms use PyTorch's default eps=1e-5; "
                                                     "1e-6 belongs to the attention block's GroupNorm.",
    "no SiLU after the GroupNorms": "Each GroupNorm is followed by F.silu, before its conv.",
    "time added after the second conv": "Add the time vector between the two convs: to the output of "
                                        "conv_feature, before groupnorm_merged.",
    "groupnorm_feature and groupnorm_merged swapped": "groupnorm_feature normalises the input, "
                                                      "groupnorm_merged the sum of features and time.",
    "no 1x1 conv on the residual when the channels change": "When in_channels != out_channels the input cannot "
        "be added to the output: residual_layer = nn.Conv2d(in_channels, out_channels, kernel_size=1).",
    "a 1x1 conv on the residual although the channels are equal": "When in_channels == out_channels, "
        "residual_layer = nn.Identity() (SD v1 has no weights there; real checkpoints would not load).",
}


def _with_eps(block, x, time, eps: float) -> torch.Tensor:
    """The block's forward with both GroupNorms at another eps (the learner typed the attention block's)."""
    from torch.nn import functional as F

    def gn(norm, h):
        return F.group_norm(h, norm.num_groups, norm.weight, norm.bias, eps)

    t = block.linear_time(F.silu(time))[:, :, None, None]
    h = block.conv_feature(F.silu(gn(block.groupnorm_feature, x))) + t
    return block.conv_merged(F.silu(gn(block.groupnorm_merged, h))) + block.residual_layer(x)


def _residual_mistakes(block, x, time) -> Dict[str, torch.Tensor]:
    """Outputs of typical wrong residual blocks built from `block`'s own layers."""
    from torch.nn import functional as F

    gn1, conv1, lin, gn2, conv2, res = (block.groupnorm_feature, block.conv_feature, block.linear_time,
                                        block.groupnorm_merged, block.conv_merged, block.residual_layer)
    t = lin(F.silu(time))[:, :, None, None]  # (B, n_time) -> (B, out, 1, 1)
    h = conv1(F.silu(gn1(x)))  # (B, in, H, W) -> (B, out, H, W)
    tail = conv2(F.silu(gn2(h + t)))
    out = {
        "residual forgotten": tail,
        "residual saved after the first GroupNorm": tail + res(gn1(x)),
        "no SiLU on the time embedding": conv2(F.silu(gn2(h + lin(time)[:, :, None, None]))) + res(x),
        "no SiLU after the GroupNorms": conv2(gn2(conv1(gn1(x)) + t)) + res(x),
        "time added after the second conv": conv2(F.silu(gn2(h))) + t + res(x),
        "SiLU after linear_time instead of before": conv2(F.silu(gn2(h + F.silu(lin(time))[:, :, None, None]))) + res(x),
        "GroupNorm eps 1e-6 (residual blocks use 1e-5)": _with_eps(block, x, time, 1e-6),
    }
    if block.in_channels == block.out_channels:
        out["groupnorm_feature and groupnorm_merged swapped"] = conv2(F.silu(gn1(conv1(F.silu(gn2(x))) + t))) + x
    return out


@exercise("UNET_ResidualBlock", todo="build the layers with the notes' names in __init__ and write "
          "forward(feature (B, in, H, W), time (B, 1280)) -> (B, out, H, W)", reference=_reference_residual_block)
def check_residual_block(module_cls: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Check a learner's UNET_ResidualBlock class: module_cls(in_channels, out_channels) with the
    notes' attribute names; forward(feature (B, in, H, W), time (B, 1280)) -> (B, out, H, W).

    Two blocks are checked: 64 -> 96 channels (needs the 1x1 conv on the residual) and 64 -> 64
    (needs an Identity). Weights come from `sdcourse.UNET_ResidualBlock`, perturbed so that no
    norm or bias hides behind its 1/0 init.
    """
    from ..unet import UNET_ResidualBlock

    result = None
    for cin, cout in ((64, 96), (64, 64)):
        name = f"UNET_ResidualBlock({cin}, {cout})"
        reference = perturb_(UNET_ResidualBlock(cin, cout), seed=4)
        learner = _call(name, module_cls, cin, cout, hint="module_cls(in_channels, out_channels) should build it.")
        ours, theirs = set(learner.state_dict()), set(reference.state_dict())
        if cin != cout and "residual_layer.weight" in theirs - ours:
            mistake = "no 1x1 conv on the residual when the channels change"
        elif cin == cout and "residual_layer.weight" in ours - theirs:
            mistake = "a 1x1 conv on the residual although the channels are equal"
        else:
            mistake = None
        if mistake:
            result = CheckResult(name, False, float("inf"), mistake, _named(_RESIDUAL_HINTS)[mistake])
            return _finish(result, raise_on_failure)
        copy_weights(learner, reference)
        g = torch.Generator().manual_seed(5)
        x = torch.randn(2, cin, 6, 5, generator=g)  # (B, in, H, W), H != W
        x[1] *= 0.01  # a quiet sample (variance ~1e-4), so that GroupNorm's eps visibly matters
        time = torch.randn(2, 1280, generator=g)  # (B, n_time): one time vector per sample
        with torch.no_grad():
            got = _call(name, learner, x, time,
                        hint="If it is a shape error: is the time (B, out, 1, 1) before the addition, and does "
                             "the residual go through residual_layer?")
            expected = reference(x, time)
            mistakes = _residual_mistakes(reference, x, time)
        result = compare(name, got, expected, mistakes, _named(_RESIDUAL_HINTS),
                         general_hint="Compare your forward line by line with the cells above.",
                         raise_on_failure=raise_on_failure)
        if not result.passed:
            return result
    return result


@exercise("residual_block_parameters", todo="return the parameter count from a formula, layer by layer",
          reference=lambda: _count_residual_block)
def check_residual_block_parameters(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 02): fn(in_channels, out_channels, n_time) -> number of parameters of a
    UNET_ResidualBlock, from a formula. Checked on SD v1's blocks (320->320, 320->640, 2560->1280,
    960->320) against a count of the real module built on the meta device."""
    from ..unet import UNET_ResidualBlock

    pairs = ((320, 320), (320, 640), (2560, 1280), (960, 320))
    n_time = 1280
    got, expected = [], []
    mistakes = {k: [] for k in ("1x1 residual conv forgotten", "biases forgotten", "GroupNorm weights and biases forgotten",
                                "1x1 residual conv counted also when the channels are equal",
                                "3x3 kernels counted as 3 weights instead of 9")}
    for cin, cout in pairs:
        with torch.device("meta"):
            block = UNET_ResidualBlock(cin, cout, n_time=n_time)
        count = sum(p.numel() for p in block.parameters())
        expected.append(count)
        one_by_one = cin * cout + cout if cin != cout else 0
        biases = sum(p.numel() for n, p in block.named_parameters() if n.endswith("bias") and "groupnorm" not in n)
        mistakes["1x1 residual conv forgotten"].append(count - one_by_one)
        mistakes["biases forgotten"].append(count - biases)
        mistakes["GroupNorm weights and biases forgotten"].append(count - 2 * cin - 2 * cout)
        mistakes["1x1 residual conv counted also when the channels are equal"].append(
            count + (cin * cout + cout if cin == cout else 0))
        mistakes["3x3 kernels counted as 3 weights instead of 9"].append(count - 6 * (cin * cout + cout * cout))
        value = _call("residual_block_parameters", fn, cin, cout, n_time, hint="fn(in_channels, out_channels, n_time) -> int.")
        got.append(float(value))
    # every case differs from every mistake in at least one pair (320->320 has no 1x1 conv, the others have)
    mistakes = {k: torch.tensor(v, dtype=torch.float64) for k, v in mistakes.items()}
    hints = {
        "1x1 residual conv forgotten": "When the channels change, residual_layer is a 1x1 conv: in*out weights + out biases.",
        "biases forgotten": "Every Conv2d and Linear here has a bias: one per output channel.",
        "GroupNorm weights and biases forgotten": "Each GroupNorm has a weight and a bias per channel: 2*in + 2*out in all.",
        "1x1 residual conv counted also when the channels are equal": "With equal channels the residual is an Identity: no weights.",
        "3x3 kernels counted as 3 weights instead of 9": "A 3x3 conv has in*out*3*3 weights.",
    }
    # the 320->320 pair makes the two 1x1-conv mistakes differ from each other and from the reference
    return compare("residual_block_parameters", torch.tensor(got, dtype=torch.float64),
                   torch.tensor(expected, dtype=torch.float64), mistakes, _named(hints), atol=0.5,
                   general_hint="Count layer by layer: GroupNorm 2*C, Conv3x3 in*out*9 + out, Linear n_time*out + out.",
                   raise_on_failure=raise_on_failure)




# --- hints: where to look, not the answer ------------------------------------------------------
from .hints import register  # noqa: E402

register("group_norm",
         "Section 2 computes it step by step: a view that cuts the channels into groups, one mean and one "
         "variance per sample and group, then back to (B, C, H, W).",
         "Which dims of the 5-D view belong to one group of one sample? And which variance divides by n?",
         "The per-channel weight and bias come last; shape them so they line up with axis 1.")
register("add_time",
         "Broadcasting aligns shapes from the right (section 3, 'The trap'): give the time two trailing axes of size 1.")
register("UNET_ResidualBlock",
         "__init__: six layers with the notes' names; the diagram of section 1 shows what each one maps to what.",
         "forward: the four steps at the top of the notebook, in order. Keep the input aside before step 1.",
         "The time goes through SiLU, then linear_time, then section 3's unsqueeze, and is added before the second GroupNorm.",
         "residual_layer depends on whether the channel count changes: section 4.")
register("residual_block_parameters",
         "Go through __init__ of UNET_ResidualBlock layer by layer: two GroupNorms, two 3x3 convs, one Linear, "
         "and maybe a 1x1 conv.",
         "Every conv and Linear has one bias per output channel; a GroupNorm has a weight and a bias per channel.")
