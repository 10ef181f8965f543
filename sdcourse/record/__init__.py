"""Record the attention of a course model and read maps out of it.

    from sdcourse.record import AttentionRecorder
    with AttentionRecorder(model, kind="cross", cfg=True) as rec:
        ...                                   # run the model / a sampler
    rec.maps.token_maps([1, 2], size=(64, 64))

Three modules, each one idea:
    recorder.py  AttentionRecorder: observers on the attention modules, online reduction, CFG checks
    maps.py      AttentionMaps: the recorded sums and the map arithmetic (heads, time, grids, normalising)
    timestep.py  decode_timestep: the exact timestep of a call, read from the model's time input
Block names and the token <-> grid layout are facts about the UNet: see `sdcourse.blocks`.
"""
from ..blocks import BlockInfo, attention_blocks, block_grid, latent_to_grid, sequence_index, sequence_pixel
from .maps import NORMALIZATIONS, AttentionMaps, normalize_maps
from .recorder import AttentionRecorder, as_tag
from .timestep import Timestep, decode_timestep

__all__ = [
    "AttentionRecorder", "AttentionMaps", "BlockInfo", "NORMALIZATIONS", "Timestep",
    "as_tag", "attention_blocks", "block_grid", "decode_timestep", "latent_to_grid", "normalize_maps",
    "sequence_index", "sequence_pixel",
]
