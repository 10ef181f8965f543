"""The diagram of UNET_AttentionBlock (notebook 04) is drawn from a meta-device trace of the block."""
import matplotlib

matplotlib.use("Agg")

import pytest  # noqa: E402

from sdcourse import attention_diagram  # noqa: E402


def test_trace_reads_the_shapes_of_sd_v1s_first_level():
    block, shapes = attention_diagram.trace_attention_block(8, 40, 768, size=64)
    assert shapes["x"] == shapes["output"] == (1, 320, 64, 64)
    assert shapes["layernorm_1 in"] == (1, 64 * 64, 320)              # one token per pixel of the feature map
    assert shapes["linear_geglu_1 out"] == (1, 4096, 2 * 4 * 320)      # value and gate
    assert shapes["linear_geglu_2 in"] == (1, 4096, 4 * 320)           # after the gate
    assert shapes["conv_output in"] == (1, 320, 64, 64)
    assert block.groupnorm.eps == 1e-6


def test_labels_come_from_the_modules():
    block, _ = attention_diagram.trace_attention_block(8, 80, 768, size=8)
    assert attention_diagram._label(block.groupnorm) == "GroupNorm 32 groups, eps 1e-06"
    assert attention_diagram._label(block.attention_2) == "cross-attention, 8 heads × 80"
    assert attention_diagram._label(block.linear_geglu_1) == "Linear 640→5120"


def test_the_diagram_draws_what_the_trace_says():
    fig = attention_diagram.attention_block_diagram(8, 40)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "groupnorm: GroupNorm 32 groups, eps 1e-06" in texts
    assert "(B, h·w, 2560)" in texts and "(B, h·w, 1280)" in texts
    assert any("weights (B, 8, h·w, 77)" in t for t in texts)


@pytest.mark.parametrize("args, message", [((8, 40, 768, 0), "size"), ((3, 5, 768, 8), "32 GroupNorm groups")])
def test_bad_sizes_are_refused(args, message):
    with pytest.raises(ValueError, match=message):
        attention_diagram.trace_attention_block(*args)
