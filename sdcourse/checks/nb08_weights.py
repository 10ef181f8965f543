"""Checker of notebook 08: renaming one attention block's keys from diffusers' (and the original
CompVis file's) names to the notes' names, fusing self-attention's q, k, v into `in_proj`.

The reference is `sdcourse.weights`' table `ATTENTION_NAMES`, applied by `rename_keys`.
"""
from __future__ import annotations

from typing import Callable, Dict, Mapping

import torch

from .core import CheckResult, _call, _finish, _named, exercise
from .hints import register


def _by_table(state: Mapping[str, torch.Tensor]):
    """sdcourse's table applied to one block's keys (no prefix), with sdcourse's own `rename_keys`:
    -> ({notes key: tensor}, unmapped keys)."""
    from ..weights.rename import rename_keys
    from ..weights.tables import ATTENTION_NAMES

    # rename_keys works on whole checkpoints (block prefix + inner name): give the block a prefix and take it off
    renamed, unmapped = rename_keys({f"block.{k}": v for k, v in state.items()}, [("block", "block", ATTENTION_NAMES)])
    return {k[len("block."):]: v for k, v in renamed.items()}, [k[len("block."):] for k in unmapped]


def _rename_reference():
    def rename_attention_block(state):
        return _by_table(state)[0]
    return rename_attention_block


def _block_state(seed: int = 80) -> tuple:
    """One attention block of the SD v1 structure (32 channels, 4 heads, context 32), weights away
    from init: -> (its diffusers-named state dict, its notes-named state dict)."""
    from ..unet import UNET_AttentionBlock
    from ..weights.tables import ATTENTION_NAMES
    from .core import perturb_

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        block = perturb_(UNET_AttentionBlock(4, 8, d_context=32, n_groups=8), seed=seed)
    notes = {k: v.detach().clone() for k, v in block.state_dict().items()}
    source: Dict[str, torch.Tensor] = {}
    for src, dst in ATTENTION_NAMES.items():
        for param in ("weight", "bias"):
            if isinstance(dst, tuple):
                key = f"{dst[0]}.{param}"
                if key in notes:
                    source[f"{src}.{param}"] = notes[key].chunk(3, dim=0)[dst[1]].clone()
            elif f"{dst}.{param}" in notes:
                source[f"{src}.{param}"] = notes[f"{dst}.{param}"].clone()
    return source, notes


_RENAME_HINTS = {
    "q, k, v fused in another order": "in_proj.weight = cat([to_q, to_k, to_v], dim=0): q first, then k, then v "
                                      "(the notes' SelfAttention splits in_proj(x) with chunk(3) in that order).",
    "q, k, v stacked along dim 1": "Stack the rows: torch.cat([...], dim=0) gives (3C, C); dim=1 gives (C, 3C).",
    "self- and cross-attention swapped (attn1 <-> attn2)": "attn1 is the self-attention (attention_1, fused in_proj); "
                                                          "attn2 the cross-attention (attention_2, separate q/k/v).",
    "norm2 and norm3 swapped": "norm1, norm2, norm3 come before self-attention, cross-attention and the GeGLU: "
                               "layernorm_1, layernorm_2, layernorm_3.",
    "the two GeGLU linears swapped": "ff.net.0.proj is the first GeGLU linear (C -> 8C: value and gate), ff.net.2 the second.",
    "q, k, v of the self-attention not fused": "The notes' SelfAttention has ONE in_proj: build it from to_q, to_k, to_v.",
}


def _mistakes(source, notes) -> Dict[str, Dict[str, torch.Tensor]]:
    """The renamed dict each typical mistake produces."""
    p = "transformer_blocks.0."
    q, k, v = (source[f"{p}attn1.to_{x}.weight"] for x in "qkv")
    out = {}
    out["q, k, v fused in another order"] = {**notes, "attention_1.in_proj.weight": torch.cat([k, q, v], dim=0)}
    out["q, k, v stacked along dim 1"] = {**notes, "attention_1.in_proj.weight": torch.cat([q, k, v], dim=1)}
    swapped = dict(notes)
    for a, b in (("layernorm_2", "layernorm_3"),):
        for param in ("weight", "bias"):
            swapped[f"{a}.{param}"], swapped[f"{b}.{param}"] = notes[f"{b}.{param}"], notes[f"{a}.{param}"]
    out["norm2 and norm3 swapped"] = swapped
    geglu = dict(notes)
    for param in ("weight", "bias"):
        geglu[f"linear_geglu_1.{param}"], geglu[f"linear_geglu_2.{param}"] = (notes[f"linear_geglu_2.{param}"],
                                                                              notes[f"linear_geglu_1.{param}"])
    out["the two GeGLU linears swapped"] = geglu
    attn = {k2: v2 for k2, v2 in notes.items() if not k2.startswith(("attention_1.", "attention_2."))}
    attn.update({"attention_2.q_proj.weight": q, "attention_2.k_proj.weight": k, "attention_2.v_proj.weight": v,
                 "attention_2.out_proj.weight": source[f"{p}attn1.to_out.0.weight"],
                 "attention_2.out_proj.bias": source[f"{p}attn1.to_out.0.bias"],
                 "attention_1.in_proj.weight": torch.cat([source[f"{p}attn2.to_{x}.weight"] for x in "qkv"], dim=0),
                 "attention_1.out_proj.weight": source[f"{p}attn2.to_out.0.weight"],
                 "attention_1.out_proj.bias": source[f"{p}attn2.to_out.0.bias"]})
    out["self- and cross-attention swapped (attn1 <-> attn2)"] = attn
    unfused = {k2: v2 for k2, v2 in notes.items() if k2 != "attention_1.in_proj.weight"}
    unfused.update({"attention_1.q_proj.weight": q, "attention_1.k_proj.weight": k, "attention_1.v_proj.weight": v})
    out["q, k, v of the self-attention not fused"] = unfused
    return out


def _same(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> bool:
    return set(a) == set(b) and all(tuple(a[k].shape) == tuple(b[k].shape) and torch.equal(a[k], b[k]) for k in a)


@exercise("rename_attention_block", todo="map each diffusers name of the block to the notes' name (a dict), "
          "and fuse attn1's to_q, to_k, to_v into attention_1.in_proj.", reference=_rename_reference)
def check_rename_attention_block(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise (notebook 08): fn(state) -> renamed, for ONE attention block. state: {diffusers key
    inside the block (no prefix), e.g. "transformer_blocks.0.attn1.to_q.weight": tensor}; renamed:
    {notes key, e.g. "attention_1.in_proj.weight": tensor}, with q, k, v of the self-attention fused
    as cat([W_q, W_k, W_v], dim=0). (The CompVis file uses the same names inside an attention block.)

    Checked on a block whose every tensor is different (weights perturbed away from init): the key
    set must equal the notes' block's, and every tensor must be exactly the right one."""
    source, notes = _block_state()
    name = "rename_attention_block(state)"
    got = _call(name, fn, {k: v.clone() for k, v in source.items()},
                hint="fn(state) takes {diffusers key: tensor} and returns {notes key: tensor}.")
    if not isinstance(got, Mapping):
        return _finish(CheckResult(name, False, float("inf"), None,
                                   f"Return a dict {{notes key: tensor}}, got {type(got).__name__}."), raise_on_failure)
    if _same(got, notes):
        return _finish(CheckResult(name, True, 0.0), raise_on_failure)
    for mistake, wrong in _mistakes(source, notes).items():
        if _same(got, wrong):
            return _finish(CheckResult(name, False, float("inf"), mistake, _named(_RENAME_HINTS)[mistake]),
                           raise_on_failure)
    missing, extra = sorted(set(notes) - set(got)), sorted(set(got) - set(notes))
    if missing or extra:
        detail = f"Missing notes keys: {missing[:4]}; keys that are not the notes': {extra[:4]}."
    else:
        wrong_keys = [k for k in notes if tuple(got[k].shape) != tuple(notes[k].shape) or not torch.equal(got[k], notes[k])]
        detail = f"The keys are right, but these hold the wrong tensor: {wrong_keys[:4]}."
    return _finish(CheckResult(name, False, float("inf"), None,
                               detail + " Compare with sdcourse.weights.tables.ATTENTION_NAMES."), raise_on_failure)


register("rename_attention_block", "Write a dict from the diffusers module names to the notes' (norm -> groupnorm, "
                                   "proj_in -> conv_input, ...); keep the .weight / .bias ending.",
         "attn1 is the self-attention: collect its to_q, to_k, to_v and concatenate them (q first) into one in_proj.",
         "print(sdcourse.UNET_AttentionBlock(4, 8, 16, 8).state_dict().keys()) lists the names you must produce.")


# --- notebook 08, exercise 1: where does a weight live in the original single file? -----------------

SINGLE_FILE_KEYS = ("unet.decoders.5.2.conv.weight", "time_embedding.linear_2.weight")  # (a), (b)
NO_PREFIX = "the key without the file's prefix model.diffusion_model."
SILU_NOT_COUNTED = "the SiLU of time_embed not counted"
DECODERS_RENUMBERED = "the decoders renumbered"
_SINGLE_FILE_HINTS = {
    NO_PREFIX: "Every UNet key of the original file starts with 'model.diffusion_model.'.",
    SILU_NOT_COUNTED: "time_embed = Sequential(Linear, SiLU, Linear): count the layers of the Sequential, SiLU included.",
    DECODERS_RENUMBERED: "The decoders keep the notes' numbering: output_blocks.i is unet.decoders.i.",
}


class KeysResult(CheckResult):
    def _line(self) -> str:
        if self.passed:
            return f"[ok] {self.name}: both keys are the original file's"
        return f"[wrong] {self.name}: {self.hint}"


def _single_file_reference():
    from ..weights import source_keys

    def answers():
        return tuple(source_keys(key, "compvis")[0] for key in SINGLE_FILE_KEYS)
    return answers


def _key_mistake(expected: str, answer: str):
    if answer == expected.replace("model.diffusion_model.", "", 1):
        return NO_PREFIX
    if "time_embed" in expected and answer == expected.replace("time_embed.2", "time_embed.1"):
        return SILU_NOT_COUNTED
    if "output_blocks" in expected and answer.startswith("model.diffusion_model.output_blocks.") \
            and answer.endswith(".conv.weight") and answer != expected:
        return DECODERS_RENUMBERED
    return None


@exercise("single_file_keys", todo="answers() returns two keys of the original single file: (a) that of "
          "unet.decoders.5.2.conv.weight, (b) that of time_embedding.linear_2.weight.", reference=_single_file_reference)
def check_single_file_keys(fn: Callable, raise_on_failure: bool = True) -> CheckResult:
    """Exercise 1 of notebook 08: fn() -> (key_a, key_b), the original (CompVis) file's keys of the
    notes' unet.decoders.5.2.conv.weight and time_embedding.linear_2.weight."""
    from ..weights import source_keys

    name = "single_file_keys"
    got = _call(name, fn, hint="answers() takes nothing and returns two strings.")
    if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(k, str) for k in got)):
        return _finish(KeysResult(name, False, float("inf"), None,
                                  f"Return two strings (key_a, key_b), got {type(got).__name__}."), raise_on_failure)
    for notes_key, answer in zip(SINGLE_FILE_KEYS, got):
        expected = source_keys(notes_key, "compvis")[0]
        if answer != expected:
            mistake = _key_mistake(expected, answer)
            advice = _named(_SINGLE_FILE_HINTS)[mistake] if mistake else \
                "Look the key up in the file's key list above (sdcourse.weights.source_keys shows the mapping)."
            return _finish(KeysResult(name, False, float("inf"), mistake,
                                      f"{notes_key}: {answer!r} is not the file's key. {advice}"), raise_on_failure)
    return _finish(KeysResult(name, True, 0.0), raise_on_failure)


register("single_file_keys", "In the original file the UNet lives under model.diffusion_model., and its decoders are "
                             "output_blocks, numbered as the notes number unet.decoders.",
         "time_embed is a Sequential(Linear, SiLU, Linear): the SiLU has an index too.")
