"""Input checks shared by both frameworks, so a bad batch gets the same clear ValueError everywhere.

The frameworks pass shapes and (min, max) ranges as plain Python values; nothing here touches tensors.
"""

from __future__ import annotations

from .config import BaseDebertaConfig


def check_model_inputs(config: BaseDebertaConfig, *, ids_shape=None, embeds_shape=None, mask_shape=None,
                       token_type_shape=None, position_shape=None, id_range=None, token_type_range=None,
                       position_range=None, mask_is_binary=None, ids_is_integer=None) -> None:
    """Raise ValueError naming the problem with a model's inputs; ranges are (min, max) or None (unchecked)."""
    if (ids_shape is None) == (embeds_shape is None):
        raise ValueError("pass exactly one of input_ids and inputs_embeds"
                         + (" (both were given)" if ids_shape is not None else " (neither was given)"))
    if ids_shape is not None:
        if len(ids_shape) != 2:
            raise ValueError(f"input_ids must have shape (batch, sequence), got {ids_shape}")
        if ids_is_integer is False:
            raise ValueError("input_ids must be integer token ids, got a floating-point tensor")
        shape = tuple(ids_shape)
    else:
        if len(embeds_shape) != 3:
            raise ValueError(f"inputs_embeds must have shape (batch, sequence, embedding_size), got {embeds_shape}")
        if embeds_shape[-1] != config.embedding_dim:
            raise ValueError(f"inputs_embeds last dimension is {embeds_shape[-1]}, the model's embedding size is "
                             f"{config.embedding_dim}")
        shape = tuple(embeds_shape[:2])
    B, T = shape
    if T == 0:
        raise ValueError("the input sequence is empty (length 0)")
    if id_range is not None:
        lo, hi = id_range
        if lo < 0 or hi >= config.vocab_size:
            bad = lo if lo < 0 else hi
            raise ValueError(f"input_ids contains id {bad}, outside the vocabulary [0, {config.vocab_size})")
    if config.position_biased_input and T > config.max_position_embeddings:
        raise ValueError(f"sequence length {T} exceeds max_position_embeddings ({config.max_position_embeddings}) "
                         "of this model, which adds absolute position embeddings")
    if mask_shape is not None:
        mask_shape = tuple(mask_shape)
        ok = (mask_shape == (B, T) or mask_shape == (B, T, T)
              or (len(mask_shape) == 4 and mask_shape[0] == B and mask_shape[1] == 1 and mask_shape[2:] == (T, T)))
        if not ok:
            raise ValueError(f"attention_mask shape {mask_shape} does not match the input shape {shape}: expected "
                             f"{(B, T)}, {(B, T, T)} or {(B, 1, T, T)}")
        if mask_is_binary is False:
            raise ValueError("attention_mask must hold only 0 and 1 (other values would scale the embeddings)")
    if token_type_shape is not None:
        if tuple(token_type_shape) != shape:
            raise ValueError(f"token_type_ids shape {tuple(token_type_shape)} does not match the input shape {shape}")
        if token_type_range is not None and config.type_vocab_size > 0:
            lo, hi = token_type_range
            if lo < 0 or hi >= config.type_vocab_size:
                bad = lo if lo < 0 else hi
                raise ValueError(f"token_type_ids contains {bad}, outside [0, {config.type_vocab_size}) "
                                 "(type_vocab_size)")
    if position_shape is not None:
        if len(position_shape) != 2 or position_shape[1] != T or position_shape[0] not in (1, B):
            raise ValueError(f"position_ids shape {tuple(position_shape)} does not match the input shape {shape}")
        if position_range is not None and config.position_biased_input:
            lo, hi = position_range
            if lo < 0 or hi >= config.max_position_embeddings:
                bad = lo if lo < 0 else hi
                raise ValueError(f"position_ids contains {bad}, outside [0, {config.max_position_embeddings})")


def check_label_shape(name: str, labels_shape, expected_shape) -> None:
    """Labels must have exactly the expected shape (after the reference's squeezes)."""
    if tuple(labels_shape) != tuple(expected_shape):
        raise ValueError(f"{name} has shape {tuple(labels_shape)}, expected {tuple(expected_shape)}")


def check_question_answering(num_labels: int, start_positions, end_positions) -> bool:
    """The question-answering head needs num_labels == 2; positions come both or not at all.
    Returns whether a loss is to be computed."""
    if num_labels != 2:
        raise ValueError(f"question answering needs num_labels == 2 (start, end), got {num_labels}")
    if (start_positions is None) != (end_positions is None):
        raise ValueError("pass both start_positions and end_positions to compute the loss, or neither")
    return start_positions is not None


def check_multiple_choice_inputs(ids_shape, embeds_shape) -> None:
    """Multiple-choice inputs are (batch, num_choices, sequence) ids or (..., embedding) embeddings."""
    shape = ids_shape if ids_shape is not None else embeds_shape
    if shape is None:
        raise ValueError("pass exactly one of input_ids and inputs_embeds (neither was given)")
    expected_rank = 3 if ids_shape is not None else 4
    if len(shape) != expected_rank:
        name = "input_ids" if ids_shape is not None else "inputs_embeds"
        raise ValueError(f"{name} must have shape (batch, num_choices, sequence{', embedding' if expected_rank == 4 else ''}) "
                         f"for multiple choice, got {tuple(shape)}")
