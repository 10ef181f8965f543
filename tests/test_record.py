"""AttentionRecorder: the maps it keeps equal softmax(QK^T/sqrt(d)) computed by hand, memory stays
bounded, observers come back after errors, and the CFG batch order is enforced."""
import copy
import math

import pytest
import torch

from sdcourse import CrossAttention, Diffusion, SelfAttention, UNetConfig, sinusoidal_embedding
from sdcourse.record import AttentionMaps, AttentionRecorder, attention_blocks, decode_timestep, normalize_maps
from sdcourse.sampling import sample
from sdcourse.schedule import NoiseSchedule

CFG = UNetConfig.tiny()
TOKENS = 5


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return Diffusion(CFG).eval()


def inputs(batch=1, h=16, w=16, seed=1):
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(batch, CFG.in_channels, h, w, generator=g)
    context = torch.randn(batch, TOKENS, CFG.d_context, generator=g)
    return latent, context


def time(t):
    return sinusoidal_embedding(t, CFG.n_time_embd)


def by_hand(module, x, y=None):
    """softmax(Q K^T / sqrt(d_head)) per head from the module's own projection weights -> (B, H, Lq, Lk)."""
    heads, d = module.n_heads, module.d_head
    if isinstance(module, SelfAttention):
        wq, wk, _ = module.in_proj.weight.chunk(3, dim=0)
        y = x
    else:
        wq, wk = module.q_proj.weight, module.k_proj.weight
    q = torch.einsum("blc,dc->bld", x.double(), wq.double())
    k = torch.einsum("blc,dc->bld", y.double(), wk.double())
    b, lq, lk = x.shape[0], x.shape[1], y.shape[1]
    q = q.reshape(b, lq, heads, d)
    k = k.reshape(y.shape[0], lk, heads, d).expand(b, lk, heads, d)
    scores = torch.einsum("bqhd,bkhd->bhqk", q, k) / math.sqrt(d)
    e = (scores - scores.amax(-1, keepdim=True)).exp()
    return (e / e.sum(-1, keepdim=True)).float()


def capture_inputs(model, cls, path):
    """Forward pre-hook on one attention module of the model: keeps its (x[, y]) inputs."""
    module = dict(model.named_modules())[path]
    seen = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append([a.detach().clone() for a in args]))
    return module, seen, handle


def test_block_names_follow_the_unet_levels():
    with torch.device("meta"):
        sd = Diffusion()
    infos = [info for info, _ in attention_blocks(sd, "cross")]
    # SD v1: attention in encoders 1,2 (H/8), 4,5 (H/16), 7,8 (H/32); bottleneck (H/64);
    # decoders 3,4,5 (H/32), 6,7,8 (H/16), 9,10,11 (H/8): 16 blocks
    expected = (["down.1 (H/8)", "down.2 (H/8)", "down.4 (H/16)", "down.5 (H/16)", "down.7 (H/32)", "down.8 (H/32)",
                 "mid (H/64)"] + [f"up.{i} (H/32)" for i in (3, 4, 5)] + [f"up.{i} (H/16)" for i in (6, 7, 8)]
                + [f"up.{i} (H/8)" for i in (9, 10, 11)])
    assert [i.name for i in infos] == expected
    assert [i.path for i in infos][:2] == ["unet.encoders.1.1.attention_2", "unet.encoders.2.1.attention_2"]
    assert all(i.n_heads == 8 for i in infos)
    assert len(attention_blocks(sd, "self")) == 16


def test_cross_maps_equal_the_formula_by_hand(model):
    path = "unet.decoders.9.1.attention_2"  # up.9, at the latent resolution
    module, seen, handle = capture_inputs(model, CrossAttention, path)
    latent, context = inputs(batch=2)
    try:
        with AttentionRecorder(model, kind="cross", heads="all", blocks=["up.9"]) as rec:
            model(latent, context, time(500))
    finally:
        handle.remove()
    (x, y), = seen
    expected = by_hand(module, x, y).mean(0)  # (B, H, Lq, Lk) -> (H, Lq, Lk): batch averaged
    assert rec.names == ["up.9 (H/8)"]
    for head in range(CFG.n_head):
        assert torch.allclose(rec.maps.get("up.9 (H/8)", head=head), expected[head], atol=1e-5)
    assert torch.allclose(rec.maps.get("up.9 (H/8)"), expected.mean(0), atol=1e-5)
    assert rec.maps.blocks["up.9 (H/8)"].grid == (16, 16)


def test_self_query_row_equals_the_formula_by_hand(model):
    path = "unet.encoders.4.1.attention_1"  # down.4, H/16: an 8x8 grid for a 16x16 latent
    module, seen, handle = capture_inputs(model, SelfAttention, path)
    latent, context = inputs(batch=1)
    try:
        with AttentionRecorder(model, kind="self", query=(5, 10), blocks="down.4") as rec:
            model(latent, context, time(10))
    finally:
        handle.remove()
    (x,), = seen
    full = by_hand(module, x).mean(1)[0]  # (1, H, 64, 64) -> (64, 64)
    cell = (5 // 2, 10 // 2)  # latent pixel (5, 10) -> grid cell (2, 5) at half resolution
    expected = full[cell[0] * 8 + cell[1]].reshape(8, 8)
    assert torch.allclose(rec.query_map("down.4 (H/16)"), expected, atol=1e-5)
    assert rec.maps.sums[("down.4 (H/16)", None)].shape == (1, 1, 64)  # only one row kept


def test_cfg_keeps_the_cond_half(model):
    path = "unet.bottleneck.1.attention_2"
    module, seen, handle = capture_inputs(model, CrossAttention, path)
    latent, _ = inputs(batch=1)
    uncond = torch.zeros(1, TOKENS, CFG.d_context)
    cond = torch.randn(1, TOKENS, CFG.d_context, generator=torch.Generator().manual_seed(3))
    both = torch.cat([uncond, cond])  # this course's order: [uncond, cond]
    try:
        with AttentionRecorder(model, cfg=True, blocks="mid", heads="all") as rc, \
                AttentionRecorder(model, cfg=True, half="uncond", blocks="mid", heads="all", uncond_context=uncond) as ru:
            model(torch.cat([latent, latent]), both, time(700))
    finally:
        handle.remove()
    (x, y), = seen
    w = by_hand(module, x, y)  # (2, H, Lq, Lk)
    assert torch.allclose(rc.maps.get("mid (H/64)", head=1), w[1, 1], atol=1e-5)
    assert torch.allclose(ru.maps.get("mid (H/64)", head=1), w[0, 1], atol=1e-5)
    assert not torch.allclose(w[0], w[1], atol=1e-3)  # the halves really differ


def test_cfg_order_is_asserted(model):
    latent, context = inputs(batch=1)
    with pytest.raises(ValueError, match="odd"):
        with AttentionRecorder(model, cfg=True):
            model(latent, context, time(1))
    other, _ = inputs(batch=1, seed=9)
    with pytest.raises(ValueError, match="different latents"):
        with AttentionRecorder(model, cfg=True):
            model(torch.cat([latent, other]), torch.cat([context, context]), time(1))
    uncond = torch.zeros(1, TOKENS, CFG.d_context)
    with pytest.raises(ValueError, match=r"\[uncond, cond\]"):  # cond first: the wrong order
        with AttentionRecorder(model, cfg=True, uncond_context=uncond):
            model(torch.cat([latent, latent]), torch.cat([context, uncond]), time(1))


def test_observers_are_restored_after_an_exception(model):
    sentinel = lambda module, weights: None  # noqa: E731
    first = attention_blocks(model, "cross")[0][1]
    first.observer = sentinel
    latent, context = inputs()
    try:
        with pytest.raises(RuntimeError, match="boom"):
            with AttentionRecorder(model, kind="cross"):
                model(latent, context, time(3))
                raise RuntimeError("boom")
        assert first.observer is sentinel
        others = [m for _, m in attention_blocks(model, "cross")[1:]] + [m for _, m in attention_blocks(model, "self")]
        assert all(m.observer is None for m in others)
        assert all(len(m._forward_pre_hooks) == 0 for m in model.modules())
        # and after an error raised inside the forward (odd CFG batch)
        with pytest.raises(ValueError):
            with AttentionRecorder(model, kind="self", cfg=True):
                model(latent, context, time(3))
        assert all(m.observer is None for _, m in attention_blocks(model, "self"))
    finally:
        first.observer = None


def test_memory_does_not_grow_with_timesteps(model):
    latent, context = inputs(batch=1, h=8, w=8)
    sizes = []
    for steps in (2, 6):
        with AttentionRecorder(model, kind="cross", heads="all") as rec:
            for t in torch.linspace(999, 0, steps).long().tolist():
                model(latent, context, time(t))
        sizes.append((rec.maps.n_tensors(), rec.maps.nbytes()))
        assert len(rec.maps.timesteps) == steps
    assert sizes[0] == sizes[1]
    assert sizes[0][0] == 16  # one running sum per block
    assert "16 block(s)" in repr(rec) and "6 timestep(s), summed" in repr(rec.maps)  # short, no tensors


def test_per_timestep_mean_matches_the_aggregate(model):
    latent, context = inputs(batch=1, h=8, w=8)
    steps = [900, 500, 100]
    with AttentionRecorder(model, per_timestep=True) as per, AttentionRecorder(model) as agg:
        for t in steps:
            model(latent, context, time(t))
    assert per.maps.timesteps == steps  # decoded from the time input
    name = "down.1 (H/8)"
    mean = torch.stack([per.maps.get(name, timestep=t) for t in steps]).mean(0)
    assert torch.allclose(mean, agg.maps.get(name), atol=1e-6)
    assert torch.allclose(per.maps.get(name), agg.maps.get(name), atol=1e-6)
    assert torch.allclose(agg.maps.get(name, time_reduce="sum"), 3 * agg.maps.get(name), atol=1e-5)
    assert not torch.allclose(per.maps.get(name, timestep=900), per.maps.get(name, timestep=100), atol=1e-4)
    with pytest.raises(ValueError, match="per_timestep=True"):
        agg.maps.get(name, timestep=900)


def test_explicit_timestep_tag_and_filter(model):
    latent, context = inputs(batch=1, h=8, w=8)
    with AttentionRecorder(model, per_timestep=True, timesteps={20}) as rec:
        for step, t in enumerate([10, 20, 30]):
            rec.timestep = step * 10 + 10  # what a sampling loop would do
            model(latent, context, time(t))
    assert {t for _, t in rec.maps.sums} == {20}


def test_rows_sum_to_one_and_maps_normalise(model):
    latent, context = inputs(batch=2, h=8, w=16)
    with AttentionRecorder(model, kind="cross", per_timestep=True) as rec, \
            AttentionRecorder(model, kind="self") as rs:
        for t in (800, 200):
            model(latent, context, time(t))
    for name in rec.names:
        assert torch.allclose(rec.maps.get(name).sum(-1), torch.ones(1), atol=1e-5)
        assert torch.allclose(rs.maps.get(name.replace("cross", "self")).sum(-1), torch.ones(1), atol=1e-5)
    assert rec.maps.blocks["mid (H/64)"].grid == (1, 2)  # aspect kept: latent 8x16 -> 1x2
    maps = rec.token_maps([0, 2], size=(8, 16), normalize="none")
    assert maps.shape == (2, 8, 16)
    total = rec.token_maps(size=(8, 16), normalize="none").sum(0)  # all tokens: each pixel's weights add to 1
    assert torch.allclose(total, torch.ones(8, 16), atol=1e-5)
    assert torch.allclose(rec.token_maps([1], normalize="sum").sum(), torch.tensor(1.0), atol=1e-5)
    assert torch.allclose(rec.token_maps([1], normalize="max").amax(), torch.tensor(1.0))
    only16 = rec.token_maps([1], factors=[16], normalize="none")
    assert only16.shape == (1, 4, 8)  # the finest grid among the chosen blocks
    q = rs.query_map("up.11 (H/8)", query=(3, 7))
    assert q.shape == (8, 16) and torch.allclose(q.sum(), torch.tensor(1.0), atol=1e-5)


def test_query_row_equals_the_row_of_the_full_recording(model):
    latent, context = inputs(batch=1, h=8, w=8)
    with AttentionRecorder(model, kind="self", heads="all") as full, \
            AttentionRecorder(model, kind="self", heads="all", query=(6, 1)) as one:
        model(latent, context, time(300))
    for name in ("down.2 (H/8)", "down.5 (H/16)", "mid (H/64)"):
        assert torch.allclose(full.query_map(name, (6, 1), head=2), one.query_map(name, head=2), atol=1e-6)
    with pytest.raises(ValueError, match="only query"):
        one.query_map("mid (H/64)", (0, 0))


def test_selection_and_limits(model):
    latent, context = inputs(batch=1, h=16, w=16)
    with AttentionRecorder(model, blocks=["mid", "up"], factors=[32, 64]) as rec:
        model(latent, context, time(5))
    assert rec.names == ["mid (H/64)", "up.3 (H/32)", "up.4 (H/32)", "up.5 (H/32)"]
    with pytest.raises(ValueError, match="query"):
        with AttentionRecorder(model, kind="self", max_elements=1000):
            model(latent, context, time(5))
    with pytest.raises(ValueError, match="match none"):
        AttentionRecorder(model, blocks=["sideways"])
    with pytest.raises(ValueError, match="kind"):
        AttentionRecorder(model, kind="both")
    with pytest.raises(ValueError, match="head"):
        rec.maps.get("mid (H/64)", head=0)  # heads were averaged while recording


DTYPES = [torch.float32, torch.float16, torch.bfloat16]


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_decode_timestep_is_exact_in_every_dtype(dtype):
    """The embedding cast to the model's dtype (as sampling and the pipeline do) still gives t exactly:
    in float16 an atan2 of the slowest frequency alone reads 981 as 980.72."""
    for dim in (320, 32):
        for t in range(0, 1000):
            assert decode_timestep(sinusoidal_embedding(t, dim).to(dtype)) == t, (dim, t)
    assert decode_timestep(sinusoidal_embedding(torch.tensor([981, 500])).to(dtype)) == 981  # the first row
    assert decode_timestep(torch.randn(1, 1280).to(dtype)) is None  # no sinusoidal embedding at all
    assert decode_timestep(torch.randn(1, 1280, device="meta")) is None
    assert abs(decode_timestep(sinusoidal_embedding(500.5)) - 500.5) < 0.1  # between whole numbers: the rough reading


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_a_timesteps_filter_matches_in_every_dtype(dtype):
    """A model run in float16/bfloat16 gets a time input in that dtype: the tags and the filter still hold."""
    torch.manual_seed(0)
    half_model = Diffusion(CFG).eval().to(dtype)
    latent, context = (x.to(dtype) for x in inputs(batch=1, h=8, w=8))
    steps = [981, 961, 941, 500]
    with torch.no_grad(), AttentionRecorder(half_model, per_timestep=True, timesteps=[981, 500]) as rec:
        for t in steps:
            half_model(latent, context, time(t).to(dtype))
    assert rec.maps.timesteps == steps
    assert {t for _, t in rec.maps.sums} == {981, 500}
    assert rec.maps.get("mid (H/64)", timestep=981).shape == (1, TOKENS)  # an 8x8 latent: a 1x1 grid at H/64


def test_timestep_tags_are_plain_numbers(model):
    latent, context = inputs(batch=1, h=8, w=8)
    with AttentionRecorder(model, per_timestep=True, timesteps=torch.tensor([20])) as rec:
        rec.timestep = torch.tensor(20)  # a tensor tag is the number 20
        model(latent, context, time(999))
    assert rec.maps.timesteps == [20] and {t for _, t in rec.maps.sums} == {20}
    with pytest.raises(ValueError, match="one number"):
        rec.timestep = torch.tensor([1, 2])


def test_from_weights_and_normalize():
    torch.manual_seed(0)
    w = torch.randn(2, 4, 16, 5).softmax(-1)  # (B, H, Lq, Lk)
    maps = AttentionMaps.from_weights(w, tokens=["<start>", "a", "b", "c", "<end>"])
    assert maps.blocks["attention"].grid == (4, 4)
    assert torch.allclose(maps.get("attention", head=3), w.mean(0)[3])
    assert torch.allclose(maps.token_maps([2])[0], w.mean((0, 1))[:, 2].reshape(4, 4))
    x = torch.rand(3, 4, 4) + 0.5
    assert torch.allclose(normalize_maps(x, "minmax").amin((1, 2)), torch.zeros(3))
    assert torch.allclose(normalize_maps(x, "minmax").amax((1, 2)), torch.ones(3))
    with pytest.raises(ValueError, match="normalize"):
        normalize_maps(x, "softmax")
    with pytest.raises(ValueError, match="shape"):
        AttentionMaps.from_weights(torch.rand(5))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_recording_a_guided_sampling_run(model, dtype):
    """`sample` casts the time embedding to the model's dtype: every step is still tagged with its t."""
    run = copy.deepcopy(model).to(dtype)
    _, context = inputs(batch=1)
    uncond = torch.zeros(1, TOKENS, CFG.d_context, dtype=dtype)
    expected = NoiseSchedule.sd_v1().inference_timesteps(4, "leading", 1).tolist()
    with AttentionRecorder(run, kind="cross", cfg=True, per_timestep=True, uncond_context=uncond,
                           timesteps=expected[1:]) as rec:
        sample(run, context.to(dtype), uncond, shape=(1, CFG.in_channels, 8, 8), schedule=NoiseSchedule.sd_v1(),
               num_inference_steps=4, guidance_scale=5.0, progress=False, generator=torch.Generator().manual_seed(0))
    assert rec.maps.timesteps == expected  # read back from the time input, one tag per step
    assert {t for _, t in rec.maps.sums} == set(expected[1:])  # the filter kept the last three steps
    assert rec.maps.n_tensors() == 16 * 3


def test_memory_at_a_64x64_latent_is_what_was_asked(model):
    latent = torch.randn(1, CFG.in_channels, 64, 64)
    context = torch.randn(1, TOKENS, CFG.d_context)
    with AttentionRecorder(model, kind="cross") as rec:  # mean over heads and batch
        for t in (900, 100):
            model(latent, context, time(t))
    # per block one (1, Lq, Lk) float32 sum: Lq = 4096, 1024, 256, 64 at H/8 .. H/64
    lq = {8: 64 * 64, 16: 32 * 32, 32: 16 * 16, 64: 8 * 8}
    expected = sum(lq[b.factor] * TOKENS * 4 for b in rec.maps.blocks.values())
    assert rec.maps.nbytes() == expected
    assert expected < 1.5 * 2 ** 20  # ~1.2 MiB however many steps


def test_a_model_that_wraps_a_diffusion(model):
    wrapper = torch.nn.ModuleDict({"diffusion": model})  # like the tiny trained model of notebook 07
    latent, context = inputs(batch=1, h=8, w=16)
    with AttentionRecorder(wrapper, kind="cross", blocks="mid") as rec:
        wrapper["diffusion"](latent, context, time(321))
    assert rec.names == ["mid (H/64)"]
    assert rec.maps.latent_hw == (8, 16) and rec.maps.timesteps == [321]
    assert rec.maps.blocks["mid (H/64)"].grid == (1, 2)


def test_block_labels_follow_the_models_own_latent_factor():
    """SD's latent is H/8 of the image; the capstone's space-to-depth latent is H/3 (24 px -> 8 x 8):
    each model's blocks are labelled in its own image pixels."""
    from sdcourse import Diffusion, UNetConfig
    from sdcourse.blocks import attention_blocks
    from sdcourse.train import load_shipped

    with torch.device("meta"):
        sd = Diffusion(UNetConfig())
    assert [i.name for i, _ in attention_blocks(sd)][:2] == ["down.1 (H/8)", "down.2 (H/8)"]
    tiny = load_shipped()
    names = [i.name for i, _ in attention_blocks(tiny)]
    assert names[0] == "down.1 (H/3)" and "(H/8)" not in " ".join(names)
    with AttentionRecorder(tiny.diffusion) as rec:
        tiny.generate(["red circle top left"], steps=2, seed=0)
    assert [rec.maps.resolution_label(f) for f in rec.maps.factors()][:2] == ["H/3", "H/6"]
