"""Tiny model configurations shared by the test suites (no framework imports).

Each variant turns on what makes DeBERTa DeBERTa: relative attention with both terms, log buckets
shorter than the test sequence (so both the log path and the index clamp run), key sharing both ways,
the v2 conv layer, an embedding projection, token types and absolute positions.
"""

from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data"  # the repository's own copy (data/*/PROVENANCE.md)
REFERENCE_VERSION = "4.57.6"


def data_path(*parts: str) -> Path:
    """A path under the repository's data/; a missing file is an error, never a skip."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        raise FileNotFoundError(f"test data missing from the repository: {path}")
    return path


def reference_transformers():
    """The oracle, `transformers` at the pinned version (a test dependency: another version is an error)."""
    import transformers

    if transformers.__version__ != REFERENCE_VERSION:
        raise RuntimeError(f"the reference is transformers {REFERENCE_VERSION}, found {transformers.__version__}; "
                           "run `make install`")
    transformers.logging.set_verbosity_error()
    return transformers

SEQ_LEN = 40  # longer than every span below: distances reach past the bucket range and the clamp

_SMALL = dict(vocab_size=100, hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
              max_position_embeddings=64, hidden_act="gelu")

VARIANTS = {
    # name: (family, extra config fields)
    "v1_rel": ("v1", dict(relative_attention=True, pos_att_type="c2p|p2c", max_relative_positions=16,
                          position_biased_input=False)),
    "v1_abs_types": ("v1", dict(relative_attention=True, pos_att_type=["c2p", "p2c"], type_vocab_size=2,
                                position_biased_input=True)),
    "v1_c2p_talking": ("v1", dict(relative_attention=True, pos_att_type="c2p", talking_head=True,
                                  position_biased_input=False)),
    "v1_p2c_embproj": ("v1", dict(relative_attention=True, pos_att_type="p2c|p2p", embedding_size=24,
                                  max_relative_positions=8, position_biased_input=False)),
    "v3_buckets_shared": ("v2", dict(relative_attention=True, pos_att_type="p2c|c2p", position_buckets=8,
                                     max_relative_positions=32, share_att_key=True, norm_rel_ebd="layer_norm",
                                     position_biased_input=False)),
    "v2_conv_unshared": ("v2", dict(relative_attention=True, pos_att_type="p2c|c2p", position_buckets=8,
                                    max_relative_positions=32, share_att_key=False, norm_rel_ebd="layer_norm",
                                    conv_kernel_size=3, conv_act="gelu", position_biased_input=False)),
    "v2_nobuckets_types_embproj": ("v2", dict(relative_attention=True, pos_att_type="c2p|p2c",
                                              max_relative_positions=16, type_vocab_size=2, embedding_size=24,
                                              position_biased_input=False)),
    "v2_c2p_only_abs": ("v2", dict(relative_attention=True, pos_att_type="c2p", position_buckets=8,
                                   max_relative_positions=32, share_att_key=True, position_biased_input=True)),
    "v2_p2c_only_conv_tanh": ("v2", dict(relative_attention=True, pos_att_type="p2c", share_att_key=False,
                                         conv_kernel_size=3, conv_groups=2, position_biased_input=False)),
    "v2_plain_abs": ("v2", dict(relative_attention=False, position_biased_input=True, type_vocab_size=2)),
}


def variant_config_kwargs(name: str) -> tuple[str, dict]:
    family, extra = VARIANTS[name]
    return family, {**_SMALL, **extra}
