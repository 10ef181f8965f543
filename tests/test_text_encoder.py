"""The course's CLIP text encoder equals transformers' `CLIPTextModel` on the same weights: the
embeddings, each layer and the whole model, tiny and full SD v1 config, fp32 and fp64; its input
checks; `tokenize` on the tiny CLIP-format tokenizer.

Norm weights and biases are moved off their 1/0 init first (`perturb_(..., only_1d=True)`), so a
skipped LayerNorm, a dropped bias or two swapped layers cannot hide behind an identity-like init.
"""
import copy
import gc

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer
from transformers.models.clip.modeling_clip import CLIPEncoderLayer

from sdcourse.checks import perturb_
from sdcourse.weights import ArchitectureError, CheckpointError, NotACheckpointError, UnsafeCheckpointError
from sdcourse.pipeline import write_tiny_tokenizer
from sdcourse.text_encoder import (
    CLIPLayer,
    CLIPTextEmbeddings,
    CLIPTextEncoder,
    TextEncoderConfig,
    causal_mask,
    load_tokenizer,
    tokenize,
)
from sdcourse.text_encoder_weights import (
    config_from_transformers,
    export_text_encoder,
    load_text_encoder,
    text_encoder_from_transformers,
    transformers_config,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-10}
SD_V1_PARAMETERS = 123_060_480


def reference_config(cfg: TextEncoderConfig, **extra) -> CLIPTextConfig:
    """The transformers config of the same sizes (written out, not derived from the code under test)."""
    return CLIPTextConfig(
        vocab_size=cfg.vocab_size, hidden_size=cfg.n_embd, intermediate_size=cfg.d_mlp,
        num_hidden_layers=cfg.n_layer, num_attention_heads=cfg.n_head, max_position_embeddings=cfg.n_positions,
        hidden_act=cfg.activation, layer_norm_eps=1e-5, eos_token_id=cfg.eos_token_id,  # CLIP's eps
        bos_token_id=cfg.vocab_size - 2, pad_token_id=1, **extra,
    )


def to_course(reference: CLIPTextModel, config: TextEncoderConfig) -> CLIPTextEncoder:
    """The course model sharing the reference's tensors: the same names (transformers 4 had them
    under `text_model.`; transformers 5 has them at the top)."""
    state = {k.removeprefix("text_model."): v.detach() for k, v in reference.state_dict().items()}
    state.pop("embeddings.position_ids", None)  # a buffer (arange), not a weight
    with torch.device("meta"):
        ours = CLIPTextEncoder(config)
    ours.load_state_dict(state, strict=True, assign=True)
    return ours.eval()


def random_reference(config: TextEncoderConfig, dtype, seed=0, **extra) -> CLIPTextModel:
    torch.manual_seed(seed)
    ref = CLIPTextModel(reference_config(config, **extra)).eval()
    perturb_(ref, seed=seed, scale=0.2, only_1d=True)
    return ref.to(dtype)


def prompt_ids(config: TextEncoderConfig, batch=2, length=77, ends=(9, 30), seed=1):
    """Rows shaped like tokenized prompts: start token, random tokens, end token, end-token padding."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, config.vocab_size - 2, (batch, length), generator=g)
    for row, end in zip(ids, ends):
        row[0] = config.vocab_size - 2  # <|startoftext|>
        row[end:] = config.eos_token_id  # <|endoftext|> then padding with it
    return ids


def max_diff(a, b):
    return (a - b).abs().max().item()


def assert_not_trivial(out):
    """Guard: a comparison of two near-zero tensors would prove nothing."""
    assert out.abs().mean().item() > 0.1, f"output too close to zero (mean |x| {out.abs().mean().item():.3g})"


# --- sizes -------------------------------------------------------------------------------------


def test_sd_v1_parameter_count_on_meta():
    with torch.device("meta"):
        ours = CLIPTextEncoder(TextEncoderConfig())
        ref = CLIPTextModel(reference_config(TextEncoderConfig()))
    assert sum(p.numel() for p in ours.parameters()) == SD_V1_PARAMETERS
    assert sum(p.numel() for p in ref.parameters()) == SD_V1_PARAMETERS
    # the same names and shapes as transformers' weights, after cutting `text_model.`
    ref_shapes = {k.removeprefix("text_model."): tuple(v.shape) for k, v in ref.state_dict().items()
                  if not k.endswith("position_ids")}
    assert {k: tuple(v.shape) for k, v in ours.state_dict().items()} == ref_shapes


def test_config_defaults_are_clip_vit_l14():
    cfg = TextEncoderConfig()
    assert (cfg.vocab_size, cfg.n_positions, cfg.n_embd, cfg.n_layer, cfg.n_head, cfg.d_mlp) == (
        49408, 77, 768, 12, 12, 3072)
    assert (cfg.layer_norm_eps, cfg.activation, cfg.d_head) == (1e-5, "quick_gelu", 64)
    with pytest.raises(ValueError, match="divisible"):
        TextEncoderConfig(n_embd=100, n_head=12)
    with pytest.raises(ValueError, match="activation"):
        TextEncoderConfig(activation="relu")


# --- parts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_embeddings_equal_transformers(dtype):
    cfg = TextEncoderConfig.tiny()
    ref = random_reference(cfg, dtype)
    ours = CLIPTextEmbeddings(cfg.vocab_size, cfg.n_positions, cfg.n_embd).to(dtype)
    ours.load_state_dict({k: v for k, v in ref.embeddings.state_dict().items() if k != "position_ids"})
    ids = prompt_ids(cfg, length=20, ends=(5, 19))
    expected = ref.embeddings(input_ids=ids)
    got = ours(ids)
    assert got.shape == (2, 20, cfg.n_embd)
    assert max_diff(got, expected) == 0.0  # a lookup and one add: bit-equal


@pytest.mark.parametrize("attn, dtype", [("eager", torch.float32), ("sdpa", torch.float32), ("sdpa", torch.float64)])
@pytest.mark.parametrize("config", [TextEncoderConfig.tiny(), TextEncoderConfig.tiny(activation="gelu")],
                         ids=["quick_gelu", "gelu"])
def test_each_layer_equals_transformers(attn, dtype, config):
    """Both of transformers' attention paths (eager takes its softmax in float32, so fp64 uses sdpa)."""
    ref_cfg = reference_config(config)
    ref_cfg._attn_implementation = attn
    torch.manual_seed(0)
    x = torch.randn(2, 77, config.n_embd, dtype=dtype)
    if attn == "eager":  # an additive (1, 1, L, L) mask: a huge negative number above the diagonal
        above = torch.ones(77, 77, dtype=torch.bool).triu(diagonal=1)
        mask = {"attention_mask": torch.zeros(1, 1, 77, 77, dtype=dtype).masked_fill(above, torch.finfo(dtype).min)}
    else:
        mask = {"attention_mask": None, "is_causal": True}
    for i in range(config.n_layer):
        ref = perturb_(CLIPEncoderLayer(ref_cfg), seed=i, scale=0.2, only_1d=True).to(dtype).eval()
        ours = CLIPLayer(config).to(dtype).eval()
        ours.load_state_dict(ref.state_dict(), strict=True)  # the same names
        with torch.no_grad():
            expected = ref(x, **mask)
            got = ours(x)
        assert got.shape == x.shape
        assert max_diff(got, expected) <= TOL[dtype], f"layer {i}"
        assert_not_trivial(got - x)  # the layer did change its input
        x = expected


# --- the whole model ------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_model_equals_transformers(dtype):
    cfg = TextEncoderConfig.tiny()
    ref = random_reference(cfg, dtype)
    ours = to_course(ref, cfg)
    ids = prompt_ids(cfg)
    with torch.no_grad():
        expected = ref(input_ids=ids)
        hidden, pooled = ours.encode(ids)
    assert hidden.shape == (2, 77, cfg.n_embd) and pooled.shape == (2, cfg.n_embd)
    assert_not_trivial(hidden)
    assert max_diff(hidden, expected.last_hidden_state) <= TOL[dtype]
    assert max_diff(pooled, expected.pooler_output) <= TOL[dtype]
    # pooled is the vector at each row's first end token (rows end at 9 and 30)
    assert torch.equal(pooled, torch.stack([hidden[0, 9], hidden[1, 30]]))


def test_full_sd_v1_model_equals_transformers():
    """SD v1's config (123 M parameters), one random model shared by both, fp32 then fp64."""
    cfg = TextEncoderConfig()
    ref = random_reference(cfg, torch.float32)
    ids = prompt_ids(cfg, batch=2, length=77)
    ours = None
    for dtype in (torch.float32, torch.float64):
        del ours  # let go of the float32 tensors before the float64 copy is made
        ref.to(dtype)
        ours = to_course(ref, cfg)  # shares the reference's tensors: one copy of the weights in memory
        with torch.no_grad():
            expected = ref(input_ids=ids)
            hidden, pooled = ours.encode(ids)
        assert hidden.dtype == dtype and hidden.shape == (2, 77, 768)
        assert_not_trivial(hidden)
        assert max_diff(hidden, expected.last_hidden_state) <= TOL[dtype], dtype
        assert max_diff(pooled, expected.pooler_output) <= TOL[dtype], dtype
    del ref, ours
    gc.collect()


def test_a_wrong_activation_is_caught():
    """The tolerance is tight enough to tell quick-GELU from the exact GELU (a classic slip)."""
    cfg = TextEncoderConfig.tiny()
    ref = random_reference(cfg, torch.float32)
    ours = to_course(ref, TextEncoderConfig.tiny(activation="gelu"))
    ids = prompt_ids(cfg)
    with torch.no_grad():
        diff = max_diff(ours(ids), ref(input_ids=ids).last_hidden_state)
    assert diff > 100 * TOL[torch.float32]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_padding_mask_equals_transformers(dtype):
    cfg = TextEncoderConfig.tiny()
    ref = random_reference(cfg, dtype)
    ours = to_course(ref, cfg)
    ids = prompt_ids(cfg, length=40, ends=(9, 30))
    mask = torch.ones_like(ids)
    mask[0, 10:] = 0  # right padding after each row's end token
    mask[1, 31:] = 0
    with torch.no_grad():
        expected = ref(input_ids=ids, attention_mask=mask).last_hidden_state
        got = ours(ids, attention_mask=mask)
        unmasked = ours(ids)
    assert max_diff(got, expected) <= TOL[dtype]
    # causal: the vectors up to the end token do not depend on the padding after it
    assert max_diff(got[0, :10], unmasked[0, :10]) <= TOL[dtype]
    assert max_diff(got[0, 10:], unmasked[0, 10:]) > 1e-3  # while the padded positions do change


def test_legacy_eos_token_id_pools_like_transformers():
    """Old configs (SD v1.5's among them) say eos_token_id=2: the highest id marks the end."""
    cfg = TextEncoderConfig.tiny(eos_token_id=2)
    ref = random_reference(cfg, torch.float64)
    ours = to_course(ref, cfg)
    ids = prompt_ids(TextEncoderConfig.tiny(), ends=(12, 40))  # end token 999, the highest id
    with torch.no_grad():
        expected = ref(input_ids=ids).pooler_output
        hidden, pooled = ours.encode(ids)
    assert max_diff(pooled, expected) <= TOL[torch.float64]
    assert torch.equal(pooled, torch.stack([hidden[0, 12], hidden[1, 40]]))


def test_explicit_path_and_observer_see_the_causal_mask():
    cfg = TextEncoderConfig.tiny()
    model = to_course(random_reference(cfg, torch.float64), cfg)
    ids = prompt_ids(cfg, length=12, ends=(5, 9))
    fast = model(ids)
    seen = []
    attn = model.encoder.layers[1].self_attn
    attn.observer = lambda module, weights: seen.append(weights)
    slow = model(ids)
    attn.observer = None
    assert max_diff(fast, slow) <= 1e-12
    (weights,) = seen
    assert weights.shape == (2, cfg.n_head, 12, 12)
    assert torch.all(weights.masked_select(~causal_mask(12)) == 0)  # nothing above the diagonal
    assert torch.allclose(weights.sum(-1), torch.ones(2, cfg.n_head, 12, dtype=torch.float64))
    # with a padding mask too: the explicit path equals SDPA's, and padded keys get no weight
    mask = torch.ones_like(ids)
    mask[0, 6:] = 0
    fast = model(ids, attention_mask=mask)
    seen.clear()
    attn.observer = lambda module, weights: seen.append(weights)
    slow = model(ids, attention_mask=mask)
    attn.observer = None
    assert max_diff(fast, slow) <= 1e-12
    assert torch.all(seen[0][0, :, :, 6:] == 0) and torch.all(seen[0][1, :, 11, :] > 0)


# --- bad inputs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("make_ids, message", [
    (lambda: torch.zeros(1, 78, dtype=torch.long), "78 tokens but the model has only 77 positions"),
    (lambda: torch.zeros(1, 77), "integer token ids.*input_ids.long"),
    (lambda: torch.zeros(77, dtype=torch.long), r"input_ids\[None\]"),
    (lambda: torch.full((1, 77), 1000), r"0\.\.999"),
    (lambda: torch.full((1, 77), -1), r"0\.\.999"),
    (lambda: [[0, 1, 2]], "torch.Tensor"),
])
def test_bad_input_ids_are_refused(make_ids, message):
    model = CLIPTextEncoder(TextEncoderConfig.tiny())
    with pytest.raises(ValueError, match=message):
        model(make_ids())


def test_bad_attention_masks_are_refused():
    model = CLIPTextEncoder(TextEncoderConfig.tiny())
    ids = torch.zeros(2, 10, dtype=torch.long)
    left = torch.ones(2, 10, dtype=torch.long)
    left[0, :3] = 0
    with pytest.raises(ValueError, match="pads on the right"):
        model(ids, attention_mask=left)
    with pytest.raises(ValueError, match="same shape"):
        model(ids, attention_mask=torch.ones(2, 9))
    with pytest.raises(ValueError, match="only 0"):
        model(ids, attention_mask=torch.full((2, 10), 2))


# --- the tokenizer -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_tokenizer(tmp_path_factory):
    return CLIPTokenizer.from_pretrained(write_tiny_tokenizer(tmp_path_factory.mktemp("tokenizer")))


def test_tokenize_pads_with_end_of_text(tiny_tokenizer):
    tok = tiny_tokenizer
    ids = tokenize(tok, ["a red cat", "a photo of a dog on the grass"])
    assert ids.shape == (2, 77) and ids.dtype == torch.long
    bos, eos = tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    words = tok.convert_tokens_to_ids(["a</w>", "red</w>", "cat</w>"])
    assert ids[0, :5].tolist() == [bos, *words, eos]
    assert torch.all(ids[0, 5:] == eos)  # the padding is <|endoftext|> again
    assert tok.pad_token_id == eos
    assert ids[1, 9] == eos and ids[1, 8] != eos  # 8 words, one token each
    assert torch.equal(tokenize(tok, "a red cat"), ids[:1])  # one string = a batch of one


def test_load_tokenizer_from_a_pipeline_folder(tmp_path, tiny_tokenizer):
    write_tiny_tokenizer(tmp_path / "pipe" / "tokenizer")
    for path in (tmp_path / "pipe", tmp_path / "pipe" / "tokenizer"):
        tok = load_tokenizer(path)
        assert tok.get_vocab() == tiny_tokenizer.get_vocab() and tok.model_max_length == 77
    with pytest.raises(ValueError, match=r"neither vocab.json \+ merges.txt nor tokenizer.json"):
        load_tokenizer(tmp_path)


def test_tokenize_truncates_and_checks(tiny_tokenizer):
    ids = tokenize(tiny_tokenizer, ["cat " * 200])
    assert ids.shape == (1, 77) and ids[0, -1] == tiny_tokenizer.eos_token_id
    assert tokenize(tiny_tokenizer, "a cat", max_length=8).shape == (1, 8)
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tokenize(tiny_tokenizer, [])
    with pytest.raises(ValueError, match="non-empty list of strings"):
        tokenize(tiny_tokenizer, ["a cat", 3])
    with pytest.raises(ValueError, match="CLIPTokenizer"):
        tokenize("not a tokenizer", ["a cat"])


def test_tiny_tokenizer_feeds_a_tiny_encoder(tiny_tokenizer):
    cfg = TextEncoderConfig.tiny(vocab_size=len(tiny_tokenizer), eos_token_id=tiny_tokenizer.eos_token_id)
    model = CLIPTextEncoder(cfg).eval()
    hidden, pooled = model.encode(tokenize(tiny_tokenizer, ["a red cat", "a blue dog"]))
    assert hidden.shape == (2, 77, 64) and pooled.shape == (2, 64)
    assert torch.equal(pooled, hidden[:, 4])  # both prompts: start, 3 words, end at position 4


# --- loading weights -----------------------------------------------------------------------------------

TINY = TextEncoderConfig.tiny()

# SD v1.5's text_encoder/config.json as the Hub holds it (written by transformers 4.22).
SD_V1_5_TEXT_ENCODER_CONFIG = {
    "_name_or_path": "openai/clip-vit-large-patch14", "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0, "bos_token_id": 0, "dropout": 0.0, "eos_token_id": 2, "hidden_act": "quick_gelu",
    "hidden_size": 768, "initializer_factor": 1.0, "initializer_range": 0.02, "intermediate_size": 3072,
    "layer_norm_eps": 1e-05, "max_position_embeddings": 77, "model_type": "clip_text_model",
    "num_attention_heads": 12, "num_hidden_layers": 12, "pad_token_id": 1, "projection_dim": 768,
    "torch_dtype": "float32", "transformers_version": "4.22.0.dev0", "vocab_size": 49408,
}


@pytest.fixture(scope="module")
def tiny_ref():
    return random_reference(TINY, torch.float32, seed=3)


def single_file_state(ref):
    """An SD v1.x single file's keys: the text encoder under cond_stage_model.transformer.text_model.,
    its position_ids buffer, and stand-ins for the UNet and VAE parts, which the loader must skip."""
    state = {f"cond_stage_model.transformer.text_model.{k}": v.contiguous() for k, v in ref.state_dict().items()}
    state["cond_stage_model.transformer.text_model.embeddings.position_ids"] = torch.arange(77)[None]
    state["model.diffusion_model.out.2.bias"] = torch.zeros(4)
    state["first_stage_model.decoder.conv_out.bias"] = torch.zeros(3)
    return state


def assert_loaded_equal(model, ref, dtype=torch.float32):
    assert isinstance(model, CLIPTextEncoder) and not model.training
    got = model.state_dict()
    for key, value in ref.state_dict().items():
        assert torch.equal(got[key], value.to(dtype)), key
    ids = prompt_ids(model.config)
    with torch.no_grad():
        expected = ref(input_ids=ids)
        hidden, pooled = model.float().encode(ids)
    assert max_diff(hidden, expected.last_hidden_state) <= 1e-5
    assert max_diff(pooled, expected.pooler_output) <= 1e-5


def test_sd_v1_5_config_json_gives_the_sd_v1_config():
    cfg = config_from_transformers(SD_V1_5_TEXT_ENCODER_CONFIG)
    assert cfg == TextEncoderConfig(eos_token_id=2)  # the old eos id: pooled uses the highest id
    assert config_from_transformers(CLIPTextConfig(**SD_V1_5_TEXT_ENCODER_CONFIG)) == cfg


def test_text_encoder_from_a_transformers_model_in_memory(tiny_ref):
    model = text_encoder_from_transformers(tiny_ref)
    assert model.config == TINY
    assert model.embeddings.token_embedding.weight.data_ptr() == tiny_ref.embeddings.token_embedding.weight.data_ptr()
    assert_loaded_equal(model, tiny_ref)


def test_load_a_transformers_folder(tmp_path, tiny_ref):
    tiny_ref.save_pretrained(tmp_path / "pipe" / "text_encoder")  # transformers 5: bare names
    for path in (tmp_path / "pipe", tmp_path / "pipe" / "text_encoder",
                 tmp_path / "pipe" / "text_encoder" / "model.safetensors"):
        model = load_text_encoder(path)  # the config comes from config.json
        assert model.config == TINY
        assert_loaded_equal(model, tiny_ref)
    half = load_text_encoder(tmp_path / "pipe", dtype=torch.float16)
    assert all(p.dtype == torch.float16 for p in half.parameters())
    assert_loaded_equal(half, copy.deepcopy(tiny_ref).half().float(), dtype=torch.float16)


def test_load_the_transformers_4_layout_with_position_ids(tmp_path, tiny_ref, capsys):
    """What every SD v1.x text_encoder/ on the Hub holds: text_model.* and the position_ids buffer."""


    folder = tmp_path / "text_encoder"
    folder.mkdir()
    state = export_text_encoder(tiny_ref.state_dict(), layout="transformers")
    state["text_model.embeddings.position_ids"] = torch.arange(77)[None]
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    CLIPTextConfig(**transformers_config(TINY)).save_pretrained(folder)
    assert_loaded_equal(load_text_encoder(folder), tiny_ref)
    assert capsys.readouterr().out == ""  # the buffer is left out without a word


@pytest.mark.parametrize("suffix", [".safetensors", ".ckpt"])
def test_load_an_sd_v1_single_file(tmp_path, tiny_ref, suffix):


    path = tmp_path / f"v1-tiny{suffix}"
    state = single_file_state(tiny_ref)
    if suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state, "global_step": 1}, path)
    assert_loaded_equal(load_text_encoder(path, config=TINY), tiny_ref)
    # without config=, the file is checked against SD v1's sizes and refused with the table
    with pytest.raises(CheckpointError, match=r"(?s)mis-shaped.*token_embedding.*pass config="):
        load_text_encoder(path)


@pytest.fixture
def single_file(tmp_path, tiny_ref):
    path = tmp_path / "v1-tiny.safetensors"
    save_file(single_file_state(tiny_ref), str(path))
    return path


def test_truncated_files_are_refused(tmp_path, single_file):
    data = single_file.read_bytes()
    for keep in (0.0, 0.001, 0.5, 0.99):
        cut = tmp_path / "cut.safetensors"
        cut.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(CheckpointError, match=r"truncated or corrupt|empty \(0 bytes\)"):
            load_text_encoder(cut, config=TINY)


class _RunsCode:
    """Pickles as a call to exec: loading the pickle fully would run `code`."""

    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def test_unsafe_pickle_is_refused_and_not_run(tmp_path, tiny_ref):
    marker = tmp_path / "code-was-executed"
    path = tmp_path / "evil.ckpt"
    torch.save({"state_dict": single_file_state(tiny_ref), "x": _RunsCode(f"open({str(marker)!r}, 'w')")}, path)
    with pytest.raises(UnsafeCheckpointError, match="(?s)Refused.*safetensors"):
        load_text_encoder(path, config=TINY)
    assert not marker.exists()


def test_a_renamed_key_is_refused_with_the_table(tmp_path, tiny_ref):


    state = single_file_state(tiny_ref)
    p = "cond_stage_model.transformer.text_model.encoder.layers.1."
    state[p + "mlp.fc_1.weight"] = state.pop(p + "mlp.fc1.weight")
    save_file(state, str(tmp_path / "renamed.safetensors"))
    with pytest.raises(ArchitectureError) as info:
        load_text_encoder(tmp_path / "renamed.safetensors", config=TINY)
    message = str(info.value)
    assert "missing (1):\n  encoder.layers.1.mlp.fc1.weight" in message
    assert "unexpected (1):\n  " + p + "mlp.fc_1.weight  (file key)" in message


def test_sd2_and_sdxl_single_files_are_refused(tmp_path, tiny_ref):


    sd2 = {"cond_stage_model.model.token_embedding.weight": torch.zeros(10, 8),
           "cond_stage_model.model.transformer.resblocks.0.attn.in_proj_weight": torch.zeros(24, 8),
           "model.diffusion_model.out.2.bias": torch.zeros(4)}
    save_file(sd2, str(tmp_path / "sd2.safetensors"))
    with pytest.raises(ArchitectureError, match=r"SD 2\.x checkpoint.*OpenCLIP ViT-H"):
        load_text_encoder(tmp_path / "sd2.safetensors")
    xl = {"conditioner.embedders.0.transformer." + k.removeprefix("cond_stage_model.transformer."): v
          for k, v in single_file_state(tiny_ref).items() if k.startswith("cond_stage_model.")}
    xl["conditioner.embedders.1.model.positional_embedding"] = torch.zeros(77, 8)
    save_file(xl, str(tmp_path / "sdxl.safetensors"))
    with pytest.raises(ArchitectureError, match="SDXL checkpoint.*two text encoders"):
        load_text_encoder(tmp_path / "sdxl.safetensors", config=TINY)


def test_other_files_and_folders_are_refused(tmp_path, tiny_ref):


    save_file({"model.diffusion_model.out.2.bias": torch.zeros(4)}, str(tmp_path / "unet.safetensors"))
    with pytest.raises(ArchitectureError, match="No CLIP text encoder weights.*model.diffusion_model.out.2.bias"):
        load_text_encoder(tmp_path / "unet.safetensors")
    (tmp_path / "empty" / "text_encoder").mkdir(parents=True)
    (tmp_path / "empty" / "text_encoder" / "config.json").write_text("{}")
    with pytest.raises(NotACheckpointError, match="No text encoder weights.*config.json"):
        load_text_encoder(tmp_path / "empty")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_text_encoder(tmp_path / "nowhere")
    # a text model with a projection (SDXL's text_encoder_2 is one): the extra key is named
    folder = tmp_path / "with_projection"
    folder.mkdir()
    state = {**tiny_ref.state_dict(), "text_projection.weight": torch.zeros(64, 64)}
    save_file({k: v.contiguous() for k, v in state.items()}, str(folder / "model.safetensors"))
    with pytest.raises(ArchitectureError, match="(?s)unexpected.*text_projection.weight.*CLIPTextModelWithProjection"):
        load_text_encoder(folder, config=TINY)
    with pytest.raises(ValueError, match="floating torch.dtype"):
        load_text_encoder(folder, dtype=torch.int64)
    (folder / "config.json").write_text('{"model_type": "clip_vision_model"}')
    with pytest.raises(ArchitectureError, match="not a CLIP text model"):
        load_text_encoder(folder)
